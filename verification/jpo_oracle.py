"""Global-minimum oracle and comparison metrics of the JPO family (spec ``jpo.md`` §5.1, §5.2).

Oracle (§5.1), per example, chosen by the problem's :class:`~dynamics.jpo_problems.OracleHint`:

* ``grid`` (1-D unknowns): a dense grid over a bracket proven to contain a global minimiser, with
  spacing at most ``1/1000`` of the shortest oscillation period of ``L_i`` (and at most the
  problem's own cap, ``1e-4`` for the ripple), then the §3 BFGS polish from the best grid
  candidates. The candidates are the 5 lowest *discrete local minima* of the grid (grid points not
  above their neighbours) rather than the 5 lowest grid points: adjacent grid points usually lie in
  one basin, so 5 points would polish one basin 5 times; the lowest grid point is always among the
  candidates, so this is never weaker than the literal rule;
* ``multistart`` (``d >= 2``): BFGS from at least 256 points of a scrambled Sobol sequence over the
  prior box, plus a start at the ground truth;
* ``known_zero`` (noise-free with a known solution): ``L_i^* = 0``, after checking that the truth
  attains it.

Tolerance ``tau_i = 1e-8 + 1e-6 |L_i^*|``. Oracle validity: every method must satisfy
``L_i^M >= L_i^* - tau_i``; a violation raises :class:`OracleInvalid` in
:func:`check_oracle_valid` (it is a test error: the oracle must be improved, never the tolerance
widened).

Comparison metrics (§5.2): :func:`compare_to_bfgs` (win / loss / tie per example and the rates,
decisive win rate), :func:`at_global_minimum` and :func:`global_min_fraction` (``g_M``),
:func:`log_suboptimality_ratio` (``q_i``, with :func:`mean_median`) and :func:`log_loss_ratio`.
Exact consequence used by ``jpo.win_rate_bounded_by_bfgs_failure``: with a valid oracle an example
where BFGS is at the global minimum cannot be won, so ``w <= 1 - g_BFGS``
(:func:`win_rate_cap`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
from scipy.stats import qmc

from dynamics.bfgs_reference import bfgs_solve
from dynamics.jpo_problems import Problem

__all__ = [
    "GRID_PERIOD_FRACTION",
    "MIN_SOBOL_STARTS",
    "N_POLISH",
    "TAU_ABS",
    "TAU_REL",
    "Comparison",
    "OracleInvalid",
    "OracleResult",
    "at_global_minimum",
    "check_oracle_valid",
    "compare_to_bfgs",
    "global_min_fraction",
    "global_minimum",
    "grid_oracle",
    "known_zero_oracle",
    "log_loss_ratio",
    "log_suboptimality_ratio",
    "mean_median",
    "multistart_oracle",
    "oracle_violations",
    "tolerance",
    "win_rate_cap",
]

TAU_ABS = 1e-8
TAU_REL = 1e-6
"""§5.1: ``tau_i = 1e-8 + 1e-6 |L_i^*|``."""
GRID_PERIOD_FRACTION = 1e-3
"""§5.1: grid spacing at most ``1/1000`` of the shortest oscillation period."""
N_POLISH = 5
"""§5.1: BFGS polish from the 5 best grid candidates."""
MIN_SOBOL_STARTS = 256
"""§5.1: at least 256 scrambled Sobol starts for ``d >= 2``."""
SUBOPT_FLOOR = 1e-10
"""§5.2: ``q_i = log10((delta^M + 1e-10)/(delta^BFGS + 1e-10))``."""
_GRID_BLOCK = 2_000_000
"""Grid entries evaluated per block (memory bound: 16 MB of float64)."""


class OracleInvalid(AssertionError):
    """A method found a loss below the oracle's global minimum minus ``tau`` (§5.1).

    Attributes
    ----------
    method : str
    indices : list of int
    deficits : list of float
        ``L_i^* - tau_i - L_i^M > 0`` at those examples.
    """

    def __init__(self, method: str, indices: list[int], deficits: list[float]):
        self.method, self.indices, self.deficits = method, indices, deficits
        super().__init__(f"oracle invalid: {method} is below L* - tau at examples {indices[:10]} "
                         f"(by {[f'{d:.3g}' for d in deficits[:10]]}); improve the oracle")


@dataclasses.dataclass(frozen=True, eq=False)
class OracleResult:
    """Oracle global minima of ``n`` examples.

    Attributes
    ----------
    value : numpy.ndarray
        ``(n,)`` ``L_i^*``.
    x : numpy.ndarray
        ``(n, d)`` where it is attained.
    tau : numpy.ndarray
        ``(n,)`` tolerances ``1e-8 + 1e-6 |L_i^*|``.
    method : str
        ``"grid"``, ``"multistart"`` or ``"known_zero"``.
    details : Mapping[str, Any]
        Grid spacing and size, number of starts, ...
    """

    value: np.ndarray
    x: np.ndarray
    tau: np.ndarray
    method: str
    details: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of examples."""
        return self.value.size


def tolerance(L_star) -> np.ndarray:
    """``tau_i = 1e-8 + 1e-6 |L_i^*|`` (§5.1)."""
    L = _values("L_star", L_star)
    return TAU_ABS + TAU_REL * np.abs(L)


def _values(name: str, value, n: int | None = None) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-d array of per-example values, got shape "
                         f"{arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite entries (NaN or inf)")
    if n is not None and arr.size != n:
        raise ValueError(f"{name}: expected {n} values (one per example), got {arr.size}")
    return arr


def _check_problem(problem) -> Problem:
    if not isinstance(problem, Problem):
        raise ValueError(f"problem: expected a dynamics.jpo_problems.Problem, got {type(problem).__name__}")
    return problem


def _result(value, x, method, **details) -> OracleResult:
    return OracleResult(value=value, x=x, tau=TAU_ABS + TAU_REL * np.abs(value), method=method,
                        details=MappingProxyType(details))


# --------------------------------------------------------------------------------------------
# the oracle


def _discrete_minima(vals: np.ndarray, k: int) -> np.ndarray:
    """Indices ``(rows, k)`` of the ``k`` lowest grid points not above their neighbours."""
    is_min = np.ones(vals.shape, dtype=bool)
    is_min[:, 1:] &= vals[:, 1:] <= vals[:, :-1]
    is_min[:, :-1] &= vals[:, :-1] <= vals[:, 1:]
    masked = np.where(is_min, vals, np.inf)
    k = min(k, vals.shape[1])
    idx = np.argpartition(masked, k - 1, axis=1)[:, :k]
    # A row with fewer than k discrete minima has +inf entries: point them at the row's best one.
    best = np.argmin(masked, axis=1)
    return np.where(np.isfinite(np.take_along_axis(masked, idx, axis=1)), idx, best[:, None])


def grid_oracle(problem: Problem, *, spacing: float | None = None, n_polish: int = N_POLISH) -> OracleResult:
    """The §5.1 grid oracle for a 1-D problem with a proven bracket.

    Parameters
    ----------
    problem : Problem
        ``d = 1``, hint method ``"grid"``.
    spacing : float, optional
        Grid spacing; defaults to ``min(min_period/1000, max_spacing)``. A coarser spacing than the
        default is refused (the §5.1 rule).
    n_polish : int
        Number of grid candidates polished by BFGS (``>= 1``).

    Returns
    -------
    OracleResult
        ``details``: ``spacing``, ``grid_points`` (per example), ``polished`` (BFGS calls).
    """
    problem = _check_problem(problem)
    hint = problem.oracle_hint
    if problem.d != 1 or hint.lo is None or hint.hi is None or hint.min_period is None:
        raise ValueError("problem: the grid oracle needs a 1-D problem with a bracket and a period hint")
    if isinstance(n_polish, bool) or not isinstance(n_polish, int) or n_polish < 1:
        raise ValueError(f"n_polish: expected an integer >= 1, got {n_polish!r}")
    rule = GRID_PERIOD_FRACTION * hint.min_period
    if hint.max_spacing is not None:
        rule = min(rule, hint.max_spacing)
    if spacing is None:
        spacing = rule
    elif not (isinstance(spacing, float | int) and 0 < spacing <= rule):
        raise ValueError(f"spacing: must lie in (0, {rule:.3g}] (1/1000 of the shortest period), "
                         f"got {spacing!r}")
    lo, hi = np.asarray(hint.lo, float), np.asarray(hint.hi, float)
    width = float(np.max(hi - lo))
    M = max(2, math.ceil(width / spacing) + 1)
    common = bool(np.all(lo == lo[0]) and np.all(hi == hi[0]))
    n = problem.n
    unit = np.linspace(0.0, 1.0, M)
    cand_x = np.empty((n, n_polish))
    block = max(1, _GRID_BLOCK // M)
    for s in range(0, n, block):
        sub = problem.subset(slice(s, s + block))
        rows = slice(s, s + sub.n)
        if common:
            grid = lo[0] + (hi[0] - lo[0]) * unit
            vals = sub.loss_on_grid(grid)
            pts = np.broadcast_to(grid, vals.shape)
        else:
            pts = lo[rows, None] + (hi[rows] - lo[rows])[:, None] * unit
            vals = sub.loss_on_grid(pts)
        idx = _discrete_minima(vals, n_polish)
        cand_x[rows] = np.take_along_axis(pts, idx, axis=1)
    # Re-evaluate the candidates with the direct loss and polish each by the §3 BFGS.
    rep = np.repeat(np.arange(n), n_polish)
    sub = problem.subset(rep)
    starts = cand_x.reshape(-1, 1)
    cand_val = sub.loss(starts)
    run = bfgs_solve(sub, starts, check="raise")
    vals = np.stack([cand_val, run.fun], axis=1).reshape(n, n_polish * 2)
    xs = np.stack([starts[:, 0], run.x[:, 0]], axis=1).reshape(n, n_polish * 2)
    best = np.argmin(vals, axis=1)
    value = vals[np.arange(n), best]
    x = xs[np.arange(n), best][:, None]
    return _result(value, x, "grid", spacing=float((hi - lo).max() / (M - 1)), grid_points=M,
                   polished=int(rep.size))


def multistart_oracle(problem: Problem, *, n_starts: int = MIN_SOBOL_STARTS, seed: int = 0,
                      include_truth: bool = True) -> OracleResult:
    """The §5.1 multi-start oracle: BFGS from scrambled Sobol starts over the prior box.

    Parameters
    ----------
    problem : Problem
        With ``oracle_hint.box_lo/box_hi``.
    n_starts : int
        Sobol points per example, ``>= 256`` (rounded up to a power of two, Sobol's balance).
    seed : int
        Scrambling seed; the same points serve every example.
    include_truth : bool
        Also start at the ground truth (§5.1 requires it; ``False`` only for tests of the oracle).

    Returns
    -------
    OracleResult
        ``details``: ``starts`` per example, ``bfgs_calls``.
    """
    problem = _check_problem(problem)
    hint = problem.oracle_hint
    if hint.box_lo is None or hint.box_hi is None:
        raise ValueError("problem: the multi-start oracle needs a prior box (oracle_hint.box_lo/hi)")
    if isinstance(n_starts, bool) or not isinstance(n_starts, int) or n_starts < MIN_SOBOL_STARTS:
        raise ValueError(f"n_starts: expected an integer >= {MIN_SOBOL_STARTS}, got {n_starts!r}")
    m = math.ceil(math.log2(n_starts))
    sobol = qmc.Sobol(problem.d, scramble=True, seed=np.random.default_rng(seed))
    pts = qmc.scale(sobol.random_base2(m), hint.box_lo, hint.box_hi)
    k = pts.shape[0] + (1 if include_truth else 0)
    n = problem.n
    starts = np.tile(pts, (n, 1)).reshape(n, pts.shape[0], problem.d)
    if include_truth:
        starts = np.concatenate([starts, problem.truth.x[:, None, :]], axis=1)
    rep = np.repeat(np.arange(n), k)
    run = bfgs_solve(problem.subset(rep), starts.reshape(-1, problem.d), check="raise")
    vals = run.fun.reshape(n, k)
    best = np.argmin(vals, axis=1)
    x = run.x.reshape(n, k, problem.d)[np.arange(n), best]
    return _result(vals[np.arange(n), best], x, "multistart", starts=k, bfgs_calls=int(rep.size))


def known_zero_oracle(problem: Problem) -> OracleResult:
    """``L_i^* = 0`` for a noise-free problem whose truth solves it exactly (§5.1).

    Raises
    ------
    OracleInvalid
        If the truth does not attain ``L_i = 0`` within ``tau = 1e-8``: then ``0`` is a lower
        bound (``L >= 0``) but not a known minimum, and the problem is mislabelled.
    ValueError
        If the loss is negative somewhere at the truth.
    """
    problem = _check_problem(problem)
    L_truth = problem.loss(problem.truth.x)
    if np.any(L_truth < 0):
        raise ValueError("problem: a known-zero oracle needs a non-negative loss")
    bad = L_truth > TAU_ABS
    if np.any(bad):
        idx = np.flatnonzero(bad).tolist()
        raise OracleInvalid("truth", idx, L_truth[idx].tolist())
    return _result(np.zeros(problem.n), np.array(problem.truth.x, dtype=float), "known_zero",
                   truth_loss_max=float(L_truth.max()))


def global_minimum(problem: Problem, **options) -> OracleResult:
    """The §5.1 oracle the problem's hint calls for (grid, multistart or known zero).

    ``options`` go to :func:`grid_oracle` or :func:`multistart_oracle`.
    """
    problem = _check_problem(problem)
    method = problem.oracle_hint.method
    if method == "grid":
        return grid_oracle(problem, **options)
    if method == "multistart":
        return multistart_oracle(problem, **options)
    if method == "known_zero":
        if options:
            raise ValueError(f"options: the known-zero oracle takes none, got {sorted(options)}")
        return known_zero_oracle(problem)
    raise ValueError(f"problem: unknown oracle method {method!r}")


# --------------------------------------------------------------------------------------------
# validity


def oracle_violations(L_method, oracle: OracleResult) -> np.ndarray:
    """Indices of the examples with ``L_i^M < L_i^* - tau_i`` (an invalid oracle)."""
    L = _values("L_method", L_method, oracle.n)
    return np.flatnonzero(L < oracle.value - oracle.tau)


def check_oracle_valid(L_method, oracle: OracleResult, method: str = "method") -> None:
    """Raise :class:`OracleInvalid` unless ``L_i^M >= L_i^* - tau_i`` for every example."""
    idx = oracle_violations(L_method, oracle)
    if idx.size:
        L = np.asarray(L_method, dtype=float)
        raise OracleInvalid(method, idx.tolist(), (oracle.value[idx] - oracle.tau[idx] - L[idx]).tolist())


# --------------------------------------------------------------------------------------------
# §5.2 comparison metrics


@dataclasses.dataclass(frozen=True, eq=False)
class Comparison:
    """Per-example comparison of a method ``M`` against BFGS (§5.2).

    Attributes
    ----------
    win, loss, tie : numpy.ndarray
        ``(n,)`` bool: ``L^M < L^BFGS - tau``, ``L^M > L^BFGS + tau``, neither.
    """

    win: np.ndarray
    loss: np.ndarray
    tie: np.ndarray

    @property
    def n(self) -> int:
        """Number of examples."""
        return self.win.size

    @property
    def win_rate(self) -> float:
        """``w``."""
        return float(self.win.mean())

    @property
    def loss_rate(self) -> float:
        """``l``."""
        return float(self.loss.mean())

    @property
    def tie_rate(self) -> float:
        """``1 - w - l``."""
        return float(self.tie.mean())

    @property
    def decisive_win_rate(self) -> float | None:
        """``w / (w + l)``, or ``None`` when no example is decided (``w + l = 0``)."""
        k = int(self.win.sum() + self.loss.sum())
        return None if k == 0 else float(self.win.sum() / k)

    def rates(self) -> dict[str, float | None]:
        """``{"w", "l", "tie", "decisive"}``."""
        return {"w": self.win_rate, "l": self.loss_rate, "tie": self.tie_rate,
                "decisive": self.decisive_win_rate}


def compare_to_bfgs(L_method, L_bfgs, tau) -> Comparison:
    """Win / loss / tie of method ``M`` against BFGS per example (§5.2).

    Parameters
    ----------
    L_method, L_bfgs : array_like
        ``(n,)`` final losses.
    tau : array_like or OracleResult
        ``(n,)`` tolerances, or the oracle whose ``tau`` to use.
    """
    if isinstance(tau, OracleResult):
        tau = tau.tau
    LM = _values("L_method", L_method)
    LB = _values("L_bfgs", L_bfgs, LM.size)
    t = _values("tau", tau, LM.size)
    if np.any(t < 0):
        raise ValueError("tau: tolerances must be >= 0")
    win = LM < LB - t
    loss = LM > LB + t
    return Comparison(win=win, loss=loss, tie=~(win | loss))


def at_global_minimum(L_method, oracle: OracleResult) -> np.ndarray:
    """``(n,)`` bool: ``L_i^M <= L_i^* + tau_i`` (§5.2)."""
    L = _values("L_method", L_method, oracle.n)
    return L <= oracle.value + oracle.tau


def global_min_fraction(L_method, oracle: OracleResult) -> float:
    """``g_M``: the fraction of examples at the global minimum."""
    return float(at_global_minimum(L_method, oracle).mean())


def win_rate_cap(L_bfgs, oracle: OracleResult) -> float:
    """``1 - g_BFGS``: the exact upper bound on the win rate of any method (valid oracle, §5.2)."""
    return 1.0 - global_min_fraction(L_bfgs, oracle)


def log_suboptimality_ratio(L_method, L_bfgs, L_star) -> np.ndarray:
    """``q_i = log10((delta^M_i + 1e-10)/(delta^BFGS_i + 1e-10))``, ``delta = max(0, L - L^*)``."""
    if isinstance(L_star, OracleResult):
        L_star = L_star.value
    LM = _values("L_method", L_method)
    LB = _values("L_bfgs", L_bfgs, LM.size)
    Ls = _values("L_star", L_star, LM.size)
    dM = np.maximum(0.0, LM - Ls)
    dB = np.maximum(0.0, LB - Ls)
    return np.log10((dM + SUBOPT_FLOOR) / (dB + SUBOPT_FLOOR))


def log_loss_ratio(L_method, L_bfgs) -> np.ndarray:
    """``log10(L^M_i / L^BFGS_i)`` (§5.2), for benchmarks with ``L > 0``.

    Raises
    ------
    ValueError
        If any loss is ``<= 0`` (the ratio is then undefined; use the suboptimality ratio).
    """
    LM = _values("L_method", L_method)
    LB = _values("L_bfgs", L_bfgs, LM.size)
    if np.any(LM <= 0) or np.any(LB <= 0):
        raise ValueError("L_method, L_bfgs: the log loss ratio needs positive losses (§5.2)")
    return np.log10(LM / LB)


def mean_median(q) -> dict[str, float]:
    """``{"mean", "median"}`` of a per-example statistic (§5.2 reports both)."""
    arr = _values("q", q)
    return {"mean": float(arr.mean()), "median": float(np.median(arr))}
