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
    """Moore-Penrose pseudo-inverse through an explicit rank-``rank`` truncated SVD.

    Raises
    ------
    ValueError
        If ``rank`` exceeds ``min(B.shape)`` or ``sigma_rank(B)`` is numerically zero (at most
        ``max(B.shape) eps sigma_1(B)``): the truncated inverse would amplify rounding noise by
        ``1 / eps``.
    """
    B = as_matrix("B", B)
    rank = positive_int("rank", rank)
    if rank > min(B.shape):
        raise ValueError(f"rank: {rank} exceeds min(B.shape) = {min(B.shape)}")
    U, S, Vt = np.linalg.svd(B, full_matrices=False)
    if not S[rank - 1] > max(B.shape) * _EPS * S[0]:
        raise ValueError(f"B: sigma_{rank}(B) = {S[rank - 1]:.3g} is numerically zero, so B has "
                         f"numerical rank < {rank}")
    return (Vt[:rank].T / S[:rank]) @ U[:, :rank].T


def _operator_and_basis(A, R) -> tuple[np.ndarray, np.ndarray]:
    """Validate an operator ``A`` (``m x d``) and a subspace basis ``R`` (``d x s``) that chain."""
    A = as_matrix("A", A)
    R = as_matrix("R", R)
    if A.shape[1] != R.shape[0]:
        raise ValueError(f"R: has {R.shape[0]} rows but A has {A.shape[1]} columns")
    return A, R


def check_subspace_instance(A: np.ndarray, R: np.ndarray, Z: np.ndarray | None = None) -> int:
    """Check the standing hypotheses (H1)-(H3) and return ``s``.

    Raises
    ------
    ValueError
        If ``R`` is not orthonormal, ``A R`` is rank-deficient, or ``Z`` is not of full row rank
        (at the numerical-rank guard :data:`RANK_GUARD`).
    """
    A, R = _operator_and_basis(A, R)
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
    X, Y = as_matrix("X", X), as_matrix("Y", Y)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"Y: has {Y.shape[1]} columns but X has {X.shape[1]}")
    return X @ pinv_rank(Y, positive_int("rank", rank))


def kappa(B: np.ndarray, rank: int | None = None) -> float:
    """Condition number ``sigma_1 / sigma_rank`` (``rank`` defaults to the numerical rank)."""
    sv = singular_values(B)
    r = numerical_rank(B) if rank is None else positive_int("rank", rank)
    if r > sv.size:
        raise ValueError(f"rank: {r} exceeds min(B.shape) = {sv.size}")
    if r == 0 or not sv[r - 1] > 0:
        raise ValueError(f"B: sigma_{max(r, 1)}(B) is zero, so the condition number is undefined")
    return float(sv[0] / sv[r - 1])


def stable_rank(B: np.ndarray) -> float:
    """``||B||_F^2 / ||B||_2^2``."""
    sv = singular_values(B)
    if not sv[0] > 0:
        raise ValueError("B: the stable rank of the zero matrix is undefined")
    return float(np.sum(sv**2) / sv[0] ** 2)


def rip_delta(A: np.ndarray, R: np.ndarray, power: int = 2) -> float:
    """Sharp RIP constant of ``A`` on ``range(R)`` (D9).

    ``power=2``: smallest ``delta`` with ``(1-delta)||x||^2 <= ||Ax||^2 <= (1+delta)||x||^2``,
    i.e. ``max(sigma_1^2 - 1, 1 - sigma_s^2)`` of ``A R``; ``power=1`` is the unsquared version.
    ``R`` is replaced by an orthonormal basis of its range.
    """
    if power not in (1, 2):
        raise ValueError(f"power: must be 1 or 2, got {power!r}")
    A, R = _operator_and_basis(A, R)
    sv_r = singular_values(R)
    # The Q factor of a rank-deficient R spans more than range(R): the constant would be wrong.
    if sv_r[-1] <= RANK_GUARD * sv_r[0] or R.shape[1] > R.shape[0]:
        raise ValueError("R: columns are linearly dependent, so it has no orthonormal basis of "
                         "the same size; pass a basis of range(R)")
    Q, _ = np.linalg.qr(R)
    sv = singular_values(A @ Q)
    # With more basis vectors than measurements A R has a kernel: sigma_s(A R) = 0 exactly, not
    # the smallest of the min(m, s) computed singular values.
    sigma_min = sv[-1] if R.shape[1] <= A.shape[0] else 0.0
    return float(max(sv[0] ** power - 1.0, 1.0 - sigma_min ** power))


def rip_ok(delta: float, delta0: float = 0.1) -> bool:
    """Whether ``delta <= delta0``; ``delta0 = 0.1`` is seed 002's value ([seed 002], profile)."""
    return real("delta", delta) <= real("delta0", delta0, minimum=0.0)


# --------------------------------------------------------------------------------------------
# step sizes and phase constants


def _spec_norm(B) -> float:
    return float(np.linalg.norm(B, 2))


def _layers(weights: Sequence[np.ndarray], Y: np.ndarray | None = None, name: str = "weights"
            ) -> list[np.ndarray]:
    """Validate a chain of layers ``W_1, ..., W_L`` (and that ``W_1`` acts on the rows of ``Y``)."""
    if isinstance(weights, np.ndarray) and weights.ndim != 1:
        raise ValueError(f"{name}: expected a sequence of layer matrices, got one array of shape "
                         f"{weights.shape}")
    ws = [as_matrix(f"{name}[{i}]", W) for i, W in enumerate(weights)]
    if not ws:
        raise ValueError(f"{name}: need at least one layer (L >= 1)")
    if Y is not None and ws[0].shape[1] != Y.shape[0]:
        raise ValueError(f"{name}[0]: has {ws[0].shape[1]} columns but Y has {Y.shape[0]} rows")
    for i in range(1, len(ws)):
        if ws[i].shape[1] != ws[i - 1].shape[0]:
            raise ValueError(f"{name}[{i}]: shape {ws[i].shape} does not chain with "
                             f"{name}[{i - 1}] of shape {ws[i - 1].shape}")
    return ws


def gauss_newton_bound(weights: Sequence[np.ndarray], Y: np.ndarray, a: float = 1.0) -> float:
    """``L_0 = a sum_l ||W_{L:l+1}||_2^2 ||W_{l-1:1} Y||_2^2`` (D10): bounds ``a lambda_max(J^T J)``."""
    Y = as_matrix("Y", Y)
    weights = _layers(weights, Y)
    a = real("a", a, minimum=0.0, strict=True)
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
    sigma1_Y = real("sigma1_Y", sigma1_Y, minimum=0.0)
    a = real("a", a, minimum=0.0, strict=True)
    return a * L * real("M0_norm", M0_norm, minimum=0.0) ** (2 * (L - 1) / L) * sigma1_Y**2


def end_to_end_jvp(weights: Sequence[np.ndarray], Y: np.ndarray, deltas: Sequence[np.ndarray]
                   ) -> np.ndarray:
    """Jacobian-vector product ``J Delta = sum_l W_{L:l+1} Delta_l W_{l-1:1} Y`` (D10).

    ``J`` is the Jacobian of ``W -> W_{L:1} Y`` at ``weights``. Forward mode: the tangent of
    ``H_l = W_l H_{l-1}`` is ``T_l = W_l T_{l-1} + Delta_l H_{l-1}`` with ``T_0 = 0``, so no product
    ``W_{L:l+1}`` is ever formed.

    Parameters
    ----------
    weights : sequence of ndarray
        ``W_1, ..., W_L``.
    Y : ndarray, shape (m, n)
        Inputs.
    deltas : sequence of ndarray
        A direction ``Delta_l`` of the shape of each ``W_l``.

    Returns
    -------
    ndarray, shape (d, n)
    """
    Y = as_matrix("Y", Y)
    weights = _layers(weights, Y)
    deltas = _layers(deltas, Y, name="deltas")
    if [D.shape for D in deltas] != [W.shape for W in weights]:
        raise ValueError(f"deltas: shapes {[D.shape for D in deltas]} differ from the weights' "
                         f"{[W.shape for W in weights]}")
    return _jvp(weights, Y, deltas)


def _jvp(weights, Y, deltas):
    T = deltas[0] @ Y
    H = weights[0] @ Y
    for W, D in zip(weights[1:], deltas[1:], strict=True):
        T = W @ T + D @ H
        H = W @ H
    return T


def end_to_end_vjp(weights: Sequence[np.ndarray], Y: np.ndarray, V: np.ndarray
                   ) -> list[np.ndarray]:
    """Vector-Jacobian product ``J^T V = (W_{L:l+1}^T V Y^T W_{l-1:1}^T)_l`` (D10).

    The adjoint of :func:`end_to_end_jvp` for the Frobenius inner products; with ``V`` the
    residual ``E`` it is the list of data-term gradients ``G_l``.

    Parameters
    ----------
    weights : sequence of ndarray
        ``W_1, ..., W_L``.
    Y : ndarray, shape (m, n)
        Inputs.
    V : ndarray, shape (d, n)
        Cotangent in the output space.

    Returns
    -------
    list of ndarray
        One matrix of the shape of each ``W_l``.
    """
    Y = as_matrix("Y", Y)
    weights = _layers(weights, Y)
    V = as_matrix("V", V)
    if V.shape != (weights[-1].shape[0], Y.shape[1]):
        raise ValueError(f"V: expected shape {(weights[-1].shape[0], Y.shape[1])}, got {V.shape}")
    return _vjp(weights, Y, V)


def _vjp(weights, Y, V):
    H = [Y]
    for W in weights[:-1]:
        H.append(W @ H[-1])
    out = [None] * len(weights)
    B = V
    for ell in range(len(weights) - 1, -1, -1):
        out[ell] = B @ H[ell].T
        if ell:
            B = weights[ell].T @ B
    return out


def gauss_newton_lambda_max(weights: Sequence[np.ndarray], Y: np.ndarray, iters: int,
                            rng: np.random.Generator, *, with_residual: bool = False):
    """``lambda_max(J^T J)`` of the Jacobian of ``W -> W_{L:1} Y`` by power iteration (D10).

    Each iteration applies ``J^T J`` through one exact JVP and one exact VJP
    (:func:`end_to_end_jvp`, :func:`end_to_end_vjp`); the returned value is the Rayleigh quotient
    ``||J Delta||_F^2`` of the final unit iterate. For a PSD operator the Rayleigh quotient never
    exceeds ``lambda_max`` and is nondecreasing along power iteration, so the estimate is a lower
    bound that converges from below (up to rounding).

    ``J^T J`` depends on ``Y`` only through ``Y Y^T`` (D0), so ``Y`` is first replaced by
    ``U diag(S)`` from its thin SVD, dropping singular values below ``max(m, n) eps sigma_1``;
    this makes the cost ``O(rank(Y))`` columns per product.

    Parameters
    ----------
    weights : sequence of ndarray
        ``W_1, ..., W_L`` (for example the initialization, or ``balanced(M_0)``).
    Y : ndarray, shape (m, n)
        Training measurements.
    iters : int
        Number of power iterations (``>= 1``; the claim uses 500).
    rng : numpy.random.Generator
        Source of the random starting direction.
    with_residual : bool
        Also return the eigen-residual ``||J^T J Delta - q Delta||_F`` of the final unit iterate:
        some eigenvalue of ``J^T J`` lies within it of ``q`` (Krylov-Bogoliubov).

    Returns
    -------
    float, or (float, float) if ``with_residual``
    """
    Y = as_matrix("Y", Y)
    weights = _layers(weights, Y)
    iters = positive_int("iters", iters)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    U, S, _ = np.linalg.svd(Y, full_matrices=False)
    keep = S > max(Y.shape) * _EPS * S[0] if S[0] > 0 else np.zeros(S.shape, bool)
    if not np.any(keep):
        return (0.0, 0.0) if with_residual else 0.0
    Yr = U[:, keep] * S[keep]

    def unit(ds):
        nrm = math.sqrt(sum(float(np.sum(D * D)) for D in ds))
        return [D / nrm for D in ds] if nrm > 0 else None

    delta = unit([rng.standard_normal(W.shape) for W in weights])
    q = 0.0
    for _ in range(iters):
        image = _vjp(weights, Yr, _jvp(weights, Yr, delta))
        nxt = unit(image)
        if nxt is None:
            # J^T J annihilates the iterate: J = 0 on every direction power iteration can reach.
            return (0.0, 0.0) if with_residual else 0.0
        delta = nxt
    JD = _jvp(weights, Yr, delta)
    q = float(np.sum(JD * JD))
    if not with_residual:
        return q
    image = _vjp(weights, Yr, JD)
    res = math.sqrt(sum(float(np.sum((G - q * D) ** 2)) for G, D in zip(image, delta, strict=True)))
    return q, res


def eta_gn(weights0: Sequence[np.ndarray], Y: np.ndarray, M0_norm: float, a: float = 1.0,
           lam_bar: float = 0.0) -> NamedConstant:
    """Theory step ``eta_hat = 1 / (max(L_0, L_star) + lam_bar)`` of the ``gn_bound`` profile ([choice]).

    The talk's "stepsize prescribed by our theory" has no available closed form; this profile
    bounds the Gauss-Newton curvature where GD starts (``L_0``) and where it is heading
    (``L_star``), see D10, plus the curvature ``lam_bar`` of the weight-decay term. The spec's
    ``1 / max(L_0, L_star)`` omits ``lam_bar`` and diverges at ``k = 1`` when ``lam_bar`` exceeds
    ``a sigma_1(Y)^2`` (e.g. ``L = 1``, where F is a quadratic with top curvature
    ``a sigma_1(Y)^2 + lam_bar``); see docs/theory/deep_linear.md, D10.
    """
    L0 = gauss_newton_bound(weights0, Y, a)
    Ls = curvature_at_oracle(M0_norm, _spec_norm(Y), len(weights0), a)
    lam_bar = real("lam_bar", lam_bar, minimum=0.0)
    return NamedConstant(1.0 / (max(L0, Ls) + lam_bar), "gn_bound.eta_hat", "[choice]",
                         "gn_bound", {"L0": L0, "L_star": Ls, "lam_bar": lam_bar})


def eta_seed002(m: int, L: int, sigma_max_X: float, C_eta: float = 1.0) -> NamedConstant:
    """Seed 002's step ``C_eta m / (L sigma_max(X)^2)`` ([seed 002]; ``C_eta = 1`` profile value)."""
    m = positive_int("m", m)
    L = positive_int("L", L)
    sig = real("sigma_max_X", sigma_max_X, minimum=0.0, strict=True)
    C_eta = real("C_eta", C_eta, minimum=0.0, strict=True)
    return NamedConstant(C_eta * m / (L * sig**2), "seed002.eta", "[seed 002]", "seed002",
                         {"C_eta": C_eta})


def tau_talk(eta: float, L: int, lam: float, C_tau: float = 1.0) -> NamedConstant:
    """Phase-1 time ``C_tau log(L/lam) / (eta L)`` of the talk's O-form ([seed 000]; ``C_tau`` hidden)."""
    eta = real("eta", eta, minimum=0.0, strict=True)
    L = positive_int("L", L)
    lam = real("lam", lam, minimum=0.0, strict=True)
    C_tau = real("C_tau", C_tau, minimum=0.0, strict=True)
    return NamedConstant(C_tau * math.log(L / lam) / (eta * L), "talk.tau", "[seed 000]", "talk",
                         {"C_tau": C_tau})


def T_talk(eta: float, lam: float, d_w: int, C_T: float = 1.0) -> NamedConstant:
    """Phase-2 time ``C_T log(d_w) / (eta lam)`` of the talk's O-form ([seed 000]; ``C_T`` hidden)."""
    eta = real("eta", eta, minimum=0.0, strict=True)
    lam = real("lam", lam, minimum=0.0, strict=True)
    d_w = positive_int("d_w", d_w)
    C_T = real("C_T", C_T, minimum=0.0, strict=True)
    return NamedConstant(C_T * math.log(d_w) / (eta * lam), "talk.T", "[seed 000]", "talk",
                         {"C_T": C_T})


def T_D2(eps: float, rho1: float, B_max: float) -> int:
    """A-posteriori Phase-2 time ``ceil(log(B_max / eps) / -log |rho_1|)`` (D2) [derived].

    Every ``t >= T_D2`` (within the run that produced ``B_max``) has ``||M(t) P_perp||_2 <= eps``.
    Returns 0 when ``B_max <= eps``. ``rho_1 = 1 - eta lam_bar`` is negative when
    ``eta lam_bar > 1``; the decay is then ``|rho_1|^t`` (correction to the spec, which wrote
    ``-log rho_1``; see docs/theory/deep_linear.md, D2).
    """
    eps = real("eps", eps, minimum=0.0, strict=True)
    rho1 = real("rho1", rho1)
    if not 0.0 < abs(rho1) < 1.0:
        raise ValueError(f"rho1: need 0 < |rho1| < 1 (lam > 0, eta lam_bar < 2) for a finite "
                         f"Phase-2 time, got {rho1}")
    B_max = real("B_max", B_max, minimum=0.0)
    if B_max <= eps:
        return 0
    return math.ceil(math.log(B_max / eps) / -math.log(abs(rho1)))


def phase1_rate_seed002(kappa_X: float) -> NamedConstant:
    """Seed 002's Phase-1 contraction ``q = 1 - 1/(32 kappa(X)^2)`` ([seed 002])."""
    k = real("kappa_X", kappa_X, minimum=1.0)
    return NamedConstant(1.0 - 1.0 / (32.0 * k**2), "seed002.phase1_rate", "[seed 002]", "seed002")


def width_seed002(L: int, kappa_X: float, d: int, C_w: float = 1.0) -> NamedConstant:
    """Seed 002's width requirement ``C_w L^2 kappa(X)^2 d`` ([seed 002]; ``C_w = 1`` profile)."""
    L = positive_int("L", L)
    d = positive_int("d", d)
    k = real("kappa_X", kappa_X, minimum=1.0)
    C_w = real("C_w", C_w, minimum=0.0, strict=True)
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
    if s > m:
        raise ValueError(f"s: the subspace dimension s={s} exceeds m={m} (A R cannot be injective)")
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


def _end_to_end_data(M, X, Y) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate an end-to-end map ``M`` (``d x m``) against data ``X`` (``d x n``), ``Y`` (``m x n``)."""
    M = as_matrix("M", M)
    X = as_matrix("X", X)
    Y = as_matrix("Y", Y)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"Y: has {Y.shape[1]} columns but X has {X.shape[1]}")
    if M.shape != (X.shape[0], Y.shape[0]):
        raise ValueError(f"M: expected shape {(X.shape[0], Y.shape[0])} (d x m), got {M.shape}")
    return M, X, Y


def _vector(name: str, value, size: int) -> np.ndarray:
    v = as_matrix(name, np.reshape(value, (-1, 1)) if np.ndim(value) == 1 else value)
    if v.shape != (size, 1):
        raise ValueError(f"{name}: expected a vector of length {size}, got shape {np.shape(value)}")
    return v[:, 0]


def error_decomposition(M: np.ndarray, X: np.ndarray, Y: np.ndarray, rank: int) -> dict:
    """D4: ``M - X Y^+ = (M Y - X) Y^+ + M P_perp`` and the talk's inequality.

    Returns the two parts (``fit_part``, ``off_part``), ``lhs = ||M - X Y^+||_2`` and
    ``rhs = ||MY - X||_F ||Y^+||_2 + ||M P_perp||_2``.
    """
    M, X, Y = _end_to_end_data(M, X, Y)
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
    M, X, Y = _end_to_end_data(M, X, Y)
    A = as_matrix("A", A)
    if A.shape != (Y.shape[0], X.shape[0]):
        raise ValueError(f"A: expected shape {(Y.shape[0], X.shape[0])} (m x d), got {A.shape}")
    x = _vector("x", x, X.shape[0])
    e = _vector("e", e, Y.shape[0])
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
    A, R = _operator_and_basis(A, R)
    if M.shape != (R.shape[0], A.shape[0]):
        raise ValueError(f"M: expected shape {(R.shape[0], A.shape[0])} (d x m), got {M.shape}")
    sigma = real("sigma", sigma, minimum=0.0)
    return float(np.linalg.norm(M @ A @ R - R) ** 2 + sigma**2 * np.linalg.norm(M) ** 2)


def oracle_test_mse(A: np.ndarray, R: np.ndarray, sigma: float) -> float:
    """Oracle test MSE ``sigma^2 ||(A R)^+||_F^2 = sigma^2 sum_i sigma_i(A R)^{-2}`` (D5).

    Raises
    ------
    ValueError
        If the standing hypotheses fail (rank-deficient ``A R`` makes the oracle error infinite).
    """
    check_subspace_instance(A, R)
    sv = singular_values(A @ R)
    return float(real("sigma", sigma, minimum=0.0) ** 2 * np.sum(sv**-2.0))


# --------------------------------------------------------------------------------------------
# stationarity (D6) and the induced regularizer (D7)


def psd_power(S: np.ndarray, alpha: float) -> np.ndarray:
    """Fractional power of a symmetric PSD matrix via ``eigh``, with ``0^alpha = 0`` for alpha > 0."""
    S = as_matrix("S", S)
    if S.shape[0] != S.shape[1]:
        raise ValueError(f"S: expected a square matrix, got shape {S.shape}")
    alpha = real("alpha", alpha)
    w, U = np.linalg.eigh((S + S.T) / 2)
    tol = S.shape[0] * _EPS * max(float(np.max(np.abs(w))), np.finfo(float).tiny)
    w = np.where(w > tol, w, 0.0)
    return (U * np.where(w > 0, w, 0.0) ** alpha) @ U.T


def stationary_end_to_end_residual(M: np.ndarray, X: np.ndarray, Y: np.ndarray, lam_bar: float,
                                   L: int) -> float:
    """Relative residual of D6-iii ``(M M^T)^{(L-1)/L} E Y^T + lam_bar M = 0``."""
    M, X, Y = _end_to_end_data(M, X, Y)
    lam_bar = real("lam_bar", lam_bar, minimum=0.0)
    L = positive_int("L", L)
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
    M, X, Y = _end_to_end_data(M, X, Y)
    lam_bar = real("lam_bar", lam_bar, minimum=0.0)
    L = positive_int("L", L)
    s = positive_int("s", s)
    if s > min(M.shape) or s > min(Y.shape):
        raise ValueError(f"s: {s} exceeds the possible rank of M {M.shape} or Y {Y.shape}")
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
    weights = _layers(weights)
    L = len(weights)
    sv = singular_values(end_to_end(weights))
    if rank is not None:
        rank = positive_int("rank", rank)
        if rank > sv.size:
            raise ValueError(f"rank: {rank} exceeds min(W_{{L:1}}.shape) = {sv.size}")
        sv = sv[:rank]
    return (float(sum(np.sum(W * W) for W in weights)), float(L * np.sum(sv ** (2.0 / L))))
