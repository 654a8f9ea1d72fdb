"""DIP claims on gradient descent: Lemma S, Theorems GD / GD+, discretization, step regimes, early
stopping (spec ``dip.md`` §7 and the §12 catalogue).

Trajectories come from :func:`verification.dip_instances.descent` (cached ``run_gd`` at the step
``case.gamma = step_c / L_nabla(R or 2R)``; records every ``record_every`` steps). Claims that need
every step and the gradient at every iterate (monotone descent, one-step contraction, early
stopping) re-run the same recursion (the update of :func:`dynamics.dip_two_layer.gd_step_z`) in
:func:`_per_step`; the re-run is checked to reproduce the recorded trajectory. Every constant comes from
:func:`verification.dip_instances.materialize` and :mod:`bounds.dip_two_layer`.

Tolerances (spec §10.3), and where the allowances come from:

* GD inequalities: ``lhs <= rhs (1 + 1e-9) + 1e-14 scale``. Every check is made on the *computed*
  iterates, so the rounding that matters is that of evaluating both sides at a computed state, not
  the drift of the float64 trajectory from the exact one. The relative term covers rounding that
  scales with the compared quantities (sums of up to ``10^4`` step norms, powers ``q^tau``); the
  absolute term uses the scale of the rounding of a computed residual ``r = A V phi(z)/sqrt k - y``:
  its entries carry an error ``~u (||y|| + ||A|| J_max ||z||)`` (the data, and the rounding ``u ||z||``
  of the state propagated through the ``J_max``-Lipschitz generator), so
  ``residual scale = ||y|| + ||A|| J_max ||z_0|| + ||r_0||`` and, to first order
  (``dL = h'(||r||) d||r||``, ``h'`` non-decreasing and ``||r_tau|| <= ||r_0||`` under the
  theorems), ``loss scale = h'(||r_0||) * residual scale``. Bounds that multiply residuals by a
  constant ``c`` use ``c * residual scale``. ``1e-14`` is ``~90 u``, which covers the ``sqrt(k)``
  growth of the inner products for ``k`` up to ``~8000``.
* Loss- and residual-based checks whose right side decays to zero (rates, monotone descent) are made
  only at steps with ``L_tau >= 1e-24 L_0`` (below, the relative rounding of ``L_tau`` is no longer
  small against ``1e-9``); if no step remains, the instance is vacuous (``above_numerical_floor``).
* Pointwise algebra at a computed state (Weyl's inequality, norms and eigenvalues of ``A K_0 A^T``,
  gradient differences): class I of :mod:`verification.tolerance`.
* Exact statements about the constants (``dip.gd_discretization_constant``) are decided in rational
  arithmetic (:class:`fractions.Fraction`) or ``mpmath`` at 50 digits; agreement of the module's
  float64 constants with the exact ones uses class U (a handful of float operations).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from fractions import Fraction

import mpmath
import numpy as np
from mpmath import libmp

from bounds import dip_two_layer as dipb
from dynamics import dip_two_layer as dip
from verification import tolerance as tol
from verification.dip_instances import (
    GD_CERTIFICATE,
    GD_HYPOTHESES,
    GD_LOSS,
    GD_REFINED_CERTIFICATE,
    MSE,
    NOISE_BELOW_RESIDUAL,
    NOISE_POSITIVE,
    RADIAL_LOSS,
    RANGE_CONDITION,
    SIGMA0_POSITIVE,
    SMOOTH_ACTIVATION,
    DIPSpec,
    descent,
    materialize,
    residual_scale,
    sigma_min_allowance,
)
from verification.engine import Evidence, Hypothesis, HypothesisFailed, Kind, claim

REF = "docs/theory/dip.md"

GD_RTOL = 1e-9
"""Relative allowance of GD inequalities (spec §10.3)."""
GD_SCALE = 1e-14
"""Absolute allowance of GD inequalities, times the rounding scale (spec §10.3; module docstring)."""
GD_FLOOR = 1e-24
"""Loss-based GD checks only while ``L_tau >= 1e-24 L_0`` (spec §10.3)."""
EARLY_STOPPING_MAX_STEPS = 20_000
"""Step budget of the early-stopping run (to ``2 tau_eps``); beyond it the instance is vacuous."""
LIPSCHITZ_CLOSE = 1e-3
"""Separation of the close pairs of ``dip.gd_grad_lipschitz``, relative to the ball radius."""


# --------------------------------------------------------------------------------------------
# hypotheses specific to these claims

def _case_test(test):
    return lambda sp: bool(test(materialize(sp)))


def _exact_step(case) -> Fraction:
    """``gamma = step_c / L_nabla(ball)`` as an exact rational of the float64 inputs: the value the
    module's float ``case.gamma`` rounds."""
    L_ball = case.L_nabla_R if case.spec.step_ball == "R" else case.L_nabla_2R
    return Fraction(case.spec.step_c) / Fraction(L_ball)


def _step_at_most_inverse_L(case) -> bool:
    if not (math.isfinite(case.L_nabla_R) and math.isfinite(case.L_nabla_2R)):
        return False
    return _exact_step(case) * Fraction(case.L_nabla_R) <= 1


STEP_AT_MOST_INVERSE_L = Hypothesis(
    "step_at_most_inverse_L", "gamma <= 1/L_nabla(R), decided exactly for gamma = step_c/L_nabla(ball)",
    _case_test(_step_at_most_inverse_L))

GD_BASE_HYPOTHESES = (*GD_HYPOTHESES, GD_CERTIFICATE)
"""Theorem GD: the standing hypotheses, 0 < gamma < 2/L_nabla(R) and R'_gamma < R."""
GD_REFINED_HYPOTHESES = (*GD_HYPOTHESES, GD_REFINED_CERTIFICATE)
"""Theorem GD+: gamma < 2/L_nabla(2R) and Delta_gamma < 1."""


# --------------------------------------------------------------------------------------------
# helpers

def _gd_allowance(rhs, scale):
    """Spec §10.3 GD allowance ``1e-9 |rhs| + 1e-14 scale`` (see the module docstring)."""
    return GD_RTOL * np.abs(np.asarray(rhs, dtype=float)) + GD_SCALE * np.asarray(scale, dtype=float)


def _loss_scale(case, fit) -> np.ndarray:
    """First-order rounding scale of computed losses at residual norms ``fit``: ``h'(||r||)`` times
    the residual scale (``dL = h'(||r||) d||r||``)."""
    return np.asarray(case.loss.dh(np.asarray(fit, dtype=float))) * residual_scale(case)


def _step_loss_scale(case, steps, live) -> np.ndarray:
    """Loss rounding scale of the step ``tau -> tau + 1`` at the live steps: the larger residual of
    the two ends."""
    return _loss_scale(case, np.maximum(steps.fit[:-1], steps.fit[1:])[live])



def _exact_compare(ev: Evidence, label: str, lhs: Fraction, rhs: Fraction, *, strict: bool = False,
                   **witness) -> bool:
    """Record ``lhs <= rhs`` (``<`` if ``strict``) decided in exact arithmetic.

    The comparison stores the nearest floats (rounding is monotone, so a true ``<=`` stays true);
    when rounding would make a false statement look true, the stored left side is moved one ulp
    above the right side so that the comparison fails as the exact decision does.
    """
    holds = lhs < rhs if strict else lhs <= rhs
    obs, bound = float(lhs), float(rhs)
    if not holds and obs <= bound:
        obs = math.nextafter(bound, math.inf)
    ev.compare(label, obs, bound, exact_slack=str(rhs - lhs), **witness)
    return holds


def _trajectory(spec: DIPSpec, ev: Evidence) -> dip.Trajectory | None:
    """``descent(spec)``, or ``None`` after recording a failing check if GD diverged.

    ``descent`` reports a divergence as the hypothesis ``stable_run``; the claims here are evaluated
    only under a GD certificate, whose Theorem forbids it (``L_tau <= L_0``), so a divergence is a
    violation, not a vacuous instance.
    """
    try:
        return descent(spec)
    except HypothesisFailed as exc:
        if exc.name != "stable_run":
            raise
        ev.compare("GD stays below run_gd's divergence guard 1e6 max(L_0, 1) (Theorem GD: L_tau <= L_0)",
                   1.0, 0.0, detail=exc.detail)
        return None


@dataclasses.dataclass(frozen=True)
class _Steps:
    """Every step of GD: ``loss[tau]``, ``fit[tau] = ||r_tau||``, ``grad[tau] = ||grad f(theta_tau)||``,
    path length and drift, for ``tau = 0..T``."""

    loss: np.ndarray
    fit: np.ndarray
    grad: np.ndarray
    path_length: np.ndarray
    drift: np.ndarray


@functools.lru_cache(maxsize=32)
def _per_step(spec: DIPSpec) -> _Steps:
    """Re-run the GD recursion of :func:`descent` step by step, with the gradient norm at each
    iterate.

    ``grad_theta f = b u^T`` (Lemma D1(ii)) and ``z_velocity = -||u||^2 b``, so
    ``||grad_theta f|| = ||b|| ||u|| = ||z_velocity|| / ||u||``. The iterate is ``gd_step_z``'s update
    ``z + gamma z_velocity(z)`` (the recursion ``run_gd`` iterates) with the velocity computed once
    for both uses; the losses agree bitwise with the records (checked by :func:`_check_rerun`).
    """
    case = materialize(spec)
    inst, loss, gamma = case.inst, case.loss, case.gamma
    u_norm = float(np.linalg.norm(inst.u))
    z0 = inst.z0
    z = z0.copy()
    n = spec.steps + 1
    out = {name: np.empty(n) for name in ("loss", "fit", "grad", "path_length", "drift")}
    ell = 0.0
    for tau in range(n):
        v = dip.generator(inst, z=z) @ inst.A.T
        out["loss"][tau] = float(loss.value(v, inst.y))
        out["fit"][tau] = float(np.linalg.norm(v - inst.y))
        velocity = dip.z_velocity(inst, loss, z)
        out["grad"][tau] = float(np.linalg.norm(velocity)) / u_norm
        out["path_length"][tau] = ell
        out["drift"][tau] = float(np.linalg.norm(z - z0)) / u_norm
        if tau + 1 < n:
            z_new = z + gamma * velocity  # = dip.gd_step_z(inst, loss, z, gamma), same arithmetic
            if not np.all(np.isfinite(z_new)):
                raise HypothesisFailed("stable_run", f"non-finite state at step {tau + 1}")
            ell += float(np.linalg.norm(z_new - z)) / u_norm
            z = z_new
    return _Steps(**out)


def _check_rerun(ev: Evidence, case, traj: dip.Trajectory, steps: _Steps) -> None:
    """The re-run reproduces the recorded trajectory (identity, class U on the loss scale)."""
    idx = traj.times.astype(int)
    resid = float(np.max(np.abs(steps.loss[idx] - traj.records["loss"])))
    ev.compare("re-run losses = descent(spec) records (same recursion)", resid,
               tol.update_path(float(traj.records["loss"][0])))


def _above_floor(loss: np.ndarray) -> np.ndarray:
    """Steps whose loss is above the GD floor ``1e-24 L_0`` (spec §10.3)."""
    return loss >= GD_FLOOR * loss[0]


def _require_above_floor(mask: np.ndarray, what: str) -> None:
    if not np.any(mask):
        raise HypothesisFailed("above_numerical_floor", f"no {what} with L_tau >= 1e-24 L_0")


def _residual_bound(case, t, kappa):
    """``H^{-1}(H(||r_0||) + kappa t)`` for the instance's radial loss (spec §4.3 table)."""
    return dipb.residual_bound(np.asarray(t, dtype=float), case.r0, kappa, loss=case.spec.loss,
                               p=case.loss.p, delta=case.loss.delta)


def _loss_bound(case, t, kappa):
    """``Psi^{-1}(Psi(L_0) + kappa t)``: the §4.2 closed form for MSE and power losses (``psi = c
    s^alpha`` with ``c = p^{1/p}``, ``alpha = 1/p``); for Huber, ``h`` of the §4.3 residual bound
    (``psi`` is not one Lojasiewicz power there)."""
    t = np.asarray(t, dtype=float)
    if case.spec.loss in ("mse", "power"):
        p = case.loss.p
        L0 = float(case.loss.h(case.r0))
        return np.asarray(dipb.lojasiewicz_rate(t, L0, kappa, p ** (1.0 / p), 1.0 / p))
    return case.loss.h(_residual_bound(case, t, kappa))


# --------------------------------------------------------------------------------------------
# instances

_BASE = DIPSpec(n=6, m=8, k=256, d=3, t_R=0.4, seed=0)
_POWER = DIPSpec(n=5, m=3, k=160, d=2, activation="sigmoid", loss="power", p=3.0, t_R=0.3, seed=1)
_HUBER = DIPSpec(n=4, m=6, k=128, d=4, activation="softplus", loss="huber", huber_rel=0.5, t_R=0.3, seed=2)
# Natural teacher data at a width where R'/R = 0.45 for this seed: R'_gamma/R = 0.91 at gamma = 1/L.
_NATURAL = DIPSpec(n=5, m=10, k=4096, d=3, t_R=None, signal="teacher", noise_rel=0.05, seed=4)
# step_c in ]1, 2[ (spec §10.5): certified while R'_gamma = R'/(1 - step_c/2) < R, vacuous after.
_LONG_STEP = _BASE.replace(t_R=0.2, step_c=1.5)
_LONG_STEP_VACUOUS = _BASE.replace(t_R=0.5, step_c=1.5)
_QUICK_BASE = [_BASE, _POWER, _HUBER, _NATURAL, _LONG_STEP, _LONG_STEP_VACUOUS]
_PAPER_BASE = [DIPSpec(n=10, m=m, k=k, d=8, loss=loss, p=p, t_R=t_R, step_c=c, steps=5000, record_every=10,
                       seed=s)
               for s, (m, k, t_R, loss, p, c) in enumerate([
                   (6, 2 ** 13, 0.4, "mse", 3.0, 1.0), (20, 4096, 0.25, "mse", 3.0, 0.5),
                   (5, 16384, 0.45, "mse", 3.0, 1.0), (20, 1024, 0.4, "power", 3.0, 1.0),
                   (5, 4096, 0.3, "power", 4.0, 0.25), (20, 4096, 0.4, "huber", 3.0, 1.0),
                   (6, 2 ** 13, 0.2, "mse", 3.0, 1.5), (6, 2 ** 13, 0.4, "mse", 3.0, 1.9)])]
# Natural data at k = 2^15, where R'/R ~ 0.38 (R'_gamma/R ~ 0.75 at gamma = 1/L_nabla).
_PAPER_BASE += [DIPSpec(n=10, m=6, k=2 ** 15, d=8, t_R=None, steps=5000, record_every=10, seed=s)
                for s in range(2)]
_QUICK_MSE = [s for s in _QUICK_BASE if s.loss == "mse"]
_PAPER_MSE = [s for s in _PAPER_BASE if s.loss == "mse"]


# --------------------------------------------------------------------------------------------
# Lemma S

def _ball_points(W0, rho, directions, radii):
    """``W0 + rho * radius * direction/||direction||_F`` for a batch of directions."""
    norms = np.linalg.norm(directions, axis=(-2, -1), keepdims=True)
    return W0 + rho * np.asarray(radii)[:, None, None] * directions / norms


def _into_ball(W0, W, rho):
    """Radially project points outside ``B(W0, rho)`` back onto its boundary."""
    D = W - W0
    nrm = np.linalg.norm(D, axis=(-2, -1), keepdims=True)
    return W0 + D * np.minimum(1.0, rho / np.maximum(nrm, np.finfo(float).tiny))


def _lipschitz_pairs(case, rho: float, rng) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pairs ``(W, W')`` in ``B(theta_0, rho)`` by family.

    * ``random``: Gaussian directions in all of ``R^{k x d}``, half on the boundary;
    * ``along_u``: ``Delta = a u^T/||u||``, the subspace GD moves in (Lemma D0), where a unit of
      ``||Delta||_F`` moves ``z`` the most; half on the boundary;
    * ``antipodal``: ``W0 +- rho D`` (maximal distance ``2 rho``), both on the boundary;
    * ``gradient``: along ``+-grad f(theta_0)``: the direction in which the residual, and with it
      ``h'(||r||)`` in the first term of Lemma S, grows fastest;
    * ``close``: separation ``1e-3 rho`` at boundary and interior points, in random, ``u``- and
      gradient directions (the local Lipschitz constant);
    * ``curvature``: close pairs along a direction of maximal curvature, found by power iteration
      on gradient differences at ``W0 + rho grad/||grad||`` (the largest residual in the ball).
    """
    inst, loss = case.inst, case.loss
    W0, u = inst.W0, inst.u
    k, d = W0.shape
    uh = u / np.linalg.norm(u)
    n_pts = 8
    radii = np.where(np.arange(n_pts) % 2 == 0, 1.0, rng.uniform(0.0, 1.0, n_pts))
    pairs = {}
    A1 = _ball_points(W0, rho, rng.standard_normal((n_pts, k, d)), radii)
    A2 = _ball_points(W0, rho, rng.standard_normal((n_pts, k, d)), radii[::-1])
    pairs["random"] = (A1, A2)
    along = lambda a: a[..., :, None] * uh  # noqa: E731
    U1 = _ball_points(W0, rho, along(rng.standard_normal((n_pts, k))), radii)
    U2 = _ball_points(W0, rho, along(rng.standard_normal((n_pts, k))), radii[::-1])
    pairs["along_u"] = (U1, U2)
    D = np.concatenate([rng.standard_normal((n_pts // 2, k, d)), along(rng.standard_normal((n_pts // 2, k)))])
    pairs["antipodal"] = (_ball_points(W0, rho, D, np.ones(n_pts)),
                          _ball_points(W0, rho, -D, np.ones(n_pts)))
    g0 = dip.gradient(inst, loss, W0)
    if float(np.linalg.norm(g0)) > 0:
        G = np.stack([g0, g0, g0])
        pairs["gradient"] = (_ball_points(W0, rho, G, np.array([1.0, 1.0, 0.5])),
                             _ball_points(W0, rho, -G, np.array([1.0, 0.0, 1.0])))
    else:
        G = None
    s = LIPSCHITZ_CLOSE * rho
    bases = np.concatenate([A1[:4], U1[:4]] + ([_ball_points(W0, rho, G[:1], np.ones(1))]
                                               if G is not None else []))
    H = np.concatenate([rng.standard_normal((4, k, d)), along(rng.standard_normal((4, k)))]
                       + ([G[:1]] if G is not None else []))
    H = H / np.linalg.norm(H, axis=(-2, -1), keepdims=True)
    pairs["close"] = (bases, _into_ball(W0, bases - s * H, rho))
    if G is not None:
        # Power iteration on (grad f(W + s h) - grad f(W))/s at the point of largest residual.
        P = W0 + rho * g0 / np.linalg.norm(g0)
        h = along(rng.standard_normal(k))
        h /= np.linalg.norm(h)
        gP = dip.gradient(inst, loss, P)
        for _ in range(8):
            Q = _into_ball(W0, P - s * h, rho)
            diff = (dip.gradient(inst, loss, Q) - gP)
            nd = float(np.linalg.norm(diff))
            if nd == 0:
                break
            h = -diff / nd if float(np.sum(diff * h)) < 0 else diff / nd
        pairs["curvature"] = (P[None], _into_ball(W0, P - s * h, rho)[None])
    return pairs


def _lipschitz_radii(case) -> dict[str, float]:
    """``rho = R`` (Theorem GD), ``2R`` (GD+) when a certificate exists, and ``rho = 1`` (Lemma S holds
    for every ``rho > 0``; beyond the lazy regime for small widths)."""
    out = {"R": case.R, "2R": 2.0 * case.R} if case.R > 0 else {}
    out["1"] = 1.0
    return out


_QUICK_LIPSCHITZ = [_BASE, _POWER, _HUBER, _POWER.replace(p=6.0, seed=3),
                    DIPSpec(n=8, m=3, k=4, d=3, t_R=None, seed=0),  # k < n: sigma_0 = 0, R = 0
                    _HUBER.replace(huber_rel=0.01, seed=5)]


@claim("dip.gd_grad_lipschitz", provenance="[derived]", kind=Kind.INEQUALITY,
       statement="Lemma S: ||grad f(theta) - grad f(theta')|| <= L_nabla(rho) ||theta - theta'|| for theta, "
                 "theta' in B(theta_0, rho), L_nabla(rho) = L_J ||A|| h'(varrho) + ||A||^2 J_max^2 "
                 "Lambda(varrho), varrho = ||r_0|| + ||A|| J_max rho (W-space gradients; random, "
                 "u-aligned, antipodal, gradient-direction, close and maximal-curvature pairs, including "
                 "boundary points; rho in {R, 2R, 1})",
       hypotheses=(SMOOTH_ACTIVATION, RADIAL_LOSS, GD_LOSS),
       instances={"quick": _QUICK_LIPSCHITZ, "paper": _PAPER_BASE[:6]},
       reference=f"{REF}#gradient-descent")
def gd_grad_lipschitz(spec: DIPSpec) -> Evidence:
    case = materialize(spec)
    inst, loss = case.inst, case.loss
    k, d = inst.W0.shape
    rng = np.random.default_rng([spec.seed, 7])
    ev = Evidence()
    worst: dict[str, float] = {}
    for name, rho in _lipschitz_radii(case).items():
        L = dipb.gradient_lipschitz(rho, L_J=case.L_J, norm_A=case.norm_A, J_max=case.J_max, r0=case.r0,
                                    loss=spec.loss, p=spec.p, delta=loss.delta)
        for family, (W1, W2) in _lipschitz_pairs(case, rho, rng).items():
            # The instrument: every point lies in the closed ball, up to the rounding of the radial
            # scaling (class U); a construction error is an evaluation error, not a verdict.
            radius = np.linalg.norm(np.concatenate([W1, W2]) - inst.W0, axis=(-2, -1))
            if np.any(radius > rho + tol.update_path(rho, k * d)):
                raise AssertionError(f"pair family {family} leaves B(theta_0, {rho})")
            g1, g2 = dip.gradient(inst, loss, W1), dip.gradient(inst, loss, W2)
            lhs = np.linalg.norm(g1 - g2, axis=(-2, -1))
            rhs = L * np.linalg.norm(W1 - W2, axis=(-2, -1))
            # Class I at computed gradients: the difference of two gradients carries the rounding of
            # each, on their scale (k d entries).
            scale = np.linalg.norm(g1, axis=(-2, -1)) + np.linalg.norm(g2, axis=(-2, -1))
            allow = np.array([tol.inequality(a, b, c, k * d)
                              for a, b, c in zip(lhs, rhs, scale, strict=True)])
            i = ev.compare_along(f"rho = {name}, {family}: ||grad f(W) - grad f(W')|| <= L_nabla(rho) "
                                   f"||W - W'||",
                                 np.arange(lhs.size), lhs, rhs, allow, at_name="pair", L_nabla=L, rho=rho)
            worst[f"max_ratio_{name}_{family}"] = float(lhs[i] / rhs[i]) if rhs[i] > 0 else math.nan
    # The constants materialize uses for the step are Lemma S at R and 2R.
    if case.R > 0:
        for name, rho, L_case in (("R", case.R, case.L_nabla_R), ("2R", 2 * case.R, case.L_nabla_2R)):
            L = dipb.gradient_lipschitz(rho, L_J=case.L_J, norm_A=case.norm_A, J_max=case.J_max, r0=case.r0,
                                        loss=spec.loss, p=spec.p, delta=loss.delta)
            ev.compare(f"case.L_nabla_{name} = L_nabla({name})", abs(L_case - L), tol.update_path(L))
    ev.metrics.update(worst)
    ev.metrics["max_ratio"] = max((v for v in worst.values() if math.isfinite(v)), default=math.nan)
    return ev


# --------------------------------------------------------------------------------------------
# Theorem GD (base)

@claim("dip.gd_monotone_descent", provenance="[derived]", kind=Kind.INEQUALITY,
       statement="Theorem GD (R'_gamma < R): L_{tau+1} <= L_tau - c_gamma ||grad f(theta_tau)||^2 at every "
                 "step (floor 1e-24 L_0)",
       hypotheses=GD_BASE_HYPOTHESES,
       instances={"quick": _QUICK_BASE, "paper": _PAPER_BASE},
       reference=f"{REF}#gradient-descent")
def gd_monotone_descent(spec: DIPSpec) -> Evidence:
    case = materialize(spec)
    ev = Evidence()
    traj = _trajectory(spec, ev)
    if traj is None:
        return ev
    st = _per_step(spec)
    _check_rerun(ev, case, traj, st)
    c = case.step.c_gamma
    live = _above_floor(st.loss)[:-1]
    _require_above_floor(live, "step")
    tau = np.arange(spec.steps)[live]
    lhs = st.loss[1:][live]
    rhs = st.loss[:-1][live] - c * st.grad[:-1][live] ** 2
    ev.compare_along("L_{tau+1} <= L_tau - c_gamma ||grad f(theta_tau)||^2", tau, lhs, rhs,
                     _gd_allowance(rhs, _step_loss_scale(case, st, live)))
    gain = st.loss[:-1][live] - st.loss[1:][live]
    with np.errstate(divide="ignore", invalid="ignore"):
        eff = gain / (c * st.grad[:-1][live] ** 2)
    ev.metrics.update(checked_steps=int(live.sum()), c_gamma=c, step_c=spec.step_c,
                      min_decrease_over_certified=float(np.nanmin(eff)),
                      final_loss_ratio=float(st.loss[-1] / st.loss[0]))
    return ev


@claim("dip.gd_linear_rate_mse", provenance="[derived]", kind=Kind.INEQUALITY,
       statement="Theorem GD, MSE (R'_gamma < R): L_{tau+1} <= q_gamma L_tau with q_gamma = 1 - c_gamma "
                 "sigma_0^2 sigma_A^2/2, and ||r_tau|| <= q_gamma^{tau/2} ||r_0|| (floor 1e-24 L_0)",
       hypotheses=(*GD_BASE_HYPOTHESES, MSE),
       instances={"quick": _QUICK_MSE, "paper": _PAPER_MSE},
       reference=f"{REF}#gradient-descent")
def gd_linear_rate_mse(spec: DIPSpec) -> Evidence:
    case = materialize(spec)
    ev = Evidence()
    traj = _trajectory(spec, ev)
    if traj is None:
        return ev
    st = _per_step(spec)
    _check_rerun(ev, case, traj, st)
    q = case.step.q_gamma
    ev.compare("q_gamma = 1 - 2 c_gamma kappa", abs(q - (1.0 - 2.0 * case.step.c_gamma * case.cert.kappa)),
               tol.update_path(1.0))
    live = _above_floor(st.loss)[:-1]
    _require_above_floor(live, "step")
    tau = np.arange(spec.steps)[live]
    rhs = q * st.loss[:-1][live]
    ev.compare_along("L_{tau+1} <= q_gamma L_tau", tau, st.loss[1:][live], rhs,
                     _gd_allowance(rhs, _step_loss_scale(case, st, live)))
    rec_live = _above_floor(traj.records["loss"])
    t = traj.times[rec_live]
    r_bound = np.exp(0.5 * t * math.log(q)) * case.r0
    ev.compare_along("||r_tau|| <= q_gamma^{tau/2} ||r_0||", t, traj.records["fit_error"][rec_live],
                     r_bound, _gd_allowance(r_bound, residual_scale(case)))
    with np.errstate(divide="ignore", invalid="ignore"):
        contraction = st.loss[1:][live] / st.loss[:-1][live]
    ev.metrics.update(q_gamma=q, max_contraction=float(np.max(contraction)),
                      median_contraction=float(np.median(contraction)), checked_steps=int(live.sum()))
    return ev


@claim("dip.gd_kl_rate", provenance="[derived]", kind=Kind.INEQUALITY,
       statement="Theorem GD (R'_gamma < R): L_tau <= Psi^{-1}(Psi(L_0) + tau c_gamma kappa), i.e. "
                 "||r_tau|| <= H^{-1}(H(||r_0||) + tau c_gamma kappa) (MSE, power p >= 2, Huber; floor "
                 "1e-24 L_0)",
       hypotheses=GD_BASE_HYPOTHESES,
       instances={"quick": _QUICK_BASE, "paper": _PAPER_BASE},
       reference=f"{REF}#gradient-descent")
def gd_kl_rate(spec: DIPSpec) -> Evidence:
    case = materialize(spec)
    ev = Evidence()
    traj = _trajectory(spec, ev)
    if traj is None:
        return ev
    rec = traj.records
    live = _above_floor(rec["loss"])
    _require_above_floor(live, "recorded step")
    t = traj.times[live] * case.step.c_gamma
    kappa = case.cert.kappa
    L_bound = _loss_bound(case, t, kappa)
    ev.compare_along("L_tau <= Psi^{-1}(Psi(L_0) + tau c_gamma kappa)", traj.times[live], rec["loss"][live],
                     L_bound, _gd_allowance(L_bound, _loss_scale(case, rec["fit_error"][live])))
    r_bound = _residual_bound(case, t, kappa)
    ev.compare_along("||r_tau|| <= H^{-1}(H(||r_0||) + tau c_gamma kappa)", traj.times[live],
                     rec["fit_error"][live], r_bound, _gd_allowance(r_bound, residual_scale(case)))
    ev.metrics.update(kappa=kappa, c_gamma=case.step.c_gamma, checked_records=int(live.sum()),
                      final_loss_over_bound=float(rec["loss"][live][-1] / L_bound[-1]) if L_bound[-1] > 0
                      else math.nan)
    return ev


@claim("dip.gd_path_length", provenance="[derived]", kind=Kind.INEQUALITY,
       statement="Theorem GD (R'_gamma < R): ||theta_tau - theta_0|| <= l_tau <= 2/(sigma_0 sigma_A "
                 "beta_gamma) (psi_0 - psi(L_tau)) <= R'_gamma, so every segment [theta_tau, "
                 "theta_{tau+1}] lies in B(theta_0, R'_gamma)",
       hypotheses=GD_BASE_HYPOTHESES,
       instances={"quick": _QUICK_BASE, "paper": _PAPER_BASE},
       reference=f"{REF}#gradient-descent")
def gd_path_length(spec: DIPSpec) -> Evidence:
    case = materialize(spec)
    ev = Evidence()
    traj = _trajectory(spec, ev)
    if traj is None:
        return ev
    rec, t = traj.records, traj.times
    Rpg = case.step.R_prime_gamma
    factor = 2.0 / (case.sigma0 * case.sigmaA * case.step.beta)
    ell = rec["path_length"]
    # psi(L_tau) = ||r_tau|| for every radial loss (spec §4.3), so the middle term is in residuals;
    # it multiplies residuals by `factor`, hence the scale of its rounding.
    mid = factor * (case.r0 - rec["fit_error"])
    mid_scale = factor * residual_scale(case)
    ev.compare_along("||theta_tau - theta_0|| <= l_tau", t, rec["drift"], ell, _gd_allowance(ell, Rpg))
    ev.compare_along("l_tau <= 2/(sigma_0 sigma_A beta_gamma) (psi_0 - psi(L_tau))", t, ell, mid,
                     _gd_allowance(mid, mid_scale))
    ev.compare_along("2/(sigma_0 sigma_A beta_gamma) (psi_0 - psi(L_tau)) <= R'_gamma", t, mid,
                     np.full_like(mid, Rpg), _gd_allowance(Rpg, mid_scale))
    # The ball is convex: both ends of every segment inside puts the segment inside.
    ev.compare_along("||theta_tau - theta_0|| <= R'_gamma (segments in B(theta_0, R'_gamma))", t,
                     rec["drift"], np.full_like(ell, Rpg), _gd_allowance(Rpg, Rpg))
    ev.metrics.update(path_over_R_prime_gamma=float(ell[-1] / Rpg), R_prime_gamma_over_R=Rpg / case.R,
                      beta_gamma=case.step.beta)
    return ev


@claim("dip.gd_sigma_min_stays_half", provenance="[derived]", kind=Kind.INEQUALITY,
       statement="Theorem GD (R'_gamma < R): sigma_min(J(theta_tau)) >= sigma_0 - L_J ||theta_tau - "
                 "theta_0|| >= sigma_0/2 at every recorded step",
       hypotheses=GD_BASE_HYPOTHESES,
       instances={"quick": _QUICK_BASE, "paper": _PAPER_BASE},
       reference=f"{REF}#gradient-descent")
def gd_sigma_min_stays_half(spec: DIPSpec) -> Evidence:
    case = materialize(spec)
    ev = Evidence()
    traj = _trajectory(spec, ev)
    if traj is None:
        return ev
    s0, t = case.sigma0, traj.times
    sig = traj.records["sigma_min"]
    weyl = s0 - case.L_J * traj.records["drift"]
    # Weyl's step is pointwise algebra at a computed state (eigvalsh of K: see sigma_min_allowance).
    ev.compare_along("sigma_0 - L_J ||theta_tau - theta_0|| <= sigma_min(J(theta_tau))", t, weyl, sig,
                     sigma_min_allowance(case, sig))
    ev.compare_along("sigma_0/2 <= sigma_0 - L_J ||theta_tau - theta_0||", t, np.full_like(weyl, s0 / 2),
                     weyl, _gd_allowance(weyl, s0))
    ev.compare_along("sigma_0/2 <= sigma_min(J(theta_tau))", t, np.full_like(sig, s0 / 2), sig,
                     _gd_allowance(sig, s0))
    ev.metrics.update(min_sigma_over_sigma0=float(sig.min() / s0), records=int(sig.size))
    return ev


# --------------------------------------------------------------------------------------------
# Theorem GD+ (refined)

_QUICK_REFINED = [_BASE.replace(t_R=0.9, step_ball="2R"), _BASE.replace(t_R=0.6),
                  _POWER.replace(t_R=0.8, step_ball="2R"), _HUBER.replace(t_R=0.5, step_ball="2R"), _NATURAL,
                  _BASE.replace(t_R=0.3, step_c=1.5, step_ball="2R"),
                  _BASE.replace(t_R=0.3, step_c=1.9, step_ball="2R")]  # Delta_gamma = 3: vacuous
_PAPER_REFINED = [s.replace(t_R=min(1.9 * s.t_R, 0.95), step_ball="2R") if s.t_R is not None else s
                  for s in _PAPER_BASE]


@claim("dip.gd_refined_certificate", provenance="[derived] (not attributed to the papers)",
       kind=Kind.INEQUALITY,
       statement="Theorem GD+ with L_nabla(2R), gamma < 2/L_nabla(2R), Delta_gamma = Delta/beta_gamma < 1: "
                 "L_{tau+1} <= L_tau - c_gamma ||grad f||^2, F(l_tau) <= (psi_0 - psi(L_tau))/(beta_gamma "
                 "sigma_A), l_tau <= R'_gamma/(1 + sqrt(1 - Delta_gamma)), sigma_min(J) >= sigma_0 - L_J "
                 "l_tau >= sigma_star_gamma, L_tau <= Psi^{-1}(Psi(L_0) + tau c_gamma sigma_star_gamma^2 "
                 "sigma_A^2), MSE: L_{tau+1} <= (1 - 2 c_gamma sigma_star_gamma^2 sigma_A^2) L_tau (floor "
                 "1e-24 L_0)",
       hypotheses=GD_REFINED_HYPOTHESES,
       instances={"quick": _QUICK_REFINED, "paper": _PAPER_REFINED},
       reference=f"{REF}#gradient-descent")
def gd_refined_certificate(spec: DIPSpec) -> Evidence:
    case = materialize(spec)
    ev = Evidence()
    traj = _trajectory(spec, ev)
    if traj is None:
        return ev
    rs = case.refined_step
    s0, sA, L_J, gamma = case.sigma0, case.sigmaA, case.L_J, case.gamma
    # The constants of Theorem GD+ are those of Theorem GD with L_nabla(2R) in place of L_nabla(R).
    beta = 1.0 - gamma * case.L_nabla_2R / 2.0
    c = gamma * beta
    ev.compare("Delta_gamma = Delta/beta_gamma (L_nabla(2R))", abs(rs.Delta_gamma - case.cert.Delta / beta),
               tol.update_path(rs.Delta_gamma))
    rec, t = traj.records, traj.times
    ell, r = rec["path_length"], rec["fit_error"]
    st = _per_step(spec)
    _check_rerun(ev, case, traj, st)
    live_step = _above_floor(st.loss)[:-1]
    _require_above_floor(live_step, "step")
    tau = np.arange(spec.steps)[live_step]
    rhs = st.loss[:-1][live_step] - c * st.grad[:-1][live_step] ** 2
    ev.compare_along("descent lemma with L_nabla(2R): L_{tau+1} <= L_tau - c_gamma ||grad f(theta_tau)||^2",
                     tau, st.loss[1:][live_step], rhs,
                     _gd_allowance(rhs, _step_loss_scale(case, st, live_step)))
    # The proof's invariant along the polygonal path:
    # F(l) = sigma_0 l - L_J l^2/2 <= (psi_0 - psi(L_tau))/(beta sigma_A).
    F = s0 * ell - 0.5 * L_J * ell ** 2
    factor = 1.0 / (beta * sA)
    budget = factor * (case.r0 - r)
    ev.compare_along("F(l_tau) <= (psi_0 - psi(L_tau))/(beta_gamma sigma_A)", t, F, budget,
                     _gd_allowance(budget, factor * residual_scale(case)))
    ev.compare_along("l_tau <= R'_gamma/(1 + sqrt(1 - Delta_gamma))", t, ell,
                     np.full_like(ell, rs.path_bound), _gd_allowance(rs.path_bound, rs.path_bound))
    sig = rec["sigma_min"]
    weyl = s0 - L_J * ell
    ev.compare_along("sigma_0 - L_J l_tau <= sigma_min(J(theta_tau))", t, weyl, sig,
                     sigma_min_allowance(case, sig))
    ev.compare_along("sigma_star_gamma <= sigma_0 - L_J l_tau", t, np.full_like(weyl, rs.sigma_star_gamma),
                     weyl, _gd_allowance(weyl, s0))
    live = _above_floor(rec["loss"])
    rate = rs.rate
    L_bound = _loss_bound(case, t[live], rate)
    ev.compare_along("L_tau <= Psi^{-1}(Psi(L_0) + tau c_gamma sigma_star_gamma^2 sigma_A^2)", t[live],
                     rec["loss"][live], L_bound,
                     _gd_allowance(L_bound, _loss_scale(case, rec["fit_error"][live])))
    if spec.loss == "mse":
        q = 1.0 - 2.0 * rate
        rhs = q * st.loss[:-1][live_step]
        ev.compare_along("MSE: L_{tau+1} <= (1 - 2 c_gamma sigma_star_gamma^2 sigma_A^2) L_tau", tau,
                         st.loss[1:][live_step], rhs,
                         _gd_allowance(rhs, _step_loss_scale(case, st, live_step)))
        ev.metrics["q_refined"] = q
    ev.metrics.update(Delta_gamma=rs.Delta_gamma, path_over_bound=float(ell.max() / rs.path_bound),
                      min_sigma_over_sigma_star_gamma=float(sig.min() / rs.sigma_star_gamma),
                      step_ball=spec.step_ball)
    return ev


# --------------------------------------------------------------------------------------------
# discretization costs a constant

_DELTA0 = 0.1
_QUICK_DISCRETE = [_BASE, _POWER, _HUBER, _NATURAL, _BASE.replace(step_c=0.3, seed=6),
                   _BASE.replace(step_ball="2R", seed=7), _LONG_STEP]  # the last: gamma > 1/L, vacuous


@claim("dip.gd_discretization_constant", provenance="[derived]; [abstract] (b) for 'only a constant'",
       kind=Kind.IDENTITY,
       statement="for gamma <= 1/L_nabla (exact arithmetic on the constants module): beta_gamma >= 1/2, "
                 "R'_gamma <= 2R', c_gamma kappa >= gamma kappa/2; the module's float64 step constants agree "
                 "with the exact ones; the Theorem D5 lazy-width constant for GD is exactly 4x the GF one "
                 "(1024 vs 256) and is where 2 * (D5 bound on R') meets the D5 bound on R",
       hypotheses=(SMOOTH_ACTIVATION, GD_LOSS, SIGMA0_POSITIVE, RANGE_CONDITION, STEP_AT_MOST_INVERSE_L),
       instances={"quick": _QUICK_DISCRETE, "paper": _PAPER_BASE},
       reference=f"{REF}#gradient-descent")
def gd_discretization_constant(spec: DIPSpec) -> Evidence:
    case = materialize(spec)
    ev = Evidence()
    # Exact rationals of the module's inputs: L = L_nabla(R), R', kappa; gamma = step_c/L_nabla(ball).
    gamma = _exact_step(case)
    L = Fraction(case.L_nabla_R)
    Rp, kappa = Fraction(case.cert.R_prime), Fraction(case.cert.kappa)
    beta = 1 - gamma * L / 2
    c = gamma * beta
    Rpg = Rp / beta
    _exact_compare(ev, "beta_gamma >= 1/2", Fraction(1, 2), beta, gamma_L=float(gamma * L))
    _exact_compare(ev, "R'_gamma = R'/beta_gamma <= 2 R'", Rpg, 2 * Rp)
    _exact_compare(ev, "c_gamma kappa >= gamma kappa/2", gamma * kappa / 2, c * kappa)
    # The module's float64 constants round the exact ones (a few operations each: class U).
    st = case.step
    for name, mod, exact in (("gamma", case.gamma, gamma), ("beta_gamma", st.beta, beta),
                             ("c_gamma", st.c_gamma, c),
                             ("R'_gamma", st.R_prime_gamma, Rpg), ("q_gamma", st.q_gamma, 1 - 2 * c * kappa)):
        ev.compare(f"module {name} = exact {name} (to rounding)", float(abs(Fraction(mod) - exact)),
                   tol.update_path(float(abs(exact))))
    # Theorem D5: the lazy-width constant; its variants differ by powers of two, so exactly.
    const = case.consts
    rho = dipb.initial_residual_bound(case.norm_A, const.C_phi, spec.n, float(np.linalg.norm(case.inst.y)),
                                      _DELTA0)
    w_gf = dipb.width_threshold(spec.n, case.sigmaA, rho, act=spec.activation, D=case.D, delta0=_DELTA0)
    w_gd = dipb.width_threshold(spec.n, case.sigmaA, rho, act=spec.activation, D=case.D, delta0=_DELTA0,
                                variant="gd")
    ev.compare("k_lazy(GD) = 4 k_lazy(GF) exactly",
               float(abs(Fraction(w_gd.k_lazy) - 4 * Fraction(w_gf.k_lazy))),
               0.0, k_lazy_gf=w_gf.k_lazy)
    ev.compare("k_chernoff(GD) = k_chernoff(GF) exactly", abs(w_gd.k_chernoff - w_gf.k_chernoff), 0.0)
    # Why 4: at k = k_lazy(variant) the D5 lower bound on R, C_phi' sqrt(k)/(4 B_2 D sqrt(n)), equals
    # f * (D5 upper bound on R'), 4 rho/(C_phi' sigma_A), with f = 1 (GF) and f = 2 (GD: R'_gamma <= 2R').
    ctx = mpmath.MPContext()
    ctx.dps = 50
    C, B2, D, sA = (ctx.mpf(x) for x in (const.C_dphi, const.B2, case.D, case.sigmaA))
    R_prime_bound = 4 * ctx.mpf(rho) / (C * sA)
    for name, w, f in (("GF", w_gf, 1), ("GD", w_gd, 2)):
        R_lower = C * ctx.sqrt(ctx.mpf(w.k_lazy)) / (4 * B2 * D * ctx.sqrt(spec.n))
        resid = abs(R_lower / (f * R_prime_bound) - 1)
        # k_lazy is a float64 product of ~8 factors: relative rounding ~8u, halved by the square root.
        ev.compare(f"{name}: at k = k_lazy, D5 R lower bound = {f} x D5 R' upper bound", float(resid),
                   tol.update_path(1.0))
    ev.metrics.update(gamma_L=float(gamma * L), beta_gamma=float(beta),
                      R_prime_gamma_over_R_prime=float(Rpg / Rp),
                      k_lazy_gf=w_gf.k_lazy, k_lazy_gd=w_gd.k_lazy)
    return ev


# --------------------------------------------------------------------------------------------
# step-size regimes

_QUICK_STABILITY = [_BASE, _POWER, _HUBER, _NATURAL, DIPSpec(n=8, m=3, k=4, d=3, t_R=None, seed=0),
                    _BASE.replace(activation="relu", t_R=None, seed=8),
                    DIPSpec(n=10, m=6, k=5000, d=8, t_R=0.4, seed=9),  # the spec's [pilot] size
                    # The spec §7 counterexample (Lambda(varrho) = 0.081 < 1): the corrected chain holds.
                    DIPSpec(n=2, m=2, k=2, d=1, activation="sigmoid", loss="power", p=5.0, t_R=0.1, seed=0)]


def _lambda_varrho(case) -> float:
    """``Lambda(varrho) = sup_{0 < s <= varrho} max(h''(s), h'(s)/s)`` of Lemma S at ``rho = R``."""
    if case.spec.loss != "power":
        return 1.0
    varrho = case.r0 + case.norm_A * case.J_max * case.R
    return (case.loss.p - 1.0) * varrho ** (case.loss.p - 2.0)


def _loss_curvature_sqrt(case, r: np.ndarray) -> np.ndarray:
    """``(nabla^2 L_y)^{1/2}`` at residual ``r`` for a radial loss: ``nabla^2 L_y = h''(rho) e e^T +
    h'(rho)/rho (I - e e^T)`` with ``e = r/rho`` (the Jacobian of ``G`` in the proof of Lemma S)."""
    rho = float(np.linalg.norm(r))
    e = r / rho
    loss = case.loss
    if case.spec.loss == "mse":
        d2, d1 = 1.0, 1.0
    elif case.spec.loss == "power":
        d2, d1 = (loss.p - 1.0) * rho ** (loss.p - 2.0), rho ** (loss.p - 2.0)
    else:
        d2, d1 = (1.0, 1.0) if rho <= loss.delta else (0.0, loss.delta / rho)
    P = np.outer(e, e)
    return math.sqrt(d2) * P + math.sqrt(d1) * (np.eye(r.size) - P)


@claim("dip.gd_certified_step_inside_stability", provenance="[derived]", kind=Kind.INEQUALITY,
       statement="lambda_max(M_0) <= ||A||^2 ||J(theta_0)||^2 <= ||A||^2 J_max^2 with M_0 = A K_0 A^T; "
                 "where Lemma S applies (smooth activation; MSE, power p >= 2, Huber) the loss-weighted "
                 "chain lambda_max(H_0^{1/2} M_0 H_0^{1/2}) <= Lambda(varrho) lambda_max(M_0) <= "
                 "Lambda(varrho) ||A||^2 J_max^2 <= L_nabla(R) <= L_nabla(2R), H_0 = nabla^2 L_y(A g_0), "
                 "so gamma < 2/L_nabla lies inside the local stability range. Spec §7 corrected: its "
                 "||A||^2 J_max^2 <= L_nabla(R) holds only when Lambda(varrho) = 1 (MSE, Huber); power "
                 "losses with Lambda < 1 break it (docs/theory/dip.md, Gradient descent)",
       instances={"quick": _QUICK_STABILITY, "paper": _PAPER_BASE},
       reference=f"{REF}#gradient-descent")
def gd_certified_step_inside_stability(spec: DIPSpec) -> Evidence:
    case = materialize(spec)
    inst = case.inst
    A = inst.A
    K0 = dip.gram(inst)
    M0 = A @ K0 @ A.T
    lam_M0 = float(np.linalg.eigvalsh(M0)[-1])
    J0_sq = float(np.linalg.eigvalsh(K0)[-1])  # ||J(theta_0)||^2 = lambda_max(J J^T)
    AJ_sq = case.norm_A ** 2 * case.J_max ** 2
    chain = [("lambda_max(M_0)", lam_M0), ("||A||^2 ||J(theta_0)||^2", case.norm_A ** 2 * J0_sq),
             ("||A||^2 J_max^2", AJ_sq)]
    lemma_s = math.isfinite(case.L_nabla_R)
    # Lambda(varrho) = 1 for MSE and Huber, where the spec's unweighted link to L_nabla(R) is the
    # weighted one below; a power loss can have Lambda < 1 and then only the weighted chain holds.
    if lemma_s and _lambda_varrho(case) == 1.0:
        chain += [("L_nabla(R)", case.L_nabla_R)]
    ev = Evidence()
    for (a_name, a), (b_name, b) in itertools.pairwise(chain):
        # Eigenvalues and norms of n x n and m x m products with inner dimension k: class I.
        ev.compare(f"{a_name} <= {b_name}", a, b, tol.inequality(a, b, b, spec.k))
    ev.metrics.update(lambda_max_M0=lam_M0, lemma_s_applies=lemma_s)
    if lemma_s:
        # The curvature that decides local stability for a radial loss weights M_0 by the loss
        # Hessian H_0, whose eigenvalues are at most Lambda(varrho) (1 for MSE and Huber).
        Hs = _loss_curvature_sqrt(case, dip.generator(inst) @ A.T - inst.y)
        lam_GN = float(np.linalg.eigvalsh(Hs @ M0 @ Hs)[-1])
        Lam = _lambda_varrho(case)
        weighted = [("lambda_max(H_0^1/2 M_0 H_0^1/2)", lam_GN),
                    ("Lambda(varrho) lambda_max(M_0)", Lam * lam_M0),
                    ("Lambda(varrho) ||A||^2 J_max^2", Lam * AJ_sq), ("L_nabla(R)", case.L_nabla_R)]
        for (a_name, a), (b_name, b) in itertools.pairwise(weighted):
            ev.compare(f"loss-weighted: {a_name} <= {b_name}", a, b, tol.inequality(a, b, b, spec.k))
        ev.compare("L_nabla(R) <= L_nabla(2R)", case.L_nabla_R, case.L_nabla_2R,
                   tol.inequality(case.L_nabla_R, case.L_nabla_2R, case.L_nabla_2R))
        ev.metrics.update(L_nabla_over_lambda_max=case.L_nabla_R / lam_M0,
                          gamma_lambda_max=case.gamma * lam_M0,
                          Lambda_varrho=Lam, gauss_newton_lambda_max=lam_GN)
    return ev


# --------------------------------------------------------------------------------------------
# early stopping for GD

def _mse_tau_enclosure(ctx, case):
    """``2 ln(||r_0||/||eps_eff||)/(-ln q_gamma)`` as an interval (MSE, the module's formula)."""
    mpf = ctx.mpf
    return 2 * ctx.log(mpf(case.r0) / mpf(case.eps_eff_norm)) / (-ctx.log(mpf(case.step.q_gamma)))


def _radial_H(ctx, case, rho_float: float):
    """``H(rho) = Psi(h(rho))`` in closed form (spec §4.3), up to an additive constant common to
    both arguments: MSE ``-ln rho``; power ``rho^{2-p}/(p-2)``; Huber ``-ln rho`` for ``rho <= delta``,
    ``-ln delta - (rho - delta)/delta`` above."""
    rho = ctx.mpf(rho_float)
    loss = case.loss
    if case.spec.loss == "mse" or (case.spec.loss == "power" and loss.p == 2.0):
        return -ctx.log(rho)
    if case.spec.loss == "power":
        p = ctx.mpf(loss.p)
        return rho ** (2 - p) / (p - 2)
    delta = ctx.mpf(loss.delta)
    if rho_float <= loss.delta:
        return -ctx.log(rho)
    return -ctx.log(delta) - (rho - delta) / delta


def _radial_tau_enclosure(ctx, case):
    """``(Psi(h(||eps||)) - Psi(L_0))/(c_gamma kappa)`` as an interval (radial losses, §7)."""
    diff = _radial_H(ctx, case, case.eps_eff_norm) - _radial_H(ctx, case, case.r0)
    return diff / (ctx.mpf(case.step.c_gamma) * ctx.mpf(case.cert.kappa))


def _certified_tau(case) -> tuple[int, object]:
    """``(tau_eps, enclosure)`` from the bounds module, and the interval it is the ceiling of."""
    ctx = mpmath.iv.__class__()
    ctx.dps = 30
    if case.spec.loss == "mse":
        tau = dipb.early_stopping_steps(case.r0, case.eps_eff_norm, case.step.q_gamma)
        x = _mse_tau_enclosure(ctx, case)
    else:
        tau = dipb.early_stopping_steps_radial(case.loss, case.r0, case.eps_eff_norm, case.cert.kappa,
                                               case.step.c_gamma)
        x = _radial_tau_enclosure(ctx, case)
    return tau, x


_QUICK_NOISY = [_BASE.replace(noise_rel=0.3), _BASE.replace(noise_rel=0.05, steps=800),
                _HUBER.replace(noise_rel=0.3, huber_rel=2.0), _POWER.replace(noise_rel=0.95, p=2.5),
                _NATURAL, _LONG_STEP.replace(noise_rel=0.2), _LONG_STEP_VACUOUS.replace(noise_rel=0.2)]
_PAPER_NOISY = [DIPSpec(n=10, m=20, k=4096, d=8, cond=cnd, t_R=0.4, noise_rel=nr, steps=5000, record_every=10,
                       seed=s)
                for s, (cnd, nr) in enumerate([(2, 0.01), (5, 0.05), (10, 0.2), (30, 0.2)])]
# Natural teacher data, certified at k = 2^16 (R'_gamma/R ~ 0.8). Spec §11(iii) uses cond 10-100 at
# k = 2^18; the step budget 2 tau_eps, tau_eps ~ 2 ln(||r_0||/||eps||)/(c_gamma sigma_0^2 sigma_A^2/2),
# needs a milder cond here.
_PAPER_NOISY += [DIPSpec(n=10, m=20, k=2 ** 16, d=8, cond=2, t_R=None, signal="teacher", noise_rel=0.05,
                         steps=1000, record_every=10, seed=s) for s in range(2)]


@claim("dip.gd_early_stopping_steps", provenance="[derived]", kind=Kind.INEQUALITY,
       statement="Theorem GD, ||r_0|| > ||eps_eff|| > 0: for tau >= tau_eps, ||r_tau|| <= ||eps_eff||, "
                 "with tau_eps = "
                 "ceil(2 ln(||r_0||/||eps_eff||)/(-ln q_gamma)) (MSE) or ceil((Psi(h(||eps||)) - "
                 "Psi(L_0))/(c_gamma kappa)) (radial), certified as the ceiling of an mpmath.iv enclosure",
       hypotheses=(*GD_BASE_HYPOTHESES, NOISE_POSITIVE, NOISE_BELOW_RESIDUAL),
       instances={"quick": _QUICK_NOISY, "paper": _PAPER_NOISY},
       reference=f"{REF}#early-stopping")
def gd_early_stopping_steps(spec: DIPSpec) -> Evidence:
    case = materialize(spec)
    eps = case.eps_eff_norm
    tau_eps, x = _certified_tau(case)
    ev = Evidence()
    lo, hi = (Fraction(*libmp.to_rational(e)) for e in x._mpi_)
    # tau_eps is the ceiling of every point of the enclosure: tau_eps - 1 < lo and hi <= tau_eps.
    _exact_compare(ev, "tau_eps - 1 < enclosure lower end", Fraction(tau_eps - 1), lo, strict=True,
                   enclosure=str(x))
    _exact_compare(ev, "enclosure upper end <= tau_eps", hi, Fraction(tau_eps), enclosure=str(x))
    n_steps = max(spec.steps, 2 * tau_eps)
    if n_steps > EARLY_STOPPING_MAX_STEPS:
        raise HypothesisFailed("tau_eps_within_step_budget",
                               f"2 tau_eps = {2 * tau_eps} > {EARLY_STOPPING_MAX_STEPS} steps")
    traj = _trajectory(spec, ev)
    if traj is None:
        return ev
    # Every step up to 2 tau_eps: the step-by-step re-run (no sigma_min records, which would cost
    # n^2 k per step), checked against the recorded run on their common steps.
    steps = _per_step(spec.replace(steps=n_steps, record_every=1))
    _check_rerun(ev, case, traj, steps)
    fit = steps.fit
    tau = np.arange(n_steps + 1)
    after = tau >= tau_eps
    # No floor: the right side is ||eps_eff|| > 0 and does not decay.
    ev.compare_along("tau >= tau_eps: ||r_tau|| <= ||eps_eff||", tau[after], fit[after],
                     np.full(int(after.sum()), eps), _gd_allowance(eps, residual_scale(case)),
                     tau_eps=tau_eps)
    below = np.flatnonzero(fit <= eps)
    ev.metrics.update(tau_eps=tau_eps, enclosure=str(x), noise_over_r0=eps / case.r0, steps_run=n_steps,
                      first_step_below_noise=int(below[0]) if below.size else -1)
    return ev
