"""Benchmark runs of the JPO family: one (configuration, seed) -> what the statistical claims need.

Spec ``jpo.md`` §2.4, §3, §4, §5, §7, §8. A :class:`JPORunSpec` names one benchmark configuration
(problem and its parameters, ``n``, training steps, clip variant, hidden sizes) and one data seed
``s``; :func:`run_benchmark` returns a :class:`BenchmarkRun` with

* the §3 BFGS baseline from the fixed default start (per-example ``x``, ``fun``, ``nit``, ``nfev``,
  ``njev``, ``status``; :class:`dynamics.bfgs_reference.BFGSRun`);
* the JPO result (``x_JPO``; :class:`dynamics.joint.JPOResult`), trained through the §4.4 interface
  only: :func:`dynamics.joint.train_jpo` receives ``problem.inputs`` and ``problem.callback()`` (a
  bound method of the observation-only forward model), never the ground truth;
* the JPO+BFGS refinement (§2.4, :func:`dynamics.joint.refine_outputs` with the §3 BFGS);
* the §5.1 oracle ``L_i^*`` and ``tau_i`` (:mod:`verification.jpo_oracle`), with the oracle-validity
  deficits of every method recorded (not raised: ``jpo.oracle_validity`` reports them);
* the §5.2 per-seed metrics of JPO and JPO+BFGS against BFGS (:class:`MethodMetrics`).

Seeding (§4.2, §8): the problem is generated from ``default_rng(s)`` (the generators of
:mod:`dynamics.jpo_problems`), the network from ``default_rng(1000 + s)`` (inside ``train_jpo``).
Runs are cached in memory (:func:`functools.lru_cache`): the baseline and the oracle per
``(problem, parameters, n, s)`` (:func:`baseline_data`, shared by the clip variants), the whole run
per canonical spec, so every claim of a profile reuses one training run per (configuration, seed).

Wall time: :func:`run_sweep` first hands the runs that are not cached yet to :func:`prefetch`, which
computes them in worker processes (:data:`WORKERS_ENV`, default 2 on this 2-core machine; 1 turns it
off) and stores them in the same caches. The results are bitwise those of a serial run (tested): each
run is a deterministic function of its spec, computed by the same code with one BLAS thread.

A :class:`JPOSweepSpec` is a claim instance: configurations and a number of seeds each (data seeds
``seed, seed + 1, ...``). The seed-level statistics of §5.3 are :func:`t_lower_bound` (one-sided
Student-t lower bound on a mean over seeds, ``S - 1`` degrees of freedom), :func:`sign_test_p`
(``Pr[Bin(S, 1/2) >= k]``) and the descriptive pooled intervals :func:`wilson_interval` and
:func:`clopper_pearson_interval`; :func:`seed_level` collects them for one configuration.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import math
import multiprocessing
import numbers
import os
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np
from scipy import stats

from dynamics import jpo_problems as jp
from dynamics._validate import positive_int, real
from dynamics.bfgs_reference import BFGSRun, bfgs_baseline, bfgs_refine
from dynamics.joint import DEFAULT_LR, Clip, JPOResult, refine_outputs, train_jpo
from dynamics.jpo_problems import Problem
from verification import jpo_oracle as orc
from verification.instances import spec_type
from verification.stats import clopper_pearson

__all__ = [
    "DEFAULT_HIDDEN",
    "METHODS",
    "PROBLEMS",
    "S_TRAIN",
    "WAVE_CONFIGS",
    "WORKERS_ENV",
    "BaselineData",
    "BenchmarkRun",
    "JPORunSpec",
    "JPOSweepSpec",
    "MethodMetrics",
    "SeedLevel",
    "baseline_data",
    "clear_cache",
    "clopper_pearson_interval",
    "method_metrics",
    "prefetch",
    "run_benchmark",
    "run_sweep",
    "seed_level",
    "sign_test_p",
    "t_lower_bound",
    "train_on_problem",
    "wilson_interval",
    "workers",
]

PROBLEMS = ("ripple", "wave_packet", "billiards", "logistic")
"""The §7 benchmark families (required ones)."""
WAVE_CONFIGS: Mapping[str, jp.WavePacketConfig] = MappingProxyType(
    {"tuned": jp.WAVE_TUNED, "naive": jp.WAVE_NAIVE})
"""§7.2 frozen configurations by name."""
DEFAULT_HIDDEN: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {"ripple": (32, 32), "wave_packet": (64, 64), "billiards": (64, 64), "logistic": (64, 64)})
"""§7 MLP hidden sizes: ripple ``[1,32,32,1]``, wave ``[128,64,64,1]``, two-ball ``[4,64,64,2]``,
logistic ``[T,64,64,1]``."""
KAPPA_OUT: Mapping[str, float] = MappingProxyType(
    {"ripple": 1.0, "wave_packet": 0.1, "billiards": 1.0, "logistic": 1.0})
"""§4.1 / §7.2: output-weight initialization scale, 0.1 for the wave packet, 1 otherwise."""
S_TRAIN = 3000
"""§4.2: Adam steps."""
METHODS = ("bfgs", "jpo", "jpo_bfgs")
"""Methods compared (§5.2): the BFGS baseline, raw JPO outputs, JPO + BFGS refinement."""
T_LEVEL = 0.95
"""§5.3: one-sided 95 % Student-t lower bound."""
CI_LEVEL = 0.95
"""§5.3: two-sided 95 % pooled Wilson and Clopper-Pearson intervals (descriptive)."""

_PARAMS_OF = MappingProxyType({"ripple": ("amp",), "wave_packet": ("wave",), "billiards": (),
                               "logistic": ("T",)})
_PARAM_DEFAULTS = MappingProxyType({"amp": 1.0, "T": 5, "wave": "tuned"})


def _int_field(name: str, value, minimum: int) -> int:
    return positive_int(name, value, minimum=minimum)


# --------------------------------------------------------------------------------------------
# specs


@spec_type
@dataclasses.dataclass(frozen=True)
class JPORunSpec:
    """One benchmark configuration and one data seed (spec §7, §8).

    Attributes
    ----------
    problem : str
        ``ripple``, ``wave_packet``, ``billiards`` or ``logistic``.
    n : int
        Number of examples.
    seed : int
        Data seed ``s``; the network is initialized from ``default_rng(1000 + s)`` (§4.2).
    amp : float
        Ripple amplitude (ripple only; other problems keep the default 1.0).
    T : int
        Logistic horizon (logistic only; default 5).
    wave : str
        Wave-packet configuration, ``tuned`` or ``naive`` (wave packet only).
    steps : int
        ``S_train`` (§4.2: 3000).
    clip : str
        Per-example clip (§4.3): ``none``, ``elem``, ``norm`` (default threshold), ``elem(c)``,
        ``norm(c)``.
    hidden : tuple of int
        Hidden sizes; ``()`` means the §7 sizes of the problem (:data:`DEFAULT_HIDDEN`).

    Raises
    ------
    ValueError
        On an unknown problem or wave configuration, a bad size, seed or clip, or a parameter set
        for a problem that does not take it (``amp`` for billiards, ...): such a spec would name a
        run it does not describe.
    """

    problem: str = "ripple"
    n: int = 64
    seed: int = 0
    amp: float = 1.0
    T: int = 5
    wave: str = "tuned"
    steps: int = S_TRAIN
    clip: str = "none"
    hidden: tuple[int, ...] = ()

    def __post_init__(self):
        if self.problem not in PROBLEMS:
            raise ValueError(f"problem: must be one of {list(PROBLEMS)}, got {self.problem!r}")
        _int_field("n", self.n, 1)
        _int_field("seed", self.seed, 0)
        _int_field("steps", self.steps, 1)
        real("amp", self.amp, minimum=0.0)
        _int_field("T", self.T, 1)
        if self.T > jp.LOGISTIC_MAX_T:
            raise ValueError(f"T: must be <= {jp.LOGISTIC_MAX_T}, got {self.T}")
        if self.wave not in WAVE_CONFIGS:
            raise ValueError(f"wave: must be one of {sorted(WAVE_CONFIGS)}, got {self.wave!r}")
        for name, default in _PARAM_DEFAULTS.items():
            if name not in _PARAMS_OF[self.problem] and getattr(self, name) != default:
                raise ValueError(f"{name}: the {self.problem} problem does not take {name} (keep the "
                                 f"default {default!r}), got {getattr(self, name)!r}")
        if not isinstance(self.clip, str):
            raise ValueError(f"clip: expected a string such as 'none' or 'elem(1.0)', got {self.clip!r}")
        Clip.parse(self.clip)
        if not isinstance(self.hidden, tuple):
            raise ValueError(f"hidden: expected a tuple of hidden sizes, got {self.hidden!r}")
        for h in self.hidden:
            _int_field("hidden", h, 1)

    # -- derived settings ---------------------------------------------------------------------
    @property
    def hidden_sizes(self) -> tuple[int, ...]:
        """The hidden sizes used (:data:`DEFAULT_HIDDEN` when ``hidden = ()``)."""
        return self.hidden if self.hidden else DEFAULT_HIDDEN[self.problem]

    @property
    def kappa_out(self) -> float:
        """§4.1 output-weight initialization scale of the problem."""
        return KAPPA_OUT[self.problem]

    def canonical(self) -> JPORunSpec:
        """The same run with the defaults spelled out (the cache key): hidden sizes resolved, the
        clip in :class:`dynamics.joint.Clip`'s canonical form, ``amp`` as a float."""
        return dataclasses.replace(self, hidden=self.hidden_sizes, clip=str(Clip.parse(self.clip)),
                                   amp=float(self.amp))

    def with_seed(self, seed: int) -> JPORunSpec:
        """This configuration with data seed ``seed``."""
        return dataclasses.replace(self, seed=seed)

    def data_key(self) -> tuple:
        """What the data, the baseline and the oracle depend on: ``(problem, amp, T, wave, n, seed)``."""
        return (self.problem, float(self.amp), int(self.T), self.wave, int(self.n), int(self.seed))

    def label(self) -> str:
        """A short name of the configuration (no seed), e.g. ``ripple(amp=1) n=64``."""
        params = {"ripple": f"(amp={self.amp:g})", "wave_packet": f"({self.wave})", "billiards": "",
                  "logistic": f"(T={self.T})"}[self.problem]
        extra = ""
        canon = self.canonical()
        if canon.clip != "none":
            extra += f" clip={canon.clip}"
        if self.steps != S_TRAIN:
            extra += f" steps={self.steps}"
        if self.hidden and self.hidden != DEFAULT_HIDDEN[self.problem]:
            extra += f" hidden={list(self.hidden)}"
        return f"{self.problem}{params} n={self.n}{extra}"

    def build_problem(self) -> Problem:
        """The problem of this spec, generated from ``default_rng(seed)`` (§7 generators)."""
        return _build_problem(*self.data_key())


def _build_problem(problem: str, amp: float, T: int, wave: str, n: int, seed: int) -> Problem:
    if problem == "ripple":
        return jp.ripple_problem(n, amp, seed)
    if problem == "wave_packet":
        return jp.wave_packet_problem(n, WAVE_CONFIGS[wave], seed)
    if problem == "billiards":
        return jp.billiards_problem(n, seed)
    return jp.logistic_problem(n, T, seed)


@spec_type
@dataclasses.dataclass(frozen=True)
class JPOSweepSpec:
    """A claim instance: benchmark configurations, each run on several data seeds.

    Attributes
    ----------
    configs : tuple of JPORunSpec
        The configurations, each given with ``seed=0`` (the sweep sets the seeds).
    n_seeds : int or tuple of int
        Seeds per configuration ``S`` (one number for all, or one per configuration).
    seed : int
        First data seed: configuration ``j`` runs on seeds ``seed, ..., seed + S_j - 1``.
    """

    configs: tuple[JPORunSpec, ...]
    n_seeds: int | tuple[int, ...] = 5
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.configs, tuple) or not self.configs:
            raise ValueError(f"configs: expected a non-empty tuple of JPORunSpec, got {self.configs!r}")
        for c in self.configs:
            if not isinstance(c, JPORunSpec):
                raise ValueError(f"configs: expected JPORunSpec entries, got {type(c).__name__}")
            if c.seed != 0:
                raise ValueError(f"configs: give configurations with seed=0 (the sweep's seed and n_seeds "
                                 f"set the data seeds), got seed={c.seed} in {c.label()}")
        if isinstance(self.n_seeds, tuple):
            if len(self.n_seeds) != len(self.configs):
                raise ValueError(f"n_seeds: expected one count per configuration ({len(self.configs)}), "
                                 f"got {self.n_seeds!r}")
            for k in self.n_seeds:
                _int_field("n_seeds", k, 1)
        else:
            _int_field("n_seeds", self.n_seeds, 1)
        _int_field("seed", self.seed, 0)

    def seeds_of(self, j: int) -> int:
        """``S`` of configuration ``j``."""
        return self.n_seeds[j] if isinstance(self.n_seeds, tuple) else self.n_seeds

    def runs(self) -> list[list[JPORunSpec]]:
        """Per configuration, its run specs over seeds ``seed, seed + 1, ...``."""
        return [[c.with_seed(self.seed + s) for s in range(self.seeds_of(j))]
                for j, c in enumerate(self.configs)]


# --------------------------------------------------------------------------------------------
# results


@dataclasses.dataclass(frozen=True)
class MethodMetrics:
    """§5.2 metrics of one method against BFGS on one run (one seed).

    Attributes
    ----------
    method : str
        ``jpo`` or ``jpo_bfgs``.
    n, wins, losses, ties : int
        Examples, and how many are won / lost / tied against BFGS (``tau_i`` margins).
    g : float
        Fraction of examples at the global minimum, ``L_i^M <= L_i^* + tau_i``.
    q_mean, q_median : float
        Mean and median log suboptimality ratio ``q_i``.
    log_loss_ratio_mean, log_loss_ratio_median : float or None
        Of ``log10(L^M/L^BFGS)``, when every loss is positive (billiards, wave, chaos), else None.
    """

    method: str
    n: int
    wins: int
    losses: int
    ties: int
    g: float
    q_mean: float
    q_median: float
    log_loss_ratio_mean: float | None
    log_loss_ratio_median: float | None

    @property
    def w(self) -> float:
        """Win rate."""
        return self.wins / self.n

    @property
    def l(self) -> float:  # noqa: E743 -- the spec's symbol for the loss rate
        """Loss rate."""
        return self.losses / self.n

    @property
    def tie_rate(self) -> float:
        return self.ties / self.n

    @property
    def decisive(self) -> float | None:
        """``w / (w + l)``, None when no example is decided."""
        k = self.wins + self.losses
        return None if k == 0 else self.wins / k

    def as_dict(self) -> dict:
        return {"w": self.w, "l": self.l, "tie": self.tie_rate, "decisive": self.decisive, "g": self.g,
                "wins": self.wins, "losses": self.losses, "n": self.n, "q_mean": self.q_mean,
                "q_median": self.q_median, "log_loss_ratio_mean": self.log_loss_ratio_mean,
                "log_loss_ratio_median": self.log_loss_ratio_median}


def method_metrics(method: str, L_method, L_bfgs, oracle: orc.OracleResult) -> MethodMetrics:
    """§5.2 metrics of ``L_method`` against ``L_bfgs`` with the oracle's ``L^*`` and ``tau``.

    Parameters
    ----------
    method : str
        Name stored in the result.
    L_method, L_bfgs : array_like
        ``(n,)`` final losses.
    oracle : OracleResult

    Returns
    -------
    MethodMetrics
    """
    cmp = orc.compare_to_bfgs(L_method, L_bfgs, oracle)
    q = orc.mean_median(orc.log_suboptimality_ratio(L_method, L_bfgs, oracle))
    LM, LB = np.asarray(L_method, float), np.asarray(L_bfgs, float)
    llr_mean = llr_median = None
    if np.all(LM > 0) and np.all(LB > 0):
        llr = orc.mean_median(orc.log_loss_ratio(LM, LB))
        llr_mean, llr_median = llr["mean"], llr["median"]
    return MethodMetrics(method=method, n=cmp.n, wins=int(cmp.win.sum()), losses=int(cmp.loss.sum()),
                         ties=int(cmp.tie.sum()), g=orc.global_min_fraction(L_method, oracle),
                         q_mean=q["mean"], q_median=q["median"], log_loss_ratio_mean=llr_mean,
                         log_loss_ratio_median=llr_median)


@dataclasses.dataclass(frozen=True, eq=False)
class BaselineData:
    """Data, BFGS baseline and oracle of one ``(problem, parameters, n, seed)``.

    Attributes
    ----------
    problem : Problem
    baseline : BFGSRun
        §3 BFGS from the default start ``x^(0)``.
    oracle : OracleResult
        §5.1 ``L_i^*`` and ``tau_i``.
    start_losses : numpy.ndarray
        ``L_i(x^(0))``.
    seconds : Mapping[str, float]
        Wall time of the baseline and the oracle (advisory).
    """

    problem: Problem
    baseline: BFGSRun
    oracle: orc.OracleResult
    start_losses: np.ndarray
    seconds: Mapping[str, float]


@dataclasses.dataclass(frozen=True, eq=False)
class BenchmarkRun:
    """Everything a §9 benchmark claim needs for one (configuration, seed).

    Attributes
    ----------
    spec : JPORunSpec
        The canonical spec of the run.
    problem : Problem
    baseline : BFGSRun
        §3 BFGS from ``x^(0)`` (``x``, ``fun``, ``nit``, ``nfev``, ``njev``, ``status`` per example).
    jpo : JPOResult
        The training run; ``jpo.outputs`` is ``x_JPO``.
    refined : BFGSRun
        §3 BFGS from ``x_JPO`` (JPO+BFGS).
    oracle : OracleResult
    losses : Mapping[str, numpy.ndarray]
        ``start``, ``bfgs``, ``jpo``, ``jpo_bfgs``: ``(n,)`` losses, all re-evaluated by the
        vectorised loss of the problem (one definition for every method).
    metrics : Mapping[str, MethodMetrics]
        ``jpo`` and ``jpo_bfgs`` against BFGS.
    g_bfgs : float
        Fraction of examples where BFGS is at the global minimum.
    oracle_deficit : Mapping[str, numpy.ndarray]
        Per method of :data:`METHODS`, ``L_i^* - tau_i - L_i^M`` (a positive entry is an oracle
        violation, §5.1).
    seconds : Mapping[str, float]
        Wall times of the stages (advisory, never gated).
    """

    spec: JPORunSpec
    problem: Problem
    baseline: BFGSRun
    jpo: JPOResult
    refined: BFGSRun
    oracle: orc.OracleResult
    losses: Mapping[str, np.ndarray]
    metrics: Mapping[str, MethodMetrics]
    g_bfgs: float
    oracle_deficit: Mapping[str, np.ndarray]
    seconds: Mapping[str, float]

    @property
    def x_jpo(self) -> np.ndarray:
        """``(n, d)`` network outputs ``x_JPO``."""
        return self.jpo.outputs

    @property
    def n(self) -> int:
        return self.problem.n

    def oracle_violations(self) -> dict[str, list[int]]:
        """Per method, the examples with ``L_i^M < L_i^* - tau_i`` (empty lists if the oracle is valid)."""
        return {m: np.flatnonzero(d > 0).tolist() for m, d in self.oracle_deficit.items()}

    @property
    def oracle_valid(self) -> bool:
        return all(not v for v in self.oracle_violations().values())

    def counters(self) -> dict[str, int]:
        """§5.4 work counters: BFGS and refinement totals, JPO ``S_train * n`` evaluations."""
        b, r = self.baseline.totals(), self.refined.totals()
        return {"bfgs_nit": b["nit"], "bfgs_nfev": b["nfev"], "bfgs_njev": b["njev"],
                "refine_nit": r["nit"], "refine_nfev": r["nfev"], "refine_njev": r["njev"],
                "jpo_evaluations": self.jpo.evaluations, "jpo_final_evaluations": self.jpo.final_evaluations}


# --------------------------------------------------------------------------------------------
# the runner


_PENDING_BASELINES: dict[tuple, tuple] = {}
"""Baselines and oracles computed by :func:`prefetch` workers, consumed by :func:`_baseline_cached`."""
_PENDING_RUNS: dict[JPORunSpec, tuple] = {}
"""Training and refinement results computed by :func:`prefetch` workers, consumed by :func:`_run_cached`."""
_DONE: set[JPORunSpec] = set()
"""Canonical specs whose run is in the cache."""
_BASE_DONE: set[tuple] = set()
"""Data keys whose baseline is in the cache."""


@functools.cache
def _baseline_cached(problem: str, amp: float, T: int, wave: str, n: int, seed: int) -> BaselineData:
    prob = _build_problem(problem, amp, T, wave, n, seed)
    pending = _PENDING_BASELINES.pop((problem, amp, T, wave, n, seed), None)
    if pending is not None:
        base, (value, x, tau, method, details), secs = pending
        oracle = orc.OracleResult(value=value, x=x, tau=tau, method=method,
                                  details=MappingProxyType(details))
    else:
        t0 = time.perf_counter()
        base = bfgs_baseline(prob)
        t1 = time.perf_counter()
        oracle = orc.global_minimum(prob)
        secs = {"bfgs": t1 - t0, "oracle": time.perf_counter() - t1}
    _BASE_DONE.add((problem, amp, T, wave, n, seed))
    return BaselineData(problem=prob, baseline=base, oracle=oracle, start_losses=prob.loss(prob.start()),
                        seconds=MappingProxyType(dict(secs)))


def baseline_data(spec: JPORunSpec) -> BaselineData:
    """The problem, BFGS baseline and oracle of ``spec`` (cached per :meth:`JPORunSpec.data_key`).

    Raises
    ------
    ValueError
        If ``spec`` is not a :class:`JPORunSpec`.
    """
    if not isinstance(spec, JPORunSpec):
        raise ValueError(f"spec: expected a JPORunSpec, got {type(spec).__name__}")
    return _baseline_cached(*spec.data_key())


def train_on_problem(problem: Problem, spec: JPORunSpec) -> JPOResult:
    """Train JPO on ``problem`` with the §4 protocol and the settings of ``spec``.

    Only the §4.4 interface reaches the training routine: ``problem.inputs``, the callback
    ``problem.callback()`` (a bound method of the observation-only model, holding no ground truth)
    and the offset ``problem.x0``; ``problem.truth`` is never passed on.

    Parameters
    ----------
    problem : Problem
    spec : JPORunSpec
        Supplies the steps, clip, hidden sizes, ``kappa_out`` and the seed ``s`` (network seed
        ``1000 + s``).

    Returns
    -------
    JPOResult
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem: expected a dynamics.jpo_problems.Problem, got {type(problem).__name__}")
    if not isinstance(spec, JPORunSpec):
        raise ValueError(f"spec: expected a JPORunSpec, got {type(spec).__name__}")
    return train_jpo(problem.inputs, problem.callback(), problem.x0, hidden=spec.hidden_sizes,
                     steps=spec.steps, lr=DEFAULT_LR, clip=spec.clip, kappa_out=spec.kappa_out,
                     seed=spec.seed, record_every=max(1, spec.steps // 30))


@functools.cache
def _run_cached(spec: JPORunSpec) -> BenchmarkRun:
    data = baseline_data(spec)
    prob, oracle = data.problem, data.oracle
    pending = _PENDING_RUNS.pop(spec, None)
    if pending is not None:
        jpo, refined, stage_seconds = pending
    else:
        t0 = time.perf_counter()
        jpo = train_on_problem(prob, spec)
        t1 = time.perf_counter()
        refined_pair = refine_outputs(jpo.outputs, lambda starts: bfgs_refine(prob, starts), jpo=jpo)
        refined = refined_pair.refinement
        stage_seconds = {"jpo": t1 - t0, "refine": time.perf_counter() - t1}
    _DONE.add(spec)
    losses = {"start": data.start_losses, "bfgs": data.baseline.recheck, "jpo": prob.loss(jpo.outputs),
              "jpo_bfgs": refined.recheck}
    for v in losses.values():
        v.setflags(write=False)
    metrics = {m: method_metrics(m, losses[m], losses["bfgs"], oracle) for m in ("jpo", "jpo_bfgs")}
    deficit = {m: oracle.value - oracle.tau - losses[m] for m in METHODS}
    seconds = dict(data.seconds)
    seconds.update(stage_seconds)
    return BenchmarkRun(spec=spec, problem=prob, baseline=data.baseline, jpo=jpo, refined=refined,
                        oracle=oracle, losses=MappingProxyType(losses), metrics=MappingProxyType(metrics),
                        g_bfgs=orc.global_min_fraction(losses["bfgs"], oracle),
                        oracle_deficit=MappingProxyType(deficit), seconds=MappingProxyType(seconds))


def run_benchmark(spec: JPORunSpec) -> BenchmarkRun:
    """Run (or fetch from the in-memory cache) one benchmark configuration on one seed.

    Equivalent specs (``hidden=()`` and the §7 sizes, ``clip='elem'`` and ``'elem(median)'``) share
    one cached run; the BFGS baseline and the oracle are shared by every spec with the same data.

    Parameters
    ----------
    spec : JPORunSpec

    Returns
    -------
    BenchmarkRun

    Raises
    ------
    ValueError
        If ``spec`` is not a :class:`JPORunSpec`, or training rejects the setup (e.g. the default
        clip threshold is 0 because most examples start with a zero gradient).
    dynamics.errors.DivergenceError
        If training or BFGS diverges.
    """
    if not isinstance(spec, JPORunSpec):
        raise ValueError(f"spec: expected a JPORunSpec, got {type(spec).__name__}")
    return _run_cached(spec.canonical())


def run_sweep(sweep: JPOSweepSpec, *, parallel: bool = True) -> list[list[BenchmarkRun]]:
    """Per configuration of ``sweep``, its runs over the seeds (cached, see :func:`run_benchmark`).

    With ``parallel`` the missing runs are first computed by :func:`prefetch` (bitwise the same
    results, less wall time).
    """
    if not isinstance(sweep, JPOSweepSpec):
        raise ValueError(f"sweep: expected a JPOSweepSpec, got {type(sweep).__name__}")
    if parallel:
        prefetch([r for seeds in sweep.runs() for r in seeds])
    return [[run_benchmark(r) for r in seeds] for seeds in sweep.runs()]


def clear_cache() -> None:
    """Drop every cached run, baseline and oracle (tests; freeing memory after a profile)."""
    _run_cached.cache_clear()
    _baseline_cached.cache_clear()
    _DONE.clear()
    _BASE_DONE.clear()
    _PENDING_RUNS.clear()
    _PENDING_BASELINES.clear()


# --------------------------------------------------------------------------------------------
# parallel prefetch

WORKERS_ENV = "INVBOUNDS_JPO_WORKERS"
"""Environment variable: number of worker processes of :func:`prefetch` (default: 2, at most the
number of CPUs; 1 computes everything in this process)."""
# Relative cost of a training step by problem (measured, one core): the longest runs are submitted
# first so that the workers finish together.
_COST = {"wave_packet": 8.0, "logistic": 1.4, "billiards": 1.2, "ripple": 1.0}


def workers() -> int:
    """Worker processes used by :func:`prefetch` (environment :data:`WORKERS_ENV`, default 2).

    Raises
    ------
    ValueError
        If the environment variable is set to something other than a positive integer.
    """
    raw = os.environ.get(WORKERS_ENV)
    if raw is None:
        return max(1, min(2, os.cpu_count() or 1))
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{WORKERS_ENV}: expected a positive integer, got {raw!r}") from None
    return positive_int(WORKERS_ENV, value)


def _compute_payload(spec: JPORunSpec) -> tuple:
    """Worker side of :func:`prefetch`: the picklable parts of one run."""
    run = _run_cached(spec)
    o = run.oracle
    base = (run.baseline, (o.value, o.x, o.tau, o.method, dict(o.details)),
            {k: run.seconds[k] for k in ("bfgs", "oracle")})
    return base, (run.jpo, run.refined, {k: run.seconds[k] for k in ("jpo", "refine")})


def prefetch(specs: Sequence[JPORunSpec], *, n_workers: int | None = None) -> int:
    """Compute the runs of ``specs`` that are not cached yet in worker processes, then cache them.

    The results are bitwise those of :func:`run_benchmark` in this process (same code, same seeds,
    one BLAS thread per process: the CLI and the test configuration pin it); only the wall time
    changes. A run whose worker raises is left to be computed (and to raise) in this process.

    Parameters
    ----------
    specs : sequence of JPORunSpec
    n_workers : int, optional
        Worker processes (default :func:`workers`); with 1, or a single missing run, nothing is
        done here and the runs are computed on demand.

    Returns
    -------
    int
        Number of runs computed by the workers.
    """
    todo = []
    for s in specs:
        if not isinstance(s, JPORunSpec):
            raise ValueError(f"specs: expected JPORunSpec entries, got {type(s).__name__}")
        c = s.canonical()
        if c not in _DONE and c not in _PENDING_RUNS and c not in todo:
            todo.append(c)
    n_workers = workers() if n_workers is None else positive_int("n_workers", n_workers)
    if n_workers < 2 or len(todo) < 2:
        return 0
    todo.sort(key=lambda c: -_COST[c.problem] * c.n * c.steps)
    done = 0
    # fork: the workers inherit the loaded modules and the BLAS thread setting of this process
    ctx = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(min(n_workers, len(todo)), mp_context=ctx) as pool:
        futures = {pool.submit(_compute_payload, c): c for c in todo}
        for fut in concurrent.futures.as_completed(futures):
            c = futures[fut]
            try:
                base, run = fut.result()
            except Exception:  # recomputed in this process, where it raises in context
                continue
            if c.data_key() not in _BASE_DONE:
                _PENDING_BASELINES.setdefault(c.data_key(), base)
            _PENDING_RUNS[c] = run
            done += 1
    return done


# --------------------------------------------------------------------------------------------
# §5.3 statistics


def _values(name: str, values, minimum: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < minimum:
        raise ValueError(f"{name}: expected a 1-d array of at least {minimum} values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite entries (NaN or inf)")
    return arr


def _level(level) -> float:
    level = real("level", level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: must lie in (0, 1), got {level}")
    return level


def t_lower_bound(values, level: float = T_LEVEL) -> float:
    """One-sided Student-t lower confidence bound on the mean of per-seed values (§5.3).

    ``mean - t_{level, S-1} sd / sqrt(S)`` with the sample standard deviation (``ddof = 1``); equal
    values give the mean itself.

    Parameters
    ----------
    values : array_like
        ``S >= 2`` per-seed values (rates, paired differences).
    level : float
        One-sided confidence level (0.95).

    Returns
    -------
    float
    """
    v = _values("values", values, 2)
    level = _level(level)
    S = v.size
    sd = float(np.std(v, ddof=1))
    return float(np.mean(v) - stats.t.ppf(level, S - 1) * sd / math.sqrt(S))


def sign_test_p(positive: int, trials: int) -> float:
    """One-sided sign test over seeds: ``Pr[Bin(S, 1/2) >= k]`` (§5.3; ``S = 5``, ``k = 5``: 1/32).

    Parameters
    ----------
    positive : int
        ``k``: seeds with a positive difference (``w_s > l_s``).
    trials : int
        ``S``: seeds.
    """
    trials = positive_int("trials", trials)
    positive = positive_int("positive", positive, minimum=0)
    if positive > trials:
        raise ValueError(f"positive: must be <= trials = {trials}, got {positive}")
    return float(stats.binom.sf(positive - 1, trials, 0.5))


def _k_m(k, m) -> tuple[int, int]:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or isinstance(m, bool) \
            or not isinstance(m, numbers.Integral) or not 0 <= k <= m or m < 1:
        raise ValueError(f"k, m: need integers 0 <= k <= m, m >= 1, got {k!r}, {m!r}")
    return int(k), int(m)


def wilson_interval(k: int, m: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Two-sided Wilson score interval for ``k`` successes out of ``m`` (§5.3, descriptive).

    ``(p + z^2/2m)/(1 + z^2/m) -+ z/(1 + z^2/m) sqrt(p(1-p)/m + z^2/4m^2)`` with
    ``z = Phi^-1(1/2 + level/2)``; equals ``scipy.stats.binomtest(k, m).proportion_ci(method='wilson')``.
    """
    k, m = _k_m(k, m)
    level = _level(level)
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = k / m
    den = 1.0 + z * z / m
    centre = (p + z * z / (2 * m)) / den
    half = z / den * math.sqrt(p * (1 - p) / m + z * z / (4 * m * m))
    return max(0.0, centre - half), min(1.0, centre + half)


def clopper_pearson_interval(k: int, m: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Two-sided exact Clopper-Pearson interval ``[B^-1_{a/2}(k, m-k+1), B^-1_{1-a/2}(k+1, m-k)]``."""
    k, m = _k_m(k, m)
    return clopper_pearson(k, m, _level(level))


@dataclasses.dataclass(frozen=True)
class SeedLevel:
    """Seed-level statistics of one method on one configuration (§5.3).

    Attributes
    ----------
    label : str
        The configuration.
    method : str
    seeds : tuple of int
    w, l, g, g_bfgs, q_mean : numpy.ndarray
        ``(S,)`` per-seed win rate, loss rate, global-minimum fractions of the method and of BFGS,
        mean log suboptimality ratio.
    wins, losses, examples : int
        Pooled counts.
    """

    label: str
    method: str
    seeds: tuple[int, ...]
    w: np.ndarray
    l: np.ndarray
    g: np.ndarray
    g_bfgs: np.ndarray
    q_mean: np.ndarray
    wins: int
    losses: int
    examples: int

    @property
    def S(self) -> int:
        return len(self.seeds)

    @property
    def positive_seeds(self) -> int:
        """Seeds with ``w_s > l_s``."""
        return int(np.sum(self.w > self.l))

    def summary(self) -> dict:
        """Per-seed values, means, t lower bounds (when ``S >= 2``), sign test and pooled intervals."""
        out = {"config": self.label, "method": self.method, "S": self.S, "seeds": list(self.seeds),
               "w_per_seed": self.w.tolist(), "l_per_seed": self.l.tolist(),
               "g_per_seed": self.g.tolist(), "g_bfgs_per_seed": self.g_bfgs.tolist(),
               "w_mean": float(self.w.mean()), "l_mean": float(self.l.mean()),
               "g_mean": float(self.g.mean()), "g_bfgs_mean": float(self.g_bfgs.mean()),
               "delta_g_mean": float((self.g - self.g_bfgs).mean()),
               "q_mean": float(self.q_mean.mean()),
               "positive_seeds": self.positive_seeds,
               "sign_test_p": sign_test_p(self.positive_seeds, self.S),
               "pooled_wins": self.wins, "pooled_losses": self.losses, "pooled_examples": self.examples,
               "wilson_w": list(wilson_interval(self.wins, self.examples)),
               "clopper_pearson_w": list(clopper_pearson_interval(self.wins, self.examples))}
        if self.S >= 2:
            out["t_lower_w"] = t_lower_bound(self.w)
            out["t_lower_w_minus_l"] = t_lower_bound(self.w - self.l)
        decided = self.wins + self.losses
        out["pooled_decisive"] = None if decided == 0 else self.wins / decided
        out["wilson_decisive"] = None if decided == 0 else list(wilson_interval(self.wins, decided))
        return out


def seed_level(runs: Sequence[BenchmarkRun], method: str = "jpo_bfgs") -> SeedLevel:
    """Seed-level statistics of ``method`` over the runs of one configuration.

    Parameters
    ----------
    runs : sequence of BenchmarkRun
        One run per seed, all of one configuration.
    method : str
        ``jpo`` or ``jpo_bfgs``.

    Returns
    -------
    SeedLevel
    """
    if method not in ("jpo", "jpo_bfgs"):
        raise ValueError(f"method: must be 'jpo' or 'jpo_bfgs', got {method!r}")
    runs = list(runs)
    if not runs or not all(isinstance(r, BenchmarkRun) for r in runs):
        raise ValueError("runs: expected a non-empty sequence of BenchmarkRun")
    labels = {r.spec.with_seed(0) for r in runs}
    if len(labels) != 1:
        raise ValueError(f"runs: expected runs of one configuration, got {sorted(s.label() for s in labels)}")
    mm = [r.metrics[method] for r in runs]
    return SeedLevel(label=runs[0].spec.label(), method=method, seeds=tuple(r.spec.seed for r in runs),
                     w=np.array([m.w for m in mm]), l=np.array([m.l for m in mm]),
                     g=np.array([m.g for m in mm]), g_bfgs=np.array([r.g_bfgs for r in runs]),
                     q_mean=np.array([m.q_mean for m in mm]), wins=sum(m.wins for m in mm),
                     losses=sum(m.losses for m in mm), examples=sum(m.n for m in mm))
