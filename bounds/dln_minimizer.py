"""Global minimizer of the regularized end-to-end problem of a deep linear network (section 8).

By D7, ``min_W F = min_M Phi(M)`` when every hidden width is at least ``s``, with

    Phi(M) = a/2 ||M Y - X||_F^2 + mu sum_i sigma_i(M)^p,   mu = c lam L,  p = 2/L  (mu p = lam_bar),

a Schatten-``p`` quasi-norm penalty for ``L >= 3``. Every minimizer has ``M P_perp = 0`` and
``range M in range R``, so ``M = R K U_Y^T`` and the problem reduces exactly to the ``s x s``
problem ``min_K a/2 ||(K - K_0) S_Y||_F^2 + mu sum_i sigma_i(K)^p`` with ``K_0 = (A R)^+ U_Y``.
It separates per singular value only in the isotropic design ``S_Y = beta I``; in general the
scalar solver is the proximal step of a proximal-gradient iteration.

Nothing here runs training: a GD end point enters only as a start of the multi-start search.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import mpmath
import numpy as np
from scipy.optimize import brentq

from bounds.dln_weight_decay import RANK_GUARD, check_subspace_instance, pinv_rank
from dynamics._validate import as_matrix, choice, positive_int, real

_EPS = np.finfo(np.float64).eps
BRENTQ_RTOL = 1e-15
"""Relative accuracy of the ``x_+`` root (the spec's ``brentq`` tolerance; scipy needs >= 4 eps)."""
ISOTROPY_RTOL = 1e-12
"""``S_Y`` counts as ``beta I`` when ``(sigma_1 - sigma_s) <= ISOTROPY_RTOL sigma_1``. The isotropic
design builds ``Y = beta Q O^T`` with a few roundings, so its singular values agree to ``~1e-15``."""


# --------------------------------------------------------------------------------------------
# the scalar problem phi(x) = a/2 (x - k)^2 + mu x^p on x >= 0


def _check_scalar(a, k, mu, p) -> tuple[float, float, float, float]:
    a = real("a", a, minimum=0.0, strict=True)
    k = real("k", k, minimum=0.0)
    mu = real("mu", mu, minimum=0.0, strict=True)
    p = real("p", p, minimum=0.0, strict=True)
    if p > 2.0:
        raise ValueError(f"p: must lie in (0, 2], got {p!r}")
    return a, k, mu, p


def scalar_objective(x: float, a: float, k: float, mu: float, p: float) -> float:
    """``phi(x) = a/2 (x - k)^2 + mu x^p`` (``0^p = 0``)."""
    a, k, mu, p = _check_scalar(a, k, mu, p)
    x = real("x", x, minimum=0.0)
    return 0.5 * a * (x - k) ** 2 + mu * x**p


def scalar_derivative(x: float, a: float, k: float, mu: float, p: float) -> float:
    """``g(x) = phi'(x) = a (x - k) + mu p x^{p-1}`` for ``x > 0``."""
    a, k, mu, p = _check_scalar(a, k, mu, p)
    x = real("x", x, minimum=0.0, strict=True)
    return a * (x - k) + mu * p * x ** (p - 1.0)


def branch_minimum_point(a: float, mu: float, p: float) -> float:
    """``x_m = (mu p (1 - p) / a)^{1/(2-p)}``, the minimizer of ``g`` on ``(0, inf)`` for ``p < 1``."""
    a, _, mu, p = _check_scalar(a, 0.0, mu, p)
    if not p < 1.0:
        raise ValueError(f"p: x_m exists only for p in (0, 1), got {p!r}")
    return (mu * p * (1.0 - p) / a) ** (1.0 / (2.0 - p))


def zero_branch_threshold(a: float, mu: float, p: float) -> float:
    """The ``k*`` above which ``scalar_argmin`` returns ``x_+ > 0`` (and below which it returns 0).

    For ``p in (0, 1)`` the tie ``phi(x_+) = phi(0)`` together with ``g(x_+) = 0`` gives
    ``x_tau = (2 mu (1 - p) / a)^{1/(2-p)}`` and ``k* = x_tau + (mu p / a) x_tau^{p-1}`` [derived];
    for ``p = 1`` it is ``mu / a`` (soft threshold) and for ``p > 1`` it is 0.
    """
    a, _, mu, p = _check_scalar(a, 0.0, mu, p)
    if p > 1.0:
        return 0.0
    if p == 1.0:
        return mu / a
    x_tau = (2.0 * mu * (1.0 - p) / a) ** (1.0 / (2.0 - p))
    return x_tau + (mu * p / a) * x_tau ** (p - 1.0)


def scalar_argmin(a: float, k: float, mu: float, p: float) -> float:
    """Global minimizer of ``phi(x) = a/2 (x - k)^2 + mu x^p`` on ``x >= 0`` (section 8).

    Parameters
    ----------
    a : float
        Curvature of the data term, ``> 0``.
    k : float
        Unpenalized minimizer, ``>= 0``.
    mu : float
        Penalty weight, ``> 0``.
    p : float
        Exponent in ``(0, 2]`` (``p = 2/L`` for depth ``L``).

    Returns
    -------
    float
        ``0`` for ``k = 0``; ``a k / (a + 2 mu)`` for ``p = 2``; ``max(k - mu/a, 0)`` for ``p = 1``;
        for ``p in (0, 1)`` the larger root ``x_+`` of ``g = phi'`` (``brentq`` on ``[x_m, k]``) if
        ``phi(x_+) <= phi(0)``, else 0: on an exact tie ``x_+``, the branch GD reaches, is returned.
        For ``p in (1, 2)`` (convex, not a depth) the unique root of ``g`` in ``(0, k)``.

    Raises
    ------
    ValueError
        If ``a <= 0``, ``k < 0``, ``mu <= 0`` or ``p`` is outside ``(0, 2]``.
    """
    return _argmin(*_check_scalar(a, k, mu, p))


def _argmin(a: float, k: float, mu: float, p: float) -> float:
    # scalar_argmin without validation, for the proximal-gradient inner loop.
    if k == 0.0:
        return 0.0
    if p == 2.0:
        return a * k / (a + 2.0 * mu)
    if p == 1.0:
        return max(k - mu / a, 0.0)

    def g(x):
        return a * (x - k) + mu * p * x ** (p - 1.0)

    if p > 1.0:
        # Convex case: g(0) = -a k < 0 < g(k) = mu p k^{p-1}, g increasing.
        return brentq(g, 0.0, k, xtol=1e-300, rtol=BRENTQ_RTOL, maxiter=500)
    x_m = (mu * p * (1.0 - p) / a) ** (1.0 / (2.0 - p))
    if x_m >= k or g(x_m) >= 0.0:
        return 0.0
    x_plus = brentq(g, x_m, k, xtol=1e-300, rtol=BRENTQ_RTOL, maxiter=500)
    # phi(x_+) - phi(0) = x_+ (a/2 (x_+ - 2k) + mu x_+^{p-1}), written without the cancelling
    # a/2 k^2 terms so the tie test is decided at the rounding level of the increment itself.
    gain = x_plus * (0.5 * a * (x_plus - 2.0 * k) + mu * x_plus ** (p - 1.0))
    return x_plus if gain <= 0.0 else 0.0


def scalar_argmin_mp(a, k, mu, p, dps: int = 50):
    """High-precision :func:`scalar_argmin` in a private ``mpmath.MPContext`` (never the global ``mp``).

    The ``x_+`` root is found by ``findroot(..., solver="anderson")`` on the bracket ``(x_m, k)``
    (``(0, k)`` for ``p in (1, 2)``), working in the scaled variable ``y = x / k`` so the tolerance
    is relative. Inputs are converted exactly (every double is an ``mpf``); strings give decimal
    reals.

    Parameters
    ----------
    a, k, mu, p : float or str
        As in :func:`scalar_argmin`.
    dps : int
        Decimal digits, ``> 15`` (at 15 the reference would silently be float64).

    Returns
    -------
    mpmath.mpf
        The minimizer, an ``mpf`` of the private context at ``dps`` digits.
    """
    dps = positive_int("dps", dps, minimum=16)
    ctx = mpmath.MPContext()
    ctx.dps = dps
    vals = []
    for name, v in (("a", a), ("k", k), ("mu", mu), ("p", p)):
        try:
            vals.append(ctx.mpf(v))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}: expected a real number, got {v!r}") from exc
        if not ctx.isfinite(vals[-1]):
            raise ValueError(f"{name}: must be finite, got {v!r}")
    a_, k_, mu_, p_ = vals
    if not a_ > 0:
        raise ValueError(f"a: must be > 0, got {a!r}")
    if k_ < 0:
        raise ValueError(f"k: must be >= 0, got {k!r}")
    if not mu_ > 0:
        raise ValueError(f"mu: must be > 0, got {mu!r}")
    if not (0 < p_ <= 2):
        raise ValueError(f"p: must lie in (0, 2], got {p!r}")
    if k_ == 0:
        return ctx.mpf(0)
    if p_ == 2:
        return a_ * k_ / (a_ + 2 * mu_)
    if p_ == 1:
        return ctx.mpf(max(k_ - mu_ / a_, 0))
    # g(k y) / (a k) = (y - 1) + c y^{p-1} with c = mu p / (a k^{2-p}): same roots, O(1) values.
    c_ = mu_ * p_ / (a_ * k_ ** (2 - p_))

    def h(y):
        return (y - 1) + c_ * y ** (p_ - 1)

    tol = ctx.eps * 2**10
    if p_ > 1:
        y_plus = ctx.findroot(h, (ctx.mpf(0), ctx.mpf(1)), solver="anderson", tol=tol,
                              maxsteps=500)
        return k_ * y_plus
    y_m = (c_ * (1 - p_)) ** (1 / (2 - p_))
    if y_m >= 1 or h(y_m) >= 0:
        return ctx.mpf(0)
    y_plus = ctx.findroot(h, (y_m, ctx.mpf(1)), solver="anderson", tol=tol, maxsteps=500)
    x_plus = k_ * y_plus
    gain = x_plus * (a_ / 2 * (x_plus - 2 * k_) + mu_ * x_plus ** (p_ - 1))
    return x_plus if gain <= 0 else ctx.mpf(0)


# --------------------------------------------------------------------------------------------
# matrices


def prox_schatten(V: np.ndarray, tau: float, p: float) -> np.ndarray:
    """``prox_tau(V) = argmin_K 1/2 ||K - V||_F^2 + tau sum_i sigma_i(K)^p``.

    Computed per singular value, ``U_V diag(scalar_argmin(1, v_i, tau, p)) W_V^T``: the penalty
    depends only on singular values, so by von Neumann's trace inequality the minimizer shares the
    singular vectors of ``V``, and the selected scalar argmin is nondecreasing in ``v_i`` (so the
    order of the singular values is kept).
    """
    V = as_matrix("V", V)
    tau = real("tau", tau, minimum=0.0, strict=True)
    _check_scalar(1.0, 0.0, 1.0, p)
    return _prox(V, tau, float(p))


def _prox(V: np.ndarray, tau: float, p: float) -> np.ndarray:
    U, sv, Wt = np.linalg.svd(V, full_matrices=False)
    x = np.array([_argmin(1.0, float(v), tau, p) for v in sv])
    return (U * x) @ Wt


def Phi(M: np.ndarray, X: np.ndarray, Y: np.ndarray, mu: float, p: float, s: int | None = None,
        a: float = 1.0) -> float:
    """``Phi(M) = a/2 ||M Y - X||_F^2 + mu sum_{i <= s} sigma_i(M)^p``.

    ``s`` limits the penalty to the top ``s`` singular values (section 8.3: numerically zero
    singular values would inflate it, e.g. ``(1e-14)^{2/5} ~ 2.5e-6``). With ``s=None`` every
    singular value above the numerical-rank threshold ``max(shape) eps sigma_1`` counts, which is
    the right reading for maps of unknown rank (e.g. a minimizer perturbed off the subspace).
    """
    M = as_matrix("M", M)
    X = as_matrix("X", X)
    Y = as_matrix("Y", Y)
    if M.shape != (X.shape[0], Y.shape[0]) or X.shape[1] != Y.shape[1]:
        raise ValueError(f"M: shape {M.shape} does not fit X {X.shape} and Y {Y.shape}")
    mu = real("mu", mu, minimum=0.0, strict=True)
    _check_scalar(1.0, 0.0, 1.0, p)
    a = real("a", a, minimum=0.0, strict=True)
    sv = np.linalg.svd(M, compute_uv=False)
    if s is None:
        sv = sv[sv > max(M.shape) * _EPS * sv[0]] if sv[0] > 0 else sv[:0]
    else:
        sv = sv[:positive_int("s", s)]
    E = M @ Y - X
    return 0.5 * a * float(np.sum(E * E)) + mu * float(np.sum(sv**p))


def reduced_objective(K: np.ndarray, K0: np.ndarray, S_Y: np.ndarray, mu: float, p: float,
                      a: float = 1.0) -> float:
    """``a/2 ||(K - K_0) S_Y||_F^2 + mu sum_i sigma_i(K)^p`` (the exact ``s x s`` reduction of Phi).

    As in :func:`Phi` with ``s=None``, only singular values above the numerical-rank threshold
    ``s eps sigma_1`` count: a zero-branch singular value reconstructed as ~1e-16 would add
    ``(1e-16)^(2/5) ~ 4e-7`` to the penalty for ``L = 5``, far above rounding.
    """
    K = as_matrix("K", K)
    D = (K - as_matrix("K0", K0)) * np.asarray(S_Y, dtype=float)[None, :]
    sv = np.linalg.svd(K, compute_uv=False)
    sv = sv[sv > max(K.shape) * _EPS * sv[0]] if sv[0] > 0 else sv[:0]
    return 0.5 * a * float(np.sum(D * D)) + real("mu", mu, minimum=0.0) * float(np.sum(sv**p))


def reduced_problem(A: np.ndarray, R: np.ndarray, Y: np.ndarray
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``s x s`` reduction of section 8: ``(K_0, S_Y, U_Y)``.

    ``Y = U_Y diag(S_Y) V_Y^T`` is the thin rank-``s`` SVD and ``K_0 = (A R)^+ U_Y``, so that the
    oracle is ``M_0 = R K_0 U_Y^T`` and ``Phi(R K U_Y^T) = a/2 ||(K - K_0) S_Y||_F^2 + mu sum
    sigma_i(K)^p`` for every ``K``.

    Raises
    ------
    ValueError
        If (H1)/(H2) fail, ``Y`` does not have rank ``s`` at the numerical-rank guard, or the range
        of ``Y`` is not ``range(A R)`` (data not generated as ``Y = A R Z``).
    """
    s = check_subspace_instance(A, R)
    Y = as_matrix("Y", Y)
    A = np.asarray(A, dtype=float)
    R = np.asarray(R, dtype=float)
    if Y.shape[0] != A.shape[0]:
        raise ValueError(f"Y: has {Y.shape[0]} rows but A has {A.shape[0]}")
    if Y.shape[1] < s:
        raise ValueError(f"Y: rank s={s} needs at least s columns, got {Y.shape[1]}")
    U, S, _ = np.linalg.svd(Y, full_matrices=False)
    if S[s - 1] < RANK_GUARD * S[0]:
        raise ValueError(f"Y: rank below s={s} (sigma_s/sigma_1 = {S[s - 1] / S[0]:.3g})")
    U_Y, S_Y = U[:, :s], S[:s]
    Q, _ = np.linalg.qr(A @ R)
    # range(Y) = range(A R) under (H1)-(H3); a larger residual means Y is not A R Z.
    leak = float(np.linalg.norm(Y - Q @ (Q.T @ Y)))
    if leak > 1e3 * _EPS * max(Y.shape) * float(np.linalg.norm(Y)):
        raise ValueError(f"Y: not in range(A R) (relative residual {leak / np.linalg.norm(Y):.3g})")
    if s < S.size and S[s] > 1e3 * _EPS * max(Y.shape) * S[0]:
        raise ValueError(f"Y: rank exceeds s={s} (sigma_(s+1)/sigma_1 = {S[s] / S[0]:.3g})")
    K0 = pinv_rank(A @ R, s) @ U_Y
    return K0, S_Y, U_Y


@dataclasses.dataclass(frozen=True)
class MinimizerResult:
    """The reference global minimizer of Phi.

    Attributes
    ----------
    M_star : ndarray, shape (d, m)
        ``R K_star U_Y^T``.
    K_star : ndarray, shape (s, s)
        Minimizer of the reduced problem.
    phi : float
        ``Phi(M_star)`` on the top ``s`` singular values (equal to the reduced objective).
    method : str
        ``ridge_closed_form`` (L = 1), ``isotropic_closed_form``, ``proximal_gradient`` (L = 2,
        convex) or ``proximal_gradient_multistart`` (L >= 3).
    iterations : int
        Proximal-gradient iterations of the selected start (0 for closed forms).
    spread : float
        ``max - min`` of Phi over the multi-start fixed points (0 for a single run).
    singular_values : ndarray
        ``sigma_i(M_star)``, ``i <= s``.
    start_phis : tuple of float
        Phi at the fixed point of each start (``K_0`` first, then user starts, then random).
    converged : bool
        Whether the selected run met the step tolerance (always true for closed forms).
    mu, p : float
        Penalty weight ``c lam L`` and exponent ``2/L``.
    """

    M_star: np.ndarray
    K_star: np.ndarray
    phi: float
    method: str
    iterations: int
    spread: float
    singular_values: np.ndarray
    start_phis: tuple[float, ...]
    converged: bool
    mu: float
    p: float


def proximal_gradient(K0: np.ndarray, S_Y: np.ndarray, mu: float, p: float, a: float = 1.0,
                      start: np.ndarray | None = None, tol: float = 1e-15, maxiter: int = 100_000
                      ) -> tuple[np.ndarray, int, bool]:
    """``K <- prox_{t mu}(K - t a (K - K_0) S_Y^2)`` with ``t = 1 / (a sigma_1(Y)^2)``.

    Stops when ``||K^{j+1} - K^j||_F <= tol (1 + ||K^j||_F)`` or after ``maxiter`` iterations.

    Returns
    -------
    K : ndarray
        The last iterate.
    iterations : int
        Iterations run.
    converged : bool
        Whether the step tolerance was met.
    """
    K0 = as_matrix("K0", K0)
    S2 = np.asarray(S_Y, dtype=float) ** 2
    a = real("a", a, minimum=0.0, strict=True)
    tol = real("tol", tol, minimum=0.0)
    maxiter = positive_int("maxiter", maxiter, minimum=0)
    mu = real("mu", mu, minimum=0.0, strict=True)
    _check_scalar(1.0, 0.0, 1.0, p)
    t = 1.0 / (a * float(np.max(S2)))
    K = K0.copy() if start is None else as_matrix("start", start).copy()
    if K.shape != K0.shape:
        raise ValueError(f"start: expected shape {K0.shape}, got {K.shape}")
    for j in range(maxiter):
        K_new = _prox(K - (t * a) * (K - K0) * S2[None, :], t * mu, float(p))
        step = float(np.linalg.norm(K_new - K))
        small = step <= tol * (1.0 + float(np.linalg.norm(K)))
        K = K_new
        if small:
            return K, j + 1, True
    return K, maxiter, False


def _svd_apply(K0: np.ndarray, fn) -> np.ndarray:
    U, k, Vt = np.linalg.svd(K0)
    return (U * np.array([fn(float(v)) for v in k])) @ Vt


def is_isotropic(S_Y: np.ndarray, rtol: float = ISOTROPY_RTOL) -> bool:
    """Whether ``S_Y = beta I`` up to ``rtol`` (the isotropic-measurement design)."""
    S = np.asarray(S_Y, dtype=float)
    return bool(S.max() - S.min() <= rtol * S.max())


def global_minimizer(A: np.ndarray, R: np.ndarray, Y: np.ndarray, lam: float, c: float, L: int, *,
                     a: float = 1.0, d_w: int | None = None, design: str = "auto",
                     starts: Sequence[np.ndarray] = (), n_random: int = 8, seed: int = 0,
                     tol: float = 1e-15, maxiter: int = 100_000) -> MinimizerResult:
    """Reference minimizer of ``Phi`` (section 8) for data ``Y = A R Z``, ``X = R Z``.

    Parameters
    ----------
    A, R, Y : ndarray
        Operator ``(m, d)``, orthonormal subspace basis ``(d, s)`` and measurements ``(m, n)``.
    lam, c : float
        Weight decay ``lam > 0`` and convention ``c`` (``mu = c lam L``, ``lam_bar = 2 c lam``).
    L : int
        Depth (``p = 2/L``).
    a : float
        Weight of the data term (``1/n`` under the ``mean`` convention).
    d_w : int, optional
        Hidden width; ``min_W F = min_M Phi`` needs ``d_w >= s`` when ``L >= 2``.
    design : {"auto", "isotropic", "general"}
        ``auto`` uses the isotropic closed form when ``S_Y = beta I`` (:func:`is_isotropic`).
    starts : sequence of ndarray
        Extra end-to-end maps ``(d, m)`` to start the ``L >= 3`` search from, e.g. a GD end point
        ``M_GD`` (the start is ``R^T M_GD U_Y``).
    n_random : int
        Random starts for ``L >= 3`` (the spec's 8).
    seed : int
        Seed of the random starts.
    tol, maxiter : float, int
        Proximal-gradient stopping rule (:func:`proximal_gradient`).

    Returns
    -------
    MinimizerResult

    Raises
    ------
    ValueError
        On invalid input: ``lam <= 0``, ``d_w < s``, data outside the model, bad sizes.
    """
    L = positive_int("L", L)
    lam = real("lam", lam, minimum=0.0, strict=True)
    c = real("c", c, minimum=0.0, strict=True)
    a = real("a", a, minimum=0.0, strict=True)
    choice("design", design, ("auto", "isotropic", "general"))
    n_random = positive_int("n_random", n_random, minimum=0)
    K0, S_Y, U_Y = reduced_problem(A, R, Y)
    R = np.asarray(R, dtype=float)
    s = K0.shape[0]
    if d_w is not None and L >= 2 and positive_int("d_w", d_w) < s:
        raise ValueError(f"d_w: width {d_w} < s={s}, so min_W F > min_M Phi in general and the "
                         "reduction of section 8 does not apply")
    mu, p = c * lam * L, 2.0 / L
    iso = is_isotropic(S_Y) if design == "auto" else design == "isotropic"
    if design == "isotropic" and not is_isotropic(S_Y, 1e-8):
        raise ValueError(f"design: S_Y = {S_Y} is not isotropic")
    iterations, spread, converged = 0, 0.0, True
    start_phis: tuple[float, ...] = ()
    if L == 1:
        # Ridge: a (K - K_0) S^2 + lam_bar K = 0, i.e. K = a K_0 S^2 (a S^2 + lam_bar)^{-1}; in full
        # form M* = X Y^T (Y Y^T + (lam_bar/a) I)^{-1} (section 8.2).
        S2 = S_Y**2
        K = K0 * (a * S2 / (a * S2 + 2.0 * c * lam))[None, :]
        method = "ridge_closed_form"
    elif iso:
        beta2 = float(np.mean(S_Y)) ** 2
        K = _svd_apply(K0, lambda k: scalar_argmin(a * beta2, k, mu, p))
        method = "isotropic_closed_form"
    elif L == 2:
        K, iterations, converged = proximal_gradient(K0, S_Y, mu, p, a, tol=tol, maxiter=maxiter)
        method = "proximal_gradient"
    else:
        rng = np.random.default_rng(seed)
        scale = float(np.linalg.norm(K0)) / math.sqrt(s)
        K_starts = [K0]
        for i, M in enumerate(starts):
            M = as_matrix(f"starts[{i}]", M)
            if M.shape != (R.shape[0], U_Y.shape[0]):
                raise ValueError(f"starts[{i}]: expected shape {(R.shape[0], U_Y.shape[0])}, "
                                 f"got {M.shape}")
            K_starts.append(R.T @ M @ U_Y)
        K_starts += [scale * rng.standard_normal((s, s)) for _ in range(n_random)]
        runs = []
        for K_init in K_starts:
            K_fix, its, conv = proximal_gradient(K0, S_Y, mu, p, a, start=K_init, tol=tol,
                                                 maxiter=maxiter)
            runs.append((reduced_objective(K_fix, K0, S_Y, mu, p, a), K_fix, its, conv))
        start_phis = tuple(r[0] for r in runs)
        best = min(range(len(runs)), key=lambda i: runs[i][0])
        _, K, iterations, converged = runs[best]
        spread = max(start_phis) - min(start_phis)
        method = "proximal_gradient_multistart"
    if not np.all(np.isfinite(K)):
        raise FloatingPointError("global_minimizer: the reduced solution is not finite")
    phi = reduced_objective(K, K0, S_Y, mu, p, a)
    if not start_phis:
        start_phis = (phi,)
    return MinimizerResult(M_star=R @ K @ U_Y.T, K_star=K, phi=phi, method=method,
                           iterations=iterations, spread=float(spread),
                           singular_values=np.linalg.svd(K, compute_uv=False), start_phis=start_phis,
                           converged=bool(converged), mu=mu, p=p)


def isotropic_small_lambda(k, beta: float, lam_bar: float, L: int, a: float = 1.0) -> np.ndarray:
    """First-order expansion ``x_i = k_i - (lam_bar / (a beta^2)) k_i^{(2-L)/L}`` (isotropic design).

    From the implicit function theorem on ``g(x) = a beta^2 (x - k) + lam_bar x^{p-1} = 0``; the
    error is ``O(lam_bar^2)`` for ``L != 2`` and zero for ``L = 2`` (while ``x_i > 0``).
    """
    k = np.asarray(k, dtype=float)
    if k.size == 0 or not np.all(np.isfinite(k)) or np.any(k <= 0):
        raise ValueError("k: need finite positive singular values")
    beta = real("beta", beta, minimum=0.0, strict=True)
    lam_bar = real("lam_bar", lam_bar, minimum=0.0)
    L = positive_int("L", L)
    a = real("a", a, minimum=0.0, strict=True)
    return k - (lam_bar / (a * beta**2)) * k ** ((2.0 - L) / L)


def isotropic_second_order(k, beta: float, L: int, a: float = 1.0) -> np.ndarray:
    """Coefficient ``c_2`` of ``lam_bar^2`` in the isotropic expansion: ``q k^{2q-1} / (a beta^2)^2``.

    With ``eps = lam_bar / (a beta^2)`` and ``q = (2 - L)/L``, ``x = k - eps x^q`` gives
    ``x = k - eps k^q + eps^2 q k^{2q-1} + O(eps^3)`` [derived]; ``c_2 = 0`` for ``L = 2``.
    """
    k = np.asarray(k, dtype=float)
    if k.size == 0 or not np.all(np.isfinite(k)) or np.any(k <= 0):
        raise ValueError("k: need finite positive singular values")
    beta = real("beta", beta, minimum=0.0, strict=True)
    L = positive_int("L", L)
    a = real("a", a, minimum=0.0, strict=True)
    q = (2.0 - L) / L
    return q * k ** (2.0 * q - 1.0) / (a * beta**2) ** 2
