"""Deep Inverse Prior instances: the spec, its materialization with the certificate constants, and
trajectory caches.

This module composes the layers for the ``dip`` family: it draws the network with
:mod:`dynamics.dip_two_layer`, the operator and the data here (spec ``dip.md`` §11 defaults), takes
every certificate quantity from :mod:`bounds.dip_two_layer`, and runs gradient flow / gradient
descent once per spec (cached, because many claims read the same trajectory).

Two ways to make data [choice, spec §10.5]:

* **constructed** (``t_R`` set): ``y := A g_0 - rho e`` with ``e`` a random unit vector of
  ``Im A`` and ``rho`` chosen so that the certificate ratio ``R'/R`` (or ``R'_A/R_A`` with
  ``target="obs"``) equals ``t_R`` exactly. The width needed to certify a natural instance is
  ``~10^4-10^6``; construction certifies at any width, so property tests stay small. With
  ``noise_rel > 0`` a noise ``eps in Im A`` of norm ``noise_rel * ||r_0||`` is split off and
  ``x_bar := A^+(y - eps) + (I - A^+ A) g_0`` (the signal closest to ``g_0`` with
  ``A x_bar + eps = y``).
* **natural** (``t_R=None``): ``x_bar`` on the sphere of radius ``sqrt(n)`` or a teacher
  ``g(u, z_star u^T)`` (spec §8(b)), noise ``eps`` of norm ``noise_rel * ||A x_bar||``.

For MSE every statement uses the effective data ``(y_eff, eps_eff) = (P_A y, P_A eps)`` (spec §4.4,
noise projection): the instance handed to the dynamics carries ``y_eff``, which changes the loss by
a constant and the gradient not at all; the raw data stay on :class:`DIPCase`.
"""

from __future__ import annotations

import dataclasses
import functools
import math

import numpy as np

from bounds import dip_two_layer as dipb
from dynamics import dip_two_layer as dip
from dynamics._validate import choice, positive_int, real
from dynamics.errors import DivergenceError
from verification import tolerance as tol
from verification.engine import Hypothesis, HypothesisFailed
from verification.instances import spec_type

SIGNALS = ("sphere", "teacher")
TARGETS = ("base", "obs")
STEP_BALLS = ("R", "2R")
FLOW_STOP_RATIO = 1e-9
"""Terminal event of the flow, ``||r|| <= 1e-9 ||r_0||`` (spec §10.2)."""


@spec_type
@dataclasses.dataclass(frozen=True)
class DIPSpec:
    """A reproducible DIP instance.

    Attributes
    ----------
    n, m, k, d : int
        Signal dimension, measurements, width, input dimension.
    activation : str
        ``tanh`` (default), ``sigmoid``, ``softplus`` or ``relu`` (out-of-hypothesis contrast).
    v_law : str
        Law of the fixed second layer: ``rademacher`` (``D = 1``) or ``uniform`` (``D = sqrt 3``).
    cond : float
        Condition number of ``A = U diag(geomspace(1, 1/cond, min(m, n))) Q^T`` (``||A|| = 1``).
    loss : str
        ``mse``, ``power`` (exponent ``p``) or ``huber`` (``delta_H = huber_rel * ||r_0||``).
    p, huber_rel : float
        Loss parameters.
    t_R : float or None
        Constructed certificate ratio (see the module docstring); ``None`` for natural data. The
        default 0.4 leaves room for the default GD step: ``gamma = 1/L_nabla`` gives
        ``R'_gamma = 2 R'``, so ``t_R = 0.5`` would put ``R'_gamma = R`` on the boundary, decided
        by rounding.
    target : str
        Which ratio ``t_R`` fixes: ``base`` (``R'/R``) or ``obs`` (``R'_A/R_A``, Theorem GF-obs).
    signal : str
        Natural signals: ``sphere`` or ``teacher``.
    noise_rel : float
        Relative noise level (see the module docstring).
    step_c, step_ball : float, str
        GD step ``gamma = step_c / L_nabla(rho)`` with ``rho = R`` or ``2R`` (Lemma S).
    steps, record_every : int
        GD steps and record spacing.
    horizon : float
        Gradient-flow horizon as a multiple of the spec's default (``30/kappa`` for MSE, see
        :func:`flow_horizon`).
    seed : int
        Master seed; ``SeedSequence(seed).spawn(3)`` gives the network, operator and data streams,
        so specs that differ only in the loss or the step share the network and operator.
    """

    n: int = 6
    m: int = 8
    k: int = 256
    d: int = 3
    activation: str = "tanh"
    v_law: str = "rademacher"
    cond: float = 2.0
    loss: str = "mse"
    p: float = 3.0
    huber_rel: float = 0.1
    t_R: float | None = 0.4
    target: str = "base"
    signal: str = "sphere"
    noise_rel: float = 0.0
    step_c: float = 1.0
    step_ball: str = "R"
    steps: int = 500
    record_every: int = 1
    horizon: float = 1.0
    seed: int = 0

    def __post_init__(self):
        for name in ("n", "m", "k", "d"):
            positive_int(name, getattr(self, name))
        positive_int("steps", self.steps, minimum=0)
        positive_int("record_every", self.record_every)
        positive_int("seed", self.seed, minimum=0)
        choice("activation", self.activation, dip.ACTIVATION_NAMES)
        choice("v_law", self.v_law, dip.V_LAWS)
        choice("loss", self.loss, dip.LOSS_NAMES)
        choice("target", self.target, TARGETS)
        choice("signal", self.signal, SIGNALS)
        choice("step_ball", self.step_ball, STEP_BALLS)
        real("cond", self.cond, minimum=1.0)
        real("p", self.p, minimum=1.0, strict=True)
        real("huber_rel", self.huber_rel, minimum=0.0, strict=True)
        real("noise_rel", self.noise_rel, minimum=0.0)
        real("step_c", self.step_c, minimum=0.0, strict=True)
        real("horizon", self.horizon, minimum=0.0, strict=True)
        if self.t_R is not None:
            real("t_R", self.t_R, minimum=0.0, strict=True)
        if self.k * self.d < self.n:
            raise ValueError(f"k: k d = {self.k * self.d} < n = {self.n}, so J can never have "
                             f"rank n")

    def replace(self, **changes) -> DIPSpec:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True, eq=False)
class DIPCase:
    """A materialized :class:`DIPSpec`: the instance, the loss and every certificate constant.

    ``inst`` carries the effective data for MSE (``y_eff``, ``eps_eff``); ``y_raw``/``eps_raw`` are
    the data as drawn. Constants follow spec §5-§9 (names as there); ``cert`` and ``obs`` are
    ``None`` when ``sigma_0 = 0`` (resp. ``s_0 = 0``) or ``sigma_A = 0``.
    """

    spec: DIPSpec
    inst: dip.DIPInstance
    loss: dip.RadialLoss
    consts: dipb.ActivationConstants
    D: float
    y_raw: np.ndarray
    eps_raw: np.ndarray
    z_star: np.ndarray | None
    sigma0: float
    sigmaA: float
    norm_A: float
    rank_A: int
    sigma_n_A: float
    L_J: float
    J_max: float
    r0: float
    eps_eff_norm: float
    cert: dipb.Certificate | None
    s0: float
    obs: dipb.ObservationCertificate | None
    L_nabla_R: float
    L_nabla_2R: float
    gamma: float
    step: dipb.StepConstants | None
    """Theorem GD constants at ``gamma``; ``R_prime_gamma`` and ``q_gamma`` are meaningful only
    when ``cert`` exists."""
    refined_step: dipb.RefinedStep | None

    @property
    def psi0(self) -> float:
        """``psi(L_0) = ||r_0||`` for every radial loss (spec §4.3)."""
        return self.r0

    @property
    def R(self) -> float:
        return self.cert.R if self.cert is not None else 0.0


def make_operator(m: int, n: int, cond: float, rng: np.random.Generator) -> np.ndarray:
    """``A = U diag(geomspace(1, 1/cond, min(m, n))) Q^T`` with Haar ``U``, ``Q`` (spec §11)."""
    from scipy.stats import ortho_group

    r = min(m, n)
    U = ortho_group.rvs(m, random_state=rng) if m > 1 else np.ones((1, 1))
    Q = ortho_group.rvs(n, random_state=rng) if n > 1 else np.ones((1, 1))
    s = np.geomspace(1.0, 1.0 / cond, r)
    return (U[:, :r] * s) @ Q[:, :r].T


def _unit_in_range(A: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    e = A @ rng.standard_normal(A.shape[1])
    return e / np.linalg.norm(e)


def _range_projector(A: np.ndarray) -> np.ndarray:
    Uf, s, _ = np.linalg.svd(A, full_matrices=False)
    Uf = Uf[:, s > s[0] * max(A.shape) * np.finfo(float).eps]
    return Uf @ Uf.T


def _lnabla(spec, loss, L_J, norm_A, J_max, r0, rho):
    return dipb.gradient_lipschitz(rho, L_J=L_J, norm_A=norm_A, J_max=J_max, r0=r0,
                                   loss=spec.loss, p=spec.p, delta=loss.delta)


@functools.lru_cache(maxsize=256)
def materialize(spec: DIPSpec) -> DIPCase:
    """Draw the network, operator and data of ``spec`` and compute its certificate constants."""
    net_ss, op_ss, data_ss = np.random.SeedSequence(spec.seed).spawn(3)
    rng_op = np.random.default_rng(op_ss)
    rng_data = np.random.default_rng(data_ss)
    A = make_operator(spec.m, spec.n, spec.cond, rng_op)
    net_seed = int(net_ss.generate_state(1)[0])
    base = dip.make_instance(spec.n, spec.m, spec.k, spec.d, net_seed, activation=spec.activation,
                             v_law=spec.v_law, A=A)
    consts = dipb.activation_constants(spec.activation)
    D = 1.0 if spec.v_law == "rademacher" else math.sqrt(3.0)
    g0 = dip.generator(base)
    sigma0 = float(dip.sigma_min_jacobian(base))
    sv = np.linalg.svd(A, compute_uv=False)
    rank_A = int(np.sum(sv > sv[0] * max(A.shape) * np.finfo(float).eps))
    sigma_n_A = float(sv[spec.n - 1]) if (spec.m >= spec.n and rank_A == spec.n) else 0.0
    norm_A = float(sv[0])
    sigmaA = dipb.sigma_A(A, radial=True, y_in_range=True)
    L_J = dipb.jacobian_lipschitz(base.u, base.V, consts.B2)
    J_max = dipb.jacobian_norm_bound(base.u, base.V, consts.B1)
    K0 = dip.gram(base)
    M0_eig = np.linalg.eigvalsh(A @ K0 @ A.T)[::-1]
    # The same eigenvalue floor as sigma_min (spec §10.3): lambda_{r_A} < 1e-12 lambda_max is
    # rounding, not a positive s_0^2.
    lam_rA = M0_eig[rank_A - 1] if spec.k >= rank_A else 0.0
    s0 = float(math.sqrt(lam_rA)) if lam_rA >= dip.SIGMA_FLOOR_RATIO * M0_eig[0] else 0.0
    z_star = None
    if spec.t_R is not None:
        if spec.target == "base" and sigma0 > 0 and math.isfinite(L_J):
            rho = spec.t_R * (sigma0 / (2 * L_J)) * sigma0 * sigmaA / 2.0
        elif spec.target == "obs" and s0 > 0 and math.isfinite(L_J):
            rho = spec.t_R * (s0 / (2 * norm_A * L_J)) * s0 / 2.0
        else:
            # Nothing to construct against (sigma_0 = 0, s_0 = 0 or ReLU): a residual of the
            # size of the initial output; every certificate hypothesis fails on it anyway.
            rho = spec.t_R * float(np.linalg.norm(A @ g0))
        e = _unit_in_range(A, rng_data)
        y = A @ g0 - rho * e
        eps = spec.noise_rel * rho * _unit_in_range(A, rng_data)
        A_pinv = np.linalg.pinv(A)
        x_bar = A_pinv @ (y - eps) + g0 - A_pinv @ (A @ g0)
    else:
        if spec.signal == "sphere":
            xi = rng_data.standard_normal(spec.n)
            x_bar = math.sqrt(spec.n) * xi / np.linalg.norm(xi)
        else:
            z_star = rng_data.standard_normal(spec.k)
            x_bar = dip.generator(base, z=z_star)
        Ax = A @ x_bar
        if spec.loss == "mse":
            direction = rng_data.standard_normal(spec.m)
            direction /= np.linalg.norm(direction)
        else:
            # Power and Huber need y in Im A for (RC) case (ii) when m > n (spec §4.4).
            direction = _unit_in_range(A, rng_data)
        eps = spec.noise_rel * float(np.linalg.norm(Ax)) * direction
        y = Ax + eps
    P = _range_projector(A)
    y_use, eps_use = (P @ y, P @ eps) if spec.loss == "mse" else (y, eps)
    inst = dip.build_instance(base.u, base.W0, base.V, A, y_use, activation=spec.activation,
                              x_bar=x_bar, eps=eps_use, seed=spec.seed)
    r0 = float(np.linalg.norm(A @ g0 - y_use))
    delta_H = spec.huber_rel * max(r0, np.finfo(float).tiny)
    loss = dip.make_loss(spec.loss, p=spec.p, delta=delta_H)
    cert = (dipb.certificate(sigma0, sigmaA, L_J, r0)
            if sigma0 > 0 and sigmaA > 0 and math.isfinite(L_J) else None)
    obs = (dipb.observation_certificate(s0, norm_A, L_J, r0)
           if s0 > 0 and math.isfinite(L_J) else None)
    R = cert.R if cert is not None else 0.0
    gd_loss_ok = spec.loss != "power" or spec.p >= 2.0
    if gd_loss_ok and math.isfinite(L_J):
        L_R = _lnabla(spec, loss, L_J, norm_A, J_max, r0, R)
        L_2R = _lnabla(spec, loss, L_J, norm_A, J_max, r0, 2 * R)
        gamma = spec.step_c / (L_R if spec.step_ball == "R" else L_2R)
        # Without a certificate (sigma_0 = 0) there is no R' and no rate: step constants only.
        step = dipb.step_constants(gamma, L_R, cert.R_prime if cert else 0.0,
                                   cert.kappa if cert else 0.0)
        refined = (dipb.refined_step(gamma, L_2R, sigma0, sigmaA, cert.Delta, cert.R_prime)
                   if cert is not None and math.isfinite(cert.Delta) else None)
    else:
        L_R = L_2R = math.inf
        # A step for the contrast runs only (power p < 2, ReLU): the quadratic-stability scale.
        gamma = spec.step_c / max(norm_A ** 2 * J_max ** 2, np.finfo(float).tiny)
        step = refined = None
    return DIPCase(spec=spec, inst=inst, loss=loss, consts=consts, D=D, y_raw=y, eps_raw=eps,
                   z_star=z_star, sigma0=sigma0, sigmaA=sigmaA, norm_A=norm_A, rank_A=rank_A,
                   sigma_n_A=sigma_n_A, L_J=L_J, J_max=J_max, r0=r0,
                   eps_eff_norm=float(np.linalg.norm(eps_use)), cert=cert, s0=s0, obs=obs,
                   L_nabla_R=L_R, L_nabla_2R=L_2R, gamma=gamma, step=step, refined_step=refined)


def residual_scale(case: DIPCase) -> float:
    """Rounding scale of a computed residual ``r = A g(z) - y``: ``||y|| + ||A|| J_max ||z_0|| + ||r_0||``.

    ``||r||`` is formed by cancelling ``A g(z)`` against ``y``, so its rounding error is ``u`` times the
    size of those terms, not of ``r`` (which tends to 0).
    """
    return (float(np.linalg.norm(case.inst.y))
            + case.norm_A * case.J_max * float(np.linalg.norm(case.inst.z0))
            + case.r0)


def sigma_min_allowance(case: DIPCase, sigma) -> np.ndarray:
    """Rounding allowance of ``sigma_0 - (...) <= sigma_min(J(theta))`` at computed records.

    ``sigma_0`` and every record are ``sqrt(eigvalsh(K))`` of a computed Gram matrix. Forming ``K``
    and ``eigvalsh`` are backward stable, so (Weyl) each computed eigenvalue errs by ``~u
    lambda_max(K) <= u J_max^2`` times a dimension factor, and its square root by that over
    ``sigma_hat + sigma <= ...``, i.e. by ``<= u J_max^2 / sigma_hat``: an *absolute* error that is
    large relative to a small ``sigma``. Both sides carry one, so the class-I allowance takes the
    scale ``J_max^2 (1/sigma_0 + 1/sigma_record)`` (a relative class-I allowance on ``sigma_0``
    alone was 150x too small on ``DIPSpec(n=6, m=3, k=6, d=6, ..., seed=56013)``, where
    ``sigma_0 = 1.5e-3``).

    Parameters
    ----------
    case : DIPCase
    sigma : array_like
        The computed ``sigma_min`` records.

    Returns
    -------
    numpy.ndarray
    """
    sig = np.asarray(sigma, dtype=float)
    # A floored record (0, spec §10.3) is not resolved; it keeps the sigma_0 term only, so the
    # comparison against it fails instead of being waved through by an infinite allowance.
    inv = np.divide(1.0, sig, out=np.zeros_like(sig), where=sig > 0)
    scale = case.J_max ** 2 * (1.0 / case.sigma0 + inv)
    return np.array([tol.inequality(case.sigma0, case.sigma0, sc, max(case.inst.n, case.inst.k))
                     for sc in np.atleast_1d(scale)]).reshape(sig.shape)


def flow_horizon(case: DIPCase) -> float:
    """The gradient-flow horizon of spec §10.2, times ``spec.horizon``.

    ``30/kappa`` for MSE and Huber (plus the linear phase ``t_1`` of Huber), ``10^3/(kappa ||r_0||^(p-2))``
    for power losses, with the base rate ``kappa = sigma_0^2 sigma_A^2/4`` (or ``s_0^2/4`` when only
    the observation certificate exists).
    """
    if case.cert is not None:
        kappa = case.cert.kappa
    elif case.obs is not None:
        kappa = case.obs.rate_base
    else:
        raise HypothesisFailed("sigma0_positive", "no certificate rate to size the horizon")
    spec, r0 = case.spec, case.r0
    if spec.loss == "power" and spec.p != 2.0:
        t = 1e3 / (kappa * r0 ** (spec.p - 2.0))
    elif spec.loss == "huber":
        delta = case.loss.delta
        t = 30.0 / kappa + max(0.0, (r0 - delta) / (kappa * delta))
    else:
        t = 30.0 / kappa
    return t * spec.horizon


@functools.lru_cache(maxsize=64)
def flow(spec: DIPSpec, *, rtol: float = 1e-10, atol: float = 1e-12,
         method: str = "DOP853") -> dip.Trajectory:
    """Gradient flow of ``spec`` to :func:`flow_horizon` (cached; do not mutate the result)."""
    case = materialize(spec)
    try:
        return dip.run_flow(case.inst, case.loss, flow_horizon(case), rtol=rtol, atol=atol,
                            method=method, stop_ratio=FLOW_STOP_RATIO)
    except DivergenceError as exc:
        raise HypothesisFailed("stable_run", str(exc)) from exc


@functools.lru_cache(maxsize=64)
def descent(spec: DIPSpec) -> dip.Trajectory:
    """Gradient descent of ``spec`` with step ``case.gamma`` (cached; do not mutate the result)."""
    case = materialize(spec)
    try:
        return dip.run_gd(case.inst, case.loss, case.gamma, spec.steps,
                          record_every=spec.record_every)
    except DivergenceError as exc:
        raise HypothesisFailed("stable_run", str(exc)) from exc


# --------------------------------------------------------------------------------------------
# hypotheses shared by the DIP claims (spec §6 standing hypotheses (H), §7, §8)


def _h(name: str, description: str, test) -> Hypothesis:
    return Hypothesis(name, description, lambda sp: bool(test(materialize(sp))))


SMOOTH_ACTIVATION = Hypothesis("smooth_activation", "phi in C^1 with phi' Lipschitz (B_2 < inf)",
                               lambda sp: sp.activation != "relu")
WIDTH_AT_LEAST_N = Hypothesis("width_at_least_n", "k >= n (Lemma D1(iv))", lambda sp: sp.k >= sp.n)
SIGMA0_POSITIVE = _h("sigma0_positive", "sigma_0 = sigma_min(J(theta_0)) > 0 (above the 1e-12 "
                     "eigenvalue floor)", lambda c: c.sigma0 > 0)
RANGE_CONDITION = _h("range_condition", "(RC) holds with sigma_A > 0", lambda c: c.sigmaA > 0)
BASE_CERTIFICATE = _h("base_certificate", "R' < R (Theorem GF)",
                      lambda c: c.cert is not None and c.cert.base)
REFINED_CERTIFICATE = _h("refined_certificate", "Delta = R'/(2R) < 1 (Theorem GF+)",
                         lambda c: c.cert is not None and c.cert.refined)
OBS_SIGNAL = _h("s0_positive", "s_0 = sqrt(lambda_{r_A}(A K_0 A^T)) > 0", lambda c: c.obs is not None)
OBS_BASE_CERTIFICATE = _h("obs_base_certificate", "R'_A < R_A (Theorem GF-obs)",
                          lambda c: c.obs is not None and c.obs.base)
OBS_REFINED_CERTIFICATE = _h("obs_refined_certificate", "Delta_A < 1 (Theorem GF-obs, refined)",
                             lambda c: c.obs is not None and c.obs.refined)
GD_LOSS = Hypothesis("gd_loss", "nabla L_y locally Lipschitz: MSE, power p >= 2 or Huber",
                     lambda sp: sp.loss != "power" or sp.p >= 2.0)
STEP_ADMISSIBLE = _h("step_admissible", "0 < gamma < 2/L_nabla(R) (Theorem GD)",
                     lambda c: c.step is not None and c.step.admissible)
GD_CERTIFICATE = _h("gd_certificate", "R'_gamma = R'/beta_gamma < R (Theorem GD)",
                    lambda c: c.cert is not None and c.step is not None and c.step.admissible
                    and c.step.R_prime_gamma < c.cert.R)
GD_REFINED_CERTIFICATE = _h("gd_refined_certificate",
                            "gamma < 2/L_nabla(2R) and Delta_gamma < 1 (Theorem GD+)",
                            lambda c: c.refined_step is not None and c.refined_step.holds)
MSE = Hypothesis("mse", "the MSE loss", lambda sp: sp.loss == "mse")
RADIAL_LOSS = Hypothesis("radial_loss", "a radial loss of §4.3 (all supported losses are)",
                         lambda sp: sp.loss in dip.LOSS_NAMES)
INJECTIVE_OPERATOR = _h("injective_operator", "m >= n and rank A = n (regime (a) of §8)",
                        lambda c: c.sigma_n_A > 0)
NOISE_BELOW_RESIDUAL = _h("noise_below_residual", "||r_0|| > ||eps_eff||",
                          lambda c: c.r0 > c.eps_eff_norm)
NOISE_POSITIVE = _h("noise_positive", "||eps_eff|| > 0 (early stopping has a target)",
                    lambda c: c.eps_eff_norm > 0)

GF_HYPOTHESES = (SMOOTH_ACTIVATION, WIDTH_AT_LEAST_N, SIGMA0_POSITIVE, RANGE_CONDITION,
                 RADIAL_LOSS)
"""The standing hypotheses (H) of spec §6 (the certificate is added per claim)."""
GD_HYPOTHESES = (*GF_HYPOTHESES, GD_LOSS, STEP_ADMISSIBLE)
