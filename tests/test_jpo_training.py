"""Tests of the JPO network, optimizer and training loop (``dynamics/joint.py``) and of the claims in
``verification/claims/jpo_training.py``.

Backprop is checked against central differences by driving ``jpo.mlp_backprop_check`` on
Hypothesis-built networks, the bias identity likewise; Adam against a two-step reference computed by
hand at 40 digits; the clips for their exact properties; training for determinism, its counters, its
agreement with a manual loop over the checked kernels, and bad input. Mutation tests show that the
claims fail when the code they check is broken.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from mpmath.ctx_mp import MPContext
from scipy.optimize import minimize

from dynamics import joint
from dynamics.errors import DivergenceError
from verification.claims import jpo_training as jt
from verification.claims.jpo_training import JPONetworkSpec, JPOTruthSpec
from verification.engine import Verdict
from verification.instances import parse_spec
from verification.testing import check_claim

SEEDS = st.integers(0, 2 ** 31 - 1)
U = 2.0 ** -53
CLIP_KINDS = joint.CLIP_KINDS


def _drive(fn, spec, label: str, *, allow_vacuous: bool = False):
    res = check_claim(fn, spec, allow_vacuous=allow_vacuous, target_label=label)
    event(f"verdict: {res.verdict}")
    return res


def _toy(n=16, d=1, seed=0, **kw):
    return jt.make_ripple_toy(n, d, seed, **kw)


def _train(problem, **kw):
    kw.setdefault("hidden", (8, 8))
    kw.setdefault("steps", 40)
    kw.setdefault("record_every", 10)
    return joint.train_jpo(problem.inputs(), problem.loss_and_grad(), np.zeros(problem.d), **kw)


# --------------------------------------------------------------------------------------------
# strategies


@st.composite
def small_network_specs(draw):
    """Networks inside the hypothesis of jpo.mlp_backprop_check: sizes <= [8, 16, 16, 3], n <= 8."""
    sizes = tuple(draw(st.integers(1, m)) for m in jt.BACKPROP_MAX_SIZES)
    kind = draw(st.sampled_from(CLIP_KINDS))
    c = None if kind == "none" else draw(st.one_of(st.none(), st.floats(0.05, 5.0)))
    return JPONetworkSpec(sizes=sizes, n=draw(st.integers(1, jt.BACKPROP_MAX_N)), clip=kind, clip_c=c,
                          init=draw(st.sampled_from(joint.INIT_SCHEMES)),
                          kappa_out=draw(st.sampled_from([1.0, 0.1, 0.0])),
                          weight_scale=draw(st.floats(0.1, 3.0)), bias_scale=draw(st.floats(0.0, 1.0)),
                          amp=draw(st.floats(0.0, 1.0)), omega=draw(st.floats(0.5, 8.0)),
                          train_steps=draw(st.sampled_from([0, 0, 0, 20])), seed=draw(SEEDS))


@st.composite
def any_network_specs(draw):
    """Any network for the bias identity (depth 1-3 hidden layers, n up to 300)."""
    depth = draw(st.integers(0, 3))
    sizes = (draw(st.integers(1, 130)), *(draw(st.integers(1, 64)) for _ in range(depth)),
             draw(st.integers(1, 4)))
    kind = draw(st.sampled_from(CLIP_KINDS))
    c = None if kind == "none" else draw(st.one_of(st.none(), st.floats(1e-3, 10.0)))
    return JPONetworkSpec(sizes=sizes, n=draw(st.integers(1, 300)), clip=kind, clip_c=c,
                          init=draw(st.sampled_from(joint.INIT_SCHEMES)),
                          kappa_out=draw(st.floats(0.0, 2.0)), weight_scale=draw(st.floats(0.0, 5.0)),
                          bias_scale=draw(st.floats(0.0, 2.0)), amp=draw(st.floats(0.0, 2.0)),
                          omega=draw(st.floats(0.5, 10.0)), seed=draw(SEEDS))


def _grad_rows(draw, max_n=12, max_d=6):
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    rng = np.random.default_rng(draw(SEEDS))
    scale = 10.0 ** draw(st.floats(-3.0, 3.0))
    g = scale * rng.standard_cauchy((n, d))  # heavy tails: many rows/components beyond any c
    g[rng.random((n, d)) < 0.1] = 0.0
    if draw(st.booleans()):
        g[0] = 0.0
    return g


# --------------------------------------------------------------------------------------------
# claims driven by Hypothesis


@given(small_network_specs())
def test_jpo__mlp_backprop_matches_central_differences(spec):
    res = _drive(jt.mlp_backprop_check, spec, "FD error/tol")
    # every parameter block is among the checked coordinates when there are enough of them
    mlp = joint.MLP(spec.sizes)
    if mlp.n_params >= 2 * mlp.n_layers:
        blocks = {c.label.split("(")[-1].split(",")[0] for c in res.evidence.comparisons}
        assert blocks == {name for name, _ in mlp.block_slices()}


@given(any_network_specs())
def test_jpo__bias_gradient_is_mean_clipped_example_gradient(spec):
    _drive(jt.bias_gradient_is_mean_example_gradient, spec, "bias error/tol")


@given(st.sampled_from(["none", "elem", "norm", "elem(0.5)", "norm(2.0)"]), st.integers(1, 2),
       st.integers(0, 10 ** 6))
def test_jpo__no_ground_truth_in_training_hypothesis(clip, d, seed):
    # kept small: each example trains six networks
    _drive(jt.no_ground_truth_in_training, JPOTruthSpec(n=8, d=d, hidden=(4, 4), steps=20, clip=clip,
                                                        seed=seed), "truth")


@pytest.mark.parametrize("fn", [jt.mlp_backprop_check, jt.bias_gradient_is_mean_example_gradient,
                                jt.no_ground_truth_in_training], ids=lambda f: f.claim.id)
def test_jpo__training_claims_quick_profile_holds(fn):
    result = fn.claim.run("quick")
    assert result.verdict is Verdict.HOLDS, [(r.verdict, r.error, r.worst()) for r in result.instances]
    # every quick instance is inside the hypotheses (no vacuous padding)
    assert all(r.verdict is Verdict.HOLDS for r in result.instances)


@pytest.mark.parametrize("fn", [jt.mlp_backprop_check, jt.bias_gradient_is_mean_example_gradient,
                                jt.no_ground_truth_in_training], ids=lambda f: f.claim.id)
def test_jpo__training_claim_specs_round_trip(fn):
    for spec in fn.claim.instances("paper", 0) + fn.claim.instances("quick", 3):
        assert parse_spec(repr(spec)) == spec


def test_jpo__backprop_claim_vacuous_outside_small_sizes():
    res = jt.mlp_backprop_check.claim.check(JPONetworkSpec(sizes=(9, 16, 16, 3)))
    assert res.verdict is Verdict.VACUOUS and res.failed_hypotheses == ["small_network"]
    res = jt.mlp_backprop_check.claim.check(JPONetworkSpec(n=9))
    assert res.verdict is Verdict.VACUOUS


# --------------------------------------------------------------------------------------------
# the claims have power: they fail when the checked code is broken


def _broken_backward(block: str, factor: float):
    original = joint._Pass.backward

    def backward(self, cotangent, out):
        out = original(self, cotangent, out)
        sl = dict(self.mlp.block_slices())[block]
        out[sl] *= factor
        return out

    return backward


@pytest.mark.parametrize("block", ["W1", "b2", "W3"])
def test_jpo__backprop_claim_detects_a_relative_gradient_error(monkeypatch, block):
    # 1e-3 relative in one block is far beyond the 1e-6 (+ rounding) of the check
    monkeypatch.setattr(joint._Pass, "backward", _broken_backward(block, 1.0 + 1e-3))
    res = jt.mlp_backprop_check.claim.check(JPONetworkSpec(n_coords=30))
    assert res.verdict is Verdict.VIOLATED
    assert all(block in c.label for c in res.evidence.comparisons if not c.holds)


def test_jpo__backprop_claim_detects_a_wrong_tanh_derivative(monkeypatch):
    def backward(self, cotangent, out):
        # tanh' taken as 1 - |h| (a plausible slip) instead of 1 - h^2: backprop sees h' = sign(h) sqrt|h|
        saved = [h.copy() for h in self.hidden]
        for h, s in zip(self.hidden, saved, strict=True):
            h[...] = np.sign(s) * np.sqrt(np.abs(s))
        try:
            return original(self, cotangent, out)
        finally:
            for h, s in zip(self.hidden, saved, strict=True):
                h[...] = s

    original = joint._Pass.backward
    monkeypatch.setattr(joint._Pass, "backward", backward)
    assert jt.mlp_backprop_check.claim.check(JPONetworkSpec()).verdict is Verdict.VIOLATED


def test_jpo__bias_claim_detects_a_missing_clip(monkeypatch):
    # a training step that forgets to clip: C(g) replaced by g
    monkeypatch.setattr(joint, "_cotangent", lambda grads, clip, n, ws: np.divide(grads, n, out=ws.cotangent))
    res = jt.bias_gradient_is_mean_example_gradient.claim.check(JPONetworkSpec(clip="elem", clip_c=0.1))
    assert res.verdict is Verdict.VIOLATED


def test_jpo__truth_claim_detects_a_problem_that_reads_the_truth(monkeypatch):
    monkeypatch.setattr(jt.RippleToyProblem, "loss_and_grad", jt.RippleToyProblem.leaky_loss_and_grad)
    res = jt.no_ground_truth_in_training.claim.check(JPOTruthSpec(steps=20))
    assert res.verdict is Verdict.VIOLATED
    failed = {c.label for c in res.evidence.comparisons if not c.holds}
    assert "no array reachable from loss_and_grad shares memory with the truth" in failed
    assert any("bitwise equal after truth permuted rows" in f for f in failed)


# --------------------------------------------------------------------------------------------
# the claims' instruments


def _mp_forward(ctx, mlp, theta, inputs, x0):
    lift = np.vectorize(ctx.mpf, otypes=[object])
    h = lift(inputs)
    layers = mlp.unflatten(theta)
    for W, b in layers[:-1]:
        a = h @ lift(W).T + lift(b)
        h = np.vectorize(ctx.tanh, otypes=[object])(a)
    W, b = layers[-1]
    return h @ lift(W).T + lift(b) + lift(x0)


@pytest.mark.mp
@given(small_network_specs())
def test_jpo__output_rounding_bound_covers_the_float64_error(spec):
    ctx = MPContext()
    ctx.dps = 40
    case = jt.network_case(spec, "jpo.mlp_backprop_check")
    x = case.mlp.forward(case.theta, case.inputs, case.x0)
    x_mp = _mp_forward(ctx, case.mlp, case.theta, case.inputs, case.x0)
    err = np.vectorize(lambda a, b: float(abs(ctx.mpf(a) - b)))(x, x_mp)
    assert np.all(err <= jt.output_rounding(case.mlp, case.theta, case.inputs, case.x0))


@pytest.mark.mp
@given(st.integers(1, 6), st.floats(0.0, 2.0), st.floats(0.5, 10.0), SEEDS)
def test_jpo__toy_loss_rounding_bound_covers_the_float64_error(d, amp, omega, seed):
    ctx = MPContext()
    ctx.dps = 40
    problem = jt.make_ripple_toy(5, d, seed % 1000, amp=amp, omega=omega)
    x = np.random.default_rng(seed).normal(0.0, 2.0, (5, d))
    losses, _ = problem.loss_and_grad()(x)
    for i in range(5):
        exact = ctx.fsum(ctx.mpf(x[i, j] - 0.0) ** 2 / 2 - ctx.mpf(x[i, j]) * problem.observations[i, j]
                         + ctx.mpf(problem.observations[i, j]) ** 2 / 2
                         + amp * ctx.sin(omega * ctx.mpf(x[i, j]) + problem.phases[i, j]) for j in range(d))
        # amp * sin(omega x + phi) with float64 amp, omega, phi lifted exactly; omega * x is rounded in
        # float64 but exactly in mp: that difference is part of what the bound covers
        assert float(abs(ctx.mpf(losses[i]) - exact)) <= problem.loss_rounding(x)[i]


@given(st.integers(1, 4), SEEDS)
def test_jpo__toy_gradient_central_differences(d, seed):
    problem = jt.make_ripple_toy(4, d, seed % 1000, amp=0.7, omega=5.0)
    f = problem.loss_and_grad()
    x = np.random.default_rng(seed).standard_normal((4, d))
    _, g = f(x)
    for j in range(d):
        h = 1e-6 * np.maximum(1.0, np.abs(x[:, j]))
        xp, xm = x.copy(), x.copy()
        xp[:, j] += h
        xm[:, j] -= h
        fd = (f(xp)[0] - f(xm)[0]) / (xp[:, j] - xm[:, j])
        # rounding: 2 max(loss_rounding) / (2h); truncation h^2 |L'''|/6 <= h^2 amp omega^3/6
        allow = (problem.loss_rounding(xp) + problem.loss_rounding(xm)) / (xp[:, j] - xm[:, j]) \
            + h ** 2 * 0.7 * 125.0 / 6
        assert np.all(np.abs(fd - g[:, j]) <= 1e-6 * np.abs(g[:, j]) + allow)


def test_jpo__reachable_arrays_finds_closures_bound_methods_and_views():
    truth = np.arange(10.0)
    view = truth[2:5]
    assert jt._reaches(lambda: view, truth)
    problem = _toy()
    assert jt._reaches(problem.leaky_loss_and_grad(), problem.truth)
    assert jt._reaches(problem.loss_and_grad, problem.truth)  # the bound method reaches the problem
    assert not jt._reaches(problem.loss_and_grad(), problem.truth)


def test_jpo__toy_problem_bad_input():
    p = _toy(4, 2)
    with pytest.raises(ValueError, match="observations"):
        jt.ripple_toy_loss(np.full((4, 2), np.nan), p.phases, 0.5, 6.0)
    with pytest.raises(ValueError, match="phases"):
        jt.ripple_toy_loss(p.observations, p.phases[:3], 0.5, 6.0)
    with pytest.raises(ValueError, match="observations"):
        jt.RippleToyProblem(truth=p.truth, observations=p.observations + np.inf, phases=p.phases, amp=0.5,
                            omega=6.0)
    with pytest.raises(ValueError, match="omega"):
        jt.make_ripple_toy(4, 2, 0, omega=0.0)
    with pytest.raises(ValueError, match="sizes"):
        JPONetworkSpec(sizes=(3,))
    with pytest.raises(ValueError, match="clip"):
        JPONetworkSpec(clip="none", clip_c=1.0)


# --------------------------------------------------------------------------------------------
# network


def test_jpo__init_schemes_variances_biases_and_kappa_out():
    mlp = joint.MLP([200, 300, 100, 50])
    for scheme, var in [("lecun", lambda i, o: 1 / i), ("he", lambda i, o: 2 / i),
                        ("glorot", lambda i, o: 2 / (i + o))]:
        layers = mlp.unflatten(mlp.init(np.random.default_rng(7), init=scheme))
        for (W, b), fan_in, fan_out in zip(layers, mlp.sizes[:-1], mlp.sizes[1:], strict=True):
            m = W.size
            # sample variance of m normals: standard error var sqrt(2/m); 5 SE
            assert abs(np.mean(W ** 2) - var(fan_in, fan_out)) <= 5 * var(fan_in, fan_out) * math.sqrt(2 / m)
            assert not np.any(b)
    a = mlp.init(np.random.default_rng(3), kappa_out=1.0)
    b = mlp.init(np.random.default_rng(3), kappa_out=0.1)
    last = mlp.block_slices()[-2][1]
    assert np.array_equal(b[last], a[last] * 0.1)
    rest = np.ones(mlp.n_params, bool)
    rest[last] = False
    assert np.array_equal(a[rest], b[rest])


@given(st.lists(st.integers(1, 9), min_size=2, max_size=5), st.integers(1, 7), SEEDS)
def test_jpo__output_layer_is_x0_plus_affine(sizes, n, seed):
    rng = np.random.default_rng(seed)
    mlp = joint.MLP(sizes)
    theta = mlp.init(rng, kappa_out=0.0)
    u = rng.standard_normal((n, sizes[0]))
    x0 = rng.standard_normal(sizes[-1])
    # kappa_out = 0 and b = 0: the untrained network outputs x0 exactly
    assert np.array_equal(mlp.forward(theta, u, x0), np.broadcast_to(x0, (n, sizes[-1])))
    theta = rng.standard_normal(mlp.n_params)
    layers = mlp.unflatten(theta)
    h = u
    for W, b in layers[:-1]:
        h = np.tanh(h @ W.T + b)
    expected = x0 + h @ layers[-1][0].T + layers[-1][1]
    np.testing.assert_allclose(mlp.forward(theta, u, x0), expected, rtol=1e-13, atol=1e-13)
    assert np.array_equal(mlp.flatten(layers), theta)


@given(st.lists(st.integers(1, 9), min_size=2, max_size=5), st.integers(1, 7), SEEDS)
def test_jpo__joint_gradient_is_vjp_of_clipped_mean(sizes, n, seed):
    rng = np.random.default_rng(seed)
    mlp = joint.MLP(sizes)
    theta = rng.standard_normal(mlp.n_params)
    problem = jt.make_ripple_toy(n, sizes[-1], seed % 1000)
    u = rng.standard_normal((n, sizes[0]))
    for clip in ("none", "elem(0.3)", "norm(0.5)"):
        jg = joint.joint_gradient(mlp, theta, u, np.zeros(sizes[-1]), problem.loss_and_grad(), clip)
        assert np.array_equal(jg.grad, mlp.vjp(theta, u, np.zeros(sizes[-1]), jg.clipped_grads / n))
        assert jg.mean_loss == float(np.mean(jg.losses))


def test_jpo__mlp_bad_input():
    mlp = joint.MLP([2, 3, 1])
    theta = mlp.init(np.random.default_rng(0))
    with pytest.raises(ValueError, match="sizes"):
        joint.MLP([2])
    with pytest.raises(ValueError, match="sizes"):
        joint.MLP([2, 0, 1])
    with pytest.raises(ValueError, match="theta"):
        mlp.forward(theta[:-1], np.zeros((3, 2)), [0.0])
    with pytest.raises(ValueError, match="theta"):
        mlp.forward(np.full(mlp.n_params, np.nan), np.zeros((3, 2)), [0.0])
    with pytest.raises(ValueError, match="inputs"):
        mlp.forward(theta, np.zeros((3, 3)), [0.0])
    with pytest.raises(ValueError, match="x0"):
        mlp.forward(theta, np.zeros((3, 2)), [0.0, 1.0])
    with pytest.raises(ValueError, match="cotangent"):
        mlp.vjp(theta, np.zeros((3, 2)), [0.0], np.zeros((2, 1)))
    with pytest.raises(ValueError, match="init"):
        mlp.init(np.random.default_rng(0), init="xavier")
    with pytest.raises(ValueError, match="kappa_out"):
        mlp.init(np.random.default_rng(0), kappa_out=-1.0)


# --------------------------------------------------------------------------------------------
# clipping (spec §4.3)


@given(st.data())
def test_jpo__elem_clip_bound_sign_and_identity_within(data):
    g = _grad_rows(data.draw)
    c = 10.0 ** data.draw(st.floats(-3.0, 3.0))
    out = joint.clip_example_gradients(g, f"elem({c!r})")
    assert np.all(np.abs(out) <= c)  # exact: max/min return one of the operands
    assert np.array_equal(np.sign(out), np.sign(g))
    inside = np.abs(g) <= c
    assert np.array_equal(out[inside], g[inside])
    assert np.all(out[~inside] == c * np.sign(g[~inside]))


@given(st.data())
def test_jpo__norm_clip_bound_direction_sign_and_identity_within(data):
    g = _grad_rows(data.draw)
    c = 10.0 ** data.draw(st.floats(-3.0, 3.0))
    out = joint.clip_example_gradients(g, joint.Clip("norm", c))
    d = g.shape[1]
    norms = np.sqrt(np.sum(g ** 2, axis=1))
    out_norms = np.sqrt(np.sum(out ** 2, axis=1))
    # ||C(g)|| = c up to the roundings of the norm (d + 1 terms), the quotient and the product, and of
    # measuring it again: (2d + 6) u
    assert np.all(out_norms <= c * (1 + (2 * d + 6) * U))
    assert np.array_equal(np.sign(out), np.sign(g))  # no underflow at these magnitudes
    inside = norms <= c
    assert np.array_equal(out[inside], g[inside])
    # clipped rows are g times one factor in (0, 1): direction kept
    for gi, oi in zip(g[~inside], out[~inside], strict=True):
        lam = oi[gi != 0] / gi[gi != 0]
        assert np.all((lam > 0) & (lam < 1))
        np.testing.assert_allclose(lam, lam[0], rtol=4 * U)
    np.testing.assert_allclose(out_norms[~inside], c, rtol=(2 * d + 6) * U)


@given(st.integers(1, 4), SEEDS)
def test_jpo__norm_clip_without_overflow_or_underflow_of_the_norm(d, seed):
    # rows of one magnitude 10^e, e in [-300, 300], and thresholds c = 10^U(-300, 300): the squares of
    # such rows over- or underflow, the clip must not (a c/||g|| factor would also underflow for
    # ||g|| > c/2.2e-308)
    rng = np.random.default_rng(seed)
    e = rng.uniform(-300.0, 300.0, 64)
    g = 10.0 ** e[:, None] * rng.uniform(0.5, 2.0, (64, d)) * rng.choice([-1.0, 1.0], (64, d))
    c = 10.0 ** rng.uniform(-300.0, 300.0)
    out = joint.clip_example_gradients(g, f"norm({c!r})")
    scale = np.max(np.abs(g), axis=1)
    norms = scale * np.sqrt(np.sum((g / scale[:, None]) ** 2, axis=1))
    inside = norms <= c * (1 - 8 * d * U)
    assert np.array_equal(out[inside], g[inside])
    clipped = norms > c * (1 + 8 * d * U)
    # components of a clipped row are >= c/(4 sqrt(d)) >= 1e-301: no underflow, so signs must agree
    assert np.array_equal(np.sign(out[clipped]), np.sign(g[clipped]))
    out_scale = np.max(np.abs(out[clipped]), axis=1)
    out_norms = out_scale * np.sqrt(np.sum((out[clipped] / out_scale[:, None]) ** 2, axis=1))
    np.testing.assert_allclose(out_norms, c, rtol=(2 * d + 8) * U)
    assert joint.median_gradient_norm(g) == pytest.approx(np.median(norms), rel=(d + 4) * U)


def test_jpo__clip_parse_and_bad_input():
    assert joint.Clip.parse("elem(1.0)") == joint.Clip("elem", 1.0)
    assert joint.Clip.parse(" norm ( 2 ) ") == joint.Clip("norm", 2.0)
    assert joint.Clip.parse("norm(median)") == joint.Clip("norm")
    assert joint.Clip.parse(None) == joint.Clip("none")
    assert str(joint.Clip("elem")) == "elem(median)" and str(joint.Clip("elem", 1.5)) == "elem(1.5)"
    for bad in ("clip", "elem(x)", "none(1)", "elem(-1)", "norm(0)", "elem(nan)", 3.0):
        with pytest.raises(ValueError, match="clip"):
            joint.Clip.parse(bad)
    with pytest.raises(ValueError, match="clip"):
        joint.clip_example_gradients(np.ones((2, 2)), "elem")  # unresolved threshold
    with pytest.raises(ValueError, match="grads"):
        joint.clip_example_gradients(np.array([[np.nan, 1.0]]), "elem(1)")
    # default rule with a zero median (more than half the examples have g = 0)
    with pytest.raises(ValueError, match="clip"):
        joint.Clip("norm").resolve(np.array([[0.0], [0.0], [3.0]]))


def test_jpo__default_threshold_is_first_step_median_then_fixed():
    problem = _toy(n=15)
    base = problem.loss_and_grad()
    calls = []

    def growing(x):
        # gradient norms grow with every call: a threshold recomputed per step would differ
        losses, grads = base(x)
        calls.append(np.median(np.abs(grads[:, 0])))
        return losses, grads * (1.0 + 0.1 * len(calls))

    for kind in ("elem", "norm"):
        calls.clear()
        res = joint.train_jpo(problem.inputs(), growing, np.zeros(1), hidden=(8, 8), steps=30, clip=kind)
        mlp = res.mlp
        first = joint.joint_gradient(mlp, res.theta0, problem.inputs(), np.zeros(1),
                                     lambda x: (base(x)[0], base(x)[1] * 1.1), kind)
        assert res.clip.c == first.clip.c == joint.median_gradient_norm(first.example_grads)
        calls.clear()
        fixed = joint.train_jpo(problem.inputs(), growing, np.zeros(1), hidden=(8, 8), steps=30,
                                clip=joint.Clip(kind, res.clip.c))
        assert np.array_equal(fixed.theta, res.theta)


# --------------------------------------------------------------------------------------------
# Adam (spec §4.2)


def test_jpo__adam_two_steps_against_hand_computation():
    ctx = MPContext()
    ctx.dps = 40
    lr, b1, b2, eps = (ctx.mpf(v) for v in (1e-3, 0.9, 0.999, 1e-8))
    theta0 = np.array([1.0, -2.0, 0.0, 3.5])
    g1 = np.array([0.5, -0.25, 1e-9, 0.0])
    g2 = np.array([-0.75, 0.5, 2e-9, 4.0])
    # by hand: m_t = b1 m + (1 - b1) g, v_t = b2 v + (1 - b2) g^2,
    #          theta -= lr/(1 - b1^t) m_t / (sqrt(v_t/(1 - b2^t)) + eps)
    ref = []
    for k in range(4):
        th, m, v = ctx.mpf(theta0[k]), ctx.mpf(0), ctx.mpf(0)
        for t, g in ((1, ctx.mpf(g1[k])), (2, ctx.mpf(g2[k]))):
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            th = th - lr / (1 - b1 ** t) * m / (ctx.sqrt(v / (1 - b2 ** t)) + eps)
        ref.append(th)
    # step 1 in closed form: m_hat = g, v_hat = g^2, so theta1 = theta0 - lr g/(|g| + eps)
    th1, m1, v1 = joint.adam_update(theta0, g1, np.zeros(4), np.zeros(4), 1)
    # the bias corrections undo (1 - beta) up to a few roundings (<= 10 u of the update, |update| <= lr),
    # and theta - update rounds once more (u |theta|)
    assert np.all(np.abs(th1 - (theta0 - 1e-3 * g1 / (np.abs(g1) + 1e-8)))
                  <= 10 * U * 1e-3 + 2 * U * np.abs(theta0))
    th2, _, _ = joint.adam_update(th1, g2, m1, v1, 2)
    # float64 against the 40-digit hand computation: each step's update (<= lr in size) carries a few
    # roundings of its own size (<= 10 u lr), plus the rounding of theta itself (u |theta|)
    for k in range(4):
        assert abs(th2[k] - float(ref[k])) <= 2 * (10 * U * 1e-3 + U * abs(float(ref[k])))
    # the optimizer object is the same kernel
    opt = joint.Adam(4)
    th = theta0.copy()
    opt.step(th, g1)
    opt.step(th, g2)
    assert np.array_equal(th, th2) and opt.t == 2


def test_jpo__adam_bad_hyperparameters():
    for kw, name in [({"lr": 0.0}, "lr"), ({"lr": math.nan}, "lr"), ({"beta1": 1.0}, "betas"),
                     ({"beta2": -0.1}, "betas"), ({"eps": 0.0}, "eps")]:
        with pytest.raises(ValueError, match=name):
            joint.AdamConfig(**kw)
    with pytest.raises(ValueError, match="t"):
        joint.adam_update(np.zeros(2), np.zeros(2), np.zeros(2), np.zeros(2), 0)
    with pytest.raises(ValueError, match="grad"):
        joint.adam_update(np.zeros(2), np.zeros(3), np.zeros(2), np.zeros(2), 1)


# --------------------------------------------------------------------------------------------
# training (spec §4)


@pytest.mark.parametrize("clip", ["none", "elem", "norm(0.7)"])
def test_jpo__training_is_deterministic(clip):
    problem = _toy(n=24, d=2)
    a = _train(problem, clip=clip, seed=3)
    b = _train(problem, clip=clip, seed=3)
    for field in ("theta", "theta0", "outputs", "final_losses", "history_loss", "history_steps"):
        assert getattr(a, field).tobytes() == getattr(b, field).tobytes(), field
    assert a.clip == b.clip
    c = _train(problem, clip=clip, seed=4)
    assert not np.array_equal(a.theta0, c.theta0) and not np.array_equal(a.theta, c.theta)


def test_jpo__network_seed_is_1000_plus_data_seed():
    problem = _toy()
    res = _train(problem, seed=5, init="he", kappa_out=0.1)
    assert res.network_seed == 1005
    expected = res.mlp.init(np.random.default_rng(1005), init="he", kappa_out=0.1)
    assert np.array_equal(res.theta0, expected)


def test_jpo__training_equals_manual_loop_over_checked_kernels():
    problem = _toy(n=12, d=2, seed=1)
    u, f = problem.inputs(), problem.loss_and_grad()
    res = joint.train_jpo(u, f, np.zeros(2), hidden=(5, 6), steps=7, clip="elem", record_every=3)
    theta, m, v = res.theta0.copy(), np.zeros(res.mlp.n_params), np.zeros(res.mlp.n_params)
    clip = "elem"
    history = []
    for t in range(1, 8):
        jg = joint.joint_gradient(res.mlp, theta, u, np.zeros(2), f, clip)
        clip = jg.clip  # resolved at the first step, then fixed
        history.append(jg.mean_loss)
        theta, m, v = joint.adam_update(theta, jg.grad, m, v, t)
    assert np.array_equal(theta, res.theta)
    assert np.array_equal(res.history_steps, [0, 3, 6, 7])
    assert res.history_loss[:3].tolist() == [history[0], history[3], history[6]]
    assert np.array_equal(res.outputs, res.mlp.forward(theta, u, np.zeros(2)))
    assert res.history_loss[-1] == res.mean_loss == float(np.mean(f(res.outputs)[0]))


def test_jpo__counters_progress_and_callback_contract():
    problem = _toy(n=10)
    base = problem.loss_and_grad()
    seen = []

    def callback(x):
        assert x.shape == (10, 1) and not x.flags.writeable
        with pytest.raises(ValueError):
            x[0, 0] = 1.0  # the training buffer cannot be modified by the callback
        seen.append(x.copy())
        return base(x)

    progress = []
    res = joint.train_jpo(problem.inputs(), callback, 0.0, hidden=(4,), steps=25, record_every=10,
                          progress=lambda t, J: progress.append((t, J)))
    assert len(seen) == 26
    assert res.evaluations == 25 * 10 and res.final_evaluations == 10
    assert res.counters == {"steps": 25, "examples": 10, "loss_grad_evaluations": 250,
                            "final_evaluations": 10}
    assert [t for t, _ in progress] == [0, 10, 20, 25] == res.history_steps.tolist()
    assert [J for _, J in progress] == res.history_loss.tolist()
    assert np.array_equal(seen[-1], res.outputs)


def test_jpo__training_decreases_the_joint_loss():
    # not a claim, a smoke test of the optimizer direction: J after 300 steps below J at init
    problem = _toy(n=32, amp=0.2)
    res = _train(problem, steps=300, record_every=100)
    assert res.history_loss[-1] < res.history_loss[0]


def test_jpo__divergence_raises_with_the_step():
    problem = _toy(n=6)
    base = problem.loss_and_grad()
    calls = []

    def breaks_at_5(x):
        calls.append(1)
        losses, grads = base(x)
        if len(calls) > 5:
            grads = grads.copy()
            grads[2, 0] = np.nan
            grads[4, 0] = np.inf
        return losses, grads

    with pytest.raises(DivergenceError) as info:
        joint.train_jpo(problem.inputs(), breaks_at_5, np.zeros(1), hidden=(4, 4), steps=50, record_every=2)
    assert info.value.iteration == 5 and info.value.batch_indices == [2, 4]
    assert info.value.last_record["step"] == 4

    def overflow(x):
        losses, grads = base(x)
        return losses, grads * 1e300  # Adam is scale-invariant: no divergence from large finite g

    res = joint.train_jpo(problem.inputs(), overflow, np.zeros(1), hidden=(4, 4), steps=5)
    assert np.all(np.isfinite(res.theta))


def test_jpo__training_bad_input():
    problem = _toy(n=8)
    u, f = problem.inputs(), problem.loss_and_grad()
    x0 = np.zeros(1)
    cases = [
        (dict(inputs=np.full((8, 1), np.nan)), "inputs"),
        (dict(inputs=np.zeros(8)), "inputs"),
        (dict(x0=np.array([np.inf])), "x0"),
        (dict(x0="a"), "x0"),
        (dict(loss_and_grad=lambda x: (f(x)[0][:-1], f(x)[1])), "loss_and_grad"),  # 7 losses for 8
        (dict(loss_and_grad=lambda x: (f(x)[0], f(x)[1][:, 0])), "loss_and_grad"),
        (dict(loss_and_grad=lambda x: f(x)[0]), "loss_and_grad"),
        (dict(loss_and_grad=lambda x: (f(x)[0] * np.nan, f(x)[1])), "loss_and_grad"),  # bad at start
        (dict(loss_and_grad=None), "loss_and_grad"),
        (dict(steps=0), "steps"), (dict(steps=2.5), "steps"), (dict(steps=True), "steps"),
        (dict(lr=0.0), "lr"), (dict(lr=-1e-3), "lr"), (dict(lr=math.inf), "lr"),
        (dict(betas=(1.0, 0.999)), "betas"), (dict(betas=(0.9,)), "betas"), (dict(eps=0.0), "eps"),
        (dict(kappa_out=-0.1), "kappa_out"), (dict(record_every=0), "record_every"), (dict(seed=-1), "seed"),
        (dict(init="xavier"), "init"), (dict(clip="max(1)"), "clip"), (dict(clip="elem(0)"), "clip"),
        (dict(sizes=[2, 4, 1]), "sizes"), (dict(sizes=[1, 4, 2]), "sizes"),
        (dict(sizes=[1, 4, 1], hidden=(4,)), "sizes"), (dict(hidden=(4, 0)), "hidden"),
        (dict(progress=3), "progress"),
    ]
    for over, name in cases:
        kw = dict(inputs=u, loss_and_grad=f, x0=x0, steps=3)
        kw.update(over)
        args = (kw.pop("inputs"), kw.pop("loss_and_grad"), kw.pop("x0"))
        with pytest.raises(ValueError, match=name):
            joint.train_jpo(*args, **kw)
    # example counts of inputs and callback must agree: a callback for a different problem size
    other = _toy(n=9).loss_and_grad()
    with pytest.raises(ValueError, match="loss_and_grad"):
        joint.train_jpo(u, lambda x: other(np.zeros((9, 1))), x0, steps=2)


# --------------------------------------------------------------------------------------------
# JPO + BFGS refinement (spec §2.4)


def _scipy_refine(problem):
    f = problem.loss_and_grad()

    def refine(starts):
        out = []
        for i, s in enumerate(starts):
            def fun(x, i=i):
                losses, grads = f(np.broadcast_to(x, starts.shape).copy())
                return losses[i], grads[i]
            out.append(minimize(fun, s, jac=True, method="BFGS", options={"gtol": 1e-8}).x)
        return np.array(out)

    return refine


def test_jpo__refinement_driver_uses_jpo_outputs_and_never_worsens():
    problem = _toy(n=10, amp=0.5)
    received = []

    def refine(starts):
        received.append(starts.copy())
        starts[...] = 123.0  # the driver hands a copy: this must not leak into the result
        return _scipy_refine(problem)(received[-1])

    res = joint.train_jpo_bfgs(problem.inputs(), problem.loss_and_grad(), np.zeros(1), refine, hidden=(8, 8),
                               steps=50)
    assert np.array_equal(received[0], res.jpo.outputs) and np.array_equal(res.starts, res.jpo.outputs)
    f = problem.loss_and_grad()
    # BFGS accepts only Armijo steps (spec §2.4): never worse than its start, up to rounding
    assert np.all(f(res.x)[0] <= f(res.starts)[0] + 1e-12 * (1 + np.abs(f(res.starts)[0])))
    assert res.refinement is res.x or np.array_equal(res.refinement, res.x)


def test_jpo__refinement_driver_accepts_result_objects_and_rejects_bad_returns():
    starts = np.zeros((3, 2))

    class Batch:
        x = np.ones((3, 2))
        nfev = 7

    out = joint.refine_outputs(starts, lambda s: Batch())
    assert np.array_equal(out.x, np.ones((3, 2))) and out.refinement.nfev == 7 and out.jpo is None
    for bad in (lambda s: np.ones((2, 2)), lambda s: np.full((3, 2), np.nan), lambda s: "x"):
        with pytest.raises(ValueError, match="refine"):
            joint.refine_outputs(starts, bad)
    with pytest.raises(ValueError, match="refine"):
        joint.refine_outputs(starts, None)
    with pytest.raises(ValueError, match="starts"):
        joint.refine_outputs(np.full((3, 2), np.inf), lambda s: s)
