"""Hard gates on deterministic work counters (engineering guide section 4.3).

Wall time is noisy; the work an algorithm does is not. This module measures counters that only a
change to the algorithms (or a change of their inputs) can move, compares them with the values
stored in ``benchmarks/work_counters.json``, and fails when one grew beyond its stated tolerance:

* deep linear GD: iterations until ``r(t) <= 0.03 r(0)`` on three fixed instances; matrix products
  (``np.matmul`` ufunc calls, ``@`` included) and ``einsum`` calls per step, single and batched,
  counted by running :func:`dynamics.deep_linear.run_gd` on views of a counting ``ndarray``
  subclass (every product whose operands descend from the inputs is seen, whatever the code path);
* DIP: GD steps until ``||r_tau|| <= ||eps_eff||`` on three noisy instances (MSE, Huber, power),
  products per reduced GD step (the same counting arrays), and ``solve_ivp`` right-hand-side
  evaluations of the gradient flow until the same target (SciPy's ``nfev`` and our own count of
  :func:`dynamics.dip_two_layer.z_velocity` calls, which must agree);
* JPO: BFGS ``nit``/``nfev``/``njev`` totals of the section-3 baseline on fixed ripple, wave-packet
  and billiards problems and the lock-step engine's evaluation rounds (``dynamics/bfgs_batch.py``,
  the default), checked against the reference engine (one ``scipy.optimize.minimize`` per
  example) and our own count of its loss-kernel evaluations (independent of either engine's
  bookkeeping); Adam steps until the joint loss reaches ``0.1 J(0)`` on the ripple problem.

Tolerances: zero for every exact counter. First-passage counters are exact because their thresholds
have a wide crossing margin (the relative gap between the threshold and the values just before and
at the crossing, stored beside each count and required to stay above :data:`MIN_MARGIN`, far above
the ~1e-13 by which BLAS backends move trajectories). BFGS totals and ``solve_ivp`` evaluations
get ``+2%`` (at least ``+2``): a line-search or step-size acceptance test that is marginal on one
backend can take the other branch on another, adding an iteration or two to one example without any
change in the code. A counter that *decreased* is not a failure; the test emits :class:`WorkCounterNote`
suggesting a refresh (``python tools/refresh_work_counters.py``, see ``docs/certified.md``).

Values are stored per environment (``EXPECTED_BLAS``, set by the tox envs; ``default`` otherwise),
falling back to ``default`` when an environment has none of its own.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

STORE = Path(__file__).with_name("work_counters.json")
SCHEMA = 1
MIN_MARGIN = 1e-6
"""Smallest admissible crossing margin of a first-passage counter (relative)."""
DLN_FIT_FRACTION = 0.03
JPO_LOSS_FRACTION = 0.1


class WorkCounterNote(UserWarning):
    """A counter went down: the algorithms do less work; refresh the stored values."""


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """Allowed growth ``max(floor(stored * rel), abs)`` and the reason for it."""

    rel: float
    abs: int
    why: str

    def limit(self, stored: int) -> int:
        return stored + max(math.floor(stored * self.rel), self.abs)


EXACT = Tolerance(0.0, 0, "deterministic integer: any increase is more work")
BRANCHY = Tolerance(0.02, 2, "a marginal line-search / step-acceptance branch may flip between BLAS "
                             "backends and add an iteration to one example")


def tolerance(name: str) -> Tolerance:
    """The tolerance of a counter, by name."""
    return BRANCHY if name.startswith(("jpo.bfgs.", "dip.flow.")) else EXACT


# --------------------------------------------------------------------------------------------
# counting products


class _Counts(collections.Counter):
    pass


_COUNTS = _Counts()
_PRODUCTS = {np.dot, np.einsum, np.tensordot, np.inner, np.vdot, np.linalg.multi_dot}


class CountingArray(np.ndarray):
    """An ``ndarray`` view that counts ``np.matmul`` (``@``) and the other product functions.

    Results of ufuncs on counting arrays are counting arrays again, so products of anything derived
    from the inputs are counted; ``np.asarray`` of one (input validation) returns a plain array, so
    the instances are wrapped *after* validation.
    """

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        if ufunc is np.matmul and method == "__call__":
            _COUNTS["matmul"] += 1
        plain = tuple(x.view(np.ndarray) if isinstance(x, CountingArray) else x for x in inputs)
        if out is not None:
            kwargs["out"] = tuple(o.view(np.ndarray) if isinstance(o, CountingArray) else o for o in out)
        result = getattr(ufunc, method)(*plain, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        if isinstance(result, np.ndarray) and result.ndim:
            return result.view(CountingArray)
        return result

    def __array_function__(self, func, types, args, kwargs):
        if func in _PRODUCTS:
            _COUNTS[func.__name__] += 1
        return super().__array_function__(func, types, args, kwargs)


@contextlib.contextmanager
def counting() -> Iterator[collections.Counter]:
    """Reset the product counts and yield them."""
    _COUNTS.clear()
    yield _COUNTS


def _wrap(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).view(CountingArray)


# --------------------------------------------------------------------------------------------
# measurements (each returns {counter: int} and {counter: crossing margin})


def _first_below(values: np.ndarray, level: float) -> tuple[int, float]:
    """First index with ``values <= level`` and its crossing margin (relative)."""
    hit = np.flatnonzero(values <= level)
    if not hit.size:
        raise AssertionError(f"the run never reached {level:.6g}: lengthen it")
    t = int(hit[0])
    before = values[t - 1] / level - 1 if t > 0 else math.inf
    return t, float(min(before, 1 - values[t] / level))


def _dln_specs():
    from verification.dln_instances import DLNSpec

    return {"L3": DLNSpec(d=20, m=10, s=2, n=20, L=3, d_w=32, lam=0.1, k=1.0, seed=0),
            "L2": DLNSpec(d=20, m=10, s=2, n=20, L=2, d_w=24, lam=0.01, k=0.5, seed=1),
            "L4": DLNSpec(d=30, m=15, s=3, n=10, L=4, d_w=32, lam=0.05, k=1.0, seed=2)}


def measure_dln() -> tuple[dict[str, int], dict[str, float]]:
    from dynamics import deep_linear as dl
    from verification.dln_instances import materialize

    counts, margins = {}, {}
    steps = 200
    for label, spec in _dln_specs().items():
        inst = materialize(spec)
        tr = dl.run_gd(inst.data.X, inst.data.Y, inst.weights0, eta=inst.eta, steps=steps, lam=spec.lam,
                       a=inst.a, c=inst.c, record_at=np.arange(steps + 1))
        r = tr["fit_error"]
        name = f"dln.iters_to_fit_{DLN_FIT_FRACTION:g}r0.{label}"
        counts[name], margins[name] = _first_below(r, DLN_FIT_FRACTION * r[0])
    # Products per GD step: the difference of two run lengths removes the set-up and the t = 0
    # record (SVDs, norms), leaving what one step costs.
    inst = materialize(_dln_specs()["L3"])
    B = 3
    batched = (np.stack([inst.data.X] * B), np.stack([inst.data.Y] * B),
               [np.stack([w] * B) for w in inst.weights0], np.full(B, inst.eta), np.full(B, 0.1))
    single = (inst.data.X, inst.data.Y, inst.weights0, inst.eta, 0.1)
    original = dl._check_problem

    def wrapped(X, Y, weights0):
        X, Y, ws = original(X, Y, weights0)
        return _wrap(X), _wrap(Y), [_wrap(w) for w in ws]

    dl._check_problem = wrapped
    try:
        for label, (X, Y, W, eta, lam) in (("single", single), ("batched", batched)):
            per = []
            for n_steps in (300, 600):  # > 256 so that the batched run folds its deferred shrink
                with counting() as c:
                    dl.run_gd(X, Y, W, eta=eta, steps=n_steps, lam=lam, a=inst.a, c=inst.c, record_at=[0])
                    per.append(dict(c))
            for kind in ("matmul", "einsum"):
                diff = per[1].get(kind, 0) - per[0].get(kind, 0)
                counts[f"dln.{kind}_per_step.{label}_L3"] = math.ceil(diff / 300)
    finally:
        dl._check_problem = original
    return counts, margins


def _dip_specs():
    from verification.claims import dip_descent as dd

    return {"mse": dd._BASE.replace(noise_rel=0.05), "huber": dd._HUBER.replace(noise_rel=0.3, huber_rel=2.0),
            "power": dd._POWER.replace(noise_rel=0.95, p=2.5)}


def measure_dip() -> tuple[dict[str, int], dict[str, float]]:
    from dynamics import dip_two_layer as dip
    from verification import dip_instances as dipi

    counts, margins = {}, {}
    for label, spec in _dip_specs().items():
        case = dipi.materialize(spec)
        eps = case.eps_eff_norm
        tr = dip.run_gd(case.inst, case.loss, case.gamma, 600, record_every=1)
        r = tr.records["fit_error"]
        name = f"dip.gd_steps_to_eps.{label}"
        counts[name], margins[name] = _first_below(r, eps)
        calls = [0]
        original = dip.z_velocity

        def counted(*args, _f=original, _calls=calls, **kwargs):
            _calls[0] += 1
            return _f(*args, **kwargs)

        dip.z_velocity = counted
        try:
            flow = dip.run_flow(case.inst, case.loss, dipi.flow_horizon(case), t_eval=[0.0],
                                stop_ratio=eps / r[0])
        finally:
            dip.z_velocity = original
        if flow.solution.status != 1:
            raise AssertionError(f"{label}: the flow did not reach ||r|| = ||eps_eff|| within its horizon")
        if calls[0] != flow.solution.nfev:
            raise AssertionError(f"{label}: solve_ivp reports nfev={flow.solution.nfev}, the right-hand "
                                 f"side ran {calls[0]} times")
        counts[f"dip.flow.nfev_to_eps.{label}"] = calls[0]
    case = dipi.materialize(_dip_specs()["mse"])
    inst = dataclasses.replace(case.inst, **{f: _wrap(getattr(case.inst, f))
                                             for f in ("u", "W0", "V", "A", "y")})
    z = case.inst.z0.copy()
    with counting() as c:
        for _ in range(10):
            z = dip.gd_step_z(inst, case.loss, z, case.gamma)
        prods = dict(c)
    for kind in ("matmul",):
        counts[f"dip.{kind}_per_step.mse"] = math.ceil(prods.get(kind, 0) / 10)
    return counts, margins


def _jpo_problems():
    from dynamics import jpo_problems as jp

    return {"ripple": jp.ripple_problem(32, 1.0, 0), "wave": jp.wave_packet_problem(16, jp.WAVE_NAIVE, 0),
            "billiards": jp.billiards_problem(16, 0)}


def measure_jpo() -> tuple[dict[str, int], dict[str, float]]:
    from dynamics import bfgs_reference as bref
    from dynamics import joint
    from dynamics import jpo_problems as jp
    from dynamics.bfgs_batch import bfgs_batch_detail

    counts, margins = {}, {}
    problems = _jpo_problems()
    original = jp.ExampleFunctions._eval
    kernel = [0]

    def counted(self, x, _f=original):
        kernel[0] += 1
        return _f(self, x)

    for label, prob in problems.items():
        # The default (lock-step) engine: SciPy's counters plus the driver's rounds and rows.
        detail = bfgs_batch_detail(prob, prob.start(), check="flag")
        for key, value in detail.run.totals().items():
            counts[f"jpo.bfgs.{key}.{label}"] = value
        counts[f"jpo.bfgs.batch_rounds.{label}"] = detail.rounds
        # The reference engine (one scipy.optimize.minimize per example), with our own count of
        # kernel evaluations: independent of both engines' bookkeeping.
        kernel[0] = 0
        jp.ExampleFunctions._eval = counted
        try:
            ref = bref.bfgs_baseline(prob, check="flag", engine="scipy")
        finally:
            jp.ExampleFunctions._eval = original
        counts[f"jpo.bfgs.kernel_evaluations.{label}"] = kernel[0]
        if ref.totals() != detail.run.totals() or detail.kernel_rows != kernel[0]:
            raise AssertionError(f"{label}: batch engine {detail.run.totals()} (rows {detail.kernel_rows}) "
                                 f"!= scipy engine {ref.totals()} (kernel evaluations {kernel[0]})")
    prob = problems["ripple"]
    res = joint.train_jpo(prob.inputs, prob.loss_and_grad, prob.x0, steps=100, record_every=1)
    name = f"jpo.adam_steps_to_{JPO_LOSS_FRACTION:g}J0.ripple"
    counts[name], margins[name] = _first_below(res.history_loss, JPO_LOSS_FRACTION * res.history_loss[0])
    return counts, margins


MEASUREMENTS: dict[str, Callable[[], tuple[dict[str, int], dict[str, float]]]] = {
    "dln": measure_dln, "dip": measure_dip, "jpo": measure_jpo}


def measure_all() -> tuple[dict[str, int], dict[str, float]]:
    """Every counter and the crossing margins of the first-passage ones."""
    counts, margins = {}, {}
    for fn in MEASUREMENTS.values():
        c, m = fn()
        counts.update(c)
        margins.update(m)
    return counts, margins


# --------------------------------------------------------------------------------------------
# the store


def env_name() -> str:
    """The environment the stored values are keyed by (``EXPECTED_BLAS`` of the tox env)."""
    return os.environ.get("EXPECTED_BLAS") or "default"


def load_store(path: Path = STORE) -> dict:
    with open(path) as fh:
        store = json.load(fh)
    if store.get("schema") != SCHEMA:
        raise ValueError(f"{path}: schema {store.get('schema')!r}, expected {SCHEMA}")
    return store


def stored_values(store: dict, env: str) -> dict[str, int]:
    """``default`` values overlaid with the environment's own."""
    envs = store["values"]
    return {**envs.get("default", {}), **envs.get(env, {})}


# --------------------------------------------------------------------------------------------
# the gate (runs in the default test suite)


@pytest.fixture(scope="module")
def measured():
    return measure_all()


@pytest.fixture(scope="module")
def stored():
    return stored_values(load_store(), env_name())


def test_every_counter_is_stored(measured, stored):
    counts, _ = measured
    missing = sorted(set(counts) - set(stored))
    stale = sorted(set(stored) - set(counts))
    assert not missing and not stale, (f"counters without a stored value {missing}, stored values without a "
                                       f"counter {stale}: run python tools/refresh_work_counters.py")


def test_work_counters_did_not_grow(measured, stored):
    counts, _ = measured
    grown, shrunk = [], []
    for name in sorted(set(counts) & set(stored)):
        value, ref, tol = counts[name], stored[name], tolerance(name)
        if value > tol.limit(ref):
            grown.append(f"{name}: {value} > stored {ref} "
                         f"(tolerance max(+{tol.rel:.0%}, +{tol.abs}): {tol.why})")
        elif value < ref:
            shrunk.append(f"{name}: {value} < stored {ref}")
    if shrunk:
        warnings.warn(WorkCounterNote("less work than stored, refresh with python tools/"
                                      "refresh_work_counters.py: " + "; ".join(shrunk)), stacklevel=1)
    assert not grown, "more work than stored:\n" + "\n".join(grown)


def test_first_passage_counters_have_a_wide_crossing_margin(measured):
    _, margins = measured
    thin = {k: v for k, v in margins.items() if not v >= MIN_MARGIN}
    assert not thin, f"thresholds crossed within {MIN_MARGIN:g} relative (move the threshold): {thin}"


def test_product_counts_match_the_kernels(measured):
    # The counting arrays see every product: GD on an L-layer deep linear net forms L forward
    # products, L gradients and L - 1 backpropagated signals; the reduced DIP step has V phi,
    # A x, A^T grad, V^T w and ||u||^2.
    counts, _ = measured
    assert counts["dln.matmul_per_step.single_L3"] == 3 * 3 - 1
    assert counts["dln.matmul_per_step.batched_L3"] == 3 * 3 - 1
    assert counts["dip.matmul_per_step.mse"] == 5


def test_gate_flags_growth_and_notes_shrinkage(stored):
    # The gate's arithmetic on a synthetic measurement: one more BFGS evaluation within 2% passes,
    # one more GD iteration does not.
    name_b = next(k for k in stored if k.startswith("jpo.bfgs.nfev"))
    name_e = next(k for k in stored if k.startswith("dln.iters"))
    assert tolerance(name_b).limit(stored[name_b]) >= stored[name_b] + 1
    assert tolerance(name_e).limit(stored[name_e]) == stored[name_e]
