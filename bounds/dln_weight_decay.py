"""Quantities and theorem constants for deep linear networks with weight decay (arXiv 2502.15522).

Pure functions of the instance (``A``, ``R``, data, weights); nothing here runs training. Exact
[derived] quantities return arrays or floats. Constants that come from a seed document or an
unverified reading of the paper return a :class:`NamedConstant` carrying its provenance and the
profile it belongs to, so no caller can mistake it for "the paper's constant".

Numbering (D0-D10) follows ``docs/theory/deep_linear.md``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from dynamics._validate import as_matrix, positive_int, real
from dynamics.deep_linear import end_to_end

_EPS = np.finfo(np.float64).eps
RANK_GUARD = 1e-6
"""Numerical-rank guard of (H2)/(H3): ``sigma_s >= RANK_GUARD * sigma_1``."""


@dataclasses.dataclass(frozen=True)
class NamedConstant:
    """A constant with its provenance.

    Attributes
    ----------
    value : float
        The number.
    name : str
        Stable name, e.g. ``"seed002.width"``.
    provenance : str
        ``[derived]``, ``[seed 000]``, ``[seed 002]``, ``[unverified]`` or ``[choice]``.
    profile : str
        The named profile the constant belongs to (``talk``, ``seed002``, ``gn_bound``, ...).
    parameters : dict
        The configurable inputs it was computed from (hidden constants included).
    """

    value: float
    name: str
    provenance: str
    profile: str
    parameters: dict = dataclasses.field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.value)


# --------------------------------------------------------------------------------------------
# linear algebra on the instance


def singular_values(B: np.ndarray) -> np.ndarray:
    """Singular values of ``B`` in decreasing order."""
    return np.linalg.svd(as_matrix("B", B), compute_uv=False)


def numerical_rank(B: np.ndarray) -> int:
    """Rank of ``B`` at the float64 threshold ``max(shape) * eps * sigma_1``."""
    sv = singular_values(B)
    return int(np.sum(sv > max(np.shape(B)) * _EPS * sv[0])) if sv[0] > 0 else 0


def pinv_rank(B: np.ndarray, rank: int) -> np.ndarray:
    """Moore-Penrose pseudo-inverse through an explicit rank-``rank`` truncated SVD."""
    B = as_matrix("B", B)
    U, S, Vt = np.linalg.svd(B, full_matrices=False)
    return (Vt[:rank].T / S[:rank]) @ U[:, :rank].T


def check_subspace_instance(A: np.ndarray, R: np.ndarray, Z: np.ndarray | None = None) -> int:
    """Check the standing hypotheses (H1)-(H3) and return ``s``.

    Raises
    ------
    ValueError
        If ``R`` is not orthonormal, ``A R`` is rank-deficient, or ``Z`` is not of full row rank
        (at the numerical-rank guard :data:`RANK_GUARD`).
    """
    A = as_matrix("A", A)
    R = as_matrix("R", R)
    if A.shape[1] != R.shape[0]:
        raise ValueError(f"R: has {R.shape[0]} rows but A has {A.shape[1]} columns")
    s = R.shape[1]
    if np.linalg.norm(R.T @ R - np.eye(s)) > 1e3 * _EPS * s:
        raise ValueError("R: columns are not orthonormal (H1); take the Q factor of a thin QR")
    sv = singular_values(A @ R)
    if s > A.shape[0] or sv[-1] < RANK_GUARD * sv[0]:
        raise ValueError(f"A: A R is rank-deficient (H2): sigma_s/sigma_1 = "
                         f"{(sv[-1] / sv[0]) if s <= A.shape[0] else 0.0:.3g} < {RANK_GUARD}")
    if Z is not None:
        Z = as_matrix("Z", Z)
        if Z.shape[0] != s:
            raise ValueError(f"Z: has {Z.shape[0]} rows, expected s={s}")
        if Z.shape[1] < s:
            raise ValueError(f"Z: rank(Z) = s needs n >= s columns (H3), got {Z.shape[1]}")
        svz = singular_values(Z)
        if svz[-1] < RANK_GUARD * svz[0]:
            raise ValueError(f"Z: not of full row rank (H3): sigma_s/sigma_1 = "
                             f"{svz[-1] / svz[0]:.3g} < {RANK_GUARD}")
    return s


def projectors(A: np.ndarray, R: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(P_Y, P_perp)``: projectors onto ``range(A R)`` and its complement, from a QR of ``A R``."""
    check_subspace_instance(A, R)
    Q, _ = np.linalg.qr(A @ R)
    P = Q @ Q.T
    return P, np.eye(A.shape[0]) - P


def oracle(A: np.ndarray, R: np.ndarray) -> np.ndarray:
    """The sample-independent oracle ``R (A R)^+`` (D1)."""
    s = check_subspace_instance(A, R)
    return R @ pinv_rank(A @ R, s)


def oracle_from_data(X: np.ndarray, Y: np.ndarray, rank: int) -> np.ndarray:
    """``X Y^+`` with a rank-``rank`` truncated pseudo-inverse of ``Y``."""
    return as_matrix("X", X) @ pinv_rank(Y, positive_int("rank", rank))


def kappa(B: np.ndarray, rank: int | None = None) -> float:
    """Condition number ``sigma_1 / sigma_rank`` (``rank`` defaults to the numerical rank)."""
    sv = singular_values(B)
    r = numerical_rank(B) if rank is None else positive_int("rank", rank)
    return float(sv[0] / sv[r - 1])


def stable_rank(B: np.ndarray) -> float:
    """``||B||_F^2 / ||B||_2^2``."""
    sv = singular_values(B)
    return float(np.sum(sv**2) / sv[0] ** 2)


def rip_delta(A: np.ndarray, R: np.ndarray, power: int = 2) -> float:
    """Sharp RIP constant of ``A`` on ``range(R)`` (D9).

    ``power=2``: smallest ``delta`` with ``(1-delta)||x||^2 <= ||Ax||^2 <= (1+delta)||x||^2``,
    i.e. ``max(sigma_1^2 - 1, 1 - sigma_s^2)`` of ``A R``; ``power=1`` is the unsquared version.
    ``R`` is replaced by an orthonormal basis of its range.
    """
    if power not in (1, 2):
        raise ValueError(f"power: must be 1 or 2, got {power!r}")
    A = as_matrix("A", A)
    Q, _ = np.linalg.qr(as_matrix("R", R))
    sv = singular_values(A @ Q)
    return float(max(sv[0] ** power - 1.0, 1.0 - sv[-1] ** power))


def rip_ok(delta: float, delta0: float = 0.1) -> bool:
    """Whether ``delta <= delta0``; ``delta0 = 0.1`` is seed 002's value ([seed 002], profile)."""
    return real("delta", delta) <= real("delta0", delta0, minimum=0.0)


# --------------------------------------------------------------------------------------------
# step sizes and phase constants


def _spec_norm(B) -> float:
    return float(np.linalg.norm(B, 2))


def gauss_newton_bound(weights: Sequence[np.ndarray], Y: np.ndarray, a: float = 1.0) -> float:
    """``L_0 = a sum_l ||W_{L:l+1}||_2^2 ||W_{l-1:1} Y||_2^2`` (D10): bounds ``a lambda_max(J^T J)``."""
    weights = [as_matrix(f"weights[{i}]", W) for i, W in enumerate(weights)]
    Y = as_matrix("Y", Y)
    L = len(weights)
    total = 0.0
    H = Y
    for ell in range(L):
        head = _spec_norm(end_to_end(weights, ell + 1)) if ell + 1 < L else 1.0
        total += head**2 * _spec_norm(H) ** 2
        H = weights[ell] @ H
    return a * total


def curvature_at_oracle(M0_norm: float, sigma1_Y: float, L: int, a: float = 1.0) -> float:
    """``L_star = a L ||M_0||_2^{2(L-1)/L} sigma_1(Y)^2``: the D10 bound at ``balanced(M_0)``."""
    L = positive_int("L", L)
    return a * L * real("M0_norm", M0_norm, minimum=0.0) ** (2 * (L - 1) / L) * sigma1_Y**2


def eta_gn(weights0: Sequence[np.ndarray], Y: np.ndarray, M0_norm: float, a: float = 1.0
           ) -> NamedConstant:
    """Theory step ``eta_hat = 1 / max(L_0, L_star)`` of the ``gn_bound`` profile ([choice]).

    The talk's "stepsize prescribed by our theory" has no available closed form; this profile
    bounds the Gauss-Newton curvature where GD starts (``L_0``) and where it is heading
    (``L_star``), see D10.
    """
    L0 = gauss_newton_bound(weights0, Y, a)
    Ls = curvature_at_oracle(M0_norm, _spec_norm(Y), len(weights0), a)
    return NamedConstant(1.0 / max(L0, Ls), "gn_bound.eta_hat", "[choice]", "gn_bound",
                         {"L0": L0, "L_star": Ls})


def eta_seed002(m: int, L: int, sigma_max_X: float, C_eta: float = 1.0) -> NamedConstant:
    """Seed 002's step ``C_eta m / (L sigma_max(X)^2)`` ([seed 002]; ``C_eta = 1`` profile value)."""
    m = positive_int("m", m)
    L = positive_int("L", L)
    sig = real("sigma_max_X", sigma_max_X, minimum=0.0, strict=True)
    return NamedConstant(C_eta * m / (L * sig**2), "seed002.eta", "[seed 002]", "seed002",
                         {"C_eta": C_eta})


def tau_talk(eta: float, L: int, lam: float, C_tau: float = 1.0) -> NamedConstant:
    """Phase-1 time ``C_tau log(L/lam) / (eta L)`` of the talk's O-form ([seed 000]; ``C_tau`` hidden)."""
    eta = real("eta", eta, minimum=0.0, strict=True)
    L = positive_int("L", L)
    lam = real("lam", lam, minimum=0.0, strict=True)
    return NamedConstant(C_tau * math.log(L / lam) / (eta * L), "talk.tau", "[seed 000]", "talk",
                         {"C_tau": C_tau})


def T_talk(eta: float, lam: float, d_w: int, C_T: float = 1.0) -> NamedConstant:
    """Phase-2 time ``C_T log(d_w) / (eta lam)`` of the talk's O-form ([seed 000]; ``C_T`` hidden)."""
    eta = real("eta", eta, minimum=0.0, strict=True)
    lam = real("lam", lam, minimum=0.0, strict=True)
    d_w = positive_int("d_w", d_w)
    return NamedConstant(C_T * math.log(d_w) / (eta * lam), "talk.T", "[seed 000]", "talk",
                         {"C_T": C_T})


def T_D2(eps: float, rho1: float, B_max: float) -> int:
    """A-posteriori Phase-2 time ``ceil(log(B_max / eps) / -log rho_1)`` (D2) [derived].

    Every ``t >= T_D2`` (within the run that produced ``B_max``) has ``||M(t) P_perp||_2 <= eps``.
    Returns 0 when ``B_max <= eps``.
    """
    eps = real("eps", eps, minimum=0.0, strict=True)
    rho1 = real("rho1", rho1, minimum=0.0, strict=True)
    if rho1 >= 1.0:
        raise ValueError(f"rho1: must be < 1 (lam > 0) for a finite Phase-2 time, got {rho1}")
    B_max = real("B_max", B_max, minimum=0.0)
    if B_max <= eps:
        return 0
    return math.ceil(math.log(B_max / eps) / -math.log(rho1))


def phase1_rate_seed002(kappa_X: float) -> NamedConstant:
    """Seed 002's Phase-1 contraction ``q = 1 - 1/(32 kappa(X)^2)`` ([seed 002])."""
    k = real("kappa_X", kappa_X, minimum=1.0)
    return NamedConstant(1.0 - 1.0 / (32.0 * k**2), "seed002.phase1_rate", "[seed 002]", "seed002")


def width_seed002(L: int, kappa_X: float, d: int, C_w: float = 1.0) -> NamedConstant:
    """Seed 002's width requirement ``C_w L^2 kappa(X)^2 d`` ([seed 002]; ``C_w = 1`` profile)."""
    L = positive_int("L", L)
    d = positive_int("d", d)
    k = real("kappa_X", kappa_X, minimum=1.0)
    return NamedConstant(C_w * L**2 * k**2 * d, "seed002.width", "[seed 002]", "seed002",
                         {"C_w": C_w})


def d8_bounds(m: int, s: int, n: int, d_w: int, v: float, t: float) -> dict[str, float]:
    """Gaussian concentration brackets of D8 holding with probability ``>= 1 - 2 exp(-t^2/2)``.

    Returns the bracket of ``sigma(A R)`` (``ar_lo``, ``ar_hi``), the bound ``w1_perp_hi`` on
    ``||W_1(0) P_perp||_2`` for entries of variance ``v``, the bound ``kappa_Z_hi`` on
    ``kappa(Z)`` (``inf`` when vacuous), the exact ``E ||W_1(0) P_perp||_F^2 = v d_w (m - s)``
    and the probability ``prob``.
    """
    m, s, n, d_w = (positive_int(k, x) for k, x in (("m", m), ("s", s), ("n", n), ("d_w", d_w)))
    v = real("v", v, minimum=0.0)
    t = real("t", t, minimum=0.0)
    den = math.sqrt(n) - math.sqrt(s) - t
    return {
        "ar_lo": 1.0 - math.sqrt(s / m) - t / math.sqrt(m),
        "ar_hi": 1.0 + math.sqrt(s / m) + t / math.sqrt(m),
        "w1_perp_hi": math.sqrt(v) * (math.sqrt(d_w) + math.sqrt(m - s) + t),
        "kappa_Z_hi": (math.sqrt(n) + math.sqrt(s) + t) / den if den > 0 else math.inf,
        "w1_perp_fro2_mean": v * d_w * (m - s),
        "prob": max(0.0, 1.0 - 2.0 * math.exp(-(t**2) / 2.0)),
    }


# --------------------------------------------------------------------------------------------
# error decompositions and the test error (D4, D5)


def error_decomposition(M: np.ndarray, X: np.ndarray, Y: np.ndarray, rank: int) -> dict:
    """D4: ``M - X Y^+ = (M Y - X) Y^+ + M P_perp`` and the talk's inequality.

    Returns the two parts (``fit_part``, ``off_part``), ``lhs = ||M - X Y^+||_2`` and
    ``rhs = ||MY - X||_F ||Y^+||_2 + ||M P_perp||_2``.
    """
    M = as_matrix("M", M)
    Yp = pinv_rank(Y, rank)
    P_perp = np.eye(Y.shape[0]) - Y @ Yp
    fit_part = (M @ Y - X) @ Yp
    off_part = M @ P_perp
    return {
        "fit_part": fit_part,
        "off_part": off_part,
        "difference": M - X @ Yp,
        "lhs": _spec_norm(M - X @ Yp),
        "rhs": float(np.linalg.norm(M @ Y - X)) * _spec_norm(Yp) + _spec_norm(off_part),
    }


def noise_split(M: np.ndarray, X: np.ndarray, Y: np.ndarray, rank: int, A: np.ndarray,
                x: np.ndarray, e: np.ndarray) -> dict:
    """D5: ``M y - x = (MY - X) Y^+ A x + M P_Y e + M P_perp e`` for ``y = A x + e``.

    Returns the three terms, their sum, the exact ``M y - x`` and the three-term bound.
    """
    M = as_matrix("M", M)
    Yp = pinv_rank(Y, rank)
    P_Y = Y @ Yp
    P_perp = np.eye(Y.shape[0]) - P_Y
    E = M @ Y - X
    terms = (E @ Yp @ (A @ x), M @ (P_Y @ e), M @ (P_perp @ e))
    bound = (float(np.linalg.norm(E)) * _spec_norm(Yp) * float(np.linalg.norm(A @ x))
             + _spec_norm(M @ P_Y) * float(np.linalg.norm(P_Y @ e))
             + _spec_norm(M @ P_perp) * float(np.linalg.norm(P_perp @ e)))
    return {"terms": terms, "sum": terms[0] + terms[1] + terms[2], "exact": M @ (A @ x + e) - x,
            "bound": bound}


def expected_test_mse(M: np.ndarray, A: np.ndarray, R: np.ndarray, sigma: float) -> float:
    """D5: ``E||My - x||^2 = ||M A R - R||_F^2 + sigma^2 ||M||_F^2`` for ``z ~ N(0, I_s)``.

    (``||M P_Y||_F^2 + ||M P_perp||_F^2 = ||M||_F^2``.)
    """
    M = as_matrix("M", M)
    sigma = real("sigma", sigma, minimum=0.0)
    return float(np.linalg.norm(M @ A @ R - R) ** 2 + sigma**2 * np.linalg.norm(M) ** 2)


def oracle_test_mse(A: np.ndarray, R: np.ndarray, sigma: float) -> float:
    """Oracle test MSE ``sigma^2 ||(A R)^+||_F^2 = sigma^2 sum_i sigma_i(A R)^{-2}`` (D5)."""
    sv = singular_values(A @ R)
    return float(real("sigma", sigma, minimum=0.0) ** 2 * np.sum(sv**-2.0))


# --------------------------------------------------------------------------------------------
# stationarity (D6) and the induced regularizer (D7)


def psd_power(S: np.ndarray, alpha: float) -> np.ndarray:
    """Fractional power of a symmetric PSD matrix via ``eigh``, with ``0^alpha = 0`` for alpha > 0."""
    w, U = np.linalg.eigh((S + S.T) / 2)
    tol = S.shape[0] * _EPS * max(float(np.max(np.abs(w))), np.finfo(float).tiny)
    w = np.where(w > tol, w, 0.0)
    return (U * np.where(w > 0, w, 0.0) ** alpha) @ U.T


def stationary_end_to_end_residual(M: np.ndarray, X: np.ndarray, Y: np.ndarray, lam_bar: float,
                                   L: int) -> float:
    """Relative residual of D6-iii ``(M M^T)^{(L-1)/L} E Y^T + lam_bar M = 0``."""
    M = as_matrix("M", M)
    E = M @ Y - X
    power = np.eye(M.shape[0]) if L == 1 else psd_power(M @ M.T, (L - 1) / L)
    lhs = power @ E @ Y.T
    scale = float(np.linalg.norm(lhs)) + lam_bar * float(np.linalg.norm(M))
    return float(np.linalg.norm(lhs + lam_bar * M)) / max(scale, np.finfo(float).tiny)


def plateau_bounds(M: np.ndarray, X: np.ndarray, Y: np.ndarray, lam_bar: float, L: int, s: int
                   ) -> dict[str, float]:
    """D6-iv: the stationary plateau level and its bracket of the fit error.

    Returns ``level = lam_bar (sum_i sigma_i(M)^{2(2-L)/L})^{1/2}`` over the top ``s`` singular
    values, the observed ``||E Y^T||_F``, ``lower = level / sigma_1(Y)``, ``upper = level /
    sigma_s(Y)`` and the observed fit error.
    """
    M = as_matrix("M", M)
    sv_m = singular_values(M)[:s]
    sv_y = singular_values(Y)
    level = lam_bar * float(np.sqrt(np.sum(sv_m ** (2 * (2 - L) / L))))
    E = M @ Y - X
    return {"level": level, "eyt": float(np.linalg.norm(E @ Y.T)),
            "lower": level / sv_y[0], "upper": level / sv_y[s - 1],
            "fit_error": float(np.linalg.norm(E))}


def induced_regularizer(weights: Sequence[np.ndarray], rank: int | None = None
                        ) -> tuple[float, float]:
    """D7: ``(sum_l ||W_l||_F^2, L sum_i sigma_i(W_{L:1})^{2/L})``; the first is >= the second.

    ``rank`` limits the sum to the top singular values (numerically zero ones inflate it).
    """
    L = len(weights)
    sv = singular_values(end_to_end(list(weights)))
    if rank is not None:
        sv = sv[:rank]
    return (float(sum(np.sum(W * W) for W in weights)), float(L * np.sum(sv ** (2.0 / L))))
