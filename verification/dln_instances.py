"""Deep-linear instances: the spec, its materialization, and a trajectory cache.

This module composes the layers: it builds data and initial weights with :mod:`dynamics`, takes
the theory step size from :mod:`bounds`, and runs the dynamics once per spec (cached, because
many claims read the same trajectory).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from bounds import dln_weight_decay as dlb
from dynamics import deep_linear as dl
from dynamics._validate import choice, positive_int, real
from verification.engine import HypothesisFailed
from verification.instances import spec_type

STEPSIZE_RULES = ("gn_bound", "seed002", "absolute")


@spec_type
@dataclasses.dataclass(frozen=True)
class DLNSpec:
    """A reproducible deep-linear instance.

    Attributes
    ----------
    d, m, s, n : int
        Signal dimension, measurements, subspace dimension, training samples.
    L, d_w : int
        Depth and hidden width.
    lam : float
        Weight-decay parameter ``lambda`` (the effective decay is ``lam_bar = 2 c lam``).
    k : float
        Step multiple: ``eta = k * eta_hat`` (or the absolute step for ``stepsize="absolute"``).
    init, init_scale : str, float
        Initialization scheme and global multiplier.
    convention : str
        Loss convention (``talk``, ``pytorch_wd``, ``mean``).
    update : str
        Update profile (``standard``, ``seed002_ntk``).
    stepsize : str
        ``gn_bound`` (``eta_hat = 1/max(L_0, L_star)``), ``seed002`` (``m / (L sigma_1(X)^2)``),
        or ``absolute`` (``eta = k``).
    design : str
        Data design (``gaussian``, ``prescribed_rip``, ``isotropic``).
    rip_delta, beta, z_log10_cond : float
        Design parameters (see :func:`dynamics.deep_linear.make_data`).
    steps : int
        GD steps.
    record_every : int
        Record every this many steps (0: log-spaced schedule).
    seed : int
        Master seed; ``SeedSequence(seed).spawn(4)`` gives the operator, codes, init and test
        streams (common random numbers across specs that differ only in hyperparameters).
    reduce : bool
        Use the exact row-space reduction (D0).
    """

    d: int = 40
    m: int = 20
    s: int = 3
    n: int = 30
    L: int = 4
    d_w: int = 60
    lam: float = 0.2
    k: float = 1.0
    init: str = "lecun_normal"
    init_scale: float = 1.0
    convention: str = "talk"
    update: str = "standard"
    stepsize: str = "gn_bound"
    design: str = "gaussian"
    rip_delta: float = 0.1
    beta: float = 1.0
    z_log10_cond: float = 0.0
    steps: int = 200
    record_every: int = 0
    seed: int = 0
    reduce: bool = True

    def __post_init__(self):
        for name in ("d", "m", "s", "n", "L", "d_w"):
            positive_int(name, getattr(self, name))
        positive_int("steps", self.steps, minimum=0)
        positive_int("record_every", self.record_every, minimum=0)
        positive_int("seed", self.seed, minimum=0)
        real("lam", self.lam, minimum=0.0)
        real("k", self.k, minimum=0.0, strict=True)
        real("init_scale", self.init_scale, minimum=0.0)
        choice("init", self.init, dl.INIT_SCHEMES)
        choice("convention", self.convention, dl.CONVENTIONS)
        choice("update", self.update, dl.UPDATE_PROFILES)
        choice("stepsize", self.stepsize, STEPSIZE_RULES)
        choice("design", self.design, dl.DESIGNS)
        # make_data's refusals, here so that a bad spec is rejected when it is built (the engine
        # and the hunt treat a ValueError from the constructor as an invalid draw).
        if self.s > self.m:
            raise ValueError(f"s: the subspace dimension s={self.s} exceeds m={self.m}")
        if self.s > self.d:
            raise ValueError(f"s: the subspace dimension s={self.s} exceeds d={self.d}")
        if self.n < self.s:
            raise ValueError(f"n: need n >= s for rank(Z) = s, got n={self.n} < s={self.s}")
        real("rip_delta", self.rip_delta, minimum=0.0)
        if self.rip_delta >= 1.0:
            raise ValueError(f"rip_delta: must be < 1, got {self.rip_delta}")
        real("beta", self.beta, minimum=0.0, strict=True)
        real("z_log10_cond", self.z_log10_cond, minimum=0.0)

    def replace(self, **changes) -> DLNSpec:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class DLNInstance:
    """A materialized spec: data, initial weights and the hyperparameters of the run."""

    spec: DLNSpec
    data: dl.LinearInverseData
    weights0: list
    dims: list
    eta: float
    eta_hat: dlb.NamedConstant
    a: float
    c: float
    lam_bar: float
    oracle: np.ndarray
    test_rng_seed: np.random.SeedSequence

    @property
    def rho(self) -> float:
        """Shrink factor of the first layer, ``rho_1``."""
        rhos, _ = dl.layer_coefficients(self.dims, self.eta, self.lam_bar, self.a,
                                        self.spec.update)
        return float(rhos[0])

    def test_rng(self) -> np.random.Generator:
        """A fresh generator on the instance's test/noise stream."""
        return np.random.default_rng(self.test_rng_seed)


@functools.lru_cache(maxsize=128)
def materialize(spec: DLNSpec) -> DLNInstance:
    """Build the data, the initial weights and the step size of ``spec``."""
    streams = np.random.SeedSequence(spec.seed).spawn(4)
    rngs = [np.random.default_rng(s) for s in streams[:3]]
    data = dl.make_data(spec.d, spec.m, spec.s, spec.n, rng_operator=rngs[0], rng_codes=rngs[1],
                        design=spec.design, rip_delta=spec.rip_delta, beta=spec.beta,
                        z_log10_cond=spec.z_log10_cond)
    dims = dl.layer_dims(spec.d, spec.m, spec.L, spec.d_w)
    M0 = dlb.oracle(data.A, data.R)
    weights0 = dl.init_weights(dims, spec.init, rngs[2], scale=spec.init_scale,
                               target=M0 if spec.init == "balanced" else None)
    a, c = dl.objective_convention(spec.convention, spec.n)
    if spec.stepsize == "gn_bound":
        eta_hat = dlb.eta_gn(weights0, data.Y, float(np.linalg.norm(M0, 2)), a,
                             lam_bar=2 * c * spec.lam)
    elif spec.stepsize == "seed002":
        eta_hat = dlb.eta_seed002(spec.m, spec.L, float(np.linalg.norm(data.X, 2)))
    else:
        eta_hat = dlb.NamedConstant(1.0, "absolute", "[choice]", "absolute")
    return DLNInstance(spec=spec, data=data, weights0=weights0, dims=dims,
                       eta=spec.k * eta_hat.value, eta_hat=eta_hat, a=a, c=c,
                       lam_bar=2 * c * spec.lam, oracle=M0, test_rng_seed=streams[3])


def record_schedule(spec: DLNSpec) -> np.ndarray | None:
    """The record iterations of ``spec`` (``None`` for the default log-spaced schedule)."""
    if spec.record_every:
        return np.unique(np.r_[np.arange(0, spec.steps + 1, spec.record_every), spec.steps])
    return None


def run_stable(X, Y, weights0, **kwargs) -> dl.Trajectory:
    """:func:`dynamics.deep_linear.run_gd` for claims that presuppose a stable step.

    Parameters
    ----------
    X, Y, weights0, **kwargs
        Passed to :func:`dynamics.deep_linear.run_gd` unchanged.

    Returns
    -------
    dynamics.deep_linear.Trajectory

    Raises
    ------
    verification.engine.HypothesisFailed
        ``stable_run``, if the run diverges: the instance is vacuous, with the iteration in the
        detail (claims about divergence itself call the dynamics directly).
    """
    try:
        return dl.run_gd(X, Y, weights0, **kwargs)
    except dl.DivergenceError as exc:
        raise HypothesisFailed("stable_run", str(exc)) from exc


@functools.lru_cache(maxsize=64)
def trajectory(spec: DLNSpec) -> dl.Trajectory:
    """Run GD on ``spec`` (cached; callers must not mutate the result).

    A diverged run raises ``HypothesisFailed("stable_run")`` (:func:`run_stable`).
    """
    inst = materialize(spec)
    return run_stable(inst.data.X, inst.data.Y, inst.weights0, eta=inst.eta, steps=spec.steps,
                      lam=spec.lam, a=inst.a, c=inst.c, update=spec.update,
                      record_at=record_schedule(spec), reduce=spec.reduce, drift=True)


def iterate(spec: DLNSpec, t: int) -> list[np.ndarray]:
    """The weights after ``t`` GD steps of ``spec`` (``t <= spec.steps``)."""
    return trajectory(spec.replace(steps=t, record_every=0)).weights


# --------------------------------------------------------------------------------------------
# hypotheses shared by the deep-linear claims

from verification.engine import Hypothesis  # noqa: E402

LAM_POSITIVE = Hypothesis("lam_positive", "weight decay lambda > 0", lambda sp: sp.lam > 0)
AT_LEAST_ONE_STEP = Hypothesis("at_least_one_step", "steps >= 1 (there is a GD step to check)",
                               lambda sp: sp.steps >= 1)
LAM_ZERO = Hypothesis("lam_zero", "no weight decay, lambda = 0", lambda sp: sp.lam == 0)
STANDARD_UPDATE = Hypothesis("standard_update", "the standard update (common rho for all layers)",
                             lambda sp: sp.update == "standard")
WIDTH_AT_LEAST_RANK = Hypothesis("width_at_least_rank", "d_w >= s (the oracle is representable)",
                                 lambda sp: sp.L == 1 or sp.d_w >= sp.s)
GAUSSIAN_INIT = Hypothesis("gaussian_init", "i.i.d. Gaussian initialization",
                           lambda sp: sp.init in ("lecun_normal", "kaiming_normal_relu"))
DEPTH_AT_LEAST_2 = Hypothesis("depth_at_least_2", "L >= 2 (there is a pair of adjacent layers)",
                              lambda sp: sp.L >= 2)
WIDE_FIRST_LAYER = Hypothesis("width_at_least_m", "d_w >= m", lambda sp: sp.d_w >= sp.m)
DEFAULT_INIT = Hypothesis("default_init", "default initialization (lecun_normal, scale 1)",
                          lambda sp: sp.init == "lecun_normal" and sp.init_scale == 1.0)


_BATCH_KEYS = ("d", "m", "s", "n", "L", "d_w", "steps", "update", "reduce", "record_every")


def batch_trajectories(specs: list[DLNSpec], *, drift: bool = False,
                       record_at=None) -> list[dl.Trajectory]:
    """Run many specs that share their sizes as one batched GD run; one trajectory per spec.

    Specs may differ in ``lam``, ``k``, ``init``, ``convention``, ``design`` and ``seed``; the
    sizes, ``steps``, ``update``, ``reduce`` and ``record_every`` must agree (a ``ValueError``
    names the first field that does not). The batched run advances all instances with one set of
    batched matmuls per step, which is what makes sweeps and Hypothesis runs cheap.
    ``record_at`` (iterations in ``[0, steps]``), if given, replaces the specs' record schedule
    (e.g. dense in Phase 1 and sparse later, since records cost more than steps).

    Raises
    ------
    dynamics.deep_linear.DivergenceError
        If any batch member diverges (``batch_indices`` says which).
    """
    if not specs:
        raise ValueError("specs: need at least one spec")
    for key in _BATCH_KEYS:
        vals = {getattr(sp, key) for sp in specs}
        if len(vals) > 1:
            raise ValueError(f"specs: field {key!r} differs across the batch ({sorted(map(str, vals))})")
    insts = [materialize(sp) for sp in specs]
    X = np.stack([i.data.X for i in insts])
    Y = np.stack([i.data.Y for i in insts])
    W0 = [np.stack([i.weights0[ell] for i in insts]) for ell in range(specs[0].L)]
    as_arr = np.array
    traj = dl.run_gd(X, Y, W0, eta=as_arr([i.eta for i in insts]), steps=specs[0].steps,
                     lam=as_arr([i.spec.lam for i in insts]), a=as_arr([i.a for i in insts]),
                     c=as_arr([i.c for i in insts]), update=specs[0].update,
                     record_at=record_schedule(specs[0]) if record_at is None else record_at,
                     reduce=specs[0].reduce, drift=drift)
    out = []
    for b in range(len(specs)):
        out.append(dl.Trajectory(times=traj.times,
                                 records={k: v[:, b] for k, v in traj.records.items()},
                                 weights=[W[b] for W in traj.weights], snapshots={},
                                 reduction=None if traj.reduction is None else traj.reduction[b]))
    return out
