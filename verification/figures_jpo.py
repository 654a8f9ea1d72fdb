"""Figures of the JPO family (``invbounds figures jpo --out DIR``).

Three figures per benchmark problem of spec ``jpo.md`` §7 -- the ripple toy (amp 1, §7.1), the
tuned wave packet (§7.2), the two-ball billiards (§7.3a) and the logistic map at ``T = 5`` (§7.4):

(a) ``jpo_<problem>_landscape``: the loss ``L_i`` of a few training examples (one that JPO+BFGS
    wins against BFGS, one tie, one loss where they exist), with the default start ``x^(0)``, the
    BFGS end point, the raw JPO output, the JPO+BFGS end point, the oracle minimiser (§5.1) and the
    ground truth marked. The 1-D unknowns are drawn over a window holding every marker (the wave
    packet and the logistic map are periodic, period 1 and ``pi/2``: markers are wrapped into one
    period, which leaves their loss unchanged). The 2-D billiards unknown ``v`` is drawn as a
    **2-D map** of ``log10 L`` over the direction ``atan2(v_y, v_x)`` and the speed ``|v|`` (not a
    slice): the flat zero-gradient plateau of the misses is the uniform region;
(b) ``jpo_<problem>_win_rate``: the win rate against BFGS (§5.2) against the dataset size ``n``, for
    raw JPO and for JPO+BFGS: per-seed rates, the seed mean with its two-sided 95 % Student-``t``
    interval (``S - 1`` degrees of freedom; the gating statistic of §5.3), the pooled 95 % Wilson
    interval (descriptive: examples of one run share the network) and the exact cap
    ``1 - g_BFGS`` (``jpo.win_rate_bounded_by_bfgs_failure``);
(c) ``jpo_<problem>_sign_law``: the sign-probability law of the joint gradient as ``n`` grows.
    Monte Carlo frequencies against the CLT curve ``Phi(sqrt(n) |s|/sigma)`` (§6.4, §6.5), and,
    for the ripple, against the exact Gil-Pelaez value (§6.3, the ``J_0^{8n}`` law of §7.1).

The sign-law quantities [project choice of this figure]:

* ``feature`` (every problem): the derivative of ``J`` along the shared direction that moves every
  output from the start towards its truth, ``x_i(w) = x^(0) + w (x*_i - x^(0))``, at ``w = 0``:
  ``dJ/dw = (1/n) sum_i h_i`` with ``h_i = (x*_i - x^(0)) . g_i(x^(0))``. The useful sign is
  negative; the CLT curve is ``Phi(sqrt(n) rho)`` with ``rho = -E h / sd h`` estimated from the
  pool. For the ripple (``x^(0) = 0 = E y``) and the wave packet (``x^(0) = 0.5 = E t0``) this is
  exactly the feature gradient of §6.9 (``rho = rho_1``; ripple closed form 0.5130 at amp 1);
* ``bias`` (ripple only): the joint output-bias gradient ``G_n = sum_i L_i'(x_i)`` with every
  output displaced by ``delta`` from its signal minimum, ``x_i = y_i + delta``, phases redrawn, so
  that ``s_i = 2 delta`` for all ``i`` and the noise is a sum of ``8 n`` arcsine terms of amplitude
  ``amp``: exact law ``P_n`` of §6.3 (:func:`bounds.joint_vs_bfgs.gil_pelaez_sign_probability`,
  float64, checked against mpmath in ``tests/test_jpo_laws.py``), CLT ``Phi(sqrt(n) 2 delta/(2 amp))``.
  ``delta`` is chosen so that ``|s|/sigma = 0.1`` (:data:`BIAS_SNR1`).

Monte Carlo: a pool of ``N`` fresh i.i.d. examples from the problem's own generator is split into
``N // n`` disjoint datasets of size ``n``; the frequency of the useful sign over them estimates
``P_n`` with standard error ``sqrt(P (1 - P) / (N // n))``. No resampling, so the estimates are
exact Monte Carlo of the generator's law (datasets of different ``n`` share the pool, which
correlates the points of one curve, not their accuracy).

Runs (a, b). Data seed ``s = seed + r`` for ``r = 0..S-1``, network seed ``1000 + s`` (§4.2);
BFGS baseline from ``x^(0)`` and refinement from the JPO outputs by the §3 protocol
(:mod:`dynamics.bfgs_reference`); JPO by :func:`dynamics.joint.train_jpo` with the §4 protocol
(Adam ``1e-3``, full batch, ``S_train`` steps, final iterate, no clipping); the oracle of §5.1
(:func:`verification.jpo_oracle.global_minimum`). Every row of a table rebuilds its run with
:func:`run_benchmark` ``(problem, n, row["seed"], steps=row["steps"])``; the sign-law rows rebuild
their pool with :func:`sign_law_pool` ``(problem, series, N, row["seed"])``.

Profiles: ``quick`` (``n in {16, 64}``, ``S = 2``, the protocol's ``S_train = 3000``, pools of
``2^17`` examples; measured 26-33 s on a shared 2-core machine with BLAS pinned to one thread,
as ``invbounds`` does) and ``paper`` (``n in {16, 64, 256}``, ``S = 5``, ``S_train = 3000``, pools
of ``2^20``; measured 3.6 minutes, progress on stderr). A configuration with fewer steps than the
protocol says so on every image. Each figure is written (CSV first, then PNG) as soon as it is
done. Plotting uses the Agg canvas directly, never ``pyplot``.

Call outside ``invbounds``: pin BLAS to one thread (``OPENBLAS_NUM_THREADS=1``) before NumPy is
imported; on a loaded 2-core machine a multi-threaded OpenBLAS made the wave-packet training step
20 times slower (measured: 14 ms against 0.7 ms per step at ``n = 64``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import special
from scipy import stats as sps

from bounds import joint_vs_bfgs as jvb
from dynamics import bfgs_reference as bfgs
from dynamics import joint
from dynamics import jpo_problems as jp
from dynamics._validate import positive_int
from verification import jpo_oracle as oracle_mod
from verification.figures_common import (
    PROFILES,
    Progress,
    check_profile,
    check_seed,
    read_table,
    stderr_progress,
    tick,
    write_table,
)

__all__ = [
    "BIAS_SNR1",
    "FIGURES",
    "PROBLEMS",
    "PROFILES",
    "PROFILE_CONFIGS",
    "PROTOCOL_STEPS",
    "REFINE_RTOL",
    "BenchmarkRun",
    "FigureConfig",
    "ProblemSetup",
    "landscape_data",
    "make_figures",
    "plot_landscape",
    "plot_sign_law",
    "plot_win_rate",
    "read_table",
    "run_benchmark",
    "sign_law_data",
    "sign_law_pool",
    "sweep_data",
    "write_table",
]

PROTOCOL_STEPS = joint.DEFAULT_STEPS
"""Spec §4.2: ``S_train = 3000``."""
REFINE_RTOL = 1e-12
"""Spec §9 ``jpo.refinement_never_worse``: ``L(BFGS(x)) <= L(x) + 1e-12 (1 + |L(x)|)`` (the §3
consistency allowance: SciPy accepts only Armijo steps, so the only excess is rounding)."""
RIPPLE_AMP = 1.0
"""The ripple amplitude of the figures (one of the spec's hard configurations, amp 1 and 2)."""
LOGISTIC_T = 5
"""The logistic horizon of the figures (spec §7.4: the clear-effect horizon)."""
BIAS_SNR1 = 0.1
"""``|s|/sigma`` of the ripple bias series: ``P_n`` runs from ~0.54 at ``n = 1`` to ~0.95 at
``n = 256`` (``z = 0.1 sqrt(n)``), so the curve shows the whole rise."""
SIGN_LAW_SEED = 20240815
"""Base of the sign-law pool seeds: pool seed ``20240815 + 10 seed + problem index``."""
SIGN_CHUNK = 1 << 13
"""Examples generated at a time for a sign-law pool (memory: a wave-packet chunk is 8 MB)."""
CI_LEVEL = 0.95


# --------------------------------------------------------------------------------------------
# problems and configuration


@dataclasses.dataclass(frozen=True)
class ProblemSetup:
    """A benchmark problem of the figures.

    Attributes
    ----------
    name : str
        Key (``ripple``, ``wave_packet``, ``billiards``, ``logistic``).
    label : str
        Human-readable description (drawn on the figures).
    make : callable
        ``make(n, seed) -> Problem`` (``seed`` an int or a ``numpy.random.Generator``).
    hidden : tuple of int
        Hidden sizes of the MLP (spec §7).
    kappa_out : float
        Output-layer initialization scale (§4.1: 0.1 for the wave packet).
    period : float or None
        Period of ``L_i`` in ``x`` for 1-D periodic problems (markers are wrapped into it).
    index : int
        Position in :data:`PROBLEMS` (part of the sign-law pool seed).
    """

    name: str
    label: str
    make: Callable[[int, int | np.random.Generator], jp.Problem]
    hidden: tuple[int, ...]
    kappa_out: float
    period: float | None
    index: int


PROBLEMS: dict[str, ProblemSetup] = {
    "ripple": ProblemSetup("ripple", f"ripple toy, amp {RIPPLE_AMP:g} (§7.1), MLP [1,32,32,1]",
                           lambda n, s: jp.ripple_problem(n, RIPPLE_AMP, s), (32, 32), 1.0, None, 0),
    "wave_packet": ProblemSetup("wave_packet", "wave packet, tuned (w, f, α, a) = (0.1, 5, 1, 0.25) (§7.2), "
                                "MLP [128,64,64,1], κ_out 0.1",
                                lambda n, s: jp.wave_packet_problem(n, jp.WAVE_TUNED, s), (64, 64), 0.1,
                                1.0, 1),
    "billiards": ProblemSetup("billiards", "two-ball billiards (§7.3a), MLP [4,64,64,2]",
                              lambda n, s: jp.billiards_problem(n, s), (64, 64), 1.0, None, 2),
    "logistic": ProblemSetup("logistic", f"logistic map, T = {LOGISTIC_T} (§7.4), MLP [{LOGISTIC_T},64,64,1]",
                             lambda n, s: jp.logistic_problem(n, LOGISTIC_T, s), (64, 64), 1.0,
                             math.pi / 2, 3),
}
"""The four problems of the figures, in drawing order."""


@dataclasses.dataclass(frozen=True)
class FigureConfig:
    """Sizes of the JPO figures.

    Attributes
    ----------
    ns : tuple of int
        Dataset sizes of the runs (b); the landscapes (a) use the largest.
    seeds : int
        Data seeds per ``n`` (``S``).
    steps : int
        Adam steps ``S_train`` (the protocol's 3000; fewer is stated on the images).
    landscape_examples : int
        Examples drawn per landscape.
    landscape_points : int
        Grid points of a 1-D landscape curve.
    map_points : tuple of int
        ``(directions, speeds)`` of the billiards map.
    sign_ns : tuple of int
        Dataset sizes of the sign-law Monte Carlo (c).
    sign_pool : int
        Examples in a sign-law pool (``N``); ``N // max(sign_ns)`` datasets at the largest ``n``.
    """

    ns: tuple[int, ...] = (16, 64)
    seeds: int = 2
    steps: int = PROTOCOL_STEPS
    landscape_examples: int = 3
    landscape_points: int = 1500
    map_points: tuple[int, int] = (180, 120)
    sign_ns: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)
    sign_pool: int = 1 << 17

    def __post_init__(self):
        for name in ("ns", "sign_ns"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not values:
                raise ValueError(f"{name}: expected a non-empty tuple of dataset sizes, got {values!r}")
            for v in values:
                positive_int(name, v)
            if list(values) != sorted(set(values)):
                raise ValueError(f"{name}: expected strictly increasing sizes, got {values!r}")
        positive_int("seeds", self.seeds)
        positive_int("steps", self.steps)
        positive_int("landscape_examples", self.landscape_examples)
        positive_int("landscape_points", self.landscape_points, minimum=10)
        if not (isinstance(self.map_points, tuple) and len(self.map_points) == 2):
            raise ValueError(f"map_points: expected (directions, speeds), got {self.map_points!r}")
        for v in self.map_points:
            positive_int("map_points", v, minimum=4)
        positive_int("sign_pool", self.sign_pool)
        if self.sign_pool // max(self.sign_ns) < 2:
            raise ValueError(f"sign_pool: {self.sign_pool} examples give fewer than 2 datasets of size "
                             f"{max(self.sign_ns)}")

    @property
    def reduced(self) -> bool:
        """Whether fewer Adam steps than the protocol's 3000 are used."""
        return self.steps < PROTOCOL_STEPS


PROFILE_CONFIGS = {
    "quick": FigureConfig(),
    "paper": FigureConfig(ns=(16, 64, 256), seeds=5, sign_pool=1 << 20, landscape_points=3000,
                          map_points=(300, 200)),
}
"""The two profiles (module docstring)."""


def _setup(problem: str) -> ProblemSetup:
    if problem not in PROBLEMS:
        raise ValueError(f"problem: expected one of {list(PROBLEMS)}, got {problem!r}")
    return PROBLEMS[problem]


def _config(profile: str, config: FigureConfig | None) -> FigureConfig:
    check_profile(profile)
    if config is None:
        return PROFILE_CONFIGS[profile]
    if not isinstance(config, FigureConfig):
        raise ValueError(f"config: expected a FigureConfig, got {type(config).__name__}")
    return config


# --------------------------------------------------------------------------------------------
# one benchmark run: BFGS, JPO, JPO+BFGS, oracle


@dataclasses.dataclass(frozen=True, eq=False)
class BenchmarkRun:
    """BFGS, JPO and JPO+BFGS on the ``n`` examples of one data seed, with the §5.1 oracle.

    Attributes
    ----------
    problem : Problem
    setup : ProblemSetup
    seed, steps : int
        Data seed (network seed ``1000 + seed``) and ``S_train``.
    L_start : numpy.ndarray
        ``(n,)`` losses at the default start.
    baseline, refinement : dynamics.bfgs_reference.BFGSRun
        BFGS from ``x^(0)`` and from the JPO outputs.
    jpo : dynamics.joint.JPOResult
    oracle : verification.jpo_oracle.OracleResult
    seconds : dict
        Wall time of each phase (``bfgs``, ``train``, ``refine``, ``oracle``; advisory).
    """

    problem: jp.Problem
    setup: ProblemSetup
    seed: int
    steps: int
    L_start: np.ndarray
    baseline: bfgs.BFGSRun
    refinement: bfgs.BFGSRun
    jpo: joint.JPOResult
    oracle: oracle_mod.OracleResult
    seconds: dict

    @property
    def n(self) -> int:
        """Number of examples."""
        return self.problem.n

    def losses(self, method: str) -> np.ndarray:
        """``(n,)`` final losses of ``"BFGS"``, ``"JPO"`` or ``"JPO+BFGS"``."""
        if method == "BFGS":
            return self.baseline.fun
        if method == "JPO":
            return self.jpo.final_losses
        if method == "JPO+BFGS":
            return self.refinement.fun
        raise ValueError(f"method: expected 'BFGS', 'JPO' or 'JPO+BFGS', got {method!r}")

    def solutions(self, method: str) -> np.ndarray:
        """``(n, d)`` solutions of ``"start"``, ``"BFGS"``, ``"JPO"``, ``"JPO+BFGS"`` or ``"oracle"``."""
        table = {"start": self.problem.start(), "BFGS": self.baseline.x, "JPO": self.jpo.outputs,
                 "JPO+BFGS": self.refinement.x, "oracle": self.oracle.x, "truth": self.problem.truth.x}
        if method not in table:
            raise ValueError(f"method: expected one of {sorted(table)}, got {method!r}")
        return table[method]

    def comparison(self, method: str) -> oracle_mod.Comparison:
        """Win / loss / tie of ``method`` against BFGS (§5.2)."""
        return oracle_mod.compare_to_bfgs(self.losses(method), self.baseline.fun, self.oracle)

    def refinement_excess(self) -> np.ndarray:
        """``(L_ref - L_JPO) - 1e-12 (1 + |L_JPO|)`` per example: ``<= 0`` is refinement never worse."""
        L0 = self.jpo.final_losses
        return (self.refinement.fun - L0) - REFINE_RTOL * (1.0 + np.abs(L0))

    def baseline_excess(self) -> np.ndarray:
        """``(L_BFGS - L(x^(0))) - 1e-12 (1 + |L(x^(0))|)`` per example (same statement for BFGS)."""
        L0 = self.L_start
        return (self.baseline.fun - L0) - REFINE_RTOL * (1.0 + np.abs(L0))


def run_benchmark(problem: str, n: int, seed: int, *, steps: int = PROTOCOL_STEPS) -> BenchmarkRun:
    """BFGS, JPO and JPO+BFGS on ``n`` examples of a benchmark problem (spec §2.2-§2.4, §3-§5).

    Parameters
    ----------
    problem : str
        A key of :data:`PROBLEMS`.
    n : int
        Number of examples.
    seed : int
        Data seed ``s``; the network is initialized from ``default_rng(1000 + s)``.
    steps : int
        Adam steps ``S_train`` (protocol: 3000).

    Returns
    -------
    BenchmarkRun

    Raises
    ------
    ValueError
        On a bad argument.
    dynamics.errors.DivergenceError
        If training or BFGS diverges.
    dynamics.bfgs_reference.BFGSInconsistency
        If a BFGS result fails the §3 consistency check.
    """
    setup = _setup(problem)
    n = positive_int("n", n)
    seed = check_seed(seed)
    steps = positive_int("steps", steps)
    prob = setup.make(n, seed)
    seconds = {}
    t0 = time.perf_counter()
    base = bfgs.bfgs_baseline(prob)
    seconds["bfgs"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = joint.train_jpo(prob.inputs, prob.callback(), prob.x0, hidden=setup.hidden, steps=steps,
                             kappa_out=setup.kappa_out, seed=seed, record_every=max(1, steps // 20))
    seconds["train"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ref = bfgs.bfgs_refine(prob, result.outputs)
    seconds["refine"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    orc = oracle_mod.global_minimum(prob)
    seconds["oracle"] = time.perf_counter() - t0
    return BenchmarkRun(problem=prob, setup=setup, seed=seed, steps=steps, L_start=prob.loss(prob.start()),
                        baseline=base, refinement=ref, jpo=result, oracle=orc, seconds=seconds)


# --------------------------------------------------------------------------------------------
# (b) win rate against n


METHODS = ("JPO", "JPO+BFGS")
SWEEP_COLUMNS = (
    "problem", "n", "seed", "network_seed", "steps", "method", "examples", "wins", "losses", "ties",
    "w", "l", "tie", "decisive", "at_min", "at_min_bfgs", "g", "g_bfgs", "cap", "oracle_violations",
    "refine_max_excess", "bfgs_max_excess", "bfgs_nit0", "start_misses", "nfev_bfgs", "nfev_refine",
    "jpo_evaluations", "mean_loss", "mean_loss_bfgs", "seconds_bfgs", "seconds_train", "seconds_refine",
    "seconds_oracle",
)


def _run_rows(run: BenchmarkRun) -> list[dict]:
    orc = run.oracle
    L_b = run.baseline.fun
    at_b = oracle_mod.at_global_minimum(L_b, orc)
    violations = sum(oracle_mod.oracle_violations(run.losses(m), orc).size for m in ("BFGS", *METHODS))
    misses = None
    if run.setup.name == "billiards":
        misses = int(np.sum(~run.problem.truth.extras["start_hits"]))
    common = {
        "problem": run.setup.name, "n": run.n, "seed": run.seed, "network_seed": run.jpo.network_seed,
        "steps": run.steps, "examples": run.n, "at_min_bfgs": int(at_b.sum()),
        "g_bfgs": float(at_b.mean()), "cap": 1.0 - float(at_b.mean()), "oracle_violations": int(violations),
        "refine_max_excess": float(run.refinement_excess().max()),
        "bfgs_max_excess": float(run.baseline_excess().max()),
        "bfgs_nit0": int(np.sum(run.baseline.nit == 0)), "start_misses": misses,
        "nfev_bfgs": int(run.baseline.nfev.sum()), "nfev_refine": int(run.refinement.nfev.sum()),
        "jpo_evaluations": run.jpo.evaluations, "mean_loss_bfgs": float(L_b.mean()),
        **{f"seconds_{k}": float(v) for k, v in run.seconds.items()},
    }
    rows = []
    for method in METHODS:
        comp = run.comparison(method)
        L = run.losses(method)
        at = oracle_mod.at_global_minimum(L, orc)
        rows.append({**common, "method": method, "wins": int(comp.win.sum()), "losses": int(comp.loss.sum()),
                     "ties": int(comp.tie.sum()), "w": comp.win_rate, "l": comp.loss_rate,
                     "tie": comp.tie_rate, "decisive": comp.decisive_win_rate, "at_min": int(at.sum()),
                     "g": float(at.mean()), "mean_loss": float(L.mean())})
    return rows


def _cells(rows: Sequence[dict]) -> list[dict]:
    """Seed-level and pooled statistics per ``(n, method)`` (what (b) draws)."""
    cells = []
    for n in sorted({r["n"] for r in rows}):
        for method in METHODS:
            sel = [r for r in rows if r["n"] == n and r["method"] == method]
            w = np.array([r["w"] for r in sel])
            k = sum(r["wins"] for r in sel)
            m = sum(r["examples"] for r in sel)
            wilson = sps.binomtest(k, m).proportion_ci(confidence_level=CI_LEVEL, method="wilson")
            S = w.size
            if S >= 2:
                half = float(sps.t.ppf(0.5 + CI_LEVEL / 2, S - 1) * w.std(ddof=1) / math.sqrt(S))
            else:
                half = math.nan
            cap_k = sum(r["examples"] - r["at_min_bfgs"] for r in sel)
            cells.append({"n": n, "method": method, "seeds": S, "w_seeds": w, "mean": float(w.mean()),
                          "t_low": float(w.mean()) - half, "t_high": float(w.mean()) + half,
                          "pooled": k / m, "wilson_low": float(wilson.low), "wilson_high": float(wilson.high),
                          "cap": cap_k / m, "l_pooled": sum(r["losses"] for r in sel) / m,
                          "g_pooled": sum(r["at_min"] for r in sel) / m,
                          "g_bfgs_pooled": sum(r["at_min_bfgs"] for r in sel) / m})
    return cells


def sweep_data(problem: str, profile: str = "quick", seed: int = 0, *, config: FigureConfig | None = None,
               progress: Progress | None = None) -> dict:
    """The runs behind figures (a) and (b) of one problem: every ``n`` of the config, ``S`` seeds.

    Parameters
    ----------
    problem : str
        A key of :data:`PROBLEMS`.
    profile : {"quick", "paper"}
    seed : int
        Base data seed: run ``r`` uses ``seed + r``.
    config : FigureConfig, optional
        Overrides the profile's sizes.
    progress : callable, optional

    Returns
    -------
    dict
        ``rows`` (one per run and method, columns :data:`SWEEP_COLUMNS`), ``columns``, ``cells``
        (the statistics drawn per ``(n, method)``: seed mean, two-sided 95 % ``t`` interval --
        ``NaN`` ends when ``S = 1``, where it is undefined --, pooled rate, Wilson interval, cap),
        ``runs`` (``{(n, seed): BenchmarkRun}``), ``config``, ``setup``, ``seed``, ``profile``.
    """
    setup = _setup(problem)
    cfg = _config(profile, config)
    seed = check_seed(seed)
    runs = {}
    rows: list[dict] = []
    total = len(cfg.ns) * cfg.seeds
    done = 0
    for n in cfg.ns:
        for r in range(cfg.seeds):
            run = run_benchmark(problem, n, seed + r, steps=cfg.steps)
            runs[(n, seed + r)] = run
            rows += _run_rows(run)
            done += 1
            tick(progress, done, total, f"n={n} seed={seed + r}")
    return {"rows": rows, "columns": SWEEP_COLUMNS, "cells": _cells(rows), "runs": runs, "config": cfg,
            "setup": setup, "seed": seed, "profile": profile}


# --------------------------------------------------------------------------------------------
# (a) landscapes


MARKERS = ("start", "BFGS", "JPO", "JPO+BFGS", "oracle", "truth")


def _pick_examples(run: BenchmarkRun, count: int) -> list[tuple[int, str]]:
    comp = run.comparison("JPO+BFGS")
    picked: list[tuple[int, str]] = []
    for role, mask in (("win", comp.win), ("tie", comp.tie), ("loss", comp.loss)):
        idx = np.flatnonzero(mask)
        if idx.size and len(picked) < count:
            picked.append((int(idx[0]), role))
    used = {i for i, _ in picked}
    for i in range(run.n):
        if len(picked) >= count:
            break
        if i not in used:
            role = "win" if comp.win[i] else ("loss" if comp.loss[i] else "tie")
            picked.append((i, role))
    return sorted(picked)


def _landscape_columns(d: int) -> tuple[str, ...]:
    cols = ["problem", "n", "seed", "steps", "example", "role"]
    for m in MARKERS:
        cols += [f"x_{m}_{k}" for k in range(d)]
    cols += ["L_start", "L_BFGS", "L_JPO", "L_JPO+BFGS", "L_oracle", "tau"]
    return tuple(cols)


def _wrap(x: np.ndarray, period: float | None) -> np.ndarray:
    return x if period is None else np.mod(x, period)


def _polar(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.arctan2(v[..., 1], v[..., 0]), np.hypot(v[..., 0], v[..., 1])


def landscape_data(sweep: dict, *, config: FigureConfig | None = None) -> dict:
    """Figure (a): loss landscapes of a few examples of the largest-``n`` run of the base seed.

    Parameters
    ----------
    sweep : dict
        The result of :func:`sweep_data`.
    config : FigureConfig, optional
        Defaults to the sweep's.

    Returns
    -------
    dict
        ``rows`` (one per drawn example: every marker's position and loss), ``columns``,
        ``curves`` (per example: the grid and ``L`` on it; for the billiards the direction and
        speed axes and the map), ``setup``, ``config``, ``seed``, ``n``.
    """
    if not isinstance(sweep, dict) or "runs" not in sweep:
        raise ValueError("sweep: expected the result of sweep_data")
    cfg = sweep["config"] if config is None else config
    setup = sweep["setup"]
    n = max(n for n, _ in sweep["runs"])
    run = sweep["runs"][(n, sweep["seed"])]
    prob = run.problem
    d = prob.d
    pos = {m: run.solutions(m) for m in MARKERS}
    loss_at = {"start": run.L_start, "BFGS": run.baseline.fun, "JPO": run.jpo.final_losses,
               "JPO+BFGS": run.refinement.fun, "oracle": run.oracle.value}
    rows, curves = [], []
    for i, role in _pick_examples(run, cfg.landscape_examples):
        row = {"problem": setup.name, "n": n, "seed": run.seed, "steps": run.steps, "example": i,
               "role": role, "tau": float(run.oracle.tau[i])}
        for m in MARKERS:
            for k in range(d):
                row[f"x_{m}_{k}"] = float(pos[m][i, k])
        for m, L in loss_at.items():
            row[f"L_{m}"] = float(L[i])
        rows.append(row)
        if d == 1:
            xs = np.array([pos[m][i, 0] for m in MARKERS])
            if setup.period is not None:
                lo, hi = 0.0, setup.period
            else:
                span = float(xs.max() - xs.min())
                lo, hi = float(xs.min()) - 0.15 * span - 0.1, float(xs.max()) + 0.15 * span + 0.1
            grid = np.linspace(lo, hi, cfg.landscape_points)
            curves.append({"example": i, "role": role, "grid": grid,
                           "loss": prob.subset([i]).loss_on_grid(grid)[0]})
        else:
            ang, spd = _polar(np.array([pos[m][i] for m in MARKERS]))
            a_lo, a_hi = float(ang.min()) - 0.25, float(ang.max()) + 0.25
            s_lo, s_hi = max(0.05, float(spd.min()) - 0.3), float(spd.max()) + 0.3
            A, V = np.meshgrid(np.linspace(a_lo, a_hi, cfg.map_points[0]),
                               np.linspace(s_lo, s_hi, cfg.map_points[1]))
            pts = np.stack([V * np.cos(A), V * np.sin(A)], axis=-1).reshape(-1, 2)
            L = prob.subset(np.full(pts.shape[0], i)).loss(pts).reshape(A.shape)
            curves.append({"example": i, "role": role, "angle": A[0], "speed": V[:, 0], "loss": L})
    return {"rows": rows, "columns": _landscape_columns(d), "curves": curves, "setup": setup, "config": cfg,
            "seed": run.seed, "n": n, "d": d}


# --------------------------------------------------------------------------------------------
# (c) sign-probability law


SIGN_COLUMNS = ("problem", "series", "n", "seed", "pool", "trials", "successes", "frequency", "se", "clt",
                "exact", "snr1", "snr1_closed_form")


def _pool_seed(setup: ProblemSetup, seed: int) -> int:
    return SIGN_LAW_SEED + 10 * seed + setup.index


def _bias_delta() -> float:
    # s = 2 delta and sigma = amp sqrt(8/2) = 2 amp (spec §7.1: A_k = amp for all k), so
    # |s|/sigma = delta/amp.
    return BIAS_SNR1 * RIPPLE_AMP


def sign_law_pool(problem: str, series: str, size: int, seed: int) -> np.ndarray:
    """Per-example scalar gradients of a sign-law pool (module docstring).

    Parameters
    ----------
    problem : str
        A key of :data:`PROBLEMS`.
    series : {"feature", "bias"}
        ``h_i = (x*_i - x^(0)) . g_i(x^(0))``, or (ripple only) ``L_i'(y_i + delta)``.
    size : int
        Pool size ``N``.
    seed : int
        The pool seed (a row's ``seed``): the examples are drawn from
        ``default_rng([seed, 0 for feature / 1 for bias])`` in chunks of :data:`SIGN_CHUNK`.

    Returns
    -------
    numpy.ndarray
        ``(N,)``.
    """
    setup = _setup(problem)
    if series not in ("feature", "bias"):
        raise ValueError(f"series: expected 'feature' or 'bias', got {series!r}")
    if series == "bias" and setup.name != "ripple":
        raise ValueError("series: the bias series is defined for the ripple only")
    size = positive_int("size", size)
    seed = check_seed(seed)
    rng = np.random.default_rng([seed, 0 if series == "feature" else 1])
    out = np.empty(size)
    for start in range(0, size, SIGN_CHUNK):
        m = min(SIGN_CHUNK, size - start)
        prob = setup.make(m, rng)
        if series == "feature":
            g = prob.grad(prob.start())
            out[start:start + m] = np.sum((prob.truth.x - prob.x0) * g, axis=1)
        else:
            x = prob.inputs + _bias_delta()          # u_i = y_i for the ripple
            out[start:start + m] = prob.grad(x)[:, 0]
    return out


def _block_successes(values: np.ndarray, n: int, useful_sign: float) -> tuple[int, int]:
    M = values.size // n
    sums = values[:M * n].reshape(M, n).sum(axis=1)
    return int(np.sum(sums * useful_sign > 0)), M


def sign_law_data(problem: str, profile: str = "quick", seed: int = 0, *, config: FigureConfig | None = None,
                  progress: Progress | None = None) -> dict:
    """Figure (c): Monte Carlo sign frequencies against the CLT law (and the exact law, ripple).

    Parameters
    ----------
    problem : str
        A key of :data:`PROBLEMS`.
    profile : {"quick", "paper"}
    seed : int
        Base seed; the pool seed is ``20240815 + 10 seed + problem index``.
    config : FigureConfig, optional
    progress : callable, optional

    Returns
    -------
    dict
        ``rows`` (one per series and ``n``, columns :data:`SIGN_COLUMNS`), ``columns``, ``series``
        (per series: ``snr1`` and the CLT curve on a fine ``n`` grid), ``setup``, ``config``,
        ``seed``.
    """
    setup = _setup(problem)
    cfg = _config(profile, config)
    seed = check_seed(seed)
    pool_seed = _pool_seed(setup, seed)
    names = ("feature", "bias") if setup.name == "ripple" else ("feature",)
    total = len(names) * (len(cfg.sign_ns) + 1)
    done = 0
    rows, series = [], {}
    fine = np.geomspace(1, max(cfg.sign_ns), 200)
    for name in names:
        pool = sign_law_pool(problem, name, cfg.sign_pool, pool_seed)
        done += 1
        tick(progress, done, total, f"{name} pool")
        closed = None
        if name == "feature":
            mean, sd = float(pool.mean()), float(pool.std(ddof=1))
            if sd == 0:
                raise ValueError(f"problem: the {name} pool of {problem!r} has zero variance")
            snr1 = -mean / sd
            useful = -1.0
            if setup.name == "ripple":
                closed = jvb.ripple_feature_snr(RIPPLE_AMP)
        else:
            snr1 = BIAS_SNR1
            useful = 1.0
        for n in cfg.sign_ns:
            k, M = _block_successes(pool, n, useful)
            freq = k / M
            clt = float(special.ndtr(math.sqrt(n) * snr1))
            exact = None
            if name == "bias":
                s = 2.0 * _bias_delta()
                exact = jvb.gil_pelaez_sign_probability(n * s, [RIPPLE_AMP] * jp.RIPPLE_OMEGAS.size, n)
            rows.append({"problem": setup.name, "series": name, "n": n, "seed": pool_seed,
                         "pool": cfg.sign_pool, "trials": M, "successes": k, "frequency": freq,
                         "se": math.sqrt(freq * (1 - freq) / M), "clt": clt, "exact": exact,
                         "snr1": snr1, "snr1_closed_form": closed})
            done += 1
            tick(progress, done, total, f"{name} n={n}")
        series[name] = {"snr1": snr1, "closed": closed, "fine_n": fine,
                        "clt_curve": special.ndtr(np.sqrt(fine) * snr1)}
    return {"rows": rows, "columns": SIGN_COLUMNS, "series": series, "setup": setup, "config": cfg,
            "seed": pool_seed, "profile": profile}


# --------------------------------------------------------------------------------------------
# plots


COLORS = {"start": "0.45", "BFGS": "tab:blue", "JPO": "tab:orange", "JPO+BFGS": "tab:green",
          "oracle": "k", "truth": "tab:red"}
SYMBOLS = {"start": "^", "BFGS": "o", "JPO": "s", "JPO+BFGS": "*", "oracle": "x", "truth": "+"}
LOSS_FLOOR = 1e-12
"""Floor of the billiards ``log10 L`` map (``L* = 0`` exactly at the truth)."""


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _steps_note(cfg: FigureConfig) -> str:
    if cfg.reduced:
        return f"S_train = {cfg.steps} (REDUCED from the protocol's {PROTOCOL_STEPS})"
    return f"S_train = {cfg.steps}"


def plot_landscape(data: dict) -> Figure:
    """Figure (a): one panel per drawn example, with every end point marked."""
    setup, cfg = data["setup"], data["config"]
    curves, rows = data["curves"], data["rows"]
    fig = _figure(4.2 * len(curves), 3.6)
    axes = np.atleast_1d(fig.subplots(1, len(curves), squeeze=False)[0])
    for ax, curve, row in zip(axes, curves, rows, strict=True):
        if data["d"] == 1:
            ax.plot(curve["grid"], curve["loss"], color="0.3", lw=0.7)
            for m in MARKERS:
                x = float(_wrap(np.array(row[f"x_{m}_0"]), setup.period))
                if m == "truth":
                    ax.axvline(x, color=COLORS[m], ls=":", lw=1.0, label="truth x*")
                    continue
                y = row["L_oracle"] if m == "oracle" else row[f"L_{m}"]
                ax.plot([x], [y], ls="none", marker=SYMBOLS[m], ms=11 if m == "JPO+BFGS" else 7,
                        color=COLORS[m], mfc="none" if m in ("BFGS", "JPO") else COLORS[m], mew=1.4,
                        label=f"{m} (L = {y:.4g})" if m != "start" else f"start x^(0) (L = {y:.4g})")
            ax.set_xlabel("x" + (f" (mod {setup.period:.4g})" if setup.period else ""))
            ax.set_ylabel("L_i(x)")
        else:
            L = np.log10(np.maximum(curve["loss"], LOSS_FLOOR))
            mesh = ax.pcolormesh(curve["angle"], curve["speed"], L, shading="auto", cmap="viridis")
            fig.colorbar(mesh, ax=ax, label=f"log10 max(L, {LOSS_FLOOR:g})")
            for m in MARKERS:
                ang, spd = _polar(np.array([row[f"x_{m}_0"], row[f"x_{m}_1"]]))
                Lm = row["L_oracle"] if m == "oracle" else (row.get(f"L_{m}") if m != "truth" else 0.0)
                ax.plot([ang], [spd], ls="none", marker=SYMBOLS[m], ms=12 if m == "JPO+BFGS" else 8,
                        color=COLORS[m] if m not in ("oracle", "BFGS") else "w",
                        mec="k" if m == "JPO+BFGS" else None, mew=1.4, label=f"{m} (L = {Lm:.3g})")
            ax.set_xlabel("direction atan2(v_y, v_x) [rad]")
            ax.set_ylabel("speed |v|")
        verb = {"win": "wins against", "tie": "ties with", "loss": "loses to"}[row["role"]]
        ax.set_title(f"example {row['example']}: JPO+BFGS {verb} BFGS", fontsize=8)
        ax.legend(fontsize=5.5, loc="best")
        ax.grid(alpha=0.3, lw=0.4)
    what = ("2-D map of log10 L over (direction, speed) of v, not a slice" if data["d"] == 2
            else "L_i over x" + (", markers wrapped into one period" if setup.period else ""))
    fig.suptitle(f"Loss landscapes: {setup.label}\n{what}; n = {data['n']}, data seed {data['seed']}, "
                 f"{_steps_note(cfg)}", fontsize=8)
    return fig


def plot_win_rate(data: dict) -> Figure:
    """Figure (b): win rate against ``n`` with seed-level and pooled intervals."""
    setup, cfg, cells = data["setup"], data["config"], data["cells"]
    fig = _figure(6.4, 4.4)
    ax = fig.subplots()
    ns = sorted({c["n"] for c in cells})
    offsets = {"JPO": 0.94, "JPO+BFGS": 1.06}
    colors = {"JPO": COLORS["JPO"], "JPO+BFGS": COLORS["JPO+BFGS"]}
    for method in METHODS:
        sel = [c for c in cells if c["method"] == method]
        x = np.array([c["n"] for c in sel], dtype=float) * offsets[method]
        for xi, c in zip(x, sel, strict=True):
            ax.plot(np.full(c["w_seeds"].size, xi), c["w_seeds"], ls="none", marker=".", ms=4,
                    color=colors[method], alpha=0.5)
            ax.plot([xi * 1.015] * 2, [c["wilson_low"], c["wilson_high"]], color=colors[method], lw=5,
                    alpha=0.25, solid_capstyle="butt")
        mean = np.array([c["mean"] for c in sel])
        lo = np.array([c["t_low"] for c in sel])
        hi = np.array([c["t_high"] for c in sel])
        err = np.vstack([mean - lo, hi - mean])
        ax.errorbar(x, mean, yerr=np.where(np.isfinite(err), err, 0.0), color=colors[method], marker="o",
                    ms=5, capsize=3, lw=1.2,
                    label=f"{method}: seed mean ± t 95% (S − 1 = {cfg.seeds - 1} df)")
        ax.plot([], [], color=colors[method], lw=5, alpha=0.25, label=f"{method}: pooled Wilson 95%")
    cap = [next(c["cap"] for c in cells if c["n"] == n) for n in ns]
    ax.plot(ns, cap, color="k", ls="--", lw=1.0, marker="_", label="cap 1 − g_BFGS (pooled)")
    ax.axhline(0.5, color="0.5", ls=":", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("dataset size n (examples trained jointly)")
    ax.set_ylabel("win rate w against BFGS (§5.2)")
    ax.legend(fontsize=6, loc="best")
    ax.grid(alpha=0.3, lw=0.4)
    fig.suptitle(f"Win rate against n: {setup.label}\nS = {cfg.seeds} seeds from {data['seed']}, "
                 f"{_steps_note(cfg)}, {data['profile']} profile; pooled intervals are descriptive "
                 "(examples share the network)", fontsize=7.5)
    return fig


def plot_sign_law(data: dict) -> Figure:
    """Figure (c): Monte Carlo sign frequencies, the CLT curve and (ripple) the exact law."""
    setup, cfg = data["setup"], data["config"]
    fig = _figure(6.4, 4.4)
    ax = fig.subplots()
    palette = {"feature": "tab:purple", "bias": "tab:brown"}
    for name, info in data["series"].items():
        rows = [r for r in data["rows"] if r["series"] == name]
        ns = np.array([r["n"] for r in rows], dtype=float)
        freq = np.array([r["frequency"] for r in rows])
        se = np.array([r["se"] for r in rows])
        if name == "feature":
            rho_txt = f"ρ̂ = {info['snr1']:.4f}" + (f", closed form ρ₁ = {info['closed']:.4f}"
                                                   if info["closed"] is not None else "")
            label = "feature direction h = (x* − x⁽⁰⁾)·g(x⁽⁰⁾): Monte Carlo ± 2 SE"
            clt_label = f"CLT Φ(√n ρ̂), {rho_txt}"
        else:
            label = f"bias gradient at x = y + δ (|s|/σ = {info['snr1']:g}): Monte Carlo ± 2 SE"
            clt_label = "CLT Φ(√n |s|/σ), σ = 2 amp"
        ax.errorbar(ns, freq, yerr=2 * se, ls="none", marker="o", ms=4, capsize=2, color=palette[name],
                    label=label)
        ax.plot(info["fine_n"], info["clt_curve"], color=palette[name], lw=1.0, label=clt_label)
        if name == "bias":
            exact = np.array([r["exact"] for r in rows])
            ax.plot(ns, exact, ls="none", marker="D", mfc="none", ms=8, color="k",
                    label="exact Gil-Pelaez P_n (J₀(t)^(8n), §6.3)")
        ax.axhline(freq[0] if ns[0] == 1 else np.nan, color=palette[name], ls=":", lw=0.8)
    ax.axhline(0.5, color="0.5", ls="--", lw=0.6)
    ax.set_xscale("log", base=2)
    sign_ns = list(cfg.sign_ns)
    ax.set_xticks(sign_ns, [str(n) for n in sign_ns])
    ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.02)
    ax.set_xlabel("dataset size n (dotted: n = 1, what per-example BFGS sees)")
    ax.set_ylabel("P(joint gradient has the useful sign)")
    ax.legend(fontsize=6, loc="lower right")
    ax.grid(alpha=0.3, lw=0.4)
    fig.suptitle(f"Sign-probability law: {setup.label}\npool of {cfg.sign_pool} fresh examples split into "
                 f"N/n disjoint datasets, pool seed {data['seed']}", fontsize=7.5)
    return fig


# --------------------------------------------------------------------------------------------
# entry point

FIGURES = (
    ("sign_law", "(c) sign law"),
    ("win_rate", "(b) win rate"),
    ("landscape", "(a) landscapes"),
)
"""``(figure key, progress label)`` in the order written per problem; files are
``jpo_<problem>_<key>.png`` and ``.csv``."""


def _write(out_dir: str, stem: str, data: dict, plot: Callable[[dict], Figure]) -> list[str]:
    png = os.path.join(out_dir, f"{stem}.png")
    csv_path = os.path.join(out_dir, f"{stem}.csv")
    # The table first: it is the record; the PNG is drawn from the same data.
    write_table(csv_path, data["rows"], data["columns"])
    plot(data).savefig(png)
    return [png, csv_path]


def make_figures(out_dir: str, profile: str = "quick", seed: int = 0, *, config: FigureConfig | None = None,
                 problems: Sequence[str] | None = None, show_progress: bool = True) -> list[str]:
    """Compute and write the JPO figures, each as PNG and tidy CSV, as soon as it is done.

    Parameters
    ----------
    out_dir : str
        Output directory (created if missing).
    profile : {"quick", "paper"}
        Sizes (module docstring).
    seed : int
        Base data seed (run ``r`` uses ``seed + r``; the sign-law pools derive theirs from it).
    config : FigureConfig, optional
        Overrides the profile's sizes (e.g. tiny runs for tests).
    problems : sequence of str, optional
        A subset of :data:`PROBLEMS` (default: all four).
    show_progress : bool
        Progress lines on stderr.

    Returns
    -------
    list of str
        The written paths, PNG then CSV, per problem in the order sign law, win rate, landscape.
    """
    cfg = _config(profile, config)
    seed = check_seed(seed)
    if problems is None:
        problems = tuple(PROBLEMS)
    if isinstance(problems, str) or not all(p in PROBLEMS for p in problems) or not problems:
        raise ValueError(f"problems: expected a non-empty sequence of {list(PROBLEMS)}, got {problems!r}")
    os.makedirs(out_dir, exist_ok=True)
    paths: list[str] = []
    def progress(name: str, label: str) -> Progress | None:
        return stderr_progress("jpo", f"{name} {label}") if show_progress else None

    for name in problems:
        sign = sign_law_data(name, profile, seed, config=cfg, progress=progress(name, "(c) sign law"))
        paths += _write(out_dir, f"jpo_{name}_sign_law", sign, plot_sign_law)
        sweep = sweep_data(name, profile, seed, config=cfg, progress=progress(name, "(b) win rate runs"))
        paths += _write(out_dir, f"jpo_{name}_win_rate", sweep, plot_win_rate)
        paths += _write(out_dir, f"jpo_{name}_landscape", landscape_data(sweep), plot_landscape)
    return paths
