"""Tests of ``bounds.dip_two_layer``: activation constants, KL rates, certificates, widths, bad input."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scipy.integrate import solve_ivp

from bounds import dip_two_layer as bd
from bounds.dln_weight_decay import NamedConstant
from dynamics import dip_two_layer as dip

SMOOTH = ("sigmoid", "tanh", "softplus")


# ---------------------------------------------------------------------------------------------
# activation constants (spec §3.3, §3.4)


@pytest.mark.parametrize("name", bd.CONSTANTS_TABLE)
def test_dip__constants_table(name):
    c = bd.activation_constants(name)
    table = bd.CONSTANTS_TABLE[name]
    # the table is printed to 12 significant digits
    for got, want in zip(c, table, strict=True):
        if math.isinf(want):
            assert math.isinf(got)
        else:
            assert abs(got - want) <= 1e-11 * max(1.0, abs(want))
    before = mpmath.mp.dps
    mp_c = bd.mp_activation_constants(name)
    assert mpmath.mp.dps == before  # private context: the global precision is untouched
    # spec §3.4: cached float64 values match mpmath (50 digits) to 1e-13 relative
    assert abs(c.C_phi - float(mp_c[0])) <= 1e-13 * c.C_phi
    assert abs(c.C_dphi - float(mp_c[1])) <= 1e-13 * c.C_dphi
    if name in SMOOTH:
        gh = bd.gauss_hermite_constants(name)
        assert abs(gh[0] - c.C_phi) <= 1e-12 * c.C_phi
        assert abs(gh[1] - c.C_dphi) <= 1e-12 * c.C_dphi


def test_dip__constants_identities():
    # softplus' = sigmoid, so C_softplus' = C_sigmoid
    assert abs(bd.activation_constants("softplus").C_dphi - bd.activation_constants("sigmoid").C_phi) <= 1e-14


@pytest.mark.parametrize("name", SMOOTH)
def test_dip__sup_constants_by_findroot(name):
    ctx = mpmath.MPContext()
    ctx.dps = 30
    phi = {"sigmoid": lambda x: 1 / (1 + ctx.exp(-x)), "tanh": ctx.tanh,
           "softplus": lambda x: ctx.log1p(ctx.exp(x))}[name]
    d2 = lambda x: ctx.diff(phi, x, 2)  # noqa: E731
    d3 = lambda x: ctx.diff(phi, x, 3)  # noqa: E731
    c = bd.activation_constants(name)
    # phi'' is maximal in absolute value at a root of phi''' (softplus: sigmoid' peaks at 0)
    starts = {"sigmoid": 1.3, "tanh": 0.65, "softplus": 0.1}[name]
    x_star = ctx.findroot(d3, starts)
    assert abs(float(abs(d2(x_star))) - c.B2) <= 1e-13
    xs = np.linspace(-12, 12, 4001)
    act = dip.activation(name)
    assert np.max(np.abs(act.d2phi(xs))) <= c.B2 * (1 + 1e-12)
    assert np.max(np.abs(act.dphi(xs))) <= c.B1 * (1 + 1e-12)


def test_dip__chernoff_constants_mpmath():
    ctx = mpmath.MPContext()
    ctx.dps = 50
    expo = -ctx.mpf(3) / 4 - ctx.log(ctx.mpf(1) / 4) / 4
    assert abs(bd.CHERNOFF_EXPONENT + float(expo)) <= 1e-15
    assert abs(bd.CHERNOFF_WIDTH - float(-2 / expo)) <= 1e-14
    assert abs(bd.CHERNOFF_EXPONENT - 0.4034264) < 1e-7 and abs(bd.CHERNOFF_WIDTH - 4.957534) < 1e-6
    # at the Lemma D3 width, the failure probability is <= 1/n
    n, cst = 10, bd.activation_constants("tanh")
    k = math.ceil(bd.CHERNOFF_WIDTH * cst.B1 ** 2 / cst.C_dphi ** 2 * n * math.log(n))
    assert bd.chernoff_sigma0_probability(n, k, cst.C_dphi, cst.B1, 1.0) <= 1.0 / n
    assert bd.chernoff_sigma0_probability(n, k // 4, cst.C_dphi, cst.B1, 1.0) > 1.0 / n


# ---------------------------------------------------------------------------------------------
# golden instance (spec §10.7)


def _golden():
    V = np.array([[1.0, 1.0], [1.0, -1.0]])
    u = np.array([1.0])
    inst = dip.build_instance(u, np.array([[0.5], [-1.0]]), V, np.eye(2), np.zeros(2))
    sigma0 = dip.sigma_min_jacobian(inst)
    c = bd.activation_constants("tanh")
    L_J = bd.jacobian_lipschitz(u, V, c.B2)
    J_max = bd.jacobian_norm_bound(u, V, c.B1)
    return sigma0, L_J, J_max, bd.sigma_A(np.eye(2))


def test_dip__golden_certificate():
    sigma0, L_J, J_max, sA = _golden()
    cert = bd.certificate(sigma0, sA, L_J, 0.01)
    want = {"R": 0.272781336582, "R_prime": 0.0476219569108, "Delta": 0.0872896172217,
            "sigma_star": 0.401226171175, "ell_star": 0.0243545878120, "kappa": 0.0440946119035,
            "kappa_star": 0.160982440436}
    for name, value in want.items():
        assert abs(getattr(cert, name) - value) <= 1e-11 * max(1.0, value), name  # 12 printed digits
    assert cert.base and cert.refined
    assert abs(cert.R_prime / cert.R - 0.174579234443) <= 1e-11
    assert abs(L_J - 0.769800358920) <= 1e-11 and abs(J_max - 1.0) <= 1e-15
    L_nabla = bd.gradient_lipschitz(cert.R, L_J=L_J, norm_A=1.0, J_max=J_max, r0=0.01)
    assert abs(L_nabla - 1.21768517440) <= 1e-10
    gamma = bd.default_step(L_nabla)
    step = bd.step_constants(gamma, L_nabla, cert.R_prime, cert.kappa)
    assert abs(gamma - 0.821230331966) <= 1e-11
    assert abs(step.c_gamma - 0.410615165983) <= 1e-11 and abs(step.q_gamma - 0.963788167229) <= 1e-11
    assert abs(step.R_prime_gamma - 2 * cert.R_prime) <= 1e-15  # default step: R'_gamma = 2 R'
    assert abs(bd.early_stopping_time(0.01, 1e-3, cert.kappa) - 52.2191939920) <= 1e-9
    assert bd.early_stopping_steps(0.01, 1e-3, step.q_gamma) == 125


def test_dip__gf_refined_dominates_base():
    rng = np.random.default_rng(0)
    for _ in range(200):
        sigma0, sA, L_J = rng.uniform(0.1, 2, 3)
        Delta = rng.uniform(0.001, 0.499)
        psi0 = Delta * sA * sigma0 ** 2 / (2 * L_J)
        cert = bd.certificate(sigma0, sA, L_J, psi0)
        assert abs(cert.Delta - Delta) <= 1e-12
        assert cert.kappa_star > 2 * cert.kappa and cert.ell_star < 0.586 * cert.R_prime
        assert cert.R_prime / 2 <= cert.ell_star < cert.R_prime


# ---------------------------------------------------------------------------------------------
# KL rates (spec §4.2, §4.3)


def _mp_b_root(ctx, t, L0, kappa, c, alpha):
    """``b`` with ``Psi(b) = Psi(L0) + kappa t``, by bisection in mpmath (robust for every regime)."""
    Psi = (lambda s: -(c * c / 4) * ctx.log(s)) if alpha == 0.5 else \
        (lambda s: c * c * alpha * alpha / (1 - 2 * alpha) * s ** (2 * alpha - 1))
    target = Psi(L0) + kappa * t
    return _bisect(ctx, lambda s: Psi(s) - target, L0)


def _bisect(ctx, fn, L0):
    # Psi is strictly decreasing, Psi(b) - target is negative at L0 (kappa t > 0) -> root in ]0, L0]
    # Until the bracket is relatively narrow: a fixed 200 halvings resolve only 2^-200 L0 in
    # absolute terms, which made the reference wrong for b = exp(-256) (found by Hypothesis:
    # alpha = 1/2, c = 1/8, kappa = t = L0 = 1).
    lo, hi = ctx.mpf(0), ctx.mpf(L0)
    for _ in range(20000):
        if hi - lo <= ctx.mpf(10) ** (5 - ctx.dps) * hi:
            break
        mid = (lo + hi) / 2
        if mid == 0 or fn(mid) > 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@settings(max_examples=40)
@example(0.5, 1.0, 1.0, 0.125, 1.0)
@given(st.floats(0.05, 1.0), st.floats(0.01, 10), st.floats(0.1, 5), st.floats(0.1, 3), st.floats(0, 3))
def test_dip__lojasiewicz_closed_form_vs_mpmath(alpha, L0, kappa, c, t):
    ctx = mpmath.MPContext()
    ctx.dps = 50
    b = bd.lojasiewicz_rate(t, L0, kappa, c, alpha)
    T_star = bd.extinction_time(L0, kappa, c, alpha)
    if alpha > 0.5 and t >= T_star:
        assert b == 0.0
        return
    if alpha > 0.5 and (T_star - t) < 1e-6 * T_star:
        return  # near extinction the closed form cancels catastrophically in float64
    ref = _mp_b_root(ctx, ctx.mpf(t), ctx.mpf(L0), ctx.mpf(kappa), ctx.mpf(c), ctx.mpf(alpha))
    # float64 closed form: relative error of a few eps times the conditioning 1/|2 alpha - 1| of the power
    e = 2 * alpha - 1
    cond = 1.0 / max(abs(e), 1e-3) * (1 + L0 ** e / max(b ** e, 1e-300))
    assert abs(b - float(ref)) <= 1e-12 * cond * max(b, 1e-300) + 1e-300


@pytest.mark.parametrize("alpha", [0.25, 0.5, 0.8])
def test_dip__lojasiewicz_solves_extremal_ode(alpha):
    ctx = mpmath.MPContext()
    ctx.dps = 20
    L0, kappa, c = ctx.mpf("1.5"), ctx.mpf("0.7"), ctx.mpf("1.2")
    alpha_mp = ctx.mpf(alpha)
    # b' = -kappa / psi'(b)^2 with psi'(s) = c alpha s^(alpha - 1)
    sol = ctx.odefun(lambda _t, b: -kappa / (c * alpha_mp * b ** (alpha_mp - 1)) ** 2, 0, L0)
    T_star = bd.extinction_time(float(L0), float(kappa), float(c), alpha)
    for t in (0.1, 0.5, 1.0):
        if t >= 0.9 * T_star:
            continue
        b = bd.lojasiewicz_rate(t, float(L0), float(kappa), float(c), alpha)
        assert abs(b - float(sol(t))) <= 1e-12 * b


def test_dip__lojasiewicz_regimes():
    t = np.linspace(0, 50, 501)
    poly = bd.lojasiewicz_rate(t, 1.0, 1.0, 1.0, 0.25)
    expo = bd.lojasiewicz_rate(t, 1.0, 1.0, 1.0, 0.5)
    fin = bd.lojasiewicz_rate(t, 1.0, 1.0, 1.0, 0.75)
    for b in (poly, expo, fin):
        assert b[0] == 1.0 and np.all(np.diff(b) <= 0)
    # polynomial: b ~ t^{-1/(1-2 alpha)} = t^-2
    slope = np.polyfit(np.log(t[-100:]), np.log(poly[-100:]), 1)[0]
    assert abs(slope + 2.0) < 0.05
    # exponential: log b linear with slope -4 kappa / c^2
    np.testing.assert_allclose(np.log(expo), -4.0 * t, rtol=1e-12, atol=1e-12)
    T_star = bd.extinction_time(1.0, 1.0, 1.0, 0.75)
    assert abs(T_star - 0.5625 / 0.5) <= 1e-15
    assert np.all(fin[t >= T_star] == 0.0) and np.all(fin[t < T_star] > 0.0)
    assert math.isinf(bd.extinction_time(1.0, 1.0, 1.0, 0.5))


@pytest.mark.parametrize("p", [2.0, 3.0, 5.0, 1.5])
def test_dip__residual_bound_is_psi_of_rate(p):
    # ||r(t)|| bound = H^{-1}(H(r0) + kappa t) = psi(b(t)) with psi = (p s)^(1/p) = p^(1/p) s^(1/p)
    loss = dip.make_loss("power", p=p)
    r0, kappa = 0.8, 0.3
    t = np.linspace(0, 6, 31)
    b = bd.lojasiewicz_rate(t, float(loss.h(r0)), kappa, p ** (1 / p), 1 / p)
    np.testing.assert_allclose(bd.residual_bound(t, r0, kappa, loss="power", p=p), loss.psi(b),
                               rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("r0", [0.2, 3.0])
def test_dip__huber_residual_bound_solves_ode(r0):
    delta, kappa = 0.5, 0.4
    loss = dip.make_loss("huber", delta=delta)
    t = np.linspace(0, 12, 25)
    sol = solve_ivp(lambda _t, r: -kappa * loss.dh(r), (0, 12), [r0], t_eval=t, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(bd.residual_bound(t, r0, kappa, loss="huber", delta=delta), sol.y[0],
                               rtol=1e-8)


# ---------------------------------------------------------------------------------------------
# GD constants, early stopping, recovery, widths


def test_dip__step_regimes():
    L = 4.0
    assert not bd.step_constants(0.5, L, 1.0, 0.1).admissible
    s = bd.step_constants(0.25, L, 1.0, 0.1)
    assert s.admissible and abs(s.c_gamma - 1 / (2 * L)) <= 1e-16 and s.R_prime_gamma == 2.0
    cs = [bd.step_constants(g, L, 1.0, 0.1).c_gamma for g in np.linspace(0.01, 0.49, 49)]
    assert max(cs) <= 1 / (2 * L) + 1e-16  # gamma = 1/L maximizes c_gamma


@settings(max_examples=30)
@given(st.floats(1e-3, 1e3), st.floats(1.01, 1e6), st.floats(1e-6, 0.999))
def test_dip__early_stopping_steps_minimal(eps, ratio, q):
    r0 = eps * ratio
    tau = bd.early_stopping_steps(r0, eps, q)
    ctx = mpmath.MPContext()
    ctx.dps = 60
    f = lambda n: ctx.mpf(q) ** (ctx.mpf(n) / 2) * ctx.mpf(r0)  # noqa: E731
    assert f(tau) <= ctx.mpf(eps) < f(tau - 1)


def test_dip__recovery_bounds():
    fit = np.array([1.0, 0.1, 0.0])
    np.testing.assert_allclose(bd.recovery_observation(fit, 0.2), fit + 0.2)
    np.testing.assert_allclose(bd.recovery_signal(fit, 0.2, 0.5), (fit + 0.2) / 0.5)
    np.testing.assert_allclose(bd.recovery_signal(fit, 0.2, 0.5, norm_A=2.0, dist=0.1),
                               (fit + 0.2 + 0.2) / 0.5 + 0.1)
    # regime (a): the bound is a true bound for x = A^+ (y(t)) with A injective
    rng = np.random.default_rng(1)
    A = rng.standard_normal((8, 4))
    x_bar, eps = rng.standard_normal(4), 0.1 * rng.standard_normal(8)
    y = A @ x_bar + eps
    x_t = x_bar + 0.3 * rng.standard_normal(4)
    mu = np.linalg.svd(A, compute_uv=False)[-1]
    assert np.linalg.norm(x_t - x_bar) <= bd.recovery_signal(np.linalg.norm(A @ x_t - y),
                                                             np.linalg.norm(eps), mu) * (1 + 1e-12)


def test_dip__sigma_A_cases():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((3, 5))
    assert abs(bd.sigma_A(A) - np.linalg.svd(A, compute_uv=False)[-1]) <= 1e-15
    B = rng.standard_normal((6, 2)) @ rng.standard_normal((2, 4))  # rank 2, m > n
    s = np.linalg.svd(B, compute_uv=False)
    assert abs(bd.sigma_A(B) - s[1]) <= 1e-14 * s[0]
    assert bd.sigma_A(B, y_in_range=False) == 0.0


def test_dip__width_threshold():
    # spec §9 [pilot]: tanh, Rademacher, delta0 = 0.1, ||A|| = 1, sigma_A = 1/2, ||y|| = sqrt(n);
    # the spec prints 2-3 significant digits, so compare at the printed precision
    c = bd.activation_constants("tanh")
    for n, k_ch, k_tot in ((5, 86, 6.3e5), (10, 246, 2.5e6), (20, 640, 1.0e7)):
        rho = bd.initial_residual_bound(1.0, c.C_phi, n, math.sqrt(n), 0.1)
        w = bd.width_threshold(n, 0.5, rho)
        assert abs(w.k_chernoff - k_ch) <= 0.5 + 0.005 * k_ch
        assert abs(w.k - k_tot) <= 0.05 * k_tot
        assert abs(w.probability - (1 - 1 / n - 0.1)) <= 1e-15
        assert abs(bd.width_threshold(n, 0.5, rho, variant="gd").k_lazy - 4 * w.k_lazy) <= 1e-9 * w.k_lazy
        refined = bd.width_threshold(n, 0.5, rho, variant="gf_refined")
        assert abs(refined.k_lazy - w.k_lazy / 4) <= 1e-9 * w.k_lazy


def test_dip__unverified_profiles():
    a = bd.paper_width_4th_power(5, 3, 4, 0.5, 1.0, 1.0, 0.1)
    b = bd.paper_width_4th_power(10, 3, 4, 0.5, 1.0, 1.0, 0.1)
    for const in (a, b, bd.paper_probability(10, 4), bd.paper_sigma0_width(10)):
        assert isinstance(const, NamedConstant) and const.provenance == "[unverified]" and const.profile
    assert b.value > a.value > 0
    quarter = bd.paper_width_4th_power(5, 3, 4, 0.25, 1.0, 1.0, 0.1)
    assert quarter.value == pytest.approx(16 * a.value, rel=1e-14)
    assert bd.paper_probability(10, 4).value == pytest.approx(1 - 0.2 - 0.25, abs=1e-15)


# ---------------------------------------------------------------------------------------------
# bad input


def test_dip__bounds_bad_input():
    with pytest.raises(ValueError, match="activation"):
        bd.activation_constants("gelu")
    with pytest.raises(ValueError, match="sigma0"):
        bd.certificate(0.0, 1.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="sigmaA"):
        bd.certificate(1.0, 0.0, 1.0, 0.1)
    with pytest.raises(ValueError, match="gamma"):
        bd.step_constants(0.0, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="alpha"):
        bd.lojasiewicz_rate(1.0, 1.0, 1.0, 1.0, 1.5)
    with pytest.raises(ValueError, match="L0"):
        bd.lojasiewicz_rate(1.0, 0.0, 1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="t"):
        bd.lojasiewicz_rate(-1.0, 1.0, 1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="r0"):
        bd.early_stopping_time(1e-3, 1e-2, 1.0)
    with pytest.raises(ValueError, match="q_gamma"):
        bd.early_stopping_steps(1.0, 0.1, 1.0)
    with pytest.raises(ValueError, match="mu"):
        bd.recovery_signal(1.0, 0.1, 0.0)
    with pytest.raises(ValueError, match="act"):
        bd.width_threshold(5, 0.5, 1.0, act="relu")
    with pytest.raises(ValueError, match="variant"):
        bd.width_threshold(5, 0.5, 1.0, variant="sgd")
    with pytest.raises(ValueError, match="p"):
        bd.gradient_lipschitz(1.0, L_J=1.0, norm_A=1.0, J_max=1.0, r0=1.0, loss="power", p=1.5)
    with pytest.raises(ValueError, match="A"):
        bd.sigma_A(np.array([[np.nan]]))
    relu = bd.certificate(1.0, 1.0, math.inf, 0.1)
    assert relu.R == 0.0 and not relu.base and not relu.refined


# ---------------------------------------------------------------------------------------------
# the certificates on trajectories (constructed instances, spec §10.5 "construct, do not filter")


def _certified_instance(n, m, k, d, seed, act, t_R, loss, *, gd=False):
    """An instance with ``R'/R = t_R`` exactly: ``y = A g0 - rho e`` with ``e`` a unit vector in Im A."""
    base = dip.make_instance(n, m, k, d, seed, activation=act)
    c = bd.activation_constants(act)
    sigma0 = dip.sigma_min_jacobian(base)
    sA = bd.sigma_A(base.A)
    L_J = bd.jacobian_lipschitz(base.u, base.V, c.B2)
    R = sigma0 / (2 * L_J)
    rho = t_R * R * sigma0 * sA / (4 if gd else 2)
    rng = np.random.default_rng(seed + 1)
    Q = np.linalg.svd(base.A, full_matrices=False)[0]
    e = Q @ rng.standard_normal(Q.shape[1])
    e /= np.linalg.norm(e)
    g0 = dip.generator(base)
    inst = dip.build_instance(base.u, base.W0, base.V, base.A, base.A @ g0 - rho * e, activation=act)
    cert = bd.certificate(sigma0, sA, L_J, float(np.linalg.norm(dip.generator(inst) @ inst.A.T - inst.y)))
    return inst, cert, c, L_J


@settings(max_examples=10)
@given(st.integers(2, 5), st.integers(0, 10 ** 6), st.sampled_from(SMOOTH), st.floats(0.05, 0.95),
       st.sampled_from([dip.make_loss("mse"), dip.make_loss("power", p=3.0),
                        dip.make_loss("huber", delta=0.02)]))
def test_dip__gf_certificates_hold_on_flow(n, seed, act, t_R, loss):
    m = max(1, n - 1)
    inst, cert, c, _ = _certified_instance(n, m, 4 * n, 2, seed, act, t_R, "mse")
    assert abs(cert.R_prime / cert.R - t_R) <= 1e-12
    r0 = float(np.linalg.norm(dip.generator(inst) @ inst.A.T - inst.y))
    T = 8.0 / cert.kappa_star
    flow = dip.run_flow(inst, loss, T, t_eval=np.linspace(0, T, 60), stop_ratio=1e-8)
    rec, t = flow.records, flow.times
    # GF tolerance (spec §10.3): lhs <= rhs (1 + 1e-6) + 1e-9 scale
    ok = rec["fit_error"] >= 1e-8 * r0
    assert np.all(rec["path_length"] <= cert.ell_star * (1 + 1e-6) + 1e-9 * cert.R)
    assert np.all(rec["drift"] <= rec["path_length"] * (1 + 1e-6) + 1e-12)
    assert np.all(rec["sigma_min"] >= cert.sigma_star * (1 - 1e-6))
    kw = {"loss": loss.name, "p": loss.p, "delta": loss.delta}
    bound = bd.residual_bound(t, r0, cert.kappa_star, **kw)
    assert np.all(rec["fit_error"][ok] <= bound[ok] * (1 + 1e-6) + 1e-9 * r0)
    # Proposition GF-: no faster than kappa_up
    J_max = bd.jacobian_norm_bound(inst.u, inst.V, c.B1)
    lower = bd.residual_bound(t, r0, bd.rate_upper(J_max, np.linalg.norm(inst.A, 2)), **kw)
    assert np.all(rec["fit_error"][ok] >= lower[ok] * (1 - 1e-6) - 1e-9 * r0)


@settings(max_examples=8)
@given(st.integers(2, 5), st.integers(0, 10 ** 6), st.sampled_from(SMOOTH), st.floats(0.05, 0.95),
       st.floats(0.1, 1.0))
def test_dip__gd_certificates_hold(n, seed, act, t_R, step_fraction):
    m = max(1, n - 1)
    inst, cert, c, L_J = _certified_instance(n, m, 4 * n, 2, seed, act, t_R, "mse", gd=True)
    r0 = float(np.linalg.norm(dip.generator(inst) @ inst.A.T - inst.y))
    J_max = bd.jacobian_norm_bound(inst.u, inst.V, c.B1)
    L_nabla = bd.gradient_lipschitz(cert.R, L_J=L_J, norm_A=np.linalg.norm(inst.A, 2), J_max=J_max, r0=r0)
    gamma = step_fraction / L_nabla
    step = bd.step_constants(gamma, L_nabla, cert.R_prime, cert.kappa)
    assert step.R_prime_gamma < cert.R  # construction: R'_gamma <= t_R R
    gd = dip.run_gd(inst, dip.make_loss("mse"), gamma, 300)
    L = gd.records["loss"]
    live = L[:-1] >= 1e-24 * L[0]
    # GD tolerance (spec §10.3): lhs <= rhs (1 + 1e-9) + 1e-14 scale
    assert np.all((L[1:] <= step.q_gamma * L[:-1] * (1 + 1e-9) + 1e-14 * L[0])[live])
    assert np.all(gd.records["path_length"] <= step.R_prime_gamma * (1 + 1e-9) + 1e-14)
    sigma0 = dip.sigma_min_jacobian(inst)
    assert np.all(gd.records["sigma_min"] >= sigma0 / 2 * (1 - 1e-9))


def test_dip__observation_certificate_and_refined_step():
    oc = bd.observation_certificate(0.5, 2.0, 0.1, 0.01)
    assert abs(oc.R_A - 1.25) <= 1e-15 and abs(oc.R_prime_A - 0.04) <= 1e-15
    assert abs(oc.Delta_A - oc.R_prime_A / (2 * oc.R_A)) <= 1e-15 and oc.base and oc.refined
    rs = bd.refined_step(0.5, 1.0, 0.4, 1.0, 0.1, 0.05)
    assert rs.holds and abs(rs.Delta_gamma - 0.1 / 0.75) <= 1e-15
    assert rs.path_bound < 0.05 / 0.75
    assert not bd.refined_step(1.9, 1.0, 0.4, 1.0, 0.5, 0.05).holds


@pytest.mark.parametrize("loss", [dip.make_loss("mse"), dip.make_loss("power", p=3.0),
                                  dip.make_loss("power", p=1.5), dip.make_loss("huber", delta=0.1)],
                         ids=["mse", "p3", "p1.5", "huber"])
def test_dip__early_stopping_time_radial(loss):
    r0, eps, kappa = 2.0, 0.045, 0.3
    T = bd.early_stopping_time_radial(loss, r0, eps, kappa)
    assert T > 0
    # the certified residual bound reaches ||eps|| exactly at T_eps
    at_T = bd.residual_bound(T, r0, kappa, loss=loss.name, p=loss.p, delta=loss.delta)
    assert abs(at_T - eps) <= 1e-10 * eps
    if loss.name == "mse":
        assert abs(T - bd.early_stopping_time(r0, eps, kappa)) <= 1e-13 * T
    tau = bd.early_stopping_steps_radial(loss, r0, eps, kappa, 0.25)
    assert tau - 1 < T / 0.25 <= tau
    if loss.name == "power" and loss.p == 3.0:
        # p = 3: T = (1/eps - 1/r0)/kappa; eps = 0.05 gives T/c_gamma = 260 exactly, which is refused
        with pytest.raises(ValueError, match="integer"):
            bd.early_stopping_steps_radial(loss, 2.0, 0.05, 0.3, 0.25)


def test_dip__effective_data_mse_projection():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((7, 3))
    y = rng.standard_normal(7)
    y_eff, floor = bd.effective_data(A, y)
    loss = dip.make_loss("mse")
    for _ in range(5):
        v = A @ rng.standard_normal(3)
        # the raw objective differs from the projected one by the constant floor on Im A
        assert abs(float(loss.value(v, y)) - float(loss.value(v, y_eff)) - floor) <= 1e-12 * (1 + floor)
    assert abs(floor - 0.5 * np.linalg.norm(y - A @ np.linalg.lstsq(A, y, rcond=None)[0]) ** 2) <= 1e-12
