"""The §3 BFGS baseline protocol of the JPO family (spec ``jpo.md`` §3, §2.4).

Every example is solved on its own by

``scipy.optimize.minimize(fun=L_i, x0=x_start, jac=grad_L_i, method='BFGS',
options={'gtol': 1e-8, 'maxiter': 1000, 'norm': inf, 'c1': 1e-4, 'c2': 0.9})``

with the hand-written gradient (never finite differences). ``x_start`` is the problem's fixed
default start ``x^(0)`` for the baseline (:func:`bfgs_baseline`) and ``x_i^JPO`` for the
refinement (:func:`bfgs_refine`). Per call the wrapper records ``x``, ``fun``, ``nit``, ``nfev``,
``njev``, ``status``, ``message`` and the wall time (advisory only), and then re-evaluates
``L_i(x)`` with the *vectorised* loss of all examples at once and checks

``|L_i(x) - fun| <= 1e-12 (1 + |fun|)``   (result consistency, §3)

raising :class:`BFGSInconsistency` (``check="raise"``, the default) or recording the outcome
(``check="flag"``, for the ``jpo.bfgs_result_consistency`` claim). ``status = 1`` (iteration cap)
and ``status = 2`` (line-search failure / precision loss) are normal outcomes; the returned ``x``
is used.

Speed. SciPy's BFGS is a Python loop, so ``n`` examples cost ``n`` calls of ``minimize``; with
``engine="scipy"`` each example gets pre-sliced one-example closures
(:meth:`dynamics.jpo_problems.Problem.example`): the vectorised kernel on views of that example's
data, no validation, the gradient memoised between ``fun`` and ``jac`` at the same point (one
kernel call per BFGS evaluation). What remains is SciPy's own per-call and per-iteration overhead
(:func:`overhead_profile` measures the split: ~88% at n = 256). The default ``engine="batch"``
(:mod:`dynamics.bfgs_batch`) removes it: the same algorithm, SciPy's line search ported to arrays,
all examples in lock step with one vectorised evaluation per round, and bitwise the same results.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Mapping
from types import MappingProxyType

import numpy as np
from scipy.optimize import OptimizeResult, minimize

from dynamics.errors import DivergenceError
from dynamics.jpo_problems import Problem

__all__ = [
    "BFGS_OPTIONS",
    "CONSISTENCY_RTOL",
    "BFGSInconsistency",
    "BFGSRun",
    "bfgs_baseline",
    "bfgs_refine",
    "bfgs_solve",
    "minimize_example",
    "overhead_profile",
]

BFGS_OPTIONS: Mapping[str, float] = MappingProxyType(
    {"gtol": 1e-8, "maxiter": 1000, "norm": np.inf, "c1": 1e-4, "c2": 0.9})
"""The §3 options, exactly."""
CONSISTENCY_RTOL = 1e-12
"""§3: ``|L_i(x) - fun| <= 1e-12 (1 + |fun|)``."""
_CHECKS = ("raise", "flag")
ENGINES = ("batch", "scipy")
"""``batch`` (default): :func:`dynamics.bfgs_batch.bfgs_solve_batch`, the same algorithm with all
examples in lock step, bitwise-identical results; ``scipy``: one ``scipy.optimize.minimize`` per
example, kept as the reference the batch engine is tested against."""


class BFGSInconsistency(AssertionError):
    """The value BFGS returned differs from ``L_i(x)`` re-evaluated at its ``x`` (§3).

    Attributes
    ----------
    indices : list of int
        The examples that failed.
    residuals : list of float
        Their ``|L_i(x) - fun| / (1 + |fun|)``.
    """

    def __init__(self, indices: list[int], residuals: list[float]):
        self.indices = indices
        self.residuals = residuals
        super().__init__(f"BFGS result inconsistent with L_i(x) at examples {indices[:10]}: relative "
                         f"residuals {[f'{r:.3g}' for r in residuals[:10]]} > {CONSISTENCY_RTOL}")


@dataclasses.dataclass(frozen=True, eq=False)
class BFGSRun:
    """The recorded outcome of one BFGS call per example.

    Attributes
    ----------
    start : numpy.ndarray
        ``(n, d)`` starts.
    x : numpy.ndarray
        ``(n, d)`` returned points.
    fun : numpy.ndarray
        ``(n,)`` returned values.
    nit, nfev, njev, status : numpy.ndarray
        ``(n,)`` integer counters and SciPy status codes.
    message : tuple of str
        SciPy's messages.
    seconds : numpy.ndarray
        ``(n,)`` wall time per call (advisory only, never gated).
    recheck : numpy.ndarray
        ``(n,)`` ``L_i(x)`` re-evaluated by the vectorised loss.
    residual : numpy.ndarray
        ``(n,)`` ``|recheck - fun| / (1 + |fun|)``.
    """

    start: np.ndarray
    x: np.ndarray
    fun: np.ndarray
    nit: np.ndarray
    nfev: np.ndarray
    njev: np.ndarray
    status: np.ndarray
    message: tuple[str, ...]
    seconds: np.ndarray
    recheck: np.ndarray
    residual: np.ndarray

    @property
    def n(self) -> int:
        """Number of examples."""
        return self.fun.size

    @property
    def consistent(self) -> np.ndarray:
        """``(n,)`` bool: the §3 result-consistency check passed."""
        return self.residual <= CONSISTENCY_RTOL

    def totals(self) -> dict[str, int]:
        """``nit``, ``nfev``, ``njev`` summed over examples (§5.4 work counters)."""
        return {"nit": int(self.nit.sum()), "nfev": int(self.nfev.sum()), "njev": int(self.njev.sum())}

    def summary(self) -> dict[str, float]:
        """Counters, status counts, the worst consistency residual and the total wall time."""
        out: dict[str, float] = dict(self.totals())
        for s in np.unique(self.status):
            out[f"status_{int(s)}"] = int(np.sum(self.status == s))
        out["max_residual"] = float(self.residual.max())
        out["seconds"] = float(self.seconds.sum())
        return out


def minimize_example(fun: Callable[[np.ndarray], float], jac: Callable[[np.ndarray], np.ndarray],
                     x_start: np.ndarray) -> OptimizeResult:
    """One §3 BFGS call.

    Parameters
    ----------
    fun, jac : callable
        ``L_i`` and its hand-written gradient, taking ``x`` of shape ``(d,)``.
    x_start : numpy.ndarray
        ``(d,)`` start.

    Returns
    -------
    scipy.optimize.OptimizeResult
        SciPy's result.
    """
    return minimize(fun, x_start, jac=jac, method="BFGS", options=dict(BFGS_OPTIONS))


def _check_starts(problem: Problem, starts) -> np.ndarray:
    if not isinstance(problem, Problem):
        raise ValueError(f"problem: expected a dynamics.jpo_problems.Problem, got {type(problem).__name__}")
    try:
        arr = np.asarray(starts, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"starts: expected a real (n, d) array, got {type(starts).__name__}") from exc
    if arr.shape != (problem.n, problem.d):
        raise ValueError(f"starts: expected shape (n, d) = ({problem.n}, {problem.d}), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("starts: contains non-finite entries (NaN or inf)")
    return arr


def bfgs_solve(problem: Problem, starts, *, check: str = "raise", engine: str = "batch") -> BFGSRun:
    """Run the §3 protocol on every example of ``problem`` from the given starts.

    Parameters
    ----------
    problem : Problem
    starts : array_like
        ``(n, d)`` start of each example.
    check : str
        ``"raise"``: raise :class:`BFGSInconsistency` if the re-evaluated loss disagrees with
        ``fun`` beyond ``1e-12 (1 + |fun|)``; ``"flag"``: only record it (``BFGSRun.residual``).
    engine : str
        ``"batch"`` (lock-step, one vectorised evaluation per round; 4-18x faster at n = 256) or
        ``"scipy"`` (one ``scipy.optimize.minimize`` per example). Both give identical results
        (``tests/test_bfgs_batch.py``).

    Returns
    -------
    BFGSRun

    Raises
    ------
    ValueError
        On a bad problem, starts of the wrong shape or non-finite starts, an unknown ``check`` or
        ``engine``.
    DivergenceError
        If BFGS returns a non-finite ``x`` or ``fun`` (the loss overflowed along the way).
    BFGSInconsistency
        See ``check``.
    """
    if check not in _CHECKS:
        raise ValueError(f"check: must be one of {list(_CHECKS)}, got {check!r}")
    if engine not in ENGINES:
        raise ValueError(f"engine: must be one of {list(ENGINES)}, got {engine!r}")
    if engine == "batch":
        from dynamics.bfgs_batch import bfgs_solve_batch  # lazy: bfgs_batch imports this module

        return bfgs_solve_batch(problem, starts, check=check)
    x_start = _check_starts(problem, starts)
    n, d = problem.n, problem.d
    x = np.empty((n, d))
    fun = np.empty(n)
    counters = np.empty((4, n), dtype=np.int64)
    seconds = np.empty(n)
    messages: list[str] = []
    opts = dict(BFGS_OPTIONS)
    with warnings.catch_warnings(), np.errstate(over="ignore", invalid="ignore"):
        # SciPy reports line-search trouble as LineSearchWarning (a RuntimeWarning); the protocol
        # records it through status/message instead. An overflowing loss becomes inf, which SciPy
        # handles (status 2) and which is turned into a DivergenceError below.
        warnings.filterwarnings("ignore", module=r"scipy\.optimize")
        for i in range(n):
            ex = problem.example(i)
            t0 = time.perf_counter()
            res = minimize(ex.fun, x_start[i], jac=ex.jac, method="BFGS", options=opts)
            seconds[i] = time.perf_counter() - t0
            x[i] = res.x
            fun[i] = res.fun
            counters[:, i] = (res.nit, res.nfev, res.njev, res.status)
            messages.append(str(res.message))
    return finish_run(problem, x_start, x, fun, counters[0], counters[1], counters[2], counters[3],
                      messages, seconds, check)


def finish_run(problem: Problem, x_start: np.ndarray, x: np.ndarray, fun: np.ndarray, nit, nfev, njev,
               status, messages, seconds: np.ndarray, check: str) -> BFGSRun:
    """The §3 bookkeeping shared by both engines: divergence, the vectorised re-evaluation
    ``L_i(x)`` and the result-consistency check.

    Raises
    ------
    DivergenceError
        If an example ended at a non-finite point or value.
    BFGSInconsistency
        If ``check == "raise"`` and a re-evaluated loss disagrees with ``fun``.
    """
    bad = ~(np.isfinite(fun) & np.all(np.isfinite(x), axis=1))
    if np.any(bad):
        idx = np.flatnonzero(bad).tolist()
        raise DivergenceError(int(nit[idx[0]]), "BFGS returned a non-finite point or value",
                              {"x": x[idx[0]].tolist(), "fun": float(fun[idx[0]])}, idx)
    recheck = problem.loss(x)
    residual = np.abs(recheck - fun) / (1.0 + np.abs(fun))
    run = BFGSRun(start=x_start, x=x, fun=fun, nit=nit, nfev=nfev, njev=njev, status=status,
                  message=tuple(messages), seconds=seconds, recheck=recheck, residual=residual)
    if check == "raise" and not np.all(run.consistent):
        idx = np.flatnonzero(~run.consistent).tolist()
        raise BFGSInconsistency(idx, residual[idx].tolist())
    return run


def bfgs_baseline(problem: Problem, *, check: str = "raise", engine: str = "batch") -> BFGSRun:
    """The baseline: BFGS from the fixed default start ``x^(0)`` of every example (§2.2)."""
    if not isinstance(problem, Problem):
        raise ValueError(f"problem: expected a dynamics.jpo_problems.Problem, got {type(problem).__name__}")
    return bfgs_solve(problem, problem.start(), check=check, engine=engine)


def bfgs_refine(problem: Problem, x_start, *, check: str = "raise", engine: str = "batch") -> BFGSRun:
    """The refinement ``x^{JPO+BFGS}_i = BFGS(L_i; x^JPO_i)`` (§2.4): same protocol, given starts."""
    return bfgs_solve(problem, x_start, check=check, engine=engine)


def overhead_profile(problem: Problem, starts=None) -> dict[str, float]:
    """Where the time of :func:`bfgs_solve` goes (advisory; for the issue-4 measurement).

    Returns
    -------
    dict
        ``total_s``: the BFGS run; ``kernel_s``: the same number of one-example kernel calls
        alone; ``vectorised_s``: one vectorised call per BFGS evaluation round (what a
        lock-step driver would pay for the kernels); plus ``nfev`` and ``n``.
    """
    starts = problem.start() if starts is None else starts
    run = bfgs_solve(problem, starts, check="flag")
    nfev = int(run.nfev.sum())
    ex = problem.example(0)
    x1 = np.asarray(starts, dtype=np.float64)[0]
    t0 = time.perf_counter()
    for _ in range(nfev):
        ex.fun(x1)
    kernel = time.perf_counter() - t0
    rounds = int(run.nfev.max())
    xs = np.asarray(starts, dtype=np.float64)
    t0 = time.perf_counter()
    for _ in range(rounds):
        problem.model._evaluate(xs, True)
    vec = time.perf_counter() - t0
    return {"n": problem.n, "nfev": nfev, "total_s": float(run.seconds.sum()), "kernel_s": kernel,
            "vectorised_s": vec}
