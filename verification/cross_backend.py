"""Cross-backend agreement: a fixed set of trajectories, their final records, and a rounding allowance.

The tox BLAS matrix (``docs/blas.md``) runs the same code on netlib, OpenBLAS, BLIS and MKL. Backends
round differently (blocking, FMA, summation order), so trajectories agree only up to rounding. This
module runs a fixed, fast set of trajectories (:data:`CASES`: deep-linear GD, single and batched, DIP
GD with two losses, and a short JPO training), and compares their final records with a reference
stored in the repository (``tests/data/cross_backend_reference.json``, written on the default PyPI
environment by ``tools/make_cross_backend_reference.py``).

The allowance of a record ``r`` (:func:`allowance`) composes two classes of
:mod:`verification.tolerance`:

* set-up (class P): the data and step sizes come from orthogonal factorizations, SVDs and
  pseudo-inverses, each correct to ``1024 u kappa S``;
* dynamics (class U): every step injects a rounding error of at most ``64 u S`` relative to the
  size of the quantities it combines; over ``steps`` steps of a stable (non-expansive) run these add
  up without amplification, giving ``64 u S steps``.

``S`` is the record's scale, ``max_t |r(t)|`` along the reference trajectory: a record that decays
(a loss, a residual) is computed from operands of the size it had earlier, so its absolute rounding
error is relative to that size, not to its final value. Both classes carry the ``sqrt(dims/64)``
inner-dimension factor of :mod:`verification.tolerance`. The non-expansiveness is an assumption of the
allowance, not a theorem about every run; the observed deviation over the allowance is what the test
reports, and ``docs/blas.md`` lists it per backend.
"""

from __future__ import annotations

import dataclasses
import json
import math
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from verification import tolerance

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Case:
    """One trajectory of the agreement set.

    Attributes
    ----------
    name : str
        Stable id, ``family.what``.
    spec : str
        The repr of the spec(s) the run is built from (documentation; the run is :attr:`run`).
    run : callable
        ``run() -> Outcome``.
    """

    name: str
    spec: str
    run: Callable[[], Outcome]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What a case produced: final records, their scales, and the allowance's inputs.

    Attributes
    ----------
    final : dict of str -> float
        Final value of each record.
    scale : dict of str -> float
        ``max_t |record(t)|`` along the trajectory.
    steps : int
        Number of update steps.
    dims : int
        Largest inner dimension of the matrix products.
    kappa : float
        Condition number of the operator factorized in the set-up (1 if none is).
    """

    final: dict[str, float]
    scale: dict[str, float]
    steps: int
    dims: int
    kappa: float


def _finite_records(records: dict[str, np.ndarray], column: int | None = None) -> tuple[dict, dict]:
    final, scale = {}, {}
    for name, values in sorted(records.items()):
        v = np.asarray(values, dtype=float)
        if column is not None:
            v = v[:, column]
        if v.ndim != 1 or not np.all(np.isfinite(v)):
            continue  # per-layer arrays (weight_drift) and NaN placeholders are not compared
        final[name] = float(v[-1])
        scale[name] = float(np.max(np.abs(v)))
    return final, scale


def _dln_specs():
    from verification.dln_instances import DLNSpec

    single = (DLNSpec(steps=300, seed=1),
              DLNSpec(d=30, m=15, s=4, n=24, L=3, d_w=40, lam=0.05, k=2.0, design="prescribed_rip",
                      steps=400, seed=3))
    batch = tuple(DLNSpec(d=24, m=12, s=3, n=16, L=4, d_w=32, lam=0.1 * (1 + i), steps=250, seed=10 + i)
                  for i in range(4))
    return single, batch


def _dln_kappa(spec) -> float:
    from verification import dln_instances as dli

    data = dli.materialize(spec).data
    return float(np.linalg.cond(data.A @ data.R))


def _dln_dims(spec) -> int:
    return max(spec.d, spec.m, spec.n, spec.d_w)


def _dln_single(spec) -> Callable[[], Outcome]:
    def run() -> Outcome:
        from verification import dln_instances as dli

        traj = dli.trajectory(spec)
        final, scale = _finite_records(traj.records)
        return Outcome(final, scale, spec.steps, _dln_dims(spec), _dln_kappa(spec))
    return run


def _dln_batch(specs, member: int) -> Callable[[], Outcome]:
    def run() -> Outcome:
        trajs = _dln_batch_run(specs)
        final, scale = _finite_records(trajs[member].records)
        return Outcome(final, scale, specs[member].steps, _dln_dims(specs[member]), _dln_kappa(specs[member]))
    return run


_BATCH_CACHE: dict[tuple, list] = {}


def _dln_batch_run(specs):
    # One batched run serves every member's case (the batched matmul path is what is under test).
    if specs not in _BATCH_CACHE:
        from verification import dln_instances as dli

        _BATCH_CACHE.clear()
        _BATCH_CACHE[specs] = dli.batch_trajectories(list(specs))
    return _BATCH_CACHE[specs]


def _dip_specs():
    from verification.dip_instances import DIPSpec

    return (DIPSpec(steps=400, seed=0),
            DIPSpec(n=5, m=7, k=128, loss="huber", activation="sigmoid", cond=4.0, steps=300, seed=2))


def _dip(spec) -> Callable[[], Outcome]:
    def run() -> Outcome:
        from verification import dip_instances as dpi

        case = dpi.materialize(spec)
        traj = dpi.descent(spec)
        final, scale = _finite_records(traj.records)
        return Outcome(final, scale, spec.steps, max(spec.n, spec.m, spec.k * spec.d),
                       float(np.linalg.cond(case.inst.A)))
    return run


def _jpo_spec():
    from verification.jpo_instances import JPORunSpec

    return JPORunSpec(problem="ripple", n=32, steps=200, seed=0)


def _jpo(spec) -> Callable[[], Outcome]:
    def run() -> Outcome:
        from verification import jpo_instances as jpi

        res = jpi.train_on_problem(spec.build_problem(), spec)
        records = {"mean_loss": res.history_loss,
                   # the parameters' size and the outputs' spread, at the end only
                   "theta_norm": np.array([np.linalg.norm(res.theta0), np.linalg.norm(res.theta)]),
                   "output_norm": np.array([np.linalg.norm(res.outputs)])}
        final, scale = _finite_records(records)
        return Outcome(final, scale, spec.steps, max(*res.mlp.sizes, spec.n), 1.0)
    return run


def cases() -> tuple[Case, ...]:
    """The fixed agreement set (about 1 s on one core)."""
    single, batch = _dln_specs()
    dip = _dip_specs()
    jpo = _jpo_spec()
    out = [Case("dln.gd_default", repr(single[0]), _dln_single(single[0])),
           Case("dln.gd_depth3_rip", repr(single[1]), _dln_single(single[1]))]
    out += [Case(f"dln.batch4[{i}]", repr(sp), _dln_batch(batch, i)) for i, sp in enumerate(batch)]
    out += [Case("dip.gd_tanh_mse", repr(dip[0]), _dip(dip[0])),
            Case("dip.gd_sigmoid_huber", repr(dip[1]), _dip(dip[1])),
            Case("jpo.adam_ripple", repr(jpo), _jpo(jpo))]
    return tuple(out)


def allowance(scale: float, *, steps: int, dims: int, kappa: float) -> float:
    """Rounding allowance of a final record (module docstring).

    Parameters
    ----------
    scale : float
        ``max_t |record(t)|`` on the reference trajectory, ``>= 0``.
    steps : int
        Update steps, ``>= 0``.
    dims : int
        Largest inner dimension, ``>= 1``.
    kappa : float
        Condition number of the set-up's factorized operator, ``>= 1``.

    Returns
    -------
    float
        ``pseudo_inverse(scale, kappa, dims) + update_path(scale * max(steps, 1), dims)``.

    Raises
    ------
    ValueError
        If an argument is out of range or not finite.
    """
    if not (math.isfinite(scale) and scale >= 0):
        raise ValueError(f"scale: must be finite and >= 0, got {scale!r}")
    if not (isinstance(steps, int) and steps >= 0):
        raise ValueError(f"steps: must be an int >= 0, got {steps!r}")
    if not (isinstance(dims, int) and dims >= 1):
        raise ValueError(f"dims: must be an int >= 1, got {dims!r}")
    if not (math.isfinite(kappa) and kappa >= 1):
        raise ValueError(f"kappa: must be finite and >= 1, got {kappa!r}")
    return (tolerance.pseudo_inverse(scale, kappa, dims)
            + tolerance.update_path(scale * max(steps, 1), dims))


def run_all() -> dict[str, Outcome]:
    """Run every case of :func:`cases`, by name."""
    _BATCH_CACHE.clear()
    return {c.name: c.run() for c in cases()}


def reference_document(outcomes: dict[str, Outcome]) -> dict[str, Any]:
    """The JSON document stored as the reference (with the environment that produced it)."""
    import scipy

    from verification import blas

    specs = {c.name: c.spec for c in cases()}
    return {
        "format_version": FORMAT_VERSION,
        "generated_by": "python tools/make_cross_backend_reference.py",
        "environment": {"python": platform.python_version(), "numpy": np.__version__,
                        "scipy": scipy.__version__, "blas": blas.describe(), "machine": platform.machine()},
        "allowance": "pseudo_inverse(S, kappa, dims) + update_path(S * steps, dims) from "
                     "verification/tolerance.py, S = max_t |record(t)| on this reference",
        "cases": {name: {"spec": specs[name], "steps": o.steps, "dims": o.dims, "kappa": o.kappa,
                         "final": o.final, "scale": o.scale}
                  for name, o in outcomes.items()},
    }


def load_reference(path: str | Path) -> dict[str, Any]:
    """Read a reference document (in a checkout: ``tests/data/cross_backend_reference.json``).

    Raises
    ------
    ValueError
        If the file is missing, not JSON, or of another format version.
    """
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"path: cannot read a reference from {str(path)!r}: {exc}") from None
    if doc.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"path: {str(path)!r} has format_version {doc.get('format_version')!r}, "
                         f"expected {FORMAT_VERSION}")
    return doc


@dataclasses.dataclass(frozen=True)
class Deviation:
    """One record compared with its reference."""

    case: str
    record: str
    observed: float
    reference: float
    allowance: float

    @property
    def deviation(self) -> float:
        """``|observed - reference|``."""
        return abs(self.observed - self.reference)

    @property
    def ratio(self) -> float:
        """Deviation over allowance (``<= 1`` passes); ``inf`` for a zero allowance with a deviation."""
        if self.allowance > 0:
            return self.deviation / self.allowance
        return 0.0 if self.deviation == 0 else math.inf


def compare(reference: dict[str, Any], outcomes: dict[str, Outcome]) -> list[Deviation]:
    """Compare ``outcomes`` with a reference document, record by record.

    Raises
    ------
    ValueError
        If the case sets or a case's record names differ (the reference is stale: regenerate it).
    """
    ref_cases = reference["cases"]
    if set(ref_cases) != set(outcomes):
        raise ValueError(f"reference: cases {sorted(ref_cases)} differ from the run's {sorted(outcomes)}; "
                         f"regenerate with tools/make_cross_backend_reference.py")
    out = []
    for name, o in outcomes.items():
        ref = ref_cases[name]
        if set(ref["final"]) != set(o.final):
            raise ValueError(f"reference: case {name} records {sorted(ref['final'])} differ from the "
                             f"run's {sorted(o.final)}; regenerate the reference")
        for rec, value in o.final.items():
            allow = allowance(ref["scale"][rec], steps=ref["steps"], dims=ref["dims"], kappa=ref["kappa"])
            out.append(Deviation(name, rec, value, ref["final"][rec], allow))
    return out
