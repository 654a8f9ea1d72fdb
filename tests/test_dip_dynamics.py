"""Tests of ``dynamics.dip_two_layer``: Jacobian formulas, the D0 reduction, GD vs GF, KL, bad input."""

from __future__ import annotations

import itertools
import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dynamics import dip_two_layer as dip

EPS = np.finfo(np.float64).eps
SMOOTH = ("sigmoid", "tanh", "softplus")


@st.composite
def small_instances(draw, max_k=32):
    n = draw(st.integers(2, 6))
    m = draw(st.integers(1, 2 * n))
    d = draw(st.integers(1, 4))
    k = n * 2 ** draw(st.integers(0, int(math.log2(max_k // n)) if max_k >= 2 * n else 0))
    act = draw(st.sampled_from(SMOOTH))
    law = draw(st.sampled_from(dip.V_LAWS))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    noise = draw(st.sampled_from([0.0, 0.1]))
    return dip.make_instance(n, m, k, d, seed, activation=act, v_law=law, noise=noise)


LOSSES = st.sampled_from([dip.make_loss("mse"), dip.make_loss("power", p=3.0), dip.make_loss("power", p=4.5),
                          dip.make_loss("huber", delta=0.3), dip.make_loss("power", p=1.5)])


def _random_W(inst, seed):
    rng = np.random.default_rng(seed)
    return inst.W0 + 0.5 * rng.standard_normal(inst.W0.shape)


def golden(y_shift=0.01):
    """Spec §10.7 golden instance."""
    V = np.array([[1.0, 1.0], [1.0, -1.0]])
    W0 = np.array([[0.5], [-1.0]])
    u = np.array([1.0])
    base = dip.build_instance(u, W0, V, np.eye(2), np.zeros(2))
    g0 = dip.generator(base)
    return dip.build_instance(u, W0, V, np.eye(2), g0 - np.array([y_shift, 0.0]))


# ---------------------------------------------------------------------------------------------
# activations


@pytest.mark.parametrize("name", SMOOTH)
def test_dip__activation_derivatives_finite_difference(name):
    act = dip.activation(name)
    x = np.linspace(-8, 8, 161)
    h = 1e-5
    # central difference: truncation O(h^2 sup|phi'''|) ~ 1e-10, rounding O(eps/h) ~ 1e-11
    np.testing.assert_allclose(act.dphi(x), (act.phi(x + h) - act.phi(x - h)) / (2 * h), atol=1e-9)
    np.testing.assert_allclose(act.d2phi(x), (act.dphi(x + h) - act.dphi(x - h)) / (2 * h), atol=1e-9)


def test_dip__activations_stable_at_extremes():
    x = np.array([-1e4, -800.0, 0.0, 800.0, 1e4])
    for name in dip.ACTIVATION_NAMES:
        act = dip.activation(name)
        with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
            for fn in (act.phi, act.dphi, act.d2phi):
                assert np.all(np.isfinite(fn(x)))
    # softplus(x) = x + log1p(e^-x) -> x exactly in float64 for large x
    assert dip.activation("softplus").phi(np.array([800.0]))[0] == 800.0


def test_dip__activation_identities():
    x = np.linspace(-6, 6, 97)
    sig, tanh, sp = (dip.activation(a) for a in ("sigmoid", "tanh", "softplus"))
    np.testing.assert_allclose(sp.dphi(x), sig.phi(x), rtol=0, atol=4 * EPS)
    np.testing.assert_allclose(tanh.dphi(x), 4 * sig.dphi(2 * x), rtol=0, atol=16 * EPS)


# ---------------------------------------------------------------------------------------------
# Jacobian, gradient, Gram (Lemma D1)


@settings(max_examples=20)
@given(small_instances(max_k=16), st.integers(0, 2 ** 31 - 1))
def test_dip__jacobian_dense_vs_finite_difference(inst, seed):
    W = _random_W(inst, seed)
    J = dip.jacobian_dense(inst, W)
    h = 1e-6
    fd = np.empty_like(J)
    flat = W.ravel()
    for j in range(flat.size):
        e = np.zeros_like(flat)
        e[j] = h
        fd[:, j] = (dip.generator(inst, (flat + e).reshape(W.shape))
                    - dip.generator(inst, (flat - e).reshape(W.shape))) / (2 * h)
    # spec §10.3: central differences, h = 1e-6, rtol 1e-6 (relative to the Jacobian's scale)
    assert np.max(np.abs(J - fd)) <= 1e-6 * max(1.0, np.max(np.abs(J)))
    rng = np.random.default_rng(seed + 1)
    Delta = rng.standard_normal(W.shape)
    w = rng.standard_normal(inst.n)
    scale = max(1.0, np.linalg.norm(J) * np.linalg.norm(Delta))
    # identities in float64: rounding ~ (k d) eps times the scale
    tol = 100 * W.size * EPS * scale
    assert np.linalg.norm(dip.jvp(inst, W, Delta) - J @ Delta.ravel()) <= tol
    assert np.linalg.norm(dip.vjp(inst, W, w).ravel() - J.T @ w) <= tol * np.linalg.norm(w)
    K = dip.gram(inst, W)
    assert np.linalg.norm(K - J @ J.T) <= 1e-10 * max(1.0, np.linalg.norm(K))
    s = np.linalg.svd(J, compute_uv=False)
    sigma_n = s[inst.n - 1] if s.size >= inst.n else 0.0
    assert abs(dip.sigma_min_jacobian(inst, W) - sigma_n) <= 1e-10 * max(1.0, s[0])


@settings(max_examples=20)
@given(small_instances(), LOSSES, st.integers(0, 2 ** 31 - 1))
def test_dip__gradient_vs_finite_difference(inst, loss, seed):
    W = _random_W(inst, seed)
    G = dip.gradient(inst, loss, W)
    rng = np.random.default_rng(seed)
    h = 1e-6
    for _ in range(3):
        D = rng.standard_normal(W.shape)
        D /= np.linalg.norm(D)
        fd = (dip.objective(inst, loss, W + h * D) - dip.objective(inst, loss, W - h * D)) / (2 * h)
        # relative to the gradient's scale plus rounding of f / h
        scale = max(np.linalg.norm(G), abs(dip.objective(inst, loss, W)) * 1e-4, 1e-8)
        assert abs(float(np.sum(G * D)) - fd) <= 1e-6 * max(1.0, scale)


def test_dip__rank_at_most_k_even_when_kd_ge_n():
    inst = dip.make_instance(6, 4, 3, 3, 7)  # k = 3 < n = 6 <= k d = 9
    J = dip.jacobian_dense(inst)
    s = np.linalg.svd(J, compute_uv=False)
    assert int(np.sum(s > s[0] * max(J.shape) * EPS)) == inst.k
    assert dip.sigma_min_jacobian(inst) == 0.0


def test_dip__golden_instance_values():
    inst = golden()
    K0 = dip.gram(inst)
    # spec §10.7 values are rounded to 12 digits
    np.testing.assert_allclose(K0, [[0.397439242151, 0.221060794537], [0.221060794537, 0.397439242151]],
                               atol=1e-12)
    assert abs(dip.sigma_min_jacobian(inst) - 0.419974341614) < 1e-12
    np.testing.assert_allclose(dip.generator(inst), [-0.211762216587, 0.865294567790], atol=1e-12)


def test_dip__batched_gram_matches_loop():
    inst = dip.make_instance(4, 3, 16, 2, 3)
    Z = np.random.default_rng(0).standard_normal((5, inst.k))
    Kb = dip.gram(inst, z=Z)
    sb = dip.sigma_min_jacobian(inst, z=Z)
    for i in range(5):
        np.testing.assert_allclose(Kb[i], dip.gram(inst, z=Z[i]), rtol=0, atol=1e-14)
        assert sb[i] == dip.sigma_min_jacobian(inst, z=Z[i])
    np.testing.assert_allclose(dip.generator(inst, z=Z)[2], dip.generator(inst, z=Z[2]), atol=1e-15)


# ---------------------------------------------------------------------------------------------
# Lemma D0 and the trajectories


@settings(max_examples=12)
@given(small_instances(), st.sampled_from([dip.make_loss("mse"), dip.make_loss("power", p=3.0),
                                           dip.make_loss("huber", delta=0.2)]))
def test_dip__d0_reduction_W_space_equals_z_space(inst, loss):
    K = dip.gram(inst)
    gamma = 0.5 / (np.linalg.norm(inst.A, 2) ** 2 * max(np.linalg.eigvalsh(K)[-1], 1e-3) + 1.0)
    tz = dip.run_gd(inst, loss, gamma, 60, space="z")
    tw = dip.run_gd(inst, loss, gamma, 60, space="W")
    # both recursions do the same O(nk + mn) flops per step in different association; rounding grows
    # at most linearly in the step count for a contracting map
    tol = 60 * 100 * EPS * max(1.0, np.linalg.norm(inst.z0))
    assert np.linalg.norm(tw.W @ inst.u - tz.z) <= tol
    np.testing.assert_allclose(dip.weights_from_z(inst, tz.z), tw.W, rtol=0, atol=tol)
    for name in ("loss", "fit_error", "drift", "signal_error", "path_length"):
        np.testing.assert_allclose(tz.records[name], tw.records[name], rtol=1e-9, atol=tol)
    # W(t) - W0 is rank one along u (Lemma D0)
    s = np.linalg.svd(tw.W - inst.W0, compute_uv=False)
    assert s.size == 1 or s[1] <= tol


def test_dip__gd_tracks_flow_first_order():
    inst = dip.make_instance(4, 4, 64, 3, 11, noise=0.05)
    loss = dip.make_loss("mse")
    T = 2.0
    flow = dip.run_flow(inst, loss, T, t_eval=[T], stop_ratio=None)
    r_flow = flow.records["fit_error"][-1]
    errs = []
    for gamma in (0.02, 0.01, 0.005):
        gd = dip.run_gd(inst, loss, gamma, round(T / gamma), record_every=10 ** 6)
        errs.append(abs(gd.records["fit_error"][-1] - r_flow))
        z_err = np.linalg.norm(gd.z - flow.z)
        assert z_err <= 10 * gamma * np.linalg.norm(inst.z0 - flow.z) + 1e-9
    # explicit Euler is first order: halving the step halves the error (flow error ~ 1e-10 << errs)
    for a, b in itertools.pairwise(errs):
        assert 1.7 <= a / b <= 2.3


def test_dip__golden_flow_and_gd_path_lengths():
    inst = golden()
    loss = dip.make_loss("mse")
    flow = dip.run_flow(inst, loss, 400.0)
    ell = flow.records["path_length"]
    # The records are read off the solver's dense interpolant, so the monotone path length may
    # dip by the global integration error: a hundred times the local tolerance rtol |l| + atol
    # (1e-10, 1e-12) covers the accumulation over the run.
    solver_err = 100 * (1e-10 * ell[-1] + 1e-12)
    assert np.all(np.diff(ell) >= -solver_err)
    assert np.all(flow.records["drift"] <= ell + solver_err)
    # pilot 0.02077 < ell_star = 0.0243545878120 (spec §10.7)
    assert ell[-1] < 0.0243545878120
    assert abs(ell[-1] - 0.02077) < 5e-5
    assert flow.records["fit_error"][-1] <= 1e-8 * 0.01 * 1.01
    gd = dip.run_gd(inst, loss, 0.821230331966, 400)
    assert gd.records["path_length"][-1] < 0.09524
    assert np.all(np.diff(gd.records["loss"]) <= 0.0)


def test_dip__flow_tolerance_self_check():
    inst = dip.make_instance(3, 2, 12, 2, 5)
    loss = dip.make_loss("mse")
    t = np.linspace(0, 5, 11)
    a = dip.run_flow(inst, loss, 5.0, t_eval=t, stop_ratio=None)
    b = dip.run_flow(inst, loss, 5.0, t_eval=t, stop_ratio=None, rtol=1e-12, atol=1e-14, method="DOP853")
    np.testing.assert_allclose(a.records["fit_error"], b.records["fit_error"], rtol=1e-7)
    assert callable(a.solution.sol)


def test_dip__divergence_error():
    # bounded activations keep ||g|| <= ||V|| B / sqrt(k), so only an unbounded one (softplus) can diverge
    inst = dip.make_instance(3, 3, 12, 2, 1, noise=0.5, activation="softplus")
    with pytest.raises(dip.DivergenceError) as info:
        dip.run_gd(inst, dip.make_loss("mse"), 1e4, 200)
    err = info.value
    assert err.iteration >= 1 and err.batch_indices == [0]
    assert set(err.last_record) == set(dip.RECORD_NAMES)
    assert isinstance(err.reason, str) and err.reason


# ---------------------------------------------------------------------------------------------
# KL inequality (spec §4.1, §4.3)


@settings(max_examples=30)
@given(LOSSES, st.integers(1, 8), st.integers(0, 2 ** 31 - 1), st.floats(-3, 1.5))
def test_dip__kl_inequality_pointwise(loss, m, seed, log_scale):
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(m)
    v = y + 10.0 ** log_scale * rng.standard_normal(m)
    L = float(loss.value(v, y))
    if not L > 0:
        return
    g = loss.gradient(v, y)
    kl = float(loss.dpsi(L)) * np.linalg.norm(g)
    # radial losses satisfy KL with equality; the composition psi'(h(rho)) h'(rho) rounds to a few eps
    assert kl >= 1.0 - 1e-12
    assert abs(kl - 1.0) <= 1e-12
    assert abs(float(loss.psi(L)) - np.linalg.norm(v - y)) <= 1e-12 * max(1.0, np.linalg.norm(v - y))
    # Psi' = -(psi')^2 (central difference, relative step)
    h = 1e-6 * L
    dPsi = (float(loss.Psi(L + h)) - float(loss.Psi(L - h))) / (2 * h)
    if loss.name == "huber" and abs(L - loss.delta ** 2 / 2) < 2 * h:
        return
    assert abs(dPsi + float(loss.dpsi(L)) ** 2) <= 1e-5 * float(loss.dpsi(L)) ** 2


# ---------------------------------------------------------------------------------------------
# bad input


def test_dip__bad_input():
    inst = dip.make_instance(3, 2, 6, 2, 0)
    loss = dip.make_loss("mse")
    with pytest.raises(ValueError, match="gamma"):
        dip.run_gd(inst, loss, 0.0, 10)
    with pytest.raises(ValueError, match="gamma"):
        dip.run_gd(inst, loss, -1.0, 10)
    with pytest.raises(ValueError, match="gamma"):
        dip.gd_step_z(inst, loss, inst.z0, float("nan"))
    with pytest.raises(ValueError, match="activation"):
        dip.activation("gelu")
    with pytest.raises(ValueError, match="activation"):
        dip.make_instance(3, 2, 6, 2, 0, activation="swish")
    with pytest.raises(ValueError, match="k d"):
        dip.make_instance(10, 2, 3, 3, 0)
    with pytest.raises(ValueError, match="k d"):
        dip.build_instance(inst.u, inst.W0[:1], inst.V[:, :1], inst.A, inst.y)
    with pytest.raises(ValueError, match="non-finite"):
        dip.build_instance(inst.u, inst.W0, inst.V, inst.A, np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="non-finite"):
        dip.build_instance(inst.u, inst.W0, inst.V, np.full_like(inst.A, np.inf), inst.y)
    with pytest.raises(ValueError, match="u"):
        dip.build_instance(np.zeros(2), inst.W0, inst.V, inst.A, inst.y)
    with pytest.raises(ValueError, match="V"):
        dip.build_instance(inst.u, inst.W0, inst.V[:, :-1], inst.A, inst.y)
    with pytest.raises(ValueError, match="name"):
        dip.make_loss("l1")
    with pytest.raises(ValueError, match="p"):
        dip.make_loss("power", p=1.0)
    with pytest.raises(ValueError, match="delta"):
        dip.make_loss("huber", delta=0.0)
    with pytest.raises(ValueError, match="v_law"):
        dip.make_instance(3, 2, 6, 2, 0, v_law="gaussian")
    with pytest.raises(ValueError, match="noise"):
        dip.make_instance(3, 2, 6, 2, 0, noise=-1.0)
    with pytest.raises(ValueError, match="t_max"):
        dip.run_flow(inst, loss, 0.0)
    with pytest.raises(ValueError, match="t_eval"):
        dip.run_flow(inst, loss, 1.0, t_eval=[0.5, 2.0])
    with pytest.raises(ValueError, match="method"):
        dip.run_flow(inst, loss, 1.0, method="Euler")


def test_dip__batched_gd_equals_single_runs():
    insts = [dip.make_instance(4, 3, 16, 2, s, activation="softplus", noise=0.1) for s in range(4)]
    loss = dip.make_loss("power", p=3.0)
    batch = dip.run_gd_batch(insts, loss, 0.3, 40, record_every=5)
    for i, inst in enumerate(insts):
        single = dip.run_gd(inst, loss, 0.3, 40, record_every=5)
        # same arithmetic up to einsum vs matmul association: rounding ~ 40 steps x k eps
        tol = 40 * 100 * EPS * max(1.0, np.linalg.norm(inst.z0))
        assert np.linalg.norm(batch.z[i] - single.z) <= tol
        for name in dip.RECORD_NAMES:
            np.testing.assert_allclose(batch.records[name][:, i], single.records[name], rtol=1e-10, atol=tol)
    with pytest.raises(ValueError, match="instances"):
        dip.run_gd_batch([insts[0], dip.make_instance(4, 3, 8, 2, 0)], loss, 0.3, 5)
    # One step per member: each equals its own single run.
    steps = np.array([0.1, 0.2, 0.3, 0.15])
    per = dip.run_gd_batch(insts, loss, steps, 40, record_every=40)
    for i, inst in enumerate(insts):
        single = dip.run_gd(inst, loss, float(steps[i]), 40, record_every=40)
        assert np.linalg.norm(per.z[i] - single.z) <= 40 * 100 * EPS * max(1.0, np.linalg.norm(inst.z0))
    with pytest.raises(ValueError, match="gamma"):
        dip.run_gd_batch(insts, loss, steps[:2], 5)
    with pytest.raises(dip.DivergenceError) as info:
        dip.run_gd_batch(insts, dip.make_loss("mse"), 1e8, 5)
    assert info.value.batch_indices and set(info.value.last_record) == set(dip.RECORD_NAMES)


def test_dip__gram_eigenvalues_vs_mpmath():
    ctx = mpmath.MPContext()
    ctx.dps = 50
    inst = dip.make_instance(6, 4, 48, 3, 21, activation="sigmoid")
    K = dip.gram(inst)
    dp = [ctx.mpf(1) / (1 + ctx.exp(-ctx.mpf(float(z)))) for z in inst.z0]
    dp = [s * (1 - s) for s in dp]
    u2 = ctx.fsum(ctx.mpf(float(a)) ** 2 for a in inst.u)
    Kmp = ctx.matrix(inst.n, inst.n)
    for i in range(inst.n):
        for j in range(inst.n):
            Kmp[i, j] = u2 / inst.k * ctx.fsum(ctx.mpf(float(inst.V[i, c])) * inst.V[j, c] * dp[c] ** 2
                                               for c in range(inst.k))
    ev = sorted(float(e) for e in ctx.eigsy(Kmp, eigvals_only=True))
    lam = np.linalg.eigvalsh(K)
    # eigvalsh is backward stable: |error| <= n eps ||K|| (Weyl)
    assert np.max(np.abs(lam - np.array(ev))) <= 10 * inst.n * EPS * lam[-1]


def test_dip__gd_matches_mpmath_reference():
    # spec §10.4: 200-step GD on n=3, m=2, k=6, d=2 agrees with a 50-digit reference to 1e-9 relative
    inst = dip.make_instance(3, 2, 6, 2, 4, activation="tanh", noise=0.1)
    loss = dip.make_loss("mse")
    gamma = 0.5
    gd = dip.run_gd(inst, loss, gamma, 200)
    ctx = mpmath.MPContext()
    ctx.dps = 50
    mpf = lambda a: ctx.matrix([[ctx.mpf(float(x))] for x in np.ravel(a)])  # noqa: E731
    V = ctx.matrix(inst.V.tolist())
    A = ctx.matrix(inst.A.tolist())
    y = mpf(inst.y)
    z = mpf(inst.z0)
    u2 = ctx.fsum(ctx.mpf(float(a)) ** 2 for a in inst.u)
    sqk = ctx.sqrt(inst.k)
    L0 = None
    for tau in range(201):
        x = V * ctx.matrix([[ctx.tanh(zi)] for zi in z]) / sqk
        r = A * x - y
        L = ctx.fsum(ri ** 2 for ri in r) / 2
        L0 = L if L0 is None else L0
        if L >= 1e-20 * L0:
            assert abs(gd.records["loss"][tau] - float(L)) <= 1e-9 * float(L)
        if tau == 200:
            break
        b = V.T * (A.T * r)
        z = z - gamma * u2 / sqk * ctx.matrix([[(1 - ctx.tanh(z[c]) ** 2) * b[c]] for c in range(inst.k)])
