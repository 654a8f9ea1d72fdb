"""mpmath as a high-precision oracle for the float64 dynamics and bounds.

The pattern follows SciPy's mpmath tests (``docs``: engineering guide, section 1):

* every computation runs in a **private** :class:`mpmath.ctx_mp.MPContext` made by
  :func:`make_context`, never in the process-global ``mpmath.mp`` (whose ``dps`` would leak into
  every later test and is not thread-safe); a context at ``dps <= 15`` is refused, because it would
  silently be float64;
* float64 inputs are lifted **exactly** (every double is an ``mpf``) by :func:`lift`;
* results are rounded **once**, to nearest, by :func:`to_float64`;
* references are written literally from the definition (SVD through ``ctx.svd_r``, pseudo-inverse
  from a rank-truncated SVD, the spectral norm as the largest singular value);
* :func:`replay` runs the *same* update function (``dynamics.deep_linear.gd_step``) on float64
  arrays and on object arrays of ``mpf``, so ``|float64 - mp|`` is pure rounding drift.

The ``norm(A, 2)`` trap: for a matrix, ``ctx.norm(A, 2)`` is the entrywise 2-norm, i.e. the
Frobenius norm (``sqrt(15) = 3.873`` for ``[[1, 2], [3, 1]]``, whose spectral norm is
``3.618``), and ``ctx.mnorm`` has no spectral norm; use :func:`spectral_norm`.

Never mix two contexts in one expression: an ``mpf`` remembers its context, and the helpers here
reject object arrays whose entries belong to another context.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from mpmath.ctx_mp import MPContext
from mpmath.ctx_mp_python import _mpf as _any_mpf

DEFAULT_DPS = 50
MIN_DPS = 16
"""Smallest accepted precision; at ``dps <= 15`` an mpmath 'reference' is float64 in disguise."""


def make_context(dps: int = DEFAULT_DPS) -> MPContext:
    """A private mpmath context at ``dps`` decimal digits.

    Parameters
    ----------
    dps : int
        Decimal digits, at least :data:`MIN_DPS`.

    Returns
    -------
    mpmath.ctx_mp.MPContext
        A fresh context; ``mpmath.mp`` is untouched.

    Raises
    ------
    ValueError
        If ``dps`` is not an integer above 15.
    """
    if isinstance(dps, bool) or not isinstance(dps, numbers.Integral):
        raise ValueError(f"dps: expected an integer, got {dps!r}")
    if dps < MIN_DPS:
        raise ValueError(f"dps: must be >= {MIN_DPS} (dps <= 15 is float64 precision, not a "
                         f"reference), got {dps}")
    ctx = MPContext()
    ctx.dps = int(dps)
    # ``mpf * ndarray`` first asks mpmath to convert the array, which fails only after formatting
    # the whole array into the error message (``repr``); NumPy then applies the operation
    # elementwise. Failing fast for arrays (on this private context only) keeps the result and
    # removes most of the cost of update rules written as ``rho * W``.
    generic_npconvert = ctx.npconvert

    def npconvert(x):
        if isinstance(x, np.ndarray):
            raise TypeError("cannot create mpf from an ndarray")
        return generic_npconvert(x)

    ctx.npconvert = npconvert
    return ctx


def _check_ctx(ctx) -> MPContext:
    if not isinstance(ctx, MPContext):
        raise ValueError(f"ctx: expected an mpmath MPContext from make_context, got "
                         f"{type(ctx).__name__}")
    if ctx.dps < MIN_DPS:
        raise ValueError(f"ctx: precision dps={ctx.dps} is not above float64 (need >= {MIN_DPS})")
    return ctx


def to_float64(x, ctx: MPContext) -> float:
    """Round an ``mpf`` once, to nearest, to a float64.

    Rounding to 53 bits happens inside ``ctx.workprec(53)`` (unary plus rounds to the working
    precision, to nearest); ``float()`` of a 53-bit number in the normal range is then exact, so
    there is no double rounding. (Results in the subnormal range, below ``2.2e-308``, are rounded
    a second time by ``float``; no quantity checked here is that small.)

    Parameters
    ----------
    x : mpf or real number
        The value (an ``mpf`` of ``ctx``, or a Python/NumPy real).
    ctx : MPContext

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If ``x`` is NaN or infinite, or does not fit in a float64.
    """
    ctx = _check_ctx(ctx)
    x = _as_mpf(x, ctx, "x")
    with ctx.workprec(53):
        out = float(+x)
    if not np.isfinite(out):
        raise ValueError(f"x: {x} is not finite in float64")
    return out


def to_float64_array(a, ctx: MPContext) -> np.ndarray:
    """:func:`to_float64` applied entrywise to an object array (or ``ctx.matrix``)."""
    arr = _as_object_array(a, ctx, "a")
    return np.vectorize(lambda v: to_float64(v, ctx), otypes=[np.float64])(arr)


def _as_mpf(x, ctx: MPContext, name: str):
    if isinstance(x, ctx.mpf):
        return x
    if isinstance(x, _any_mpf):
        raise ValueError(f"{name}: an mpf of another mpmath context (e.g. the global mpmath.mp); "
                         "never mix contexts, lift float64 data into this one")
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise ValueError(f"{name}: expected a real number or an mpf of this context, got "
                         f"{type(x).__name__} (mpf values of another context cannot be mixed)")
    if not np.isfinite(float(x)):
        raise ValueError(f"{name}: must be finite, got {x!r}")
    return ctx.mpf(float(x)) if isinstance(x, (float, np.floating)) else ctx.mpf(int(x))


def lift(a, ctx: MPContext, name: str = "a"):
    """Lift a float64 array (or real scalar) exactly to ``mpf`` values of ``ctx``.

    Parameters
    ----------
    a : array_like or real
        Finite float64 data. An object array whose entries already are ``mpf`` of ``ctx`` is
        returned as is.
    ctx : MPContext
    name : str
        Argument name used in error messages.

    Returns
    -------
    numpy.ndarray of object, or mpf
        Same shape; every entry equals the corresponding double exactly.

    Raises
    ------
    ValueError
        On non-finite entries, non-real data, or ``mpf`` entries of another context.
    """
    ctx = _check_ctx(ctx)
    if np.ndim(a) == 0 and not isinstance(a, np.ndarray):
        return _as_mpf(a, ctx, name)
    arr = np.asarray(a)
    if arr.dtype == object:
        return _as_object_array(arr, ctx, name)
    try:
        arr = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: expected a real array, got dtype {np.asarray(a).dtype}") from exc
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains non-finite entries (NaN or inf)")
    out = np.empty(arr.shape, dtype=object)
    flat_in, flat_out = arr.ravel(), out.reshape(-1)
    for i, v in enumerate(flat_in):
        flat_out[i] = ctx.mpf(float(v))  # exact: an mpf at >= 53 bits holds every double
    return out


def _as_object_array(a, ctx: MPContext, name: str) -> np.ndarray:
    if hasattr(a, "rows") and hasattr(a, "cols"):  # a ctx.matrix
        a = from_matrix(a)
    arr = np.asarray(a)
    if arr.dtype != object:
        return lift(arr, ctx, name)
    for v in arr.ravel():
        if not isinstance(v, ctx.mpf):
            raise ValueError(f"{name}: entry {v!r} is not an mpf of this context (lift float64 "
                             "data with oracle.lift; never mix contexts)")
    return arr


def to_matrix(a, ctx: MPContext):
    """A ``ctx.matrix`` holding the (lifted) 2-d array ``a``."""
    arr = _as_object_array(a, ctx, "a")
    if arr.ndim != 2:
        raise ValueError(f"a: expected a 2-d array, got shape {arr.shape}")
    return ctx.matrix(arr.tolist())


def from_matrix(M) -> np.ndarray:
    """The entries of a ``ctx.matrix`` as a 2-d object array."""
    return np.array([[M[i, j] for j in range(M.cols)] for i in range(M.rows)], dtype=object)


# --------------------------------------------------------------------------------------------
# linear algebra, literally from the definitions


def fro_norm(a, ctx: MPContext):
    """Frobenius norm ``sqrt(sum a_ij^2)`` (an ``mpf``), with a correctly rounded sum."""
    arr = _as_object_array(a, ctx, "a")
    return ctx.sqrt(ctx.fsum(v * v for v in arr.ravel()))


def svd(a, ctx: MPContext):
    """Thin SVD ``a = U diag(S) Vt`` through ``ctx.svd_r``, singular values decreasing.

    Returns
    -------
    U : object ndarray, shape (p, k)
    S : object ndarray, shape (k,)
    Vt : object ndarray, shape (k, q)
        With ``k = min(p, q)``.
    """
    ctx = _check_ctx(ctx)
    arr = _as_object_array(a, ctx, "a")
    if arr.ndim != 2:
        raise ValueError(f"a: expected a 2-d array, got shape {arr.shape}")
    U, S, V = ctx.svd_r(to_matrix(arr, ctx), full_matrices=False, compute_uv=True)
    U, S, Vt = from_matrix(U), np.array([S[i] for i in range(S.rows)], dtype=object), from_matrix(V)
    order = sorted(range(S.size), key=lambda i: -S[i])
    return U[:, order], S[order], Vt[order, :]


def singular_values(a, ctx: MPContext) -> np.ndarray:
    """Singular values of ``a`` in decreasing order (object array of ``mpf``)."""
    ctx = _check_ctx(ctx)
    arr = _as_object_array(a, ctx, "a")
    if arr.ndim != 2:
        raise ValueError(f"a: expected a 2-d array, got shape {arr.shape}")
    S = ctx.svd_r(to_matrix(arr, ctx), compute_uv=False)
    return np.array(sorted((S[i] for i in range(S.rows)), reverse=True), dtype=object)


def spectral_norm(a, ctx: MPContext):
    """``||a||_2`` = the largest singular value (not ``ctx.norm(a, 2)``, which is Frobenius)."""
    return singular_values(a, ctx)[0]


def numerical_rank(a, ctx: MPContext) -> int:
    """Rank at the working precision: singular values above ``max(shape) * eps * sigma_1``."""
    sv = singular_values(a, ctx)
    if sv[0] == 0:
        return 0
    tol = max(np.shape(a)) * ctx.eps * sv[0]
    return int(sum(1 for v in sv if v > tol))


def _rank_arg(rank, arr) -> int:
    if isinstance(rank, bool) or not isinstance(rank, numbers.Integral):
        raise ValueError(f"rank: expected an integer, got {rank!r}")
    if not 1 <= rank <= min(arr.shape):
        raise ValueError(f"rank: must lie in [1, {min(arr.shape)}], got {rank}")
    return int(rank)


def pinv(a, ctx: MPContext, rank: int | None = None) -> np.ndarray:
    """Moore-Penrose pseudo-inverse from a rank-``rank`` truncated SVD, at the context precision.

    ``rank`` defaults to :func:`numerical_rank`; pass the known rank (``s``) for data that are
    exactly of rank ``s`` in exact arithmetic.
    """
    arr = _as_object_array(a, ctx, "a")
    r = numerical_rank(arr, ctx) if rank is None else _rank_arg(rank, arr)
    if r == 0:
        raise ValueError("a: the zero matrix has no nonzero singular values to invert")
    U, S, Vt = svd(arr, ctx)
    return (Vt[:r].T * (1 / S[:r])) @ U[:, :r].T


def orthonormalize(a, ctx: MPContext) -> np.ndarray:
    """Orthonormal basis of ``range(a)`` (full column rank ``a``) from a thin QR, ``diag(R) > 0``.

    For a float64 ``a`` that is already orthonormal up to rounding, the result differs from it by
    ``O(u)`` and is orthonormal at the context precision.
    """
    ctx = _check_ctx(ctx)
    arr = _as_object_array(a, ctx, "a")
    if arr.ndim != 2 or arr.shape[0] < arr.shape[1]:
        raise ValueError(f"a: expected a tall 2-d array, got shape {arr.shape}")
    Q, R = ctx.qr(to_matrix(arr, ctx), mode="skinny")
    Q = from_matrix(Q)
    signs = np.array([ctx.mpf(-1) if R[i, i] < 0 else ctx.mpf(1) for i in range(arr.shape[1])],
                     dtype=object)
    if any(R[i, i] == 0 for i in range(arr.shape[1])):
        raise ValueError("a: columns are linearly dependent")
    return Q * signs


def range_projector(a, ctx: MPContext, rank: int | None = None) -> np.ndarray:
    """Orthogonal projector ``U_r U_r^T`` onto the span of the top ``rank`` left singular vectors."""
    arr = _as_object_array(a, ctx, "a")
    r = numerical_rank(arr, ctx) if rank is None else _rank_arg(rank, arr)
    U = svd(arr, ctx)[0][:, :r]
    return U @ U.T


def identity(k: int, ctx: MPContext) -> np.ndarray:
    """The ``k x k`` identity as an object array of ``mpf``."""
    out = np.empty((k, k), dtype=object)
    for i in range(k):
        for j in range(k):
            out[i, j] = ctx.mpf(1 if i == j else 0)
    return out


def subspace_oracle(A, R, ctx: MPContext) -> np.ndarray:
    """The oracle ``R (A R)^+`` (D1), with ``R`` orthonormalized at the context precision."""
    Rq = orthonormalize(lift(R, ctx, "R"), ctx)
    A = lift(A, ctx, "A")
    if A.ndim != 2 or A.shape[1] != Rq.shape[0]:
        raise ValueError(f"A: shape {A.shape} does not match R with {Rq.shape[0]} rows")
    return Rq @ pinv(A @ Rq, ctx, Rq.shape[1])


def rip_delta(A, R, ctx: MPContext, power: int = 2):
    """Sharp subspace RIP constant of ``A`` on ``range(R)`` (D9), an ``mpf``.

    ``max(sigma_1(A Q)^p - 1, 1 - sigma_s(A Q)^p)`` with ``Q`` an orthonormal basis of
    ``range(R)`` and ``p = power`` (2: squared norms, 1: unsquared).
    """
    if power not in (1, 2):
        raise ValueError(f"power: must be 1 or 2, got {power!r}")
    Rq = orthonormalize(lift(R, ctx, "R"), ctx)
    A = lift(A, ctx, "A")
    if A.ndim != 2 or A.shape[1] != Rq.shape[0]:
        raise ValueError(f"A: shape {A.shape} does not match R with {Rq.shape[0]} rows")
    sv = singular_values(A @ Rq, ctx)
    return max(sv[0] ** power - 1, 1 - sv[-1] ** power)


# --------------------------------------------------------------------------------------------
# replaying update rules


def _lift_data(data: Mapping[str, Any], ctx: MPContext) -> dict[str, Any]:
    out = {}
    for key, v in data.items():
        if isinstance(v, np.ndarray):
            out[key] = lift(v, ctx, key)
        elif isinstance(v, numbers.Real) and not isinstance(v, bool):
            out[key] = _as_mpf(v, ctx, key)
        else:  # names of profiles, flags: passed through unchanged
            out[key] = v
    return out


def run_steps(step_fn: Callable[..., Sequence[np.ndarray]], weights0: Sequence[np.ndarray],
              data: Mapping[str, Any], n_steps: int) -> list[list[np.ndarray]]:
    """Iterates ``[W(0), ..., W(n_steps)]`` of ``W <- step_fn(W, **data)`` in any number type."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, numbers.Integral) or n_steps < 0:
        raise ValueError(f"n_steps: expected an integer >= 0, got {n_steps!r}")
    out = [list(weights0)]
    for _ in range(int(n_steps)):
        out.append(list(step_fn(out[-1], **data)))
    return out


@dataclasses.dataclass
class Replay:
    """A trajectory computed twice: in float64 and at the precision of ``ctx``.

    Attributes
    ----------
    float64 : list of list of ndarray
        ``float64[t]`` are the float64 weights after ``t`` steps.
    mp : list of list of object ndarray
        ``mp[t]`` are the high-precision weights after ``t`` steps.
    ctx : MPContext
        The context of the ``mp`` entries.
    """

    float64: list[list[np.ndarray]]
    mp: list[list[np.ndarray]]
    ctx: MPContext

    def drift(self) -> np.ndarray:
        """Per step ``max_l ||W_l^float64(t) - W_l^mp(t)||_F``, computed in mp, rounded once."""
        out = []
        for lo, hi in zip(self.float64, self.mp, strict=True):
            out.append(max(to_float64(fro_norm(lift(Wl, self.ctx) - Wh, self.ctx), self.ctx)
                           for Wl, Wh in zip(lo, hi, strict=True)))
        return np.array(out)


def replay(step_fn: Callable[..., Sequence[np.ndarray]], weights0: Sequence[np.ndarray],
           data: Mapping[str, Any], n_steps: int, ctx: MPContext, *,
           data_hi: Mapping[str, Any] | None = None) -> Replay:
    """Run the same update rule on float64 arrays and on object arrays of ``mpf``.

    Parameters
    ----------
    step_fn : callable
        ``step_fn(weights, **data) -> new weights``, written with ``+ - * /``, ``@`` and ``.T``
        only (e.g. :func:`dynamics.deep_linear.gd_step`), so it runs on both number types.
    weights0 : sequence of ndarray
        Float64 initial weights; lifted exactly for the high-precision run.
    data : mapping
        Keyword arguments of ``step_fn``: arrays and reals are lifted exactly for the
        high-precision run, anything else (profile names) is passed through.
    n_steps : int
        Number of steps.
    ctx : MPContext
        From :func:`make_context`.
    data_hi : mapping, optional
        Override of the high-precision data (e.g. an instance that is exactly of rank ``s`` in
        mp, which its float64 rounding is not); by default ``data`` lifted exactly, so the
        difference between the two runs is pure rounding drift.

    Returns
    -------
    Replay
    """
    ctx = _check_ctx(ctx)
    lo = run_steps(step_fn, [np.asarray(W, dtype=np.float64) for W in weights0], data, n_steps)
    hi_data = _lift_data(data if data_hi is None else data_hi, ctx)
    hi = run_steps(step_fn, [lift(W, ctx, f"weights0[{i}]") for i, W in enumerate(weights0)],
                   hi_data, n_steps)
    return Replay(float64=lo, mp=hi, ctx=ctx)
