"""Constants, certificates and bounds for the two-layer DIP network (spec ``dip.md`` §3-§9).

Everything here is [derived] in the spec (constants are ours, not the papers'), except the functions
prefixed ``paper_``, which return :class:`bounds.dln_weight_decay.NamedConstant` with provenance
``[unverified]`` and a profile name (spec §9.6). No function here runs training.

mpmath is always used through a private ``MPContext`` so the global ``mpmath.mp`` precision is never
touched.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import NamedTuple

import mpmath
import numpy as np
from mpmath import libmp
from scipy.integrate import quad

from bounds.dln_weight_decay import NamedConstant
from dynamics._validate import as_matrix, choice, positive_int, real
from dynamics.dip_two_layer import ACTIVATION_NAMES, RadialLoss, activation

# Spec §3.3 table (mpmath, 40 digits): name -> (C_phi, C_phi', B_1, B_2).
CONSTANTS_TABLE = {
    "sigmoid": (0.541644750605, 0.211745699721, 0.25, 0.0962250448649),
    "tanh": (0.627928730349, 0.681471131045, 1.0, 0.769800358920),
    "softplus": (0.959815559813, 0.541644750605, 1.0, 0.25),
    "relu": (1.0 / math.sqrt(2.0), 1.0 / math.sqrt(2.0), 1.0, math.inf),
}

# Tropp's matrix Chernoff with delta = 3/4: exponent -(3/4) - (1/4) ln(1/4) (Lemma D3).
CHERNOFF_EXPONENT = 0.75 + 0.25 * math.log(0.25)
CHERNOFF_WIDTH = 2.0 / CHERNOFF_EXPONENT


class ActivationConstants(NamedTuple):
    """Activation constants (spec §3.2).

    ``C_phi = sqrt(E phi(X)^2)``, ``C_phi' = sqrt(E phi'(X)^2)``, ``B_1 = sup|phi'|``, ``B_2 = sup|phi''|``.
    """

    C_phi: float
    C_dphi: float
    B1: float
    B2: float


def _sup_constants(name: str) -> tuple[float, float]:
    # Closed forms of spec §3.3 (checked by mp.findroot on phi''' = 0 in the tests).
    return {"sigmoid": (0.25, 1.0 / (6.0 * math.sqrt(3.0))), "tanh": (1.0, 4.0 / (3.0 * math.sqrt(3.0))),
            "softplus": (1.0, 0.25), "relu": (1.0, math.inf)}[name]


@functools.cache
def activation_constants(name: str) -> ActivationConstants:
    """Activation constants by ``scipy.integrate.quad`` against the standard Gaussian density (§3.4).

    Raises
    ------
    ValueError
        On an unknown activation.
    """
    act = activation(name)
    dens = 1.0 / math.sqrt(2.0 * math.pi)

    def gauss_mean(fn):
        # split at 0: ReLU's phi' jumps there, and both halves are smooth for the others.
        parts = [quad(lambda x: fn(x) * math.exp(-0.5 * x * x) * dens, a, b, epsabs=1e-14, epsrel=1e-13,
                      limit=200)[0] for a, b in ((-np.inf, 0.0), (0.0, np.inf))]
        return sum(parts)

    c_phi = math.sqrt(gauss_mean(lambda x: float(act.phi(x)) ** 2))
    c_dphi = math.sqrt(gauss_mean(lambda x: float(act.dphi(x)) ** 2))
    return ActivationConstants(c_phi, c_dphi, *_sup_constants(act.name))


def gauss_hermite_constants(name: str, n_nodes: int = 200) -> tuple[float, float]:
    """``(C_phi, C_phi')`` by probabilists' Gauss-Hermite quadrature with ``n_nodes`` nodes (§3.4)."""
    act = activation(name)
    n_nodes = positive_int("n_nodes", n_nodes, minimum=2)
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    w = w / math.sqrt(2.0 * math.pi)
    return math.sqrt(float(w @ act.phi(x) ** 2)), math.sqrt(float(w @ act.dphi(x) ** 2))


def mp_activation(ctx, name: str):
    """``(phi, phi')`` as functions on numbers of the mpmath context ``ctx`` (for oracle checks)."""
    if name == "sigmoid":
        phi = lambda x: 1 / (1 + ctx.exp(-x))  # noqa: E731
        return phi, lambda x: phi(x) * (1 - phi(x))
    if name == "tanh":
        return ctx.tanh, lambda x: 1 - ctx.tanh(x) ** 2
    if name == "softplus":
        return (lambda x: ctx.log1p(ctx.exp(x))), (lambda x: 1 / (1 + ctx.exp(-x)))
    return (lambda x: ctx.mpf(x) if x > 0 else ctx.mpf(0)), (lambda x: ctx.mpf(1) if x > 0 else ctx.mpf(0))


def mp_activation_constants(name: str, dps: int = 50) -> tuple:
    """``(C_phi, C_phi')`` as mpmath numbers at ``dps`` digits, in a private ``MPContext`` (§3.4)."""
    choice("name", name, ACTIVATION_NAMES)
    ctx = mpmath.MPContext()
    ctx.dps = positive_int("dps", dps, minimum=15)
    phi, dphi = mp_activation(ctx, name)
    norm = ctx.sqrt(2 * ctx.pi)

    def mean(fn):
        return ctx.quad(lambda x: fn(x) ** 2 * ctx.exp(-x ** 2 / 2), [-ctx.inf, 0, ctx.inf]) / norm

    return ctx.sqrt(mean(phi)), ctx.sqrt(mean(dphi))


# --------------------------------------------------------------------------------------------
# operator and network constants


def sigma_A(A, *, radial: bool = True, y_in_range: bool = True) -> float:
    """The (RC) constant of spec §4.4.

    Case (i): ``m <= n`` and ``rank A = m`` gives ``sigma_m(A)`` (any loss). Case (ii): a radial loss
    with ``y in Im A`` gives the smallest non-zero singular value. Returns 0.0 if neither applies.
    The rank uses the ``max(m, n) eps sigma_1`` cutoff of ``numpy.linalg.matrix_rank``.
    """
    A = as_matrix("A", A)
    m, n = A.shape
    s = np.linalg.svd(A, compute_uv=False)
    cutoff = s[0] * max(m, n) * np.finfo(np.float64).eps
    rank = int(np.sum(s > cutoff))
    if rank == 0:
        return 0.0
    if m <= n and rank == m:
        return float(s[m - 1])
    if radial and y_in_range:
        return float(s[rank - 1])
    return 0.0


def jacobian_lipschitz(u, V, B2: float) -> float:
    """``L_J = B_2 ||u||^2 max_i ||v_i|| / sqrt(k)`` (Lemma D2)."""
    u = as_matrix("u", u, ndim=(1,))
    V = as_matrix("V", V)
    B2 = real("B2", B2, minimum=0.0) if B2 != math.inf else math.inf
    return B2 * float(u @ u) * float(np.max(np.linalg.norm(V, axis=0))) / math.sqrt(V.shape[1])


def jacobian_norm_bound(u, V, B1: float) -> float:
    """``J_max = B_1 ||u|| ||V|| / sqrt(k)`` (Lemma D2)."""
    u = as_matrix("u", u, ndim=(1,))
    V = as_matrix("V", V)
    B1 = real("B1", B1, minimum=0.0)
    return B1 * float(np.linalg.norm(u)) * float(np.linalg.norm(V, 2)) / math.sqrt(V.shape[1])


class Certificate(NamedTuple):
    """Quantities of Theorems GF / GF+ (spec §6).

    ``R = sigma_0/(2 L_J)``, ``R' = 2 psi_0/(sigma_0 sigma_A)``, ``kappa = sigma_0^2 sigma_A^2/4``,
    ``Delta = R'/(2R)``; ``base`` is ``R' < R``; ``refined`` is ``Delta < 1``, with ``sigma_star``,
    ``kappa_star`` and ``ell_star`` NaN when it fails.
    """

    R: float
    R_prime: float
    kappa: float
    Delta: float
    base: bool
    refined: bool
    sigma_star: float
    kappa_star: float
    ell_star: float


def certificate(sigma0: float, sigmaA: float, L_J: float, psi0: float) -> Certificate:
    """Theorem GF / GF+ certificate quantities.

    Raises
    ------
    ValueError
        If ``sigma0 <= 0`` or ``sigmaA <= 0`` (never use a zero singular value), ``L_J <= 0`` or ``psi0 < 0``.
    """
    sigma0 = real("sigma0", sigma0, minimum=0.0, strict=True)
    sigmaA = real("sigmaA", sigmaA, minimum=0.0, strict=True)
    if L_J != math.inf:
        L_J = real("L_J", L_J, minimum=0.0, strict=True)
    psi0 = real("psi0", psi0, minimum=0.0)
    R = sigma0 / (2.0 * L_J)
    R_prime = 2.0 * psi0 / (sigma0 * sigmaA)
    kappa = sigma0 ** 2 * sigmaA ** 2 / 4.0
    Delta = 2.0 * L_J * psi0 / (sigmaA * sigma0 ** 2) if L_J != math.inf else math.inf
    if Delta == math.inf or math.isnan(Delta):  # ReLU: L_J = inf, R = 0, everything vacuous
        Delta = math.inf
    refined = Delta < 1.0
    if refined:
        root = math.sqrt(1.0 - Delta)
        sigma_star, ell_star = sigma0 * root, R_prime / (1.0 + root)
        kappa_star = sigma_star ** 2 * sigmaA ** 2
    else:
        sigma_star = kappa_star = ell_star = math.nan
    return Certificate(R, R_prime, kappa, Delta, R_prime < R, refined, sigma_star, kappa_star, ell_star)


def rate_upper(J_max: float, norm_A: float) -> float:
    """Proposition GF-: ``kappa_up = J_max^2 ||A||^2`` (every GF trajectory decays no faster)."""
    return real("J_max", J_max, minimum=0.0) ** 2 * real("norm_A", norm_A, minimum=0.0) ** 2


class ObservationCertificate(NamedTuple):
    """Theorem GF-obs: ``R_A = s_0/(2||A|| L_J)``, ``R'_A = 2 psi_0/s_0``, ``Delta_A``; base rate
    ``s_0^2/4`` when ``R'_A < R_A``, refined rate ``s_0^2 (1 - Delta_A)`` when ``Delta_A < 1`` (else NaN)."""

    R_A: float
    R_prime_A: float
    Delta_A: float
    base: bool
    refined: bool
    rate_base: float
    rate_refined: float


def observation_certificate(s0: float, norm_A: float, L_J: float, psi0: float) -> ObservationCertificate:
    """Theorem GF-obs with ``s_0 = sqrt(lambda_{r_A}(A K_0 A^T))`` (needs only ``k >= r_A``).

    Raises
    ------
    ValueError
        If ``s0 <= 0``, ``norm_A <= 0``, ``L_J <= 0`` or ``psi0 < 0``.
    """
    s0 = real("s0", s0, minimum=0.0, strict=True)
    norm_A = real("norm_A", norm_A, minimum=0.0, strict=True)
    L_J = real("L_J", L_J, minimum=0.0, strict=True)
    psi0 = real("psi0", psi0, minimum=0.0)
    R_A = s0 / (2.0 * norm_A * L_J)
    Rp = 2.0 * psi0 / s0
    Delta_A = 2.0 * norm_A * L_J * psi0 / s0 ** 2
    return ObservationCertificate(R_A, Rp, Delta_A, Rp < R_A, Delta_A < 1.0, s0 ** 2 / 4.0,
                                  s0 ** 2 * (1.0 - Delta_A) if Delta_A < 1.0 else math.nan)


class RefinedStep(NamedTuple):
    """Theorem GD+ constants.

    ``Delta_gamma = Delta/beta``; if ``< 1``: path bound ``R'_gamma/(1 + sqrt(1 - Delta_gamma))``,
    ``sigma_star_gamma = sigma_0 sqrt(1 - Delta_gamma)``, rate ``c_gamma sigma_star_gamma^2 sigma_A^2``.
    """

    Delta_gamma: float
    holds: bool
    path_bound: float
    sigma_star_gamma: float
    rate: float


def refined_step(gamma: float, L_nabla_2R: float, sigma0: float, sigmaA: float, Delta: float,
                 R_prime: float) -> RefinedStep:
    """Theorem GD+ constants; ``L_nabla_2R`` must be ``L_nabla(2R)`` (ball of radius ``sigma_0/L_J``)."""
    gamma = real("gamma", gamma, minimum=0.0, strict=True)
    L = real("L_nabla_2R", L_nabla_2R, minimum=0.0, strict=True)
    sigma0 = real("sigma0", sigma0, minimum=0.0, strict=True)
    sigmaA = real("sigmaA", sigmaA, minimum=0.0, strict=True)
    Delta = real("Delta", Delta, minimum=0.0)
    R_prime = real("R_prime", R_prime, minimum=0.0)
    beta = 1.0 - gamma * L / 2.0
    if not beta > 0.0:
        return RefinedStep(math.inf, False, math.nan, math.nan, math.nan)
    Dg = Delta / beta
    if not Dg < 1.0:
        return RefinedStep(Dg, False, math.nan, math.nan, math.nan)
    root = math.sqrt(1.0 - Dg)
    sig = sigma0 * root
    return RefinedStep(Dg, True, R_prime / beta / (1.0 + root), sig, gamma * beta * sig ** 2 * sigmaA ** 2)


def _loss_h_parts(loss: str, varrho: float, p: float, delta: float) -> tuple[float, float]:
    """``(h'(varrho), Lambda(varrho))`` of Lemma S."""
    if loss == "mse":
        return varrho, 1.0
    if loss == "power":
        if p < 2.0:
            raise ValueError(f"p: the power loss needs p >= 2 for a Lipschitz gradient (Lemma S), got {p}")
        return varrho ** (p - 1.0), (p - 1.0) * varrho ** (p - 2.0)
    return min(varrho, delta), 1.0


def gradient_lipschitz(rho: float, *, L_J: float, norm_A: float, J_max: float, r0: float,
                       loss: str = "mse", p: float = 2.0, delta: float = 1.0) -> float:
    """Lemma S: a Lipschitz constant of ``nabla f`` on ``B(theta_0, rho)`` for a radial loss.

    ``L_nabla(rho) = L_J ||A|| h'(varrho) + ||A||^2 J_max^2 Lambda(varrho)`` with
    ``varrho = ||r_0|| + ||A|| J_max rho``.
    """
    rho = real("rho", rho, minimum=0.0)
    L_J = real("L_J", L_J, minimum=0.0)
    norm_A = real("norm_A", norm_A, minimum=0.0)
    J_max = real("J_max", J_max, minimum=0.0)
    r0 = real("r0", r0, minimum=0.0)
    choice("loss", loss, ("mse", "power", "huber"))
    delta = real("delta", delta, minimum=0.0, strict=True)
    varrho = r0 + norm_A * J_max * rho
    dh, lam = _loss_h_parts(loss, varrho, real("p", p, minimum=1.0, strict=True), delta)
    return L_J * norm_A * dh + norm_A ** 2 * J_max ** 2 * lam


class StepConstants(NamedTuple):
    """Theorem GD: ``beta = 1 - gamma L/2``, ``c_gamma = gamma beta``, ``R'_gamma = R'/beta``;
    ``q_gamma = 1 - 2 c_gamma kappa`` (MSE linear rate); ``admissible`` is ``0 < gamma < 2/L``."""

    beta: float
    c_gamma: float
    R_prime_gamma: float
    q_gamma: float
    admissible: bool


def default_step(L_nabla: float) -> float:
    """The default step ``gamma = 1/L_nabla`` [choice] (maximizes ``c_gamma``)."""
    return 1.0 / real("L_nabla", L_nabla, minimum=0.0, strict=True)


def step_constants(gamma: float, L_nabla: float, R_prime: float, kappa: float) -> StepConstants:
    """Theorem GD step constants.

    Raises
    ------
    ValueError
        If ``gamma <= 0`` or ``L_nabla <= 0``.
    """
    gamma = real("gamma", gamma, minimum=0.0, strict=True)
    L_nabla = real("L_nabla", L_nabla, minimum=0.0, strict=True)
    R_prime = real("R_prime", R_prime, minimum=0.0)
    kappa = real("kappa", kappa, minimum=0.0)
    admissible = gamma < 2.0 / L_nabla
    beta = 1.0 - gamma * L_nabla / 2.0
    if not admissible:
        return StepConstants(beta, math.nan, math.inf, math.nan, False)
    c = gamma * beta
    return StepConstants(beta, c, R_prime / beta, 1.0 - 2.0 * c * kappa, True)


# --------------------------------------------------------------------------------------------
# KL rates


def lojasiewicz_Psi(s, c: float, alpha: float):
    """``Psi`` of the Lojasiewicz family ``psi = c s^alpha`` (spec §4.2 table)."""
    s = np.asarray(s, dtype=np.float64)
    if alpha == 0.5:
        return -(c * c / 4.0) * np.log(s)
    return c * c * alpha * alpha / (1.0 - 2.0 * alpha) * s ** (2.0 * alpha - 1.0)


def lojasiewicz_rate(t, L0: float, kappa: float, c: float, alpha: float):
    """``b(t) = Psi^{-1}(Psi(L_0) + kappa t)`` in closed form, for ``psi(s) = c s^alpha``.

    Regimes (spec §4.2): ``alpha < 1/2`` polynomial decay, ``alpha = 1/2`` exponential, ``alpha > 1/2``
    finite-time extinction at :func:`extinction_time` (``b = 0`` afterwards). For GD use ``t = tau c_gamma``.

    Raises
    ------
    ValueError
        If ``L0 <= 0``, ``kappa <= 0``, ``c <= 0``, ``alpha`` outside ``]0, 1]`` or a negative time.
    """
    L0 = real("L0", L0, minimum=0.0, strict=True)
    kappa = real("kappa", kappa, minimum=0.0, strict=True)
    c = real("c", c, minimum=0.0, strict=True)
    alpha = real("alpha", alpha, minimum=0.0, strict=True)
    if alpha > 1.0:
        raise ValueError(f"alpha: must be in ]0, 1], got {alpha}")
    t = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("t: times must be finite and >= 0")
    c2a2 = c * c * alpha * alpha
    if alpha == 0.5:
        out = L0 * np.exp(-4.0 * kappa * t / (c * c))
    else:
        # (L0^-e + e kappa t/(c alpha)^2)^(-1/e) = L0 (1 + x)^(-1/e), and the alpha > 1/2 branch
        # likewise with 1 - x: forming the power of the sum amplifies its rounding by 1/e, which
        # near alpha = 1/2 (e -> 0) exceeds 1e-12; log1p keeps the error O(u) uniformly in e.
        e = abs(1.0 - 2.0 * alpha)
        if alpha < 0.5:
            out = L0 * np.exp(-np.log1p(e * kappa * t * L0 ** e / c2a2) / e)
        else:
            x = e * kappa * t * L0 ** (-e) / c2a2
            with np.errstate(divide="ignore", invalid="ignore"):
                out = np.where(x < 1.0, L0 * np.exp(np.log1p(-np.minimum(x, 1.0)) / e), 0.0)
    return float(out) if out.ndim == 0 else out


def extinction_time(L0: float, kappa: float, c: float, alpha: float) -> float:
    """``T* = c^2 alpha^2 L_0^{2 alpha - 1}/((2 alpha - 1) kappa)`` for ``alpha > 1/2``; ``inf`` otherwise."""
    L0 = real("L0", L0, minimum=0.0, strict=True)
    kappa = real("kappa", kappa, minimum=0.0, strict=True)
    c = real("c", c, minimum=0.0, strict=True)
    alpha = real("alpha", alpha, minimum=0.0, strict=True)
    if alpha <= 0.5:
        return math.inf
    return c * c * alpha * alpha * L0 ** (2.0 * alpha - 1.0) / ((2.0 * alpha - 1.0) * kappa)


def residual_bound(t, r0: float, kappa: float, *, loss: str = "mse", p: float = 2.0, delta: float = 1.0):
    """GF residual bound ``||r(t)|| <= H^{-1}(H(||r_0||) + kappa t)`` for the radial losses (§4.3 table).

    With ``kappa -> kappa_up`` this is the lower bound of Proposition GF-.
    """
    r0 = real("r0", r0, minimum=0.0)
    kappa = real("kappa", kappa, minimum=0.0)
    choice("loss", loss, ("mse", "power", "huber"))
    t = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise ValueError("t: times must be finite and >= 0")
    if loss == "mse" or (loss == "power" and p == 2.0):
        out = np.exp(-kappa * t) * r0
    elif loss == "power":
        p = real("p", p, minimum=1.0, strict=True)
        # r0 (1 +- x)^(+-1/|p-2|) through log1p, for the same reason as in lojasiewicz_rate.
        e = abs(p - 2.0)
        x = e * kappa * t * r0 ** (p - 2.0) if r0 > 0 else np.zeros_like(t)
        if p > 2.0:
            out = r0 * np.exp(-np.log1p(x) / e)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                out = np.where(x < 1.0, r0 * np.exp(np.log1p(-np.minimum(x, 1.0)) / e), 0.0)
    else:
        dH = real("delta", delta, minimum=0.0, strict=True)
        if r0 <= dH:
            out = np.exp(-kappa * t) * r0
        else:
            t1 = (r0 - dH) / (kappa * dH) if kappa > 0 else math.inf
            with np.errstate(over="ignore", invalid="ignore"):
                out = np.where(t <= t1, r0 - kappa * dH * t, dH * np.exp(-kappa * (t - t1)))
    return float(out) if np.ndim(out) == 0 else out


# --------------------------------------------------------------------------------------------
# early stopping and recovery


def early_stopping_time(r0: float, eps_eff: float, kappa: float) -> float:
    """``T_eps = ln(||r_0||/||eps_eff||)/kappa`` (MSE, GF; pass ``kappa_star`` under GF+).

    Raises
    ------
    ValueError
        Unless ``||r_0|| > ||eps_eff|| > 0`` and ``kappa > 0``.
    """
    eps_eff = real("eps_eff", eps_eff, minimum=0.0, strict=True)
    r0 = real("r0", r0, minimum=eps_eff, strict=True)
    kappa = real("kappa", kappa, minimum=0.0, strict=True)
    return math.log(r0 / eps_eff) / kappa


def early_stopping_steps(r0: float, eps_eff: float, q_gamma: float, *, dps: int = 30) -> int:
    """``tau_eps = ceil(2 ln(||r_0||/||eps_eff||)/(-ln q_gamma))`` (MSE, GD), certified with ``mpmath.iv``.

    The interval enclosure is recomputed at doubled precision while it straddles an integer.

    Raises
    ------
    ValueError
        Unless ``||r_0|| > ||eps_eff|| > 0`` and ``0 < q_gamma < 1``.
    """
    eps_eff = real("eps_eff", eps_eff, minimum=0.0, strict=True)
    r0 = real("r0", r0, minimum=eps_eff, strict=True)
    q_gamma = real("q_gamma", q_gamma, minimum=0.0, strict=True)
    if not q_gamma < 1.0:
        raise ValueError(f"q_gamma: must be < 1, got {q_gamma}")
    ctx = mpmath.iv.__class__()
    for _ in range(6):
        ctx.dps = dps
        x = 2 * ctx.log(ctx.mpf(r0) / ctx.mpf(eps_eff)) / (-ctx.log(ctx.mpf(q_gamma)))
        # Ceilings of the exact endpoints: rounding them to float64 first can merge an enclosure
        # that straddles an integer into one ceiling, or refuse one that does not.
        lo, hi = (math.ceil(Fraction(*libmp.to_rational(e))) for e in x._mpi_)
        if lo == hi:
            return int(lo)
        dps *= 2
    raise ValueError("q_gamma: tau_eps lies on an integer to within the enclosure; not certifiable")


def early_stopping_time_radial(loss: RadialLoss, r0: float, eps_norm: float, kappa: float) -> float:
    """General radial loss: ``T_eps = (Psi(h(||eps||)) - Psi(L_0))/kappa`` with ``L_0 = h(||r_0||)`` (§8).

    At ``T_eps`` the residual bound :func:`residual_bound` equals ``||eps||``.

    Raises
    ------
    ValueError
        Unless ``||r_0|| > ||eps|| > 0`` and ``kappa > 0``.
    """
    eps_norm = real("eps_norm", eps_norm, minimum=0.0, strict=True)
    r0 = real("r0", r0, minimum=eps_norm, strict=True)
    kappa = real("kappa", kappa, minimum=0.0, strict=True)
    return float(loss.Psi(loss.h(eps_norm)) - loss.Psi(loss.h(r0))) / kappa


def early_stopping_steps_radial(loss: RadialLoss, r0: float, eps_norm: float, kappa: float,
                                c_gamma: float) -> int:
    """General radial loss, GD: ``tau_eps = ceil((Psi(h(||eps||)) - Psi(L_0))/(c_gamma kappa))`` (§7).

    Float64 only (the ``mpmath.iv`` certificate is :func:`early_stopping_steps`, MSE): a quotient
    within ``1e-9`` relative of an integer is refused rather than rounded the wrong way.

    Raises
    ------
    ValueError
        On bad arguments or an uncertifiable ceiling.
    """
    c_gamma = real("c_gamma", c_gamma, minimum=0.0, strict=True)
    x = early_stopping_time_radial(loss, r0, eps_norm, kappa) / c_gamma
    nearest = round(x)
    if nearest > 0 and abs(x - nearest) <= 1e-9 * x:
        raise ValueError("c_gamma: tau_eps lies on an integer to float64 accuracy; use early_stopping_steps")
    return math.ceil(x)


def effective_data(A, y) -> tuple[np.ndarray, float]:
    """MSE noise projection (§4.4): ``y_eff = P_A y`` and the raw-loss minimum ``||(I - P_A) y||^2/2``.

    Apply every MSE statement to ``(y_eff, eps_eff = P_A eps)``.
    """
    A = as_matrix("A", A)
    y = as_matrix("y", y, ndim=(1,))
    if y.shape[0] != A.shape[0]:
        raise ValueError(f"y: expected length {A.shape[0]}, got {y.shape[0]}")
    Q, s, _ = np.linalg.svd(A, full_matrices=False)
    Q = Q[:, s > s[0] * max(A.shape) * np.finfo(np.float64).eps]
    y_eff = Q @ (Q.T @ y)
    return y_eff, 0.5 * float(np.sum((y - y_eff) ** 2))


def recovery_observation(fit_error, eps_norm: float):
    """Rec-obs: ``||y(t) - A x_bar|| <= ||y(t) - y|| + ||eps||``."""
    return np.asarray(fit_error, dtype=np.float64) + real("eps_norm", eps_norm, minimum=0.0)


def recovery_signal(fit_error, eps_norm: float, mu: float, *, norm_A: float = 0.0, dist: float = 0.0):
    """Rec-sig: ``(||y(t)-y|| + ||eps|| + ||A|| d)/mu + d`` with ``d = ||x_bar - z~||``.

    In regime (a) (``A`` injective) pass ``mu = sigma_n(A)`` and ``dist = 0``.

    Raises
    ------
    ValueError
        If ``mu <= 0`` (the bound is then infinite; Proposition Vac).
    """
    mu = real("mu", mu, minimum=0.0, strict=True)
    dist = real("dist", dist, minimum=0.0)
    norm_A = real("norm_A", norm_A, minimum=0.0)
    return (recovery_observation(fit_error, eps_norm) + norm_A * dist) / mu + dist


# --------------------------------------------------------------------------------------------
# overparameterization (§9)


def chernoff_sigma0_probability(n: int, k: int, C_dphi: float, B1: float, D: float,
                                delta: float = 0.75) -> float:
    """Lemma D3 bound on ``P[lambda_min(K_0) <= (1 - delta) C_phi'^2]``, capped at 1."""
    n = positive_int("n", n)
    k = positive_int("k", k)
    delta = real("delta", delta, minimum=0.0, strict=True)
    if not delta < 1.0:
        raise ValueError(f"delta: must be < 1, got {delta}")
    C_dphi = real("C_dphi", C_dphi, minimum=0.0, strict=True)
    B1 = real("B1", B1, minimum=0.0, strict=True)
    D = real("D", D, minimum=0.0, strict=True)
    expo = (-delta - (1.0 - delta) * math.log(1.0 - delta)) * k * C_dphi ** 2 / (B1 ** 2 * D ** 2 * n)
    return min(1.0, n * math.exp(expo))


def initial_residual_bound(norm_A: float, C_phi: float, n: int, y_norm: float, delta0: float) -> float:
    """Lemma D4: ``rho_delta0 = ||A|| C_phi sqrt(n/delta0) + ||y||``.

    ``psi_0 <= rho_delta0`` with probability ``>= 1 - delta0``.
    """
    delta0 = real("delta0", delta0, minimum=0.0, strict=True)
    if not delta0 < 1.0:
        raise ValueError(f"delta0: must be < 1, got {delta0}")
    return (real("norm_A", norm_A, minimum=0.0) * real("C_phi", C_phi, minimum=0.0)
            * math.sqrt(positive_int("n", n) / delta0) + real("y_norm", y_norm, minimum=0.0))


class WidthThreshold(NamedTuple):
    """Theorem D5: ``k >= k_D5 = max(k_chernoff, k_lazy)`` (strict in ``k_lazy``) gives the GF
    certificate with probability ``>= probability = 1 - 1/n - delta0``."""

    k_chernoff: float
    k_lazy: float
    k: float
    probability: float


_LAZY_FACTOR = {"gf": 256.0, "gd": 1024.0, "gf_refined": 64.0}


def width_threshold(n: int, sigmaA: float, rho: float, *, act: str = "tanh", D: float = 1.0,
                    delta0: float = 0.1, variant: str = "gf") -> WidthThreshold:
    """Theorem D5 width threshold (variant ``gd`` for ``gamma <= 1/L_nabla``, ``gf_refined`` for GF+).

    ``rho`` is ``rho_delta0`` of :func:`initial_residual_bound`.

    Raises
    ------
    ValueError
        On ``sigmaA <= 0``, ReLU (``B_2 = inf``), an unknown variant or bad sizes.
    """
    n = positive_int("n", n, minimum=2)
    sigmaA = real("sigmaA", sigmaA, minimum=0.0, strict=True)
    rho = real("rho", rho, minimum=0.0)
    D = real("D", D, minimum=0.0, strict=True)
    delta0 = real("delta0", delta0, minimum=0.0, strict=True)
    if not delta0 < 1.0:
        raise ValueError(f"delta0: must be < 1, got {delta0}")
    choice("variant", variant, tuple(_LAZY_FACTOR))
    const = activation_constants(act)
    if not math.isfinite(const.B2):
        raise ValueError(f"act: {act} has B_2 = inf (no Lipschitz Jacobian, spec §3.5)")
    k_ch = CHERNOFF_WIDTH * const.B1 ** 2 * D ** 2 / const.C_dphi ** 2 * n * math.log(n)
    k_lazy = _LAZY_FACTOR[variant] * const.B2 ** 2 * D ** 2 / const.C_dphi ** 4 * n * rho ** 2 / sigmaA ** 2
    return WidthThreshold(k_ch, k_lazy, max(k_ch, k_lazy), 1.0 - 1.0 / n - delta0)


# --------------------------------------------------------------------------------------------
# [unverified] paper profiles (§9.6)


def paper_width_4th_power(n: int, m: int, d: int, sigmaA: float, norm_A: float, Ax_inf: float,
                          eps_inf: float, *, C: float = 1.0, C_prime: float = 1.0) -> NamedConstant:
    """Believed form of (a)/(c)'s width condition for MSE, ``k >= C' sigma_A^-4 n X^4`` [unverified].

    ``X = C ||A|| sqrt(n log d) + sqrt(m)(||A x_bar||_inf + ||eps||_inf)``; ``C = C' = 1`` is arbitrary.
    """
    n = positive_int("n", n)
    m = positive_int("m", m)
    d = positive_int("d", d)
    sigmaA = real("sigmaA", sigmaA, minimum=0.0, strict=True)
    X = (real("C", C, minimum=0.0) * real("norm_A", norm_A, minimum=0.0) * math.sqrt(n * math.log(d))
         + math.sqrt(m) * (real("Ax_inf", Ax_inf, minimum=0.0) + real("eps_inf", eps_inf, minimum=0.0)))
    value = real("C_prime", C_prime, minimum=0.0) * n * X ** 4 / sigmaA ** 4
    return NamedConstant(value, "paper_width_4th_power.k", "[unverified]", "paper_width_4th_power",
                         {"C": C, "C_prime": C_prime, "X": X})


def paper_probability(n: int, d: int) -> NamedConstant:
    """Believed success probability ``1 - 2/n - 1/d`` [unverified]."""
    n = positive_int("n", n)
    d = positive_int("d", d)
    return NamedConstant(1.0 - 2.0 / n - 1.0 / d, "paper_probability.p", "[unverified]", "paper_probability",
                         {"n": n, "d": d})


def paper_sigma0_width(n: int, *, C_second: float = 1.0) -> NamedConstant:
    """Believed width ``k >= C'' n log n`` for ``sigma_0 >= C_phi'/2`` w.p. ``1 - 1/n`` [unverified]."""
    n = positive_int("n", n)
    C_second = real("C_second", C_second, minimum=0.0, strict=True)
    return NamedConstant(C_second * n * math.log(n), "paper_sigma0.k", "[unverified]", "paper_sigma0",
                         {"C_second": C_second})
