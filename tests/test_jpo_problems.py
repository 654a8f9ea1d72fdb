"""Tests of the JPO benchmark problems, the §3 BFGS wrapper, the §5.1 oracle and the problem claims.

Modules under test: ``dynamics/jpo_problems.py``, ``dynamics/bfgs_reference.py``,
``verification/jpo_oracle.py``, ``verification/claims/jpo_problems.py``.

Gradient checks drive the registered claim ``jpo.gradient_check_adjoints`` on Hypothesis-drawn
problems (every family; central differences rel 1e-6, complex step rel 1e-12 for the analytic
models, Taylor slope in [1.9, 2.1]); companions show each check fails on a corrupted gradient.

Findings pinned here (``xfail(strict=True)``: spec errors, reasons in the markers):

* billiards: the row's ``D > 1e-6`` is too weak for central differences at ``h = 1e-6``;
* logistic: the float64 forward mode is not within ``2^T 1e-15`` of the closed form for every theta;
* Taylor slope: without the quadratic-regime hypothesis random points (inflections, and the
  logistic ``T = 8`` window, which is not below its oscillation scale) fall outside [1.9, 2.1].
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from dynamics import bfgs_reference as bf
from dynamics import jpo_problems as jp
from dynamics.errors import DivergenceError
from verification import engine
from verification import jpo_oracle as orc
from verification.claims import jpo_problems as claims
from verification.claims.jpo_problems import (
    JPOChaosGrowthSpec,
    JPOConjugacySpec,
    JPOProblemSpec,
    JPORippleBracketSpec,
    JPOTailSpec,
    JPOTrapSpec,
)
from verification.engine import Verdict
from verification.instances import parse_spec
from verification.testing import check_claim

SEEDS = st.integers(0, 2 ** 31 - 1)
DATA_SEEDS = st.integers(0, 10_000)


def _drive(fn, spec, label: str | None = None, *, allow_vacuous: bool = False):
    """Check a claim; inside a Hypothesis test pass ``label`` to feed ``target()`` and ``event()``."""
    res = check_claim(fn, spec, allow_vacuous=allow_vacuous, target_label=label)
    if label is not None:
        event(f"verdict: {res.verdict}")
    return res


def _all_problems(n: int = 12, seed: int = 0) -> dict[str, jp.Problem]:
    return {"ripple": jp.ripple_problem(n, 1.0, seed),
            "wave_tuned": jp.wave_packet_problem(n, jp.WAVE_TUNED, seed),
            "wave_naive": jp.wave_packet_problem(n, jp.WAVE_NAIVE, seed),
            "billiards": jp.billiards_problem(n, seed),
            "logistic": jp.logistic_problem(n, 5, seed),
            "logistic_iterated": jp.logistic_problem(n, 5, seed, mode="iterated")}


class _Corrupted(jp.ForwardModel):
    """A model whose gradient is off by ``factor`` (relative) or whose one-example loss is shifted."""

    def __init__(self, base: jp.ForwardModel, factor: float = 0.0, shift: float = 0.0):
        self.base, self.factor, self.shift = base, factor, shift
        self.n, self.d, self.analytic = base.n, base.d, base.analytic

    def _rows(self, idx):
        return _Corrupted(self.base._rows(idx), self.factor, self.shift)

    def _evaluate(self, x, want_grad):
        L, g = self.base._evaluate(x, want_grad)
        if g is not None:
            g = g * (1.0 + self.factor)
        return L + (self.shift if self.n == 1 else 0.0), g

    def _gradient_scale(self, x):
        return self.base._gradient_scale(x)

    def impact(self, v):
        return self.base.impact(v)

    def __getattr__(self, name):
        # q, radius, config, ... of the wrapped model (used by the point samplers)
        return getattr(self.__dict__["base"], name)


def _corrupt(problem: jp.Problem, **kw) -> jp.Problem:
    return dataclasses.replace(problem, model=_Corrupted(problem.model, **kw))


# --------------------------------------------------------------------------------------------
# interface


def test_ripple_api_for_other_helpers():
    assert isinstance(jp.RIPPLE_OMEGAS, np.ndarray) and jp.RIPPLE_OMEGAS.shape == (8,)
    np.testing.assert_allclose(jp.RIPPLE_OMEGAS, 20 + 40 / 7 * np.arange(8), rtol=1e-15)
    p = jp.ripple_problem(n=5, amp=2.0, seed=3)
    assert (p.name, p.n, p.d, p.d_in) == ("ripple", 5, 1, 1)
    np.testing.assert_array_equal(p.inputs[:, 0], p.model.y)
    np.testing.assert_array_equal(p.x0, [0.0])
    # Same seed, same data; different seed, different data.
    np.testing.assert_array_equal(jp.ripple_problem(5, 2.0, 3).model.phases, p.model.phases)
    assert not np.array_equal(jp.ripple_problem(5, 2.0, 4).model.y, p.model.y)


@pytest.mark.parametrize("name", list(_all_problems()))
def test_vectorised_closure_grid_and_subset_agree(name):
    p = _all_problems()[name]
    rng = np.random.default_rng(1)
    x = p.truth.x + 0.03 * rng.standard_normal(p.truth.x.shape)
    L, g = p.loss_and_grad(x)
    assert L.shape == (p.n,) and g.shape == (p.n, p.d)
    for i in (0, p.n - 1):
        ex = p.example(i)
        # One-example kernel vs the vectorised call: same formula, BLAS blocking may differ by ulps.
        assert ex.fun(x[i]) == pytest.approx(L[i], rel=1e-14, abs=1e-300)
        np.testing.assert_allclose(ex.jac(x[i]), g[i], rtol=1e-13, atol=1e-300)
        assert ex.calls == 1          # the gradient was memoised by fun
    sub = p.subset([2, 0, 2])
    np.testing.assert_allclose(sub.loss(x[[2, 0, 2]]), L[[2, 0, 2]], rtol=1e-14)
    if p.d == 1:
        pts = x[:, 0][:, None] + np.array([0.0, 1e-3, -2e-3])
        np.testing.assert_allclose(p.loss_on_grid(pts), np.stack(
            [p.loss(pts[:, [k]]) for k in range(3)], axis=1), rtol=1e-14)
        common = np.linspace(0.1, 0.9, 7)
        # The wave and logistic shared-grid forms are expanded squares: ~2 digits of cancellation.
        np.testing.assert_allclose(p.loss_on_grid(common), np.stack(
            [p.loss(np.full((p.n, 1), c)) for c in common], axis=1), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("name", list(_all_problems()))
def test_truth_is_not_reachable_from_the_training_callback(name):
    p = _all_problems()[name]
    cb = p.callback()
    assert cb.__self__ is p.model
    truth_ids = {id(p.truth.x), *(id(v) for v in p.truth.extras.values())}
    assert not truth_ids & {id(v) for v in vars(p.model).values()}
    x = p.start()
    L, g = cb(x)
    # Corrupt and permute the truth: no loss value changes.
    bad = dataclasses.replace(p, truth=jp.Truth(np.full_like(p.truth.x, np.pi)[::-1].copy(), {}))
    L2, g2 = bad.callback()(x)
    np.testing.assert_array_equal(L, L2)
    np.testing.assert_array_equal(g, g2)


def test_arrays_are_read_only():
    p = jp.ripple_problem(4, 1.0, 0)
    for arr in (p.inputs, p.x0, p.truth.x, p.model.y, p.model.phases):
        with pytest.raises(ValueError):
            arr[0] = 1.0


def test_billiards_miss_has_exactly_zero_gradient_and_constant_loss():
    p = jp.billiards_problem(64, 5)
    start = p.start()
    imp = p.model.impact(start)
    assert 0 < imp.hit.sum() < p.n
    L, g = p.loss_and_grad(start)
    miss = ~imp.hit
    assert np.all(g[miss] == 0.0)
    np.testing.assert_array_equal(L[miss], np.sum((p.model.q - p.model.goal)[miss] ** 2, axis=1))
    np.testing.assert_array_equal(imp.hit, p.truth.extras["start_hits"])
    # The derived hit rule for v0 = (1, 0): rho |sin psi| < 2r.
    rho, psi = p.truth.extras["rho"], p.truth.extras["psi"]
    np.testing.assert_array_equal(imp.hit, rho * np.abs(np.sin(psi)) < 2 * jp.BILLIARDS_RADIUS)
    # The truth solves every example exactly (noise-free goals).
    assert np.all(p.loss(p.truth.x) == 0.0)


def test_billiards_head_on_hit_transfers_the_velocity():
    # §7.3a sanity check: a head-on elastic hit gives v_b = v.
    q = np.array([[0.5, 0.0]])
    v = np.array([[1.3, 0.0]])
    imp = jp.billiards_impact(v, q)
    assert imp.hit[0]
    np.testing.assert_allclose(imp.v_b, v, rtol=1e-14)
    np.testing.assert_allclose(imp.t_star, (0.5 - 2 * jp.BILLIARDS_RADIUS) / 1.3, rtol=1e-14)
    # Geometric form of D: |v|^2 (4 r^2 - b^2).
    q2, v2 = np.array([[0.5, 0.03]]), np.array([[1.1, 0.0]])
    imp2 = jp.billiards_impact(v2, q2)
    np.testing.assert_allclose(imp2.D, 1.21 * (4 * 0.05 ** 2 - 0.03 ** 2), rtol=1e-12)
    np.testing.assert_allclose(imp2.impact_parameter, 0.03, rtol=1e-14)


@given(SEEDS, st.integers(1, 20))
def test_logistic_closed_and_iterated_states_agree_in_float64(seed, T):
    theta = np.random.default_rng(seed).uniform(0, np.pi / 2, 50)
    closed = jp.logistic_states(theta, T)
    iterated, tangents = jp.logistic_states_iterated(theta, T)
    # §7.4: the iterated map departs like 2^t eps; near x = 0 the local expansion is up to 4 per step
    # while the orbit stays small, so allow 4^t u (still 2e-4 at T = 20 and far below O(1)).
    t = np.arange(1, T + 1)
    assert np.all(np.abs(closed - iterated) <= 4.0 ** t * 8 * claims.U + 1e-300)
    # Tangents: z_t = dx_t/dtheta = 2^t sin(2^{t+1} theta), same growth.
    assert np.all(np.abs(tangents - 2.0 ** t * np.sin(2.0 ** (t + 1) * theta[:, None]))
                  <= 2.0 ** t * 4.0 ** t * 64 * claims.U)


def test_wave_wrap_points_and_complex_step_use_the_real_part():
    cfg = jp.WAVE_TUNED
    wraps = (np.arange(cfg.n_t) + 0.5) / cfg.n_t
    np.testing.assert_allclose(jp.wave_wrap_distance(wraps), 0.0, atol=1e-15)
    np.testing.assert_allclose(jp.wave_wrap_distance(wraps + 0.25 / cfg.n_t), 0.25 / cfg.n_t, rtol=1e-9)
    # Across a wrap point one sample jumps from tau = +1/2 to -1/2: F changes by
    # 2 |sin(omega/2)| exp(-1/(8 w^2)). (FINDING, minor: §7.2 bounds it by (alpha + 1) exp(-1/(8 w^2)),
    # which is too small for alpha < 1 and non-integer omega/2pi; the pedestal cancels.) For an integer
    # omega/2pi (both frozen configurations) sin(omega/2) = 0: F is continuous there and only its
    # derivative jumps, by alpha exp(-1/(8 w^2))/w^2 (a kink, which still breaks central differences).
    env = math.exp(-1 / (8 * cfg.width ** 2))
    t0 = wraps[10]
    for c in (cfg, dataclasses.replace(cfg, freq=5.5), dataclasses.replace(cfg, freq=5.5, alpha=0.0)):
        F = jp.wave_signal(np.array([t0 - 1e-13, t0 + 1e-13]), c)
        jump = np.max(np.abs(F[0] - F[1]))
        assert jump <= 2 * env * (1 + 1e-6)
        # abs: F moves by <= 2e-13 max|dF/dt0| ~ 1e-11 between the two sides anyway
        assert jump == pytest.approx(2 * abs(math.sin(c.omega / 2)) * env, rel=1e-3, abs=1e-10)
    p1 = jp.wave_packet_from_data(np.zeros((1, cfg.n_t)), cfg)
    gl, gr = (p1.grad(np.array([[t0 + s * 1e-9]]))[0, 0] for s in (-1.0, 1.0))
    # d/dt0 of mean(F^2) jumps by (2/N) F(+-1/2) [dF/dt0(1/2) - dF/dt0(-1/2)] = (2/N) (alpha env)
    # (alpha env / w^2) (one sample crosses); the other samples move by O(1e-9) and change g by ~1e-8.
    assert abs(gl - gr) == pytest.approx(2 / cfg.n_t * cfg.alpha * env * cfg.alpha * env / cfg.width ** 2,
                                         rel=1e-2)
    # The periodic loss has period 1 (up to rounding of the shifted offsets).
    p = jp.wave_packet_problem(6, cfg, 2)
    x = np.full((6, 1), 0.4321)
    np.testing.assert_allclose(p.loss(x + 1.0), p.loss(x), rtol=1e-13)


# --------------------------------------------------------------------------------------------
# gradient checks (jpo.gradient_check_adjoints)


@st.composite
def problem_specs(draw, family=None, max_T=8):
    fam = draw(st.sampled_from(claims.FAMILIES)) if family is None else family
    return JPOProblemSpec(family=fam, n=draw(st.integers(8, 48)), seed=draw(DATA_SEEDS),
                          amp=draw(st.floats(0.0, 4.0)), T=draw(st.integers(1, max_T)),
                          mode=draw(st.sampled_from(("closed", "iterated"))))


@pytest.mark.parametrize("family", claims.FAMILIES)
@given(data=st.data())
def test_jpo__gradient_check_adjoints(family, data):
    spec = data.draw(problem_specs(family=family))
    res = _drive(claims.gradient_check_adjoints, spec, "gradient error/tol", allow_vacuous=True)
    event(f"taylor points: {res.evidence.metrics.get('taylor_resolved', 0)}")


def test_jpo__gradient_check_quick_profile_covers_every_family():
    res = claims.gradient_check_adjoints.claim.run("quick")
    assert res.verdict is Verdict.HOLDS
    fams = {r.instance.family for r in res.instances if r.verdict is Verdict.HOLDS}
    assert fams == set(claims.FAMILIES)
    # At least 200 points per model, and most of them in the Taylor regime (non-vacuity).
    for r in res.instances:
        m = r.evidence.metrics
        assert m["points"] >= 200 and m["fd_ok"] >= (0.8 if r.instance.T == 8 else 0.95) * m["points"]
        assert m["taylor_resolved"] >= (0.3 if r.instance.T == 8 else 0.6) * m["points"]


@pytest.mark.parametrize("name", list(_all_problems()))
def test_gradient_checks_detect_a_wrong_gradient(name):
    p = _all_problems(200)[name]
    pts = claims.gradient_points(p, np.random.default_rng(4))
    ok = pts.fd_ok & pts.taylor_ok
    wrong = _corrupt(p, factor=1e-4)
    # A 1e-4 relative gradient error is far above the 1e-6 CD tolerance ...
    assert np.median(claims.central_difference_error(wrong, pts.x)[ok]) > 1e-6
    if p.analytic:
        assert np.median(claims.complex_step_error(wrong, pts.x)[ok]) > 1e-12
    # ... and gives a Taylor remainder slope near 1 at small t.
    g_bad = p.grad(pts.x) + 1e-2 * (1 + np.abs(p.grad(pts.x))) * pts.direction
    fit = claims.taylor_slopes(p, pts.x, pts.direction, gradient=g_bad)
    assert np.median(fit.slope[ok]) < 1.5
    good = claims.taylor_slopes(p, pts.x, pts.direction)
    assert np.all((good.slope[ok] >= 1.9) & (good.slope[ok] <= 2.1))


def test_gradient_claim_is_violated_by_a_wrong_gradient(monkeypatch):
    spec = JPOProblemSpec("ripple", 100, amp=1.0)
    orig = JPOProblemSpec.build
    monkeypatch.setattr(JPOProblemSpec, "build", lambda self: _corrupt(orig(self), factor=1e-5))
    res = claims.gradient_check_adjoints.claim.check(spec)
    assert res.verdict is Verdict.VIOLATED


def _near_grazing_points(D_lo: float, D_hi: float, n: int = 200):
    p = jp.billiards_problem(n, 11)
    rng = np.random.default_rng(12)
    q = p.model.q
    rho, psi = np.linalg.norm(q, axis=1), np.arctan2(q[:, 1], q[:, 0])
    s = rng.uniform(0.8, 1.2, n)
    r = jp.BILLIARDS_RADIUS
    b = np.sqrt(4 * r * r - rng.uniform(D_lo, D_hi, n) / s ** 2) * rng.choice([-1.0, 1.0], n)
    ang = psi + np.arcsin(b / rho)
    return p, s[:, None] * np.stack([np.cos(ang), np.sin(ang)], axis=1)


@pytest.mark.xfail(strict=True, reason=(
    "FINDING (spec §9 row jpo.gradient_check_adjoints): the billiards hypothesis D > 1e-6 does not make "
    "central differences at h = 1e-6 accurate to rel 1e-6. The sqrt(D) term gives a truncation error "
    "~ (h |grad D| / D)^2 / 8 relative to the gradient, O(1e-3) at D ~ 2e-6; rel 1e-6 needs "
    "D >~ 1e3 h |grad D| (~5e-4). The claim adds that derived resolvability hypothesis."))
def test_billiards_spec_hypothesis_suffices_for_central_differences():
    p, v = _near_grazing_points(1.5e-6, 3e-6)
    imp = p.model.impact(v)
    assert np.all(imp.hit & (imp.D > claims.SPEC_D_MIN))
    assert np.all(np.abs(imp.t_star - 1.0) > claims.SPEC_T_MARGIN)
    assert claims.central_difference_error(p, v).max() <= claims.FD_RTOL


@pytest.mark.xfail(strict=True, reason=(
    "FINDING (spec §8 / §9 row jpo.gradient_check_adjoints): for the logistic benchmark at T = 8, "
    "h = 1e-6 central differences miss rel 1e-6 at some admissible points: the truncation error "
    "h^2 |L3| / 6 (L3 the third derivative) keeps the 6 x' x'' terms (~8^T / T) while the "
    "gradient's terms scale with the residuals x_t - y_t, small near the data (measured up to 1.5e-6 "
    "of the gradient scale; the complex step agrees to 1e-12 there, so the gradient is right). The "
    "claim adds the derived resolvability hypothesis claims.fd_resolvable (excludes ~12% of uniform "
    "points at T = 8, none at T <= 5)."))
def test_logistic_T8_central_differences_resolve_everywhere():
    p = jp.logistic_problem(4000, 8, 0)
    pts = claims.gradient_points(p, np.random.default_rng(1))
    assert pts.spec_ok.all()
    assert claims.complex_step_error(p, pts.x).max() <= claims.CS_RTOL
    assert claims.central_difference_error(p, pts.x).max() <= claims.FD_RTOL


def test_fd_resolvability_is_not_vacuous_and_sufficient():
    for p in (jp.logistic_problem(2000, 8, 0), jp.logistic_problem(2000, 5, 0),
              jp.ripple_problem(2000, 2.0, 0)):
        pts = claims.gradient_points(p, np.random.default_rng(2))
        ok = claims.fd_resolvable(p, pts.x)
        assert ok.mean() > 0.8
        assert claims.central_difference_error(p, pts.x)[ok].max() <= 0.2 * claims.FD_RTOL


def test_billiards_resolvability_hypothesis_is_what_central_differences_need():
    # Just inside the derived condition CD are accurate; the condition is not vacuous there.
    p, v = _near_grazing_points(1e-3, 2e-3)
    ok = claims.billiards_fd_resolvable(p, v)
    assert ok.mean() > 0.9
    assert claims.central_difference_error(p, v)[ok].max() <= claims.FD_RTOL
    p2, v2 = _near_grazing_points(1e-6, 2e-5)
    assert not claims.billiards_fd_resolvable(p2, v2).any()


@pytest.mark.xfail(strict=True, reason=(
    "FINDING (spec §8): 'Taylor slope in [1.9, 2.1] over t in [1e-6, 1e-3]' fails at random points "
    "without a quadratic-regime hypothesis: near inflections (L'' ~ 0) the remainder has slope 3, and "
    "for the logistic benchmark at T = 8 the window is not 'below the oscillation scale' (shortest "
    "period pi/2^9 = 6.1e-3), ~40% of uniform points are outside the regime. The claim decides the "
    "regime from L alone (claims.quadratic_regime)."))
@pytest.mark.parametrize("name", ["ripple", "logistic8"])
def test_taylor_slope_holds_at_every_random_point(name):
    p = jp.ripple_problem(400, 1.0, 0) if name == "ripple" else jp.logistic_problem(400, 8, 0)
    pts = claims.gradient_points(p, np.random.default_rng(0))
    fit = claims.taylor_slopes(p, pts.x, pts.direction)
    assert np.all((fit.slope >= 1.9) & (fit.slope <= 2.1))


# --------------------------------------------------------------------------------------------
# BFGS protocol


def test_bfgs_options_are_exactly_the_spec():
    assert dict(bf.BFGS_OPTIONS) == {"gtol": 1e-8, "maxiter": 1000, "norm": np.inf, "c1": 1e-4, "c2": 0.9}


@pytest.mark.parametrize("name", list(_all_problems()))
def test_bfgs_wrapper_matches_a_plain_scipy_call(name):
    p = _all_problems(6, 3)[name]
    run = bf.bfgs_baseline(p)
    from scipy.optimize import minimize

    for i in range(p.n):
        # Plain, unmemoised closures of the same one-example model: the wrapper must reproduce this
        # call exactly (same kernel, so bitwise; the vectorised loss may differ by ulps, which in
        # a precision-loss run (status 2) can change the line search's path).
        one = p.model._rows(slice(i, i + 1))
        fun = lambda x, one=one: float(one._evaluate(x[None, :], False)[0][0])  # noqa: E731
        jac = lambda x, one=one: one._evaluate(x[None, :], True)[1][0]  # noqa: E731
        ref = minimize(fun, p.x0, jac=jac, method="BFGS", options=dict(bf.BFGS_OPTIONS))
        assert (run.nit[i], run.nfev[i], run.njev[i], run.status[i]) == (ref.nit, ref.nfev, ref.njev,
                                                                         ref.status)
        np.testing.assert_array_equal(run.x[i], ref.x)
        assert run.fun[i] == ref.fun
    assert np.all(run.consistent)
    # Refinement never worse than the start (§2.4), up to the consistency rounding.
    start_L = p.loss(p.start())
    assert np.all(run.fun <= start_L + 1e-12 * (1 + np.abs(start_L)))


@given(problem_specs(max_T=8))
def test_jpo__bfgs_result_consistency(spec):
    _drive(claims.bfgs_result_consistency, dataclasses.replace(spec, n=min(spec.n, 12)),
           "residual/tol")


def test_bfgs_inconsistency_is_raised_or_flagged():
    p = _corrupt(jp.ripple_problem(5, 1.0, 0), shift=1e-9)
    with pytest.raises(bf.BFGSInconsistency) as exc:
        bf.bfgs_baseline(p)
    assert exc.value.indices == [0, 1, 2, 3, 4]
    run = bf.bfgs_baseline(p, check="flag")
    assert not run.consistent.any() and run.residual.min() > 1e-12


def test_bfgs_consistency_claim_is_violated_by_an_inconsistent_model(monkeypatch):
    orig = JPOProblemSpec.build
    monkeypatch.setattr(JPOProblemSpec, "build", lambda self: _corrupt(orig(self), shift=1e-9))
    res = claims.bfgs_result_consistency.claim.check(JPOProblemSpec("ripple", 6))
    assert res.verdict is Verdict.VIOLATED


def test_bfgs_divergence_raises():
    class _Runaway(jp.ForwardModel):
        d, analytic = 1, False

        def __init__(self, n):
            self.n = n

        def _rows(self, idx):
            return _Runaway(len(np.arange(self.n)[idx]))

        def _evaluate(self, x, want_grad):
            return -np.exp(x[:, 0]), (-np.exp(x) if want_grad else None)

    base = jp.ripple_problem(2, 1.0, 0)
    p = dataclasses.replace(base, model=_Runaway(2))
    with pytest.raises(DivergenceError):
        bf.bfgs_baseline(p)


def test_bfgs_overhead_profile_reports_the_split():
    prof = bf.overhead_profile(jp.ripple_problem(16, 1.0, 0))
    assert prof["n"] == 16 and prof["nfev"] > 16
    assert 0 < prof["kernel_s"] < prof["total_s"]


# --------------------------------------------------------------------------------------------
# zero-gradient trap


@given(st.integers(0, 500), st.integers(4, 40))
def test_jpo__zero_gradient_trap(seed, n):
    _drive(claims.zero_gradient_trap, JPOTrapSpec(n=n, n_seeds=2, seed=seed), "trap/tol",
           allow_vacuous=True)


def test_zero_gradient_trap_quick_profile_and_hit_rate():
    res = claims.zero_gradient_trap.claim.run("quick")
    assert res.verdict is Verdict.HOLDS
    m = res.instances[0].evidence.metrics
    # Derived hit fraction of v0 is 0.260; 320 examples: SE = sqrt(0.26 0.74/320) = 0.0245, 5 SE.
    assert abs(m["hit_fraction"] - 0.260) <= 5 * math.sqrt(0.26 * 0.74 / 320)


def test_expected_start_hit_fraction():
    # Pr(rho |sin psi| < 2r) with rho ~ U(0.4, 0.6), psi ~ U(-pi/4, pi/4): the 0.260 of §7.3a.
    from scipy.integrate import quad

    r = jp.BILLIARDS_RADIUS
    val = quad(lambda rho: (4 / math.pi) * math.asin(min(1.0, 2 * r / rho)), 0.4, 0.6)[0] / 0.2
    assert val == pytest.approx(0.260, abs=5e-4)
    p = jp.billiards_problem(20_000, 1)
    hit = p.truth.extras["start_hits"].mean()
    assert abs(hit - val) <= 5 * math.sqrt(val * (1 - val) / p.n)


# --------------------------------------------------------------------------------------------
# oracle


@pytest.mark.parametrize("name", ["ripple", "wave_tuned", "wave_naive", "logistic", "billiards"])
def test_oracle_is_valid_against_many_bfgs_starts(name):
    p = _all_problems(6, 7)[name]
    oracle = orc.global_minimum(p)
    assert np.all(oracle.tau == 1e-8 + 1e-6 * np.abs(oracle.value))
    np.testing.assert_allclose(p.loss(oracle.x), oracle.value, rtol=1e-12, atol=1e-15)
    rng = np.random.default_rng(8)
    base = bf.bfgs_baseline(p)
    orc.check_oracle_valid(base.fun, oracle, "BFGS")
    # 24 random restarts per example around the truth / over the prior: none beats the oracle.
    k = 24
    rep = p.subset(np.repeat(np.arange(p.n), k))
    if name == "billiards":
        starts = rep.truth.x * (1 + 0.2 * rng.standard_normal(rep.truth.x.shape))
    elif name == "logistic":
        starts = rng.uniform(0, np.pi / 2, (rep.n, 1))
    elif name == "ripple":
        starts = rep.truth.x + rng.uniform(-1, 1, (rep.n, 1))
    else:
        starts = rng.uniform(0, 1, (rep.n, 1))
    runs = bf.bfgs_refine(rep, starts)
    best = runs.fun.reshape(p.n, k).min(axis=1)
    orc.check_oracle_valid(best, oracle, "random-restart BFGS")
    g = orc.global_min_fraction(base.fun, oracle)
    cmp = orc.compare_to_bfgs(best, base.fun, oracle)
    assert cmp.win_rate <= orc.win_rate_cap(base.fun, oracle) + 1e-15 and 0 <= g <= 1


def test_ripple_oracle_against_a_brute_force_grid():
    p = jp.ripple_problem(4, 2.0, 9)
    oracle = orc.grid_oracle(p)
    assert oracle.details["spacing"] <= 1e-4
    grid = np.linspace(-3, 3, 600_001)          # spacing 1e-5 over a range far beyond the bracket
    brute = p.loss_on_grid(grid).min(axis=1)
    assert np.all(oracle.value <= brute + oracle.tau)
    orc.check_oracle_valid(brute, oracle, "brute-force grid")


def test_logistic_oracle_spacing_follows_the_shortest_period():
    p = jp.logistic_problem(3, 4, 0)
    oracle = orc.grid_oracle(p)
    assert oracle.details["spacing"] <= math.pi / 2 ** 5 / 1000
    with pytest.raises(ValueError, match="spacing"):
        orc.grid_oracle(p, spacing=math.pi / 2 ** 4 / 1000)


def test_multistart_oracle_small_case():
    p = jp.billiards_problem(2, 3)
    oracle = orc.multistart_oracle(p, n_starts=256, seed=1)
    assert oracle.details["starts"] == 257
    # The start at the truth reaches the known zero.
    assert np.all(oracle.value <= 1e-20)
    orc.check_oracle_valid(np.zeros(2), oracle, "truth")


def test_oracle_invalid_is_raised():
    p = jp.ripple_problem(3, 1.0, 0)
    oracle = orc.global_minimum(p)
    fake = oracle.value.copy()
    fake[1] -= 2 * oracle.tau[1]
    assert orc.oracle_violations(fake, oracle).tolist() == [1]
    with pytest.raises(orc.OracleInvalid) as exc:
        orc.check_oracle_valid(fake, oracle, "fake")
    assert exc.value.indices == [1]
    # Within tau is valid.
    orc.check_oracle_valid(oracle.value - 0.5 * oracle.tau, oracle, "within tau")


@given(SEEDS, st.integers(1, 40))
def test_comparison_metrics(seed, n):
    rng = np.random.default_rng(seed)
    Ls = rng.uniform(0, 1, n)
    oracle = orc.OracleResult(Ls, np.zeros((n, 1)), orc.tolerance(Ls), "test")
    LB = Ls + rng.choice([0.0, 0.5], n) * rng.uniform(0, 1, n)
    LM = Ls + rng.choice([0.0, 0.5], n) * rng.uniform(0, 1, n)
    cmp = orc.compare_to_bfgs(LM, LB, oracle)
    assert np.all(cmp.win.astype(int) + cmp.loss + cmp.tie == 1)
    assert cmp.win_rate + cmp.loss_rate + cmp.tie_rate == pytest.approx(1.0)
    # §5.2 exact consequence: w <= 1 - g_BFGS for a valid oracle.
    assert cmp.win_rate <= orc.win_rate_cap(LB, oracle) + 1e-15
    d = cmp.decisive_win_rate
    assert d is None if cmp.win.sum() + cmp.loss.sum() == 0 else 0 <= d <= 1
    q = orc.log_suboptimality_ratio(LM, LB, oracle)
    assert np.all(np.sign(q[cmp.win]) <= 0)
    mm = orc.mean_median(q)
    assert set(mm) == {"mean", "median"}
    assert np.all(orc.at_global_minimum(Ls, oracle))


def test_log_loss_ratio():
    np.testing.assert_allclose(orc.log_loss_ratio([1.0, 10.0], [10.0, 10.0]), [-1.0, 0.0])
    with pytest.raises(ValueError, match="positive"):
        orc.log_loss_ratio([0.0, 1.0], [1.0, 1.0])


# --------------------------------------------------------------------------------------------
# ripple bracket, conjugacy, chaos, tail


@given(st.integers(1, 6), st.floats(0.05, 6.0), DATA_SEEDS)
def test_jpo__ripple_global_min_bracket(n, amp, seed):
    _drive(claims.ripple_global_min_bracket, JPORippleBracketSpec(n=n, amp=amp, seed=seed), "bracket")


@given(st.floats(0.0, 10.0))
def test_ripple_bracket_halfwidths(amp):
    # §7.1: 0.6733 (amp 1) and 0.9521 (amp 2); the dynamics hint equals the bounds formula.
    assert jp.ripple_bracket_halfwidth(1.0) == pytest.approx(0.6733, abs=5e-5)
    assert jp.ripple_bracket_halfwidth(2.0) == pytest.approx(0.9521, abs=5e-5)
    assert jp.ripple_bracket_halfwidth(amp) == pytest.approx(claims.ripple_bracket_formula(amp), rel=1e-15)


def test_ripple_bracket_claim_would_catch_a_too_narrow_bracket(monkeypatch):
    monkeypatch.setattr(claims, "ripple_bracket_formula", lambda amp: 0.02)
    res = claims.ripple_global_min_bracket.claim.check(JPORippleBracketSpec(n=8, amp=2.0))
    assert res.verdict is Verdict.VIOLATED


def test_jpo__logistic_conjugacy():
    res = _drive(claims.logistic_conjugacy, JPOConjugacySpec())
    assert res.evidence.metrics["mp_state_max_diff"] < 1e-45


@given(SEEDS)
@settings(max_examples=5)
def test_jpo__logistic_conjugacy_small(seed):
    _drive(claims.logistic_conjugacy, JPOConjugacySpec(n_theta=3, T_max=12, n_grad=64, seed=seed), "conj")


@pytest.mark.xfail(strict=True, reason=(
    "FINDING (spec §9 row jpo.logistic_conjugacy, §7.4): float64 closed-form and forward-mode gradients do "
    "not agree within 2^T 1e-15 relative at every theta: near the repelling fixed point x = 0 (and its "
    "preimage x = 1) the map expands by up to 4 per step, so the rounding error of the iterated map grows "
    "up to 4^t. About 1% of uniform theta exceed it even relative to the a-priori scale (2/T) sum 2^t, "
    "and ~15% relative to |g|; the median is 0.16 x 2^T 1e-15. The claim checks every point against the "
    "propagated rounding bound (claims.forward_mode_error_bound) and the median against 2^T 1e-15."))
def test_logistic_float64_gradient_forms_within_spec_rate_everywhere():
    rng = np.random.default_rng(20240815 + claims.K_CONJUGACY)
    T = 10
    p = jp.logistic_problem(4000, T, rng)
    th = rng.uniform(0, np.pi / 2, p.n)
    err = np.abs(p.grad(th[:, None])[:, 0] - jp.logistic_gradient_forward_mode(th, p.model.y))
    apriori = (2 / T) * np.sum(2.0 ** np.arange(1, T + 1))
    assert np.all(err <= 2.0 ** T * 1e-15 * apriori)


def test_forward_mode_error_bound_is_not_vacuous():
    rng = np.random.default_rng(3)
    T = 12
    p = jp.logistic_problem(500, T, rng)
    th = rng.uniform(0, np.pi / 2, p.n)
    err = np.abs(p.grad(th[:, None])[:, 0] - jp.logistic_gradient_forward_mode(th, p.model.y))
    bound = claims.forward_mode_error_bound(th, p.model.y)
    assert np.all(err <= bound)
    # Typical size of the bound: a few times the spec's 2^T 1e-15 rate, not orders of magnitude more.
    apriori = (2 / T) * np.sum(2.0 ** np.arange(1, T + 1))
    assert np.median(bound / apriori / (2.0 ** T * 1e-15)) < 10


def test_jpo__chaos_gradient_growth():
    res = _drive(claims.chaos_gradient_growth, JPOChaosGrowthSpec())
    lo, hi = res.evidence.metrics["const_range"]
    assert hi - lo < 0.2           # log2 RMS - (T - log2 T) is close to a constant


def test_chaos_formula_detects_a_wrong_exponent(monkeypatch):
    monkeypatch.setattr(claims, "chaos_log2_rms_formula", lambda T, sigma_y=0.01: 1.1 * T - math.log2(T))
    res = claims.chaos_gradient_growth.claim.check(JPOChaosGrowthSpec(M=1000))
    assert res.verdict is Verdict.VIOLATED


def test_jpo__billiards_grazing_tail_index():
    res = _drive(claims.billiards_grazing_tail_index, JPOTailSpec())
    assert 1.8 <= res.evidence.metrics["hill"] <= 2.4


def test_hill_estimator_on_exact_pareto():
    rng = np.random.default_rng(5)
    x = rng.pareto(2.0, 400_000) + 1.0     # tail index exactly 2
    # Hill at k = 1000: SE = alpha / sqrt(k) = 0.063; 5 SE.
    assert abs(claims.hill_estimator(x, 1000) - 2.0) <= 5 * 2.0 / math.sqrt(1000)
    # A tail of index 1 (Cauchy-like) is told apart.
    assert claims.hill_estimator(rng.pareto(1.0, 400_000) + 1.0, 1000) < 1.5


# --------------------------------------------------------------------------------------------
# registry, quick profiles, spec round trips

IDS = ["jpo.gradient_check_adjoints", "jpo.bfgs_result_consistency", "jpo.zero_gradient_trap",
       "jpo.ripple_global_min_bracket", "jpo.logistic_conjugacy", "jpo.chaos_gradient_growth",
       "jpo.billiards_grazing_tail_index"]


@pytest.mark.parametrize("claim_id", IDS)
def test_quick_profile_holds(claim_id):
    c = engine.get(claim_id)
    assert c.family == "jpo" and c.reference.startswith("docs/theory/jpo.md#")
    res = c.run("quick")
    assert res.verdict is Verdict.HOLDS, [(r.verdict, r.error, r.worst()) for r in res.instances]
    for r in res.instances:
        assert parse_spec(repr(r.instance)) == r.instance


@pytest.mark.parametrize("claim_id", IDS)
def test_paper_profile_lists_instances(claim_id):
    specs = engine.get(claim_id).instances("paper", 0)
    assert specs and all(parse_spec(repr(s)) == s for s in specs)


# --------------------------------------------------------------------------------------------
# bad input


BAD_INPUTS = [
    ("n", lambda: jp.ripple_problem(0, 1.0, 0)),
    ("amp", lambda: jp.ripple_problem(4, -1.0, 0)),
    ("amp", lambda: jp.ripple_problem(4, math.nan, 0)),
    ("seed", lambda: jp.ripple_problem(4, 1.0, -1)),
    ("y, phases", lambda: jp.ripple_from_data(np.zeros(5), np.zeros((4, 8)), 1.0)),
    ("phases", lambda: jp.ripple_from_data(np.zeros(5), np.zeros((5, 7)), 1.0)),
    ("y", lambda: jp.ripple_from_data(np.array([0.0, np.nan]), np.zeros((2, 8)), 1.0)),
    ("width", lambda: jp.WavePacketConfig(width=0.0, freq=5, alpha=1, a=0.25)),
    ("freq", lambda: jp.WavePacketConfig(width=0.1, freq=-5, alpha=1, a=0.25)),
    ("a", lambda: jp.WavePacketConfig(width=0.1, freq=5, alpha=1, a=0.7)),
    ("alpha", lambda: jp.WavePacketConfig(width=0.1, freq=5, alpha=-1, a=0.25)),
    ("config", lambda: jp.wave_packet_problem(4, (0.1, 5, 1, 0.25), 0)),
    ("y", lambda: jp.wave_packet_from_data(np.zeros((3, 64)), jp.WAVE_TUNED)),
    ("y", lambda: jp.wave_packet_from_data(np.full((3, 128), np.inf), jp.WAVE_TUNED)),
    ("radius", lambda: jp.billiards_problem(4, 0, radius=0.0)),
    ("restitution", lambda: jp.billiards_problem(4, 0, restitution=1.5)),
    ("horizon", lambda: jp.billiards_problem(4, 0, horizon=0.1)),
    ("q, goal", lambda: jp.billiards_from_data(np.ones((3, 2)), np.ones((4, 2)))),
    ("q", lambda: jp.billiards_from_data(np.full((2, 2), 0.01), np.ones((2, 2)))),
    ("goal", lambda: jp.billiards_from_data(np.ones((2, 2)), np.array([[1.0, np.nan], [1, 1]]))),
    ("T", lambda: jp.logistic_problem(4, 0, 0)),
    ("T", lambda: jp.logistic_problem(4, 41, 0)),
    ("sigma_y", lambda: jp.logistic_problem(4, 5, 0, sigma_y=-0.1)),
    ("mode", lambda: jp.logistic_problem(4, 5, 0, mode="adjoint")),
    ("y", lambda: jp.logistic_from_data(np.array([[0.1, np.nan]]))),
    ("theta, y", lambda: jp.logistic_gradient_forward_mode(np.zeros(3), np.zeros((2, 4)))),
    ("x", lambda: jp.ripple_problem(4, 1.0, 0).loss(np.zeros((3, 1)))),
    ("x", lambda: jp.ripple_problem(4, 1.0, 0).loss(np.zeros(4))),
    ("x", lambda: jp.ripple_problem(4, 1.0, 0).loss(np.full((4, 1), np.nan))),
    ("x", lambda: jp.ripple_problem(4, 1.0, 0).loss(np.full((4, 1), 1e200))),
    ("x", lambda: jp.ripple_problem(4, 1.0, 0).grad(np.zeros((4, 1)) + 1e-20j)),
    ("x", lambda: jp.billiards_problem(4, 0).loss(np.zeros((4, 2)) + 1e-20j)),
    ("x", lambda: jp.ripple_problem(4, 1.0, 0).loss(np.array([["a"]] * 4))),
    ("i", lambda: jp.ripple_problem(4, 1.0, 0).example(4)),
    ("grid", lambda: jp.billiards_problem(4, 0).loss_on_grid(np.zeros(3))),
    ("grid", lambda: jp.ripple_problem(4, 1.0, 0).loss_on_grid(np.zeros((3, 5)))),
    ("idx", lambda: jp.ripple_problem(4, 1.0, 0).subset([])),
    ("starts", lambda: bf.bfgs_refine(jp.ripple_problem(4, 1.0, 0), np.zeros((3, 1)))),
    ("starts", lambda: bf.bfgs_refine(jp.ripple_problem(4, 1.0, 0), np.full((4, 1), np.nan))),
    ("check", lambda: bf.bfgs_baseline(jp.ripple_problem(4, 1.0, 0), check="warn")),
    ("problem", lambda: bf.bfgs_baseline("ripple")),
    ("problem", lambda: orc.global_minimum(object())),
    ("n_starts", lambda: orc.multistart_oracle(jp.billiards_problem(2, 0), n_starts=100)),
    ("n_polish", lambda: orc.grid_oracle(jp.ripple_problem(2, 1.0, 0), n_polish=0)),
    ("problem", lambda: orc.grid_oracle(jp.billiards_problem(2, 0))),
    ("L_bfgs", lambda: orc.compare_to_bfgs(np.zeros(3), np.zeros(4), np.zeros(3))),
    ("tau", lambda: orc.compare_to_bfgs(np.zeros(3), np.zeros(3), -np.ones(3))),
    ("L_method", lambda: orc.compare_to_bfgs(np.array([np.nan]), np.zeros(1), np.zeros(1))),
    ("family", lambda: JPOProblemSpec(family="fluid")),
    ("n", lambda: JPOProblemSpec(n=0)),
    ("spacing", lambda: JPORippleBracketSpec(spacing=1e-3)),
    ("lo, hi", lambda: JPORippleBracketSpec(lo=1.0, hi=0.0)),
    ("dps", lambda: JPOConjugacySpec(dps=15)),
    ("k", lambda: JPOTailSpec(M=100, k=100)),
    ("T_max", lambda: JPOChaosGrowthSpec(T_min=5, T_max=4)),
    ("k", lambda: claims.hill_estimator(np.ones(10), 10)),
]


@pytest.mark.parametrize(("arg", "call"), BAD_INPUTS, ids=[f"{a}-{i}" for i, (a, _) in enumerate(BAD_INPUTS)])
def test_bad_input_raises_value_error_naming_the_argument(arg, call):
    with pytest.raises(ValueError) as exc:
        call()
    assert str(exc.value).startswith(arg.split(",")[0]) or arg in str(exc.value), str(exc.value)


# --------------------------------------------------------------------------------------------
# hunt finding 1 (docs/hunt.md Findings): logistic Taylor window at T >= 9


def test_taylor_window_scales_with_logistic_horizon():
    # t_max omega stays at the T = 8 value (omega = 2^(T+2)); T <= 8 keeps the §8 window
    for T in (3, 8):
        assert claims.taylor_t_max(JPOProblemSpec("logistic", 4, T=T).build()) == 1e-3
    for T in (9, 11, 20):
        t_max = claims.taylor_t_max(JPOProblemSpec("logistic", 4, T=T).build())
        assert t_max * 2.0 ** (T + 2) == pytest.approx(claims.TAYLOR_PHASE_MAX, rel=1e-12)
    assert claims.taylor_t_max(JPOProblemSpec("ripple", 4).build()) == 1e-3


@pytest.mark.parametrize("T,seed", [(9, 0), (9, 1), (9, 2), (10, 0), (11, 0)])
def test_gradient_check_logistic_large_T_holds(T, seed):
    # pinned: JPOProblemSpec(family='logistic', n=200, seed=0, amp=1.0, T=9, mode='closed') gave
    # Taylor slopes [1.73, 2.11] with the fixed window t in [1e-6, 1e-3] (outside the quadratic regime)
    spec = JPOProblemSpec(family="logistic", n=200, seed=seed, amp=1.0, T=T, mode="closed")
    res = claims.gradient_check_adjoints.claim.check(spec)
    assert res.verdict is Verdict.HOLDS, res
    lo, hi = res.evidence.metrics["taylor_slope_range"]
    assert 1.9 <= lo and hi <= 2.1
    # the check stays meaningful: most points are resolved, not excluded
    assert res.evidence.metrics["taylor_resolved"] >= 40


@pytest.mark.parametrize("T", [9, 11])
def test_taylor_slope_detects_wrong_gradient_at_large_T(T):
    p = JPOProblemSpec("logistic", 200, T=T).build()
    pts = claims.gradient_points(p, np.random.default_rng(3))
    _, g = p.loss_and_grad(pts.x)
    bad = claims.taylor_slopes(p, pts.x, pts.direction, gradient=g * (1 + 1e-3))
    good = claims.taylor_slopes(p, pts.x, pts.direction)
    ok = pts.taylor_ok & (good.points >= claims.TAYLOR_MIN_POINTS)
    assert ok.sum() >= 40
    assert np.all((good.slope[ok] >= 1.9) & (good.slope[ok] <= 2.1))
    # a 1e-3 relative error turns the remainder linear at the window's small end: the claim's
    # [1.9, 2.1] check fails on some point (and a 1e-2 error on most)
    assert bad.slope[ok].min() < 1.9
    worse = claims.taylor_slopes(p, pts.x, pts.direction, gradient=g * (1 + 1e-2))
    assert np.median(worse.slope[ok]) < 1.9
