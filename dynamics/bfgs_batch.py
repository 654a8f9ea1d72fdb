"""Lock-step batched BFGS: SciPy's ``method='BFGS'`` for all examples at once (issue 4).

:func:`dynamics.bfgs_reference.bfgs_solve` runs the §3 protocol (spec ``jpo.md`` §3) as one
``scipy.optimize.minimize`` call per example; about 90% of its time is SciPy's own Python
overhead. This module runs the *same algorithm* for every example together: each example keeps its
own iterate, inverse-Hessian approximation (a stacked ``(n, d, d)`` array) and line-search state,
and each *round* makes ONE vectorised call of the loss and gradient on the examples that need an
evaluation. ``n`` examples then cost ``O(max nfev)`` vectorised kernel calls instead of
``O(sum nfev)`` scalar ones.

What is reproduced, operation by operation (SciPy 1.17 ``_minimize_bfgs``):

* the start: ``f(x0)``, ``g(x0)`` (``nfev = njev = 1``), ``old_old_fval = f + ||g||_2 / 2``, the
  loop ``while ||g||_inf > gtol and k < maxiter``, ``H_0 = I``;
* the line search ``_line_search_wolfe12``: ``line_search_wolfe1`` (MINPACK ``dcsrch``/``dcstep``,
  SciPy's Python port ``_dcsrch.DCSRCH``, with ``amin = 1e-100``, ``amax = 1e100``,
  ``xtol = 1e-14`` and at most 100 iterations), its initial step
  ``alpha1 = min(1, 1.01 * 2 (phi0 - old_phi0) / derphi0)`` (1 if negative), ported here to arrays
  with one task per example; when it fails (``WARNING``/``ERROR`` task, non-finite step, 100
  iterations) the example falls back, alone, to SciPy's own ``line_search_wolfe2``
  (:func:`scipy.optimize.line_search`) run on scalar closures of that example -- it is rare (a few
  per cent of the examples, typically once, at the end of a run) and is thereby exact;
* the step, ``gtol`` test with ``norm = inf``, the ``xrtol`` (= 0) test, the ``isfinite(fval)``
  test, the BFGS update with ``rhok = 1000`` when ``y.s == 0``, status codes 0/1/2/3 and SciPy's
  messages;
* SciPy's evaluation counters: ``ScalarFunction`` memoises the last point, so a trial point that
  equals the last evaluated one bitwise costs no ``nfev``/``njev``; that cache is emulated per
  example.

Bitwise parity with the reference needs every floating-point operation in the same order: the
scalar ``**2`` of ``dcstep`` is C ``pow`` (which differs from ``x * x`` in the last bit for about
0.1% of arguments), reproduced by :func:`numpy.float_power`; the small matrix products of the
update go through the same BLAS calls (stacked :func:`numpy.matmul` equals ``numpy.dot`` per
matrix bitwise, checked in the tests); ``numpy.dot`` of two length-``d`` vectors is summed left to
right. What cannot be matched from here is the *kernel*: the reference evaluates example ``i``
with a one-row model, this driver with an ``m``-row one, and a model whose reduction order
depends on the number of rows gives last-bit differences. Wave packet, billiards and logistic are
row-count independent; the ripple model's ``sin(arg) @ coef`` is not (BLAS ``dgemv`` on ``m > 1``
rows sums differently from the one-row dot), so on ripple a 1-ulp difference in ``L`` can flip a
line-search comparison. ``kernel="per_row"`` (the default) removes that: it evaluates every row
exactly as the one-row kernel would (see :func:`bfgs_solve_batch`). With it the driver reproduces
the reference bit for bit -- status, nit, nfev, njev, message, x and fun of every example -- on
all four problems (``tests/test_bfgs_batch.py``).

Speed. Each round costs one kernel call plus one dcsrch step per active example. The vectorised
port of that step costs ~0.3 ms per call whatever the number of examples (some 150 small numpy
operations), SciPy's own ``DCSRCH._iterate`` ~4 us per example, so rounds with fewer than
:data:`_SCALAR_BELOW` active examples -- the long tail, where a few slow examples keep the batch
going for ~100 rounds -- step SciPy's class on each example (same state, same values; both paths
are tested against the reference on their own). What remains is that tail and the scalar wolfe2
fallbacks; ``benchmarks/bench_jpo.py`` measures the speedup over the reference (4-18x at
``n = 256`` on the four problems).

Entry point: :func:`bfgs_solve_batch` (what ``dynamics.bfgs_reference.bfgs_solve(...,
engine="batch")``, the default, calls) returns the same :class:`~dynamics.bfgs_reference.BFGSRun`
through the same §3 bookkeeping (:func:`~dynamics.bfgs_reference.finish_run`);
:func:`bfgs_batch_detail` also returns the driver's work counters (rounds, kernel calls, wolfe2
fallbacks).
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable

import numpy as np
from scipy.optimize import line_search as _line_search_wolfe2
from scipy.optimize._optimize import _status_message

try:  # SciPy >= 1.11: MINPACK's dcsrch as a Python class; stepped directly for small active sets
    from scipy.optimize._dcsrch import DCSRCH as _DCSRCH
except ImportError:  # pragma: no cover - older SciPy: the vectorised port does every step
    _DCSRCH = None

from dynamics.bfgs_reference import BFGS_OPTIONS, BFGSRun, _check_starts, finish_run
from dynamics.jpo_problems import (
    RIPPLE_OMEGAS,
    BilliardsModel,
    ForwardModel,
    LogisticModel,
    Problem,
    RippleModel,
    WaveModel,
)

__all__ = [
    "KERNELS",
    "BatchDetail",
    "bfgs_batch_detail",
    "bfgs_solve_batch",
]

KERNELS = ("batched", "per_row")
"""``batched``: the model's vectorised kernel on the active rows; ``per_row``: a kernel whose
result for each row is bitwise the one-row result of the reference (see :func:`bfgs_solve_batch`)."""
_CHECKS = ("raise", "flag")

# MINPACK dcsrch constants as _minimize_bfgs -> _line_search_wolfe12 -> line_search_wolfe1 set them.
_STPMIN = 1e-100
_STPMAX = 1e100
_XTOL = 1e-14
_LS_MAXITER = 100
_XRTOL = 0.0
_ALPHA_FACTOR = 1.01 * 2      # SciPy writes 1.01*2*(phi0 - old_phi0)/derphi0, left to right

# Task codes of one dcsrch call.
_FG, _CONV, _WARN = 0, 1, 2

# Rows of the packed line-search state (one gather/scatter per round instead of one per field).
(_STP, _STAGE, _BRACKT, _FINIT, _GINIT, _GTEST, _WIDTH, _WIDTH1, _STX, _FX, _GX, _STY, _FY, _GY,
 _STMIN, _STMAX) = range(16)
_NLS = 16
_SCALAR_BELOW = 48
"""Active line searches below which each dcsrch step is SciPy's own ``DCSRCH._iterate`` on numpy
scalars (~4 us per example) rather than the vectorised port (~300 us per call at any size up to a
few hundred examples): the long tail of a batch has only a few examples left."""


@dataclasses.dataclass(frozen=True, eq=False)
class BatchDetail:
    """A batched run and the driver's own work counters.

    Attributes
    ----------
    run : BFGSRun
        The per-example outcome (as :func:`dynamics.bfgs_reference.bfgs_solve` records it).
    rounds : int
        Lock-step evaluation rounds (vectorised kernel calls of the line searches).
    kernel_rows : int
        Rows the kernel evaluated: the start, the rounds and the fallbacks (memoised points
        excluded). It equals ``run.nfev.sum()``: the batch evaluates nothing SciPy would not.
    fallback : numpy.ndarray
        ``(n,)`` number of line searches of each example that fell back to SciPy's
        ``line_search_wolfe2`` (``line_search_wolfe1`` failed).
    fallback_evaluations : int
        Scalar kernel calls made inside those fallbacks.
    seconds : float
        Wall time of the whole batch.
    """

    run: BFGSRun
    rounds: int
    kernel_rows: int
    fallback: np.ndarray
    fallback_evaluations: int
    seconds: float

    def summary(self) -> dict[str, float]:
        """The counters as a flat dict (for benchmark ``extra_info`` and reports)."""
        return {"rounds": self.rounds, "kernel_rows": self.kernel_rows,
                "fallback_line_searches": int(self.fallback.sum()),
                "fallback_examples": int(np.count_nonzero(self.fallback)),
                "fallback_evaluations": self.fallback_evaluations, "seconds": self.seconds}


# --------------------------------------------------------------------------------------------
# small exact helpers


def _pow2(v: np.ndarray) -> np.ndarray:
    # SciPy's dcstep squares numpy scalars with ``**``, i.e. C pow(v, 2.0); ndarray ** 2 is v * v,
    # which differs in the last bit for ~0.1% of arguments. float_power calls pow elementwise.
    return np.float_power(v, 2.0)


def _pymax(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Python's ``max(a, b)``: ``b`` only if ``b > a`` (so a NaN ``b`` loses, a NaN ``a`` wins)."""
    return np.where(b > a, b, a)


def _pymin(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Python's ``min(a, b)``."""
    return np.where(b < a, b, a)


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``numpy.dot(a[i], b[i])`` for every row, summed left to right.

    That is what OpenBLAS ``ddot`` does for the short vectors here (checked bitwise in the tests
    for ``d = 2``; the BFGS runs agree bitwise for ``d`` up to 5).
    """
    prod = a * b
    out = prod[:, 0].copy()
    for j in range(1, prod.shape[1]):
        out += prod[:, j]
    return out


# --------------------------------------------------------------------------------------------
# MINPACK dcstep / dcsrch on arrays (port of scipy.optimize._dcsrch, one example per entry)


def _dcstep(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax):
    """Vectorised ``scipy.optimize._dcsrch.dcstep``: every case computed, the right one selected."""
    sgnd = np.sign(dp) * np.sign(dx)
    case1 = fp > fx
    case2 = ~case1 & (sgnd < 0.0)
    case3 = ~case1 & ~case2 & (np.abs(dp) < np.abs(dx))

    # Cases 1-3 share the cubic through (stx, fx, dx) and (stp, fp, dp).
    theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
    s = _pymax(_pymax(np.abs(theta), np.abs(dx)), np.abs(dp))
    rad = _pow2(theta / s) - (dx / s) * (dp / s)
    gam = s * np.sqrt(rad)
    secant = stp + (dp / (dp - dx)) * (stx - stp)

    # case 1: higher function value, the minimum is bracketed
    g1 = np.where(stp < stx, -gam, gam)
    r1 = ((g1 - dx) + theta) / (((g1 - dx) + g1) + dp)
    stpc1 = stx + r1 * (stp - stx)
    stpq1 = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
    stpf1 = np.where(np.abs(stpc1 - stx) <= np.abs(stpq1 - stx), stpc1, stpc1 + (stpq1 - stpc1) / 2.0)

    # case 2: lower value, derivatives of opposite sign
    g2 = np.where(stp > stx, -gam, gam)
    r2 = ((g2 - dp) + theta) / (((g2 - dp) + g2) + dx)
    stpc2 = stp + r2 * (stx - stp)
    stpf2 = np.where(np.abs(stpc2 - stp) > np.abs(secant - stp), stpc2, secant)

    # case 3: lower value, same sign, |derivative| decreases
    g3 = s * np.sqrt(np.where(rad > 0, rad, 0.0))
    g3 = np.where(stp > stx, -g3, g3)
    r3 = ((g3 - dp) + theta) / ((g3 + (dx - dp)) + g3)
    stpc3 = np.where((r3 < 0) & (g3 != 0), stp + r3 * (stx - stp), np.where(stp > stx, stpmax, stpmin))
    closer = np.where(np.abs(stpc3 - stp) < np.abs(secant - stp), stpc3, secant)
    lim = stp + 0.66 * (sty - stp)
    stpf3_b = np.where(stp > stx, _pymin(lim, closer), _pymax(lim, closer))
    farther = np.where(np.abs(stpc3 - stp) > np.abs(secant - stp), stpc3, secant)
    stpf3_u = np.clip(farther, stpmin, stpmax)
    stpf3 = np.where(brackt, stpf3_b, stpf3_u)

    # case 4: lower value, same sign, |derivative| does not decrease
    theta4 = 3.0 * (fp - fy) / (sty - stp) + dy + dp
    s4 = _pymax(_pymax(np.abs(theta4), np.abs(dy)), np.abs(dp))
    g4 = s4 * np.sqrt(_pow2(theta4 / s4) - (dy / s4) * (dp / s4))
    g4 = np.where(stp > sty, -g4, g4)
    r4 = ((g4 - dp) + theta4) / (((g4 - dp) + g4) + dy)
    stpf4 = np.where(brackt, stp + r4 * (sty - stp), np.where(stp > stx, stpmax, stpmin))

    stpf = np.where(case1, stpf1, np.where(case2, stpf2, np.where(case3, stpf3, stpf4)))

    # Update the interval which contains a minimiser.
    swap = ~case1 & (sgnd < 0)
    n_sty = np.where(case1, stp, np.where(swap, stx, sty))
    n_fy = np.where(case1, fp, np.where(swap, fx, fy))
    n_dy = np.where(case1, dp, np.where(swap, dx, dy))
    n_stx = np.where(case1, stx, stp)
    n_fx = np.where(case1, fx, fp)
    n_dx = np.where(case1, dx, dp)
    n_brackt = brackt | case1 | case2
    return n_stx, n_fx, n_dx, n_sty, n_fy, n_dy, stpf, n_brackt


def _dcsrch_start(alpha1: np.ndarray, phi0: np.ndarray, derphi0: np.ndarray, c1: float) -> np.ndarray:
    """The ``task = 'START'`` call of ``DCSRCH._iterate``: the packed ``(16, m)`` initial state."""
    S = np.empty((_NLS, alpha1.size))
    S[_STP] = alpha1
    S[_STAGE] = 1.0
    S[_BRACKT] = 0.0
    S[_FINIT] = phi0
    S[_GINIT] = derphi0
    S[_GTEST] = c1 * derphi0
    S[_WIDTH] = _STPMAX - _STPMIN
    S[_WIDTH1] = (_STPMAX - _STPMIN) / 0.5
    S[_STX] = 0.0
    S[_FX] = phi0
    S[_GX] = derphi0
    S[_STY] = 0.0
    S[_FY] = phi0
    S[_GY] = derphi0
    S[_STMIN] = 0.0
    S[_STMAX] = alpha1 + 4.0 * alpha1
    return S


def _dcsrch_iterate(S: np.ndarray, f: np.ndarray, g: np.ndarray, c2: float) -> tuple[np.ndarray, np.ndarray]:
    """One non-START call of ``DCSRCH._iterate`` for every column of the packed state ``S``.

    ``f``, ``g``: ``phi`` and ``phi'`` at ``S[_STP]``. Returns ``(task, S_new)``; ``S_new`` is
    meaningful only where ``task == _FG`` (its ``_STP`` row is the next trial step). A CONV or
    WARN task ends the search at the *input* step.
    """
    stp, stage, finit, ginit, gtest = S[_STP], S[_STAGE], S[_FINIT], S[_GINIT], S[_GTEST]
    width, width1 = S[_WIDTH], S[_WIDTH1]
    stx, fx, gx, sty, fy, gy, stmin, stmax = (S[_STX], S[_FX], S[_GX], S[_STY], S[_FY], S[_GY],
                                              S[_STMIN], S[_STMAX])
    brackt = S[_BRACKT] != 0.0
    ftest = finit + stp * gtest
    stage = np.where((stage == 1.0) & (f <= ftest) & (g >= 0), 2.0, stage)
    warn = ((brackt & ((stp <= stmin) | (stp >= stmax)))
            | (brackt & (stmax - stmin <= _XTOL * stmax))
            | ((stp == _STPMAX) & (f <= ftest) & (g <= gtest))
            | ((stp == _STPMIN) & ((f > ftest) | (g >= gtest))))
    conv = (f <= ftest) & (np.abs(g) <= c2 * -ginit)
    task = np.where(conv, _CONV, np.where(warn, _WARN, _FG))

    # Stage 1 with a lower but not sufficiently lower value: dcstep on the modified function
    # psi(stp) = f(stp) - f(0) - ftol stp f'(0), then back to f.
    mod = (stage == 1.0) & (f <= fx) & (f > ftest)
    a_fx = np.where(mod, fx - stx * gtest, fx)
    a_gx = np.where(mod, gx - gtest, gx)
    a_fy = np.where(mod, fy - sty * gtest, fy)
    a_gy = np.where(mod, gy - gtest, gy)
    a_f = np.where(mod, f - stp * gtest, f)
    a_g = np.where(mod, g - gtest, g)
    stx, fx, gx, sty, fy, gy, stp, brackt = _dcstep(stx, a_fx, a_gx, sty, a_fy, a_gy, stp, a_f, a_g,
                                                    brackt, stmin, stmax)
    fx = np.where(mod, fx + stx * gtest, fx)
    fy = np.where(mod, fy + sty * gtest, fy)
    gx = np.where(mod, gx + gtest, gx)
    gy = np.where(mod, gy + gtest, gy)

    # Bisection if the interval did not shrink enough, then the step bounds.
    span = np.abs(sty - stx)
    stp = np.where(brackt & (span >= 0.66 * width1), stx + 0.5 * (sty - stx), stp)
    width1 = np.where(brackt, width, width1)
    width = np.where(brackt, span, width)
    stmin = np.where(brackt, _pymin(stx, sty), stp + 1.1 * (stp - stx))
    stmax = np.where(brackt, _pymax(stx, sty), stp + 4.0 * (stp - stx))
    stp = np.clip(stp, _STPMIN, _STPMAX)
    stuck = brackt & (((stp <= stmin) | (stp >= stmax)) | (stmax - stmin <= _XTOL * stmax))
    stp = np.where(stuck, stx, stp)
    S_new = np.stack([stp, stage, brackt.astype(np.float64), finit, ginit, gtest, width, width1,
                      stx, fx, gx, sty, fy, gy, stmin, stmax])
    return task, S_new


def _dcsrch_iterate_scalar(S: np.ndarray, f: np.ndarray, g: np.ndarray, c1: float,
                           c2: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_dcsrch_iterate` by SciPy's ``DCSRCH._iterate``, one example at a time."""
    m = S.shape[1]
    task = np.empty(m, dtype=np.int64)
    S_new = S.copy()
    for j in range(m):
        col = S[:, j]
        o = _DCSRCH(None, None, c1, c2, _XTOL, _STPMIN, _STPMAX)
        # Iterating a float64 array yields numpy scalars, the types SciPy's own run carries.
        (_, _, _, o.finit, o.ginit, o.gtest, o.width, o.width1, o.stx, o.fx, o.gx, o.sty, o.fy, o.gy,
         o.stmin, o.stmax) = col
        o.stage = 1 if col[_STAGE] == 1.0 else 2
        o.brackt = bool(col[_BRACKT])
        stp, _, _, t = o._iterate(col[_STP], f[j], g[j], b"FG")
        task[j] = _FG if t[:2] == b"FG" else (_CONV if t[:4] == b"CONV" else _WARN)
        S_new[:, j] = (stp, o.stage, o.brackt, o.finit, o.ginit, o.gtest, o.width, o.width1, o.stx,
                       o.fx, o.gx, o.sty, o.fy, o.gy, o.stmin, o.stmax)
    return task, S_new


# --------------------------------------------------------------------------------------------
# kernels


def _ripple_rows(model: RippleModel, idx: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # RippleModel._evaluate forms sum_k coef_k sin(arg_k) with ``@``: BLAS dgemv for m > 1 rows, a
    # dot (summed left to right) for the one-row model of the reference. Same formula, one-row
    # summation order, any number of rows. Verified against the one-row kernel before use.
    arg = x * RIPPLE_OMEGAS + model.phases[idx]
    r = x[:, 0] - model.y[idx]
    prod = np.sin(arg) * model._coef
    acc = prod[:, 0].copy()
    for k in range(1, prod.shape[1]):
        acc += prod[:, k]
    L = r * r + acc
    g = 2.0 * r + model.amp * np.cos(arg).sum(axis=1)
    return L, g[:, None]


_ROW_INDEPENDENT = (WaveModel, BilliardsModel, LogisticModel)
"""Models whose ``_evaluate`` gives every row the same bits whatever the number of rows: only
elementwise operations and numpy reductions along a row (no BLAS, whose blocking depends on the
matrix shape). Still probed before use."""
_PROBE_ROWS = 16


class _Kernel:
    """Loss and gradient of the rows ``idx`` at ``x`` (``(m, d)``), unvalidated, as float64 arrays.

    ``mode="batched"``: ``model._rows(idx)._evaluate`` (the sub-model is cached while the active
    set does not change). ``mode="per_row"``: bitwise the reference's one-row result for every
    row: the batched kernel for the models of :data:`_ROW_INDEPENDENT`, the ripple re-summation
    for :class:`RippleModel`, one one-row call per row for any other model or if the probe of
    the chosen path fails. ``impl`` names the path taken.
    """

    def __init__(self, model: ForwardModel, mode: str, probe_x: np.ndarray):
        self.model = model
        self.rows = 0
        self._idx: np.ndarray | None = None
        self._sub: ForwardModel | None = None
        self._one: dict[int, ForwardModel] = {}
        if mode == "batched":
            self.impl = "batched"
            return
        # Exact types: a subclass may evaluate differently.
        if type(model) is RippleModel:
            self.impl = "ripple_rows"
        elif type(model) in _ROW_INDEPENDENT:
            self.impl = "batched"
        else:
            self.impl = "row_loop"
            return
        if not self._row_exact(probe_x):
            self.impl = "row_loop"

    def _row_exact(self, probe_x: np.ndarray) -> bool:
        # Not a proof, a tripwire for a platform where the assumption fails (another BLAS
        # summing the one-row dot differently, say): the full batch, the probed rows alone and
        # their first half, each against one-row calls. A row-count-dependent reduction shows on
        # most points (ripple with @: ~60%), so 16 rows leave it no chance to pass unnoticed.
        n = self.model.n
        idx = np.unique(np.linspace(0, n - 1, min(n, _PROBE_ROWS)).astype(np.intp))
        batches = [(np.arange(n), idx), (idx, np.arange(idx.size)),
                   (idx[: max(1, idx.size // 2)], np.arange(max(1, idx.size // 2)))]
        one = [self._one_row(i, probe_x[i:i + 1]) for i in idx]
        for rows, pick in batches:
            L, g = self(rows, probe_x[rows], count=False)
            for j, row in enumerate(pick.tolist()):
                Li, gi = one[j]
                if Li[0] != L[row] or not np.array_equal(gi[0], g[row]):
                    return False
        return True

    def _one_row(self, i: int, x: np.ndarray):
        sub = self._one.get(i)
        if sub is None:
            sub = self._one[i] = self.model._rows(slice(i, i + 1))
        return sub._evaluate(x, True)

    def __call__(self, idx: np.ndarray, x: np.ndarray, *, count: bool = True):
        if count:
            self.rows += idx.size
        if idx.size == 1:
            # One row: the cached one-row model is the reference's kernel itself (in every mode), the
            # cheapest call (every fallback evaluation and most tail rounds).
            L, g = self._one_row(int(idx[0]), x)
        elif self.impl == "ripple_rows":
            L, g = _ripple_rows(self.model, idx, x)
        elif self.impl == "row_loop":
            L = np.empty(idx.size)
            g = np.empty((idx.size, self.model.d))
            for j, i in enumerate(idx.tolist()):
                Lj, gj = self._one_row(i, x[j:j + 1])
                L[j], g[j] = Lj[0], gj[0]
        else:
            L, g = self._submodel(idx)._evaluate(x, True)
        return np.asarray(L, dtype=np.float64), np.asarray(g, dtype=np.float64)

    def _submodel(self, idx: np.ndarray) -> ForwardModel:
        if idx.size == self.model.n:
            return self.model
        if self._idx is None or self._idx.size != idx.size or not np.array_equal(self._idx, idx):
            self._idx = idx.copy()
            self._sub = self.model._rows(idx)
        return self._sub


# --------------------------------------------------------------------------------------------
# the lock-step driver


class _Engine:
    """All examples of one batched BFGS run; see the module docstring for the protocol."""

    def __init__(self, kernel: _Kernel, x0: np.ndarray, gtol: float, maxiter: int, c1: float,
                 c2: float):
        self.kernel = kernel
        self.gtol, self.maxiter, self.c1, self.c2 = gtol, maxiter, c1, c2
        n, d = x0.shape
        self.n, self.d = n, d
        self.eye = np.eye(d)
        f, g = kernel(np.arange(n), x0)
        self.x = x0.copy()
        self.f = f.copy()
        self.g = g.copy()
        # ScalarFunction evaluates f and g at x0 in its constructor (nfev = njev = 1) and then
        # memoises the last point; the cache is (last_x, last_f, last_g) with validity flags.
        self.nfev = np.ones(n, dtype=np.int64)
        self.njev = np.ones(n, dtype=np.int64)
        self.last_x = x0.copy()
        self.last_f = f.copy()
        self.last_g = g.copy()
        self.fvalid = np.ones(n, dtype=bool)
        self.gvalid = np.ones(n, dtype=bool)
        self.f_old = f + np.sqrt(_rowdot(g, g)) / 2          # old_old_fval: "dx ~ 1"
        self.H = np.tile(self.eye, (n, 1, 1))
        self.pk = np.zeros((n, d))
        self.k = np.zeros(n, dtype=np.int64)
        self.warn2 = np.zeros(n, dtype=bool)
        self.need = np.zeros(n, dtype=bool)             # waiting for phi, phi' at x + stp pk
        self.ls = np.zeros((_NLS, n))
        self.ls_iter = np.zeros(n, dtype=np.int64)
        self.fallback = np.zeros(n, dtype=np.int64)
        self.fallback_evaluations = 0
        self.rounds = 0
        gnorm = np.max(np.abs(g), axis=1)
        go = (gnorm > gtol) & (maxiter > 0)
        self._advance(np.flatnonzero(go))

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> None:
        while True:
            E = np.flatnonzero(self.need)
            if E.size == 0:
                return
            self._round(E)

    def _advance(self, B: np.ndarray) -> None:
        # B: examples at the top of a BFGS iteration. Starting the line search may fail at once
        # (dcsrch ERROR); those fall back to wolfe2, whose successes finish their iteration and
        # come back here for the next one.
        while B.size:
            B = self._fallback(self._begin(B))

    def _begin(self, B: np.ndarray) -> np.ndarray:
        """``pk = -H g``, ``alpha1`` and dcsrch START; returns the examples whose START failed."""
        g = self.g[B]
        pk = -(self.H[B] @ g[:, :, None])[:, :, 0]
        self.pk[B] = pk
        d0 = _rowdot(g, pk)
        cand = _ALPHA_FACTOR * (self.f[B] - self.f_old[B]) / d0
        alpha1 = np.where((d0 != 0) & (cand < 1.0), cand, 1.0)            # min(1.0, cand)
        alpha1 = np.where(alpha1 < 0, 1.0, alpha1)
        err = (alpha1 < _STPMIN) | (alpha1 > _STPMAX) | (d0 >= 0) | ~np.isfinite(alpha1)
        ok = B[~err]
        if ok.size:
            self.ls[:, ok] = _dcsrch_start(alpha1[~err], self.f[ok], d0[~err], self.c1)
            self.ls_iter[ok] = 1
            self.need[ok] = True
        return B[err]

    def _round(self, E: np.ndarray) -> None:
        """One vectorised evaluation at the pending trial steps, then one dcsrch step each."""
        self.rounds += 1
        pk = self.pk[E]
        S = self.ls[:, E]
        X = self.x[E] + S[_STP][:, None] * pk
        self._evaluate(E, X)
        fE = self.last_f[E]
        gE = self.last_g[E]
        dE = _rowdot(gE, pk)
        if E.size < _SCALAR_BELOW and _DCSRCH is not None:
            task, S_new = _dcsrch_iterate_scalar(S, fE, dE, self.c1, self.c2)
        else:
            task, S_new = _dcsrch_iterate(S, fE, dE, self.c2)
        task = np.where(self.ls_iter[E] >= _LS_MAXITER, _WARN, task)
        task = np.where((task == _FG) & ~np.isfinite(S_new[_STP]), _WARN, task)
        fg = task == _FG
        if fg.any():
            idx = E[fg]
            self.ls[:, idx] = S_new[:, fg]
            self.ls_iter[idx] += 1
        stop = ~fg
        self.need[E[stop]] = False
        conv = task == _CONV
        cont = self._finish(E[conv], S[_STP][conv], fE[conv], gE[conv]) if conv.any() else E[:0]
        warn = task == _WARN
        if warn.any():
            cont = np.concatenate([cont, self._fallback(E[warn])])
        self._advance(cont)

    def _evaluate(self, E: np.ndarray, X: np.ndarray) -> None:
        # phi then phi' at the same point, as line_search_wolfe1 calls them: a point equal to the
        # memoised one costs nothing, a new one costs one nfev and one njev.
        same = np.all(X == self.last_x[E], axis=1)
        if not same.all():
            new = ~same
            idx = E[new]
            L, G = self.kernel(idx, X[new])
            self.last_x[idx] = X[new]
            self.last_f[idx] = L
            self.last_g[idx] = G
        self.nfev[E] += ~(same & self.fvalid[E])
        self.njev[E] += ~(same & self.gvalid[E])
        self.fvalid[E] = True
        self.gvalid[E] = True

    def _finish(self, C: np.ndarray, alpha: np.ndarray, fnew: np.ndarray, gnew: np.ndarray) -> np.ndarray:
        """Accept the steps, test convergence, update ``H``; returns the examples that go on."""
        if C.size == 0:
            return C
        pk = self.pk[C]
        sk = alpha[:, None] * pk
        xn = self.x[C] + sk
        yk = gnew - self.g[C]
        self.f_old[C] = self.f[C]
        self.f[C] = fnew
        self.x[C] = xn
        self.g[C] = gnew
        self.k[C] += 1
        gnorm = np.max(np.abs(gnew), axis=1)
        small = gnorm <= self.gtol
        # SciPy's xrtol test, vecnorm(v) = sum(|v|^2) ** 0.5 (scalar pow); xrtol = 0.
        tiny = alpha * np.float_power(_rowdot(pk, pk), 0.5) <= _XRTOL * (
            _XRTOL + np.float_power(_rowdot(xn, xn), 0.5))
        tiny &= ~small
        bad = ~small & ~tiny & ~np.isfinite(fnew)
        self.warn2[C[bad]] = True
        upd = ~small & ~tiny & ~bad
        if upd.any():
            U = C[upd]
            s, y = sk[upd], yk[upd]
            rinv = _rowdot(y, s)
            rho = np.where(rinv == 0.0, 1000.0, 1.0 / np.where(rinv == 0.0, 1.0, rinv))
            r3 = rho[:, None, None]
            A1 = self.eye - s[:, :, None] * y[:, None, :] * r3
            A2 = self.eye - y[:, :, None] * s[:, None, :] * r3
            self.H[U] = A1 @ (self.H[U] @ A2) + r3 * s[:, :, None] * s[:, None, :]
        go = upd & (gnorm > self.gtol) & (self.k[C] < self.maxiter)
        return C[go]

    def _fallback(self, F: np.ndarray) -> np.ndarray:
        """SciPy's ``line_search_wolfe2`` for each example of ``F`` alone; returns those that go on."""
        if F.size == 0:
            return F
        done_i, alphas, fs, gs = [], [], [], []
        for i in F.tolist():
            self.fallback[i] += 1
            fun, grad = self._closures(i)
            xk, pk = self.x[i].copy(), self.pk[i].copy()
            with warnings.catch_warnings():
                # LineSearchWarning (a RuntimeWarning) and rounding warnings are outcomes here,
                # as in _line_search_wolfe12 and bfgs_reference.bfgs_solve.
                warnings.simplefilter("ignore")
                alpha, _, _, fval, _, gval = _line_search_wolfe2(
                    fun, grad, xk, pk, self.g[i].copy(), float(self.f[i]), float(self.f_old[i]),
                    c1=self.c1, c2=self.c2, amax=_STPMAX)
            if alpha is None:
                self.warn2[i] = True
                continue
            if gval is None:                       # wolfe2 hit its iteration cap: BFGS asks for g
                gval = grad(xk + alpha * pk)
            done_i.append(i)
            alphas.append(alpha)
            fs.append(fval)
            gs.append(np.asarray(gval, dtype=np.float64))
        if not done_i:
            return F[:0]
        return self._finish(np.asarray(done_i, dtype=np.intp), np.asarray(alphas, dtype=np.float64),
                            np.asarray(fs, dtype=np.float64), np.stack(gs))

    def _closures(self, i: int) -> tuple[Callable, Callable]:
        # Scalar f and g of example i behind the same emulated ScalarFunction memo.
        one = np.array([i], dtype=np.intp)

        def move(xv: np.ndarray) -> None:
            if not np.array_equal(xv, self.last_x[i]):
                L, G = self.kernel(one, np.reshape(np.asarray(xv, dtype=np.float64), (1, self.d)))
                self.fallback_evaluations += 1
                self.last_x[i] = xv
                self.last_f[i] = L[0]
                self.last_g[i] = G[0]
                self.fvalid[i] = False
                self.gvalid[i] = False

        def fun(xv: np.ndarray) -> float:
            move(xv)
            if not self.fvalid[i]:
                self.nfev[i] += 1
                self.fvalid[i] = True
            return float(self.last_f[i])

        def grad(xv: np.ndarray) -> np.ndarray:
            move(xv)
            if not self.gvalid[i]:
                self.njev[i] += 1
                self.gvalid[i] = True
            return self.last_g[i].copy()

        return fun, grad

    # -- the result -----------------------------------------------------------------------------
    def outcome(self) -> tuple[np.ndarray, list[str]]:
        """SciPy's status (0/1/2/3) and message per example."""
        gnorm = np.max(np.abs(self.g), axis=1)
        nan = np.isnan(gnorm) | np.isnan(self.f) | np.any(np.isnan(self.x), axis=1)
        status = np.where(self.warn2, 2, np.where(self.k >= self.maxiter, 1, np.where(nan, 3, 0)))
        keys = {0: "success", 1: "maxiter", 2: "pr_loss", 3: "nan"}
        return status.astype(np.int64), [_status_message[keys[int(s)]] for s in status]


# --------------------------------------------------------------------------------------------
# public API


def _check_options(gtol, maxiter, c1, c2, check, kernel) -> tuple[float, int, float, float]:
    if check not in _CHECKS:
        raise ValueError(f"check: must be one of {list(_CHECKS)}, got {check!r}")
    if kernel not in KERNELS:
        raise ValueError(f"kernel: must be one of {list(KERNELS)}, got {kernel!r}")
    for name, v in (("gtol", gtol), ("c1", c1), ("c2", c2)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(v)):
            raise ValueError(f"{name}: expected a finite real number, got {v!r}")
    if float(gtol) < 0:
        raise ValueError(f"gtol: must be >= 0, got {gtol}")
    if not 0.0 < float(c1) < float(c2) < 1.0:
        raise ValueError(f"c1, c2: must satisfy 0 < c1 < c2 < 1, got c1 = {c1}, c2 = {c2}")
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 0:
        raise ValueError(f"maxiter: expected an integer >= 0, got {maxiter!r}")
    return float(gtol), int(maxiter), float(c1), float(c2)


def bfgs_batch_detail(problem: Problem, starts, *, gtol: float = BFGS_OPTIONS["gtol"],
                      maxiter: int = BFGS_OPTIONS["maxiter"], c1: float = BFGS_OPTIONS["c1"],
                      c2: float = BFGS_OPTIONS["c2"], check: str = "raise",
                      kernel: str = "per_row") -> BatchDetail:
    """:func:`bfgs_solve_batch` with the driver's work counters (see :class:`BatchDetail`)."""
    gtol, maxiter, c1, c2 = _check_options(gtol, maxiter, c1, c2, check, kernel)
    x_start = _check_starts(problem, starts)
    t0 = time.perf_counter()
    # One errstate for the whole run: overflow to inf and NaN are outcomes SciPy handles
    # (status 2/3, or a DivergenceError from finish_run), and entering errstate costs microseconds, which
    # per round and per kernel call add up. It changes no value, only the reporting.
    with np.errstate(all="ignore"):
        kern = _Kernel(problem.model, kernel, x_start)
        eng = _Engine(kern, x_start, gtol, maxiter, c1, c2)
        eng.run()
        status, messages = eng.outcome()
    total = time.perf_counter() - t0
    # There is no per-example wall time in lock step: the total is shared out by evaluations.
    seconds = total * eng.nfev / max(int(eng.nfev.sum()), 1)
    run = finish_run(problem, x_start, eng.x, eng.f, eng.k, eng.nfev, eng.njev, status, messages,
                     seconds, check)
    return BatchDetail(run=run, rounds=eng.rounds, kernel_rows=kern.rows, fallback=eng.fallback,
                       fallback_evaluations=eng.fallback_evaluations, seconds=total)


def bfgs_solve_batch(problem: Problem, starts, *, gtol: float = BFGS_OPTIONS["gtol"],
                     maxiter: int = BFGS_OPTIONS["maxiter"], c1: float = BFGS_OPTIONS["c1"],
                     c2: float = BFGS_OPTIONS["c2"], check: str = "raise",
                     kernel: str = "per_row") -> BFGSRun:
    """SciPy's BFGS (the §3 protocol) on every example of ``problem``, all in lock step.

    Same algorithm, options and record as :func:`dynamics.bfgs_reference.bfgs_solve`, with one
    vectorised loss-and-gradient call per evaluation round instead of one ``minimize`` per
    example.

    Parameters
    ----------
    problem : Problem
    starts : array_like
        ``(n, d)`` start of each example.
    gtol, maxiter, c1, c2 : float, int, float, float
        SciPy's BFGS options; the defaults are the §3 values (``norm = inf`` is fixed).
    check : str
        ``"raise"``: raise :class:`~dynamics.bfgs_reference.BFGSInconsistency` if the loss
        re-evaluated by the vectorised ``problem.loss`` disagrees with ``fun`` beyond
        ``1e-12 (1 + |fun|)``; ``"flag"``: only record it.
    kernel : str
        ``"per_row"`` (default): every evaluation is bitwise what the reference's one-row kernel
        gives, so the run reproduces :func:`~dynamics.bfgs_reference.bfgs_solve` exactly (up to
        SciPy code paths not ported, none known). It uses the model's batched kernel where that
        is verified to be row-count independent (wave packet, billiards, logistic), the one-row
        summation order for the ripple model, or one one-row call per row for any other model.
        ``"batched"``: always the model's batched kernel (last-bit differences on ripple).

    Returns
    -------
    BFGSRun
        ``seconds`` is the wall time of the batch shared out in proportion to ``nfev``.

    Raises
    ------
    ValueError
        On a bad problem, starts of the wrong shape or non-finite starts, invalid options.
    DivergenceError
        If BFGS returns a non-finite ``x`` or ``fun``.
    BFGSInconsistency
        See ``check``.
    """
    return bfgs_batch_detail(problem, starts, gtol=gtol, maxiter=maxiter, c1=c1, c2=c2, check=check,
                             kernel=kernel).run
