"""Property tests of the stationary-point claims (D6-iii/iv) and the section 8 global minimizer.

The claim tests drive the registered claims on Hypothesis-built instances, so the tested statement
and its tolerance are exactly those ``invbounds verify`` reports. The scalar and matrix tests check
the building blocks of :mod:`bounds.dln_minimizer` directly (grid, mpmath root, monotonicity,
first-order condition, one-step exactness, off-subspace perturbations) and their input validation.
"""

from __future__ import annotations

import ast
import itertools
import math
import pathlib

import mpmath
import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from bounds import dln_minimizer as dmin
from bounds import dln_weight_decay as dlb
from dynamics import deep_linear as dl
from dynamics import deep_linear_polish as polish
from verification.claims import dln_minimizer as claims
from verification.dln_instances import DLNSpec, materialize, trajectory
from verification.engine import Verdict
from verification.testing import check_claim

pytestmark = pytest.mark.exact

U = 2.0**-53


def _examples(n: int) -> int:
    """At most ``n`` examples, fewer if the active profile asks for fewer (GD + polish per example)."""
    return min(settings.default.max_examples, n)


def _check(fn, spec, allowed=(), **kw):
    """Drive a claim; a vacuous verdict is accepted only for the listed failed hypotheses."""
    res = check_claim(fn, spec, allow_vacuous=True, **kw)
    unexpected = set(res.failed_hypotheses) - set(allowed)
    assert not unexpected, f"{spec!r}: unexpected failed hypotheses {sorted(unexpected)}"
    return res


@st.composite
def small_specs(draw, *, L=(1, 6), designs=("gaussian", "isotropic"), lam=(0.01, 0.3),
                conventions=("talk", "pytorch_wd"), steps=1500, wide=False):
    """Small instances whose GD + polish is fast: ``d <= 18``, ``s <= 3``, ``d_w <= 10`` (or
    ``d_w`` in ``[2m, 2m + 4]`` when ``wide``).

    ``m >= s + 2`` and ``n >= s + 4`` keep ``kappa(Y)`` moderate: the reference's proximal gradient
    contracts at ``1 - O(kappa(Y)^-2)`` per step, and at ``kappa(Y) ~ 50`` (``n = s``) it needs more than
    its ``1e5`` iterations (the claim then reports ``reference_converged`` as failed).
    """
    s = draw(st.integers(1, 3))
    m = s + draw(st.integers(2, 5))
    d = m + draw(st.integers(1, 8))
    n = s + draw(st.integers(4, 12))
    depth = draw(st.integers(*L))
    lam_v = 10.0 ** draw(st.floats(math.log10(lam[0]), math.log10(lam[1])))
    d_w = draw(st.integers(2 * m, 2 * m + 4) if wide else st.integers(s, 10))
    return DLNSpec(d=d, m=m, s=s, n=n, L=depth, d_w=d_w, lam=lam_v,
                   k=1.0 if depth == 1 else draw(st.sampled_from([1.0, 2.0])),
                   design=draw(st.sampled_from(designs)),
                   convention=draw(st.sampled_from(conventions)), steps=steps,
                   seed=draw(st.integers(0, 2**31 - 1)))


# --------------------------------------------------------------------------------------------
# the scalar problem

scalar_args = st.tuples(st.integers(1, 6), st.floats(-1.0, 1.0).map(lambda e: 10.0**e),
                        st.floats(-3.0, 0.0).map(lambda e: 10.0**e),
                        st.floats(-2.0, 1.0).map(lambda e: 10.0**e))


def _phi(x, a, k, mu, p):
    return 0.5 * a * (x - k) ** 2 + mu * x**p


@given(scalar_args)
def test_scalar_argmin_beats_grid_and_matches_mpmath(args):
    L, a, mu, k = args
    p = 2.0 / L
    x = dmin.scalar_argmin(a, k, mu, p)
    assert 0.0 <= x <= k
    grid = np.linspace(0.0, k, 20_000)
    phi_grid = float(np.min(_phi(grid, a, k, mu, p)))
    # phi is a sum of two terms of size <= a k^2 / 2 + mu k^p, each rounded once or twice.
    assert _phi(x, a, k, mu, p) <= phi_grid + 8 * U * (a * k * k + mu * k**p)
    x_mp = dmin.scalar_argmin_mp(a, k, mu, p, dps=50)
    if (x > 0) == (x_mp > 0):
        # 1e-13 relative, plus the conditioning of the root where x << k (soft thresholding
        # just above mu/a loses relative accuracy to cancellation).
        assert abs(x - float(x_mp)) <= (1e-13 * float(x_mp)
                                        + (claims.root_conditioning(x, a, k, mu, p) if x else 0.0))
    else:
        # Only a tie phi(x_+) = phi(0) lets the branches differ; then k sits at the threshold.
        k_star = dmin.zero_branch_threshold(a, mu, p)
        assert abs(k - k_star) <= 1e-12 * k_star


@given(scalar_args)
def test_scalar_argmin_first_order_condition(args):
    L, a, mu, k = args
    p = 2.0 / L
    x = dmin.scalar_argmin(a, k, mu, p)
    assume(x > 0)
    g = dmin.scalar_derivative(x, a, k, mu, p)
    # Root accuracy 4 rtol times g' <= a, plus rounding of the three terms of g.
    assert abs(g) <= 4 * dmin.BRENTQ_RTOL * a * x + 16 * U * (a * (x + k) + mu * p * x ** (p - 1))


@given(st.integers(1, 6), st.floats(-1.0, 1.0).map(lambda e: 10.0**e),
       st.floats(-3.0, 0.0).map(lambda e: 10.0**e),
       st.lists(st.floats(-2.0, 1.0).map(lambda e: 10.0**e), min_size=2, max_size=40))
def test_scalar_argmin_monotone_in_k(L, a, mu, ks):
    p = 2.0 / L
    ks = sorted(ks)
    xs = [dmin.scalar_argmin(a, k, mu, p) for k in ks]
    for x0, x1 in itertools.pairwise(xs):
        assert x1 >= x0 - 4 * dmin.BRENTQ_RTOL * x0


@pytest.mark.parametrize("L", [3, 4, 5, 6])
def test_zero_branch_threshold_is_the_tie(L):
    a, mu, p = 1.7, 0.3, 2.0 / L
    k_star = dmin.zero_branch_threshold(a, mu, p)
    assert dmin.scalar_argmin(a, k_star * (1 - 1e-9), mu, p) == 0.0
    x = dmin.scalar_argmin(a, k_star * (1 + 1e-9), mu, p)
    # At the tie, x_+ = 2 k (1 - p) / (2 - p) [derived from g(x) = 0 and phi(x) = phi(0)].
    assert x == pytest.approx(2 * k_star * (1 - p) / (2 - p), rel=1e-6)
    ctx = mpmath.MPContext()
    ctx.dps = 50
    x_tie = dmin.scalar_argmin_mp(a, ctx.mpf(k_star), mu, p)
    gap = _phi(ctx.mpf(x_tie), ctx.mpf(a), ctx.mpf(k_star), ctx.mpf(mu), ctx.mpf(p)) - \
        ctx.mpf(a) * ctx.mpf(k_star) ** 2 / 2
    assert abs(gap) <= 64 * U * a * k_star**2


def test_scalar_argmin_closed_forms():
    assert dmin.scalar_argmin(2.0, 3.0, 0.5, 2.0) == pytest.approx(2.0 * 3.0 / 3.0, rel=1e-15)
    assert dmin.scalar_argmin(2.0, 3.0, 0.5, 1.0) == 3.0 - 0.25
    assert dmin.scalar_argmin(2.0, 0.2, 0.5, 1.0) == 0.0
    assert dmin.scalar_argmin(2.0, 0.0, 0.5, 0.5) == 0.0
    # Convex p in (1, 2): the root of a (x - k) + mu p x^{p-1}.
    x = dmin.scalar_argmin(1.0, 2.0, 0.4, 1.5)
    assert abs((x - 2.0) + 0.6 * x**0.5) <= 1e-14
    assert float(dmin.scalar_argmin_mp(1.0, 2.0, 0.4, 1.5)) == pytest.approx(x, rel=1e-14)


def test_scalar_argmin_mp_uses_a_private_context():
    before = mpmath.mp.dps
    x = dmin.scalar_argmin_mp(1.0, 1.5, 0.2, 2.0 / 3.0, dps=60)
    assert mpmath.mp.dps == before
    assert x.context.dps == 60
    assert x.context is not mpmath.mp


@given(st.builds(claims.ScalarProxSpec, L=st.integers(1, 6),
                 a=st.floats(-1.0, 1.0).map(lambda e: 10.0**e),
                 mu=st.floats(-3.0, 0.0).map(lambda e: 10.0**e), n_k=st.integers(1, 8),
                 seed=st.integers(0, 2**31 - 1)))
@settings(max_examples=_examples(10))
def test_dln__scalar_prox_correct(spec):
    check_claim(claims.scalar_prox_correct, spec, target_label="scalar prox residual/tol")


# --------------------------------------------------------------------------------------------
# matrices: prox, proximal gradient, Phi


@given(st.integers(1, 6), st.integers(1, 5), st.integers(0, 2**31 - 1),
       st.floats(-2.0, 0.0).map(lambda e: 10.0**e))
def test_prox_schatten_beats_perturbations(L, s, seed, tau):
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((s, s + 1))
    p = 2.0 / L
    K = dmin.prox_schatten(V, tau, p)

    def obj(B):
        return 0.5 * float(np.sum((B - V) ** 2)) + tau * float(
            np.sum(np.linalg.svd(B, compute_uv=False) ** p))

    base = obj(K)
    for _ in range(20):
        D = rng.standard_normal(V.shape) * 10.0 ** rng.uniform(-4, 0)
        assert base <= obj(K + D) + 64 * U * (abs(base) + float(np.sum(V * V)))


@given(st.integers(1, 6), st.integers(1, 4), st.integers(0, 2**31 - 1),
       st.floats(-0.5, 0.5).map(lambda e: 10.0**e), st.floats(-3.0, -0.5).map(lambda e: 10.0**e))
def test_proximal_gradient_one_step_exact_in_isotropic_design(L, s, seed, beta, mu):
    rng = np.random.default_rng(seed)
    K0 = rng.standard_normal((s, s))
    S_Y = np.full(s, beta)
    p = 2.0 / L
    U0, k, V0t = np.linalg.svd(K0)
    closed = (U0 * np.array([dmin.scalar_argmin(beta**2, float(v), mu, p) for v in k])) @ V0t
    start = rng.standard_normal((s, s)) * 3.0
    one, its, _ = dmin.proximal_gradient(K0, S_Y, mu, p, start=start, maxiter=1)
    assert its == 1
    # K - t (K - K0) beta^2 = K0 up to the rounding of ||K|| + ||K0||; the prox is 2-Lipschitz
    # away from the zero-branch jump, which the comparison skips.
    near_jump = p < 1 and np.any(np.abs(k / dmin.zero_branch_threshold(beta**2, mu, p) - 1) < 1e-6)
    assume(not near_jump)
    scale = float(np.linalg.norm(start) + np.linalg.norm(K0))
    assert np.linalg.norm(one - closed) <= 1024 * U * 2.0 * scale


@given(st.integers(1, 4), st.integers(0, 2**31 - 1), st.floats(-2.0, 0.0).map(lambda e: 10.0**e))
def test_proximal_gradient_ridge_fixed_point(s, seed, lam_bar):
    # L = 1: the proximal-gradient fixed point is the ridge closed form K0 S^2 (S^2 + lam_bar)^{-1}.
    rng = np.random.default_rng(seed)
    K0 = rng.standard_normal((s, s))
    S_Y = np.sort(rng.uniform(0.5, 2.0, s))[::-1]
    K, _, conv = dmin.proximal_gradient(K0, S_Y, lam_bar / 2, 2.0, maxiter=20_000)
    assert conv
    ridge = K0 * (S_Y**2 / (S_Y**2 + lam_bar))[None, :]
    # Contraction factor 1 - (sigma_s^2 + lam_bar) t; the stop rule leaves ~1e-15 / (1 - q).
    q = 1 - (S_Y[-1] ** 2 + lam_bar) / (S_Y[0] ** 2 + lam_bar)
    assert np.linalg.norm(K - ridge) <= (1e-15 / (1 - q) + 1e-13) * (1 + np.linalg.norm(ridge))


def _instance(L, design="gaussian", seed=0, lam=0.05):
    inst = materialize(DLNSpec(d=12, m=6, s=2, n=10, L=L, d_w=6, lam=lam, design=design, seed=seed))
    return inst, inst.data.A, inst.data.R, inst.data.X, inst.data.Y


@given(st.integers(1, 5), st.sampled_from(["gaussian", "isotropic"]), st.integers(0, 50),
       st.floats(-6.0, -1.0).map(lambda e: 10.0**e))
@settings(max_examples=_examples(10))
# A minimizer on the zero branch in one direction: K* has an exact zero singular value, R K* U^T a
# rounding-level one (~1e-17) whose (1e-17)^(2/5) ~ 1.6e-7 counted with s=2 broke rel=1e-12.
@example(L=5, design="isotropic", seed=11, rel_eps=0.1)
def test_perturbing_minimizer_off_subspace_raises_phi(L, design, seed, rel_eps):
    _, A, R, X, Y = _instance(L, design, seed)
    ref = dmin.global_minimizer(A, R, Y, 0.05, 1.0, L, n_random=2, seed=seed)
    rng = np.random.default_rng(seed)
    Q = dl.range_basis(Y, 2)
    N = rng.standard_normal(ref.M_star.shape)
    # s=None counts only singular values above the numerical rank threshold, so an exact zero of
    # K* stays zero in the full map.
    phi_star = dmin.Phi(ref.M_star, X, Y, ref.mu, ref.p, None)
    assert phi_star == pytest.approx(ref.phi, rel=1e-12)
    for D in (N - (N @ Q) @ Q.T, N - R @ (R.T @ N)):
        eps = rel_eps * np.linalg.norm(ref.M_star, 2) / np.linalg.norm(D)
        phi = dmin.Phi(ref.M_star + eps * D, X, Y, ref.mu, ref.p, None)
        # The increase is at least mu (eps ||D||)^p-ish for p <= 1 and ~ mu eps^2 for p = 2 (plus
        # the data term for (I - RR^T) N), far above the rounding of Phi.
        assert phi > phi_star + 64 * U * abs(phi_star)


def test_phi_top_s_ignores_numerically_zero_singular_values():
    _, A, R, X, Y = _instance(5, seed=3)
    ref = dmin.global_minimizer(A, R, Y, 0.05, 1.0, 5, n_random=1)
    noisy = ref.M_star + 1e-14 * np.random.default_rng(0).standard_normal(ref.M_star.shape)
    top = dmin.Phi(noisy, X, Y, ref.mu, ref.p, 2)
    everything = dmin.Phi(noisy, X, Y, ref.mu, ref.p, min(noisy.shape))
    assert top == pytest.approx(ref.phi, rel=1e-12)
    # (1e-14)^{2/5} ~ 2.5e-6 per spurious singular value (section 8.3).
    assert everything - top > 1e-6


def test_global_minimizer_multistart_reports_starts_and_spread():
    inst, A, R, _, Y = _instance(4, seed=1)
    traj = trajectory(inst.spec.replace(k=2.0, steps=800))
    M_gd = dl.end_to_end(traj.weights)
    ref = dmin.global_minimizer(A, R, Y, 0.05, 1.0, 4, starts=[M_gd], n_random=3, seed=7)
    assert ref.method == "proximal_gradient_multistart"
    assert len(ref.start_phis) == 1 + 1 + 3
    assert ref.phi == min(ref.start_phis)
    assert ref.spread == pytest.approx(max(ref.start_phis) - min(ref.start_phis))
    assert ref.converged


def test_reduced_problem_reproduces_the_oracle():
    inst, A, R, _, Y = _instance(3, seed=2)
    K0, S_Y, U_Y = dmin.reduced_problem(A, R, Y)
    assert np.linalg.norm(R @ K0 @ U_Y.T - inst.oracle) <= 1024 * U * np.linalg.norm(inst.oracle) * 10
    np.testing.assert_allclose(np.linalg.svd(K0, compute_uv=False),
                               1.0 / np.linalg.svd(A @ R, compute_uv=False)[::-1], rtol=1e-12)
    np.testing.assert_allclose(S_Y, np.linalg.svd(Y, compute_uv=False)[:2], rtol=1e-14)


def test_isotropic_small_lambda_expansion_is_first_order():
    k = np.array([2.0, 0.7])
    for L in (1, 3, 5):
        r = [np.max(np.abs(np.array([dmin.scalar_argmin(1.0, v, lb * L / 2, 2.0 / L) for v in k])
                           - dmin.isotropic_small_lambda(k, 1.0, lb, L))) for lb in (1e-3, 1e-4)]
        # O(lam_bar^2): a tenfold smaller lam_bar shrinks the residual about a hundredfold.
        assert 80 < r[0] / r[1] < 120
    exact = dmin.isotropic_small_lambda(k, 1.0, 1e-2, 2)
    np.testing.assert_allclose(exact, k - 1e-2, rtol=0, atol=4 * U)


# --------------------------------------------------------------------------------------------
# the polish


def test_polish_reaches_the_stationarity_target():
    spec = DLNSpec(d=12, m=6, s=2, n=10, L=4, d_w=8, lam=0.05, k=2.0, steps=600, seed=5)
    inst = materialize(spec)
    res = polish.polish_stationary(inst.data.X, inst.data.Y, trajectory(spec).weights, spec.lam)
    assert res.reached
    assert res.grad_norm <= polish.stationarity_target(inst.data.X, inst.data.Y) < res.initial_grad_norm
    g = dl.gradient(res.weights, inst.data.X, inst.data.Y, lam=spec.lam)
    assert math.sqrt(sum(float(np.sum(G * G)) for G in g)) == pytest.approx(res.grad_norm, rel=1e-9)
    # A stationary start is returned unchanged.
    again = polish.polish_stationary(inst.data.X, inst.data.Y, res.weights, spec.lam)
    assert again.rounds == 0 and again.displacement == 0.0


def test_polish_module_is_training_only():
    tree = ast.parse(pathlib.Path(polish.__file__).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert not roots & {"bounds", "verification"}


# --------------------------------------------------------------------------------------------
# claims on polished stationary points and on the reference minimizer


@given(small_specs(L=(2, 6)))
@settings(max_examples=_examples(5))
def test_dln__stationary_end_to_end_equation(spec):
    _check(claims.stationary_end_to_end_equation, spec, allowed={"stable_run"},
           target_label="D6-iii residual/tol")


# lam = 1e-4 (hunt, docs/hunt.md finding 3): the absolute class G polish target left
# ||(I - UU^T) E|| / ||E|| = 1.17e-6 > 1e-6, since ||E|| = O(lambda); the claim now polishes to a
# target scaled with ||E|| (test_plateau_polish_target_scales_with_lambda).
_PLATEAU_SMALL_LAM = DLNSpec(d=6, m=4, s=1, n=14, L=2, d_w=6, lam=1e-4, k=0.25, init="torch_default",
                             steps=60, seed=1)


@example(spec=_PLATEAU_SMALL_LAM)
@given(small_specs())
@settings(max_examples=_examples(5))
def test_dln__plateau_level_stationary(spec):
    _check(claims.plateau_level_stationary, spec, allowed={"stable_run", "rank_M_equals_s"},
           target_label="D6-iv residual/tol")


def test_plateau_polish_target_scales_with_lambda():
    res = claims.plateau_level_stationary.claim.check(_PLATEAU_SMALL_LAM)
    assert res.verdict is Verdict.HOLDS
    m = res.evidence.metrics
    # The shared class G polish met its absolute target; the D6-iv one is stricter here, and the
    # claim polishes on when the shared polish has not met it already (with OpenBLAS it had not;
    # with the reference BLAS the shared polish lands below it by itself).
    assert m["grad_norm"] <= m["grad_target"]
    assert m["plateau_grad_target"] < m["grad_target"]
    assert m["plateau_grad_norm"] <= m["plateau_grad_target"]
    first = res.evidence.comparisons[0]
    assert first.label.startswith("||(I - UU^T) E||_F")
    assert first.observed <= 0.1 * first.bound


@given(small_specs(L=(1, 1), lam=(0.1, 1.0), steps=200))
@settings(max_examples=_examples(6))
def test_dln__ridge_case_L1(spec):
    _check(claims.ridge_case_L1, spec, allowed={"stable_run"})


@given(small_specs(L=(1, 6)))
@settings(max_examples=_examples(8))
def test_dln__global_minimizer_structure(spec):
    check_claim(claims.global_minimizer_structure, spec, target_label="structure residual/tol")


@given(small_specs(L=(1, 6), designs=("isotropic",)))
@settings(max_examples=_examples(10))
def test_dln__isotropic_minimizer_closed_form(spec):
    check_claim(claims.isotropic_minimizer_closed_form, spec, target_label="closed form/tol")


@given(small_specs(L=(1, 6), designs=("isotropic",)))
@settings(max_examples=_examples(8))
def test_dln__global_minimizer_small_lambda(spec):
    _check(claims.global_minimizer_small_lambda, spec,
           allowed={"lambda_below_zero_branch_threshold"})


def _isotropic_threshold_lam(spec: DLNSpec) -> float:
    """The lambda at which the smallest oracle singular value meets the zero-branch threshold."""
    inst = materialize(spec)
    if spec.L <= 2:
        return math.inf
    k_min = float(np.linalg.svd(inst.oracle, compute_uv=False)[spec.s - 1])
    p = 2.0 / spec.L
    beta2 = float(np.linalg.svd(inst.data.Y, compute_uv=False)[0]) ** 2
    # k*(a, mu, p) = (mu / a)^{1/(2-p)} k*(1, 1, p), so k* = k_min at mu = a (k_min / k*(1,1,p))^{2-p}.
    mu_th = inst.a * beta2 * (k_min / dmin.zero_branch_threshold(1.0, 1.0, p)) ** (2 - p)
    return mu_th / (inst.c * spec.L)


@given(small_specs(L=(1, 5), lam=(0.01, 0.1), steps=2000, wide=True), st.floats(0.1, 0.5))
@settings(max_examples=_examples(6))
def test_dln__global_minimizer_reference(spec, ratio):
    # Tested where the statement was observed to hold: wide networks (d_w >= 2m) and, for the
    # isotropic design, lam <= lam_threshold / 2. Narrower networks or lam closer to the threshold
    # can converge to a zero-branch local minimizer (the pinned counterexamples below).
    if spec.design == "isotropic" and spec.L >= 3:
        spec = spec.replace(lam=ratio * _isotropic_threshold_lam(spec))
    # Cost, not validity: the 10-start proximal gradient needs ~30 kappa(Y)^2 steps per start
    # (kappa(Y) = 17 takes ~6 s); kappa(Y) <= 8 keeps an example well under a second.
    assume(dlb.kappa(materialize(spec).data.Y, spec.s) <= 8.0)
    _check(claims.global_minimizer_reference, spec,
           allowed={"stable_run", "lambda_below_zero_branch_threshold", "reference_converged"},
           target_label="reference distance/tol")


COUNTEREXAMPLES = {
    # d_w = m, lam = 0.969 lam_threshold (k_min = 0.8322 > k* = 0.8167): the reference has
    # sigma(M*) = (0.9154, 0.6719); GD (step multiples 0.5, 1, 2 alike) converges to
    # sigma = (0.9154, 0), the zero branch of sigma_2, a local minimizer with Phi = 0.7131 > 0.7028.
    "near_threshold": DLNSpec(d=12, m=6, s=2, n=10, L=6, d_w=6, lam=0.0615, k=2.0, steps=3000,
                              design="isotropic", seed=3),
    # d_w = 4 < m = 6 (>= s = 3), lam = 0.483 lam_threshold (k_min = 0.6534 > k* = 0.4145): the
    # reference has sigma(M*) = (1.3116, 0.7121, 0.5823); GD (step multiples 0.25 to 2 alike) never
    # fits the third direction and converges to sigma_3 = 0 with Phi = 0.4718 > Phi* = 0.3644.
    "narrow_width": DLNSpec(d=8, m=6, s=3, n=13, L=5, d_w=4, lam=0.0257, k=1.0, steps=2000,
                            design="isotropic", seed=393116410),
}


@pytest.mark.parametrize("name", sorted(COUNTEREXAMPLES))
@pytest.mark.xfail(strict=True, raises=AssertionError,
                   reason="spec section 8: 'Phase 1 ... lands on the x_+ branch for all s singular "
                   "values (for lambda below the zero-branch threshold)' fails near the threshold "
                   "and for narrow widths: GD reaches the zero branch of sigma_s")
def test_dln__global_minimizer_reference_counterexample(name):
    res = claims.global_minimizer_reference.claim.check(COUNTEREXAMPLES[name])
    if res.failed_hypotheses or res.verdict is Verdict.ERROR:
        # Not the counterexample any more (pytest.fail is not an AssertionError: no xfail).
        pytest.fail(f"hypotheses {res.failed_hypotheses} / error {res.error!r}")
    assert res.verdict is Verdict.HOLDS, res.worst()


@pytest.mark.parametrize("name", sorted(COUNTEREXAMPLES))
def test_counterexample_facts(name):
    spec = COUNTEREXAMPLES[name]
    pt = claims.polished(spec)
    assert pt.polish.reached
    inst = pt.inst
    sv = np.linalg.svd(pt.M, compute_uv=False)
    ref = dmin.global_minimizer(inst.data.A, inst.data.R, inst.data.Y, spec.lam, 1.0, spec.L)
    k = np.linalg.svd(inst.oracle, compute_uv=False)[:spec.s]
    assert k.min() > dmin.zero_branch_threshold(1.0, ref.mu, ref.p)   # below the threshold
    assert spec.d_w >= spec.s                                          # the claim's width hypothesis
    assert sv[spec.s - 1] < 1e-8 * sv[0]                               # GD: zero branch of sigma_s
    assert ref.singular_values[-1] > 0.5                               # reference: x_+ branch
    np.testing.assert_allclose(sv[:spec.s - 1], ref.singular_values[:-1], rtol=1e-6)
    assert dmin.Phi(pt.M, inst.data.X, inst.data.Y, ref.mu, ref.p, spec.s) > ref.phi + 1e-3


# --------------------------------------------------------------------------------------------
# bad input


BAD_SCALAR = [
    ((0.0, 1.0, 0.1, 1.0), "a"), ((1.0, -1.0, 0.1, 1.0), "k"), ((1.0, 1.0, 0.0, 1.0), "mu"),
    ((1.0, 1.0, 0.1, 0.0), "p"), ((1.0, 1.0, 0.1, 2.5), "p"), ((1.0, math.nan, 0.1, 1.0), "k"),
    ((1.0, 1.0, math.inf, 1.0), "mu"),
]


@pytest.mark.parametrize("args, name", [*BAD_SCALAR, (("1", 1.0, 0.1, 1.0), "a")])
def test_scalar_argmin_rejects_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        dmin.scalar_argmin(*args)


@pytest.mark.parametrize("args, name", [*BAD_SCALAR, (("one", 1.0, 0.1, 1.0), "a")])
def test_scalar_argmin_mp_rejects_bad_input(args, name):
    with pytest.raises(ValueError, match=name):
        dmin.scalar_argmin_mp(*args)


def test_mp_and_helpers_reject_bad_input():
    with pytest.raises(ValueError, match="dps"):
        dmin.scalar_argmin_mp(1.0, 1.0, 0.1, 1.0, dps=15)
    with pytest.raises(ValueError, match="p"):
        dmin.branch_minimum_point(1.0, 0.1, 1.0)
    with pytest.raises(ValueError, match="x"):
        dmin.scalar_derivative(0.0, 1.0, 1.0, 0.1, 0.5)
    with pytest.raises(ValueError, match="k"):
        dmin.isotropic_small_lambda([1.0, 0.0], 1.0, 0.1, 3)
    with pytest.raises(ValueError, match="beta"):
        dmin.isotropic_small_lambda([1.0], 0.0, 0.1, 3)


def test_matrix_functions_reject_bad_input():
    V = np.eye(2)
    with pytest.raises(ValueError, match="tau"):
        dmin.prox_schatten(V, 0.0, 1.0)
    with pytest.raises(ValueError, match="V"):
        dmin.prox_schatten(np.array([[np.nan, 0.0], [0.0, 1.0]]), 0.1, 1.0)
    with pytest.raises(ValueError, match="p"):
        dmin.prox_schatten(V, 0.1, 3.0)
    inst, _, _, X, Y = _instance(3)
    with pytest.raises(ValueError, match="M"):
        dmin.Phi(np.eye(3), X, Y, 0.1, 1.0, 2)
    with pytest.raises(ValueError, match="mu"):
        dmin.Phi(inst.oracle, X, Y, 0.0, 1.0, 2)
    with pytest.raises(ValueError, match="start"):
        dmin.proximal_gradient(np.eye(2), np.ones(2), 0.1, 1.0, start=np.eye(3))


def test_reduction_and_minimizer_reject_bad_input():
    _, A, R, _, Y = _instance(3)
    with pytest.raises(ValueError, match="d_w"):
        dmin.global_minimizer(A, R, Y, 0.05, 1.0, 3, d_w=1)
    with pytest.raises(ValueError, match="lam"):
        dmin.global_minimizer(A, R, Y, 0.0, 1.0, 3)
    with pytest.raises(ValueError, match="L"):
        dmin.global_minimizer(A, R, Y, 0.05, 1.0, 0)
    with pytest.raises(ValueError, match="design"):
        dmin.global_minimizer(A, R, Y, 0.05, 1.0, 3, design="diagonal")
    with pytest.raises(ValueError, match="design"):
        dmin.global_minimizer(A, R, Y, 0.05, 1.0, 3, design="isotropic")
    with pytest.raises(ValueError, match="starts"):
        dmin.global_minimizer(A, R, Y, 0.05, 1.0, 3, starts=[np.eye(3)])
    with pytest.raises(ValueError, match="Y"):
        dmin.reduced_problem(A, R, Y + 1e-3 * np.random.default_rng(0).standard_normal(Y.shape))
    with pytest.raises(ValueError, match="Y"):
        dmin.reduced_problem(A, R, Y[:, :1])
    with pytest.raises(ValueError, match="R"):
        dmin.reduced_problem(A, 2.0 * R, Y)


def test_polish_rejects_bad_input():
    spec = DLNSpec(d=12, m=6, s=2, n=10, L=2, d_w=6)
    inst = materialize(spec)
    X, Y, W = inst.data.X, inst.data.Y, inst.weights0
    with pytest.raises(ValueError, match="lam"):
        polish.polish_stationary(X, Y, W, -0.1)
    with pytest.raises(ValueError, match="weights"):
        polish.polish_stationary(X, Y, W[::-1], 0.1)
    with pytest.raises(ValueError, match="weights"):
        polish.polish_stationary(X, Y, [], 0.1)
    with pytest.raises(ValueError, match="Y"):
        polish.polish_stationary(X, Y[:, :3], W, 0.1)
    with pytest.raises(ValueError, match="X"):
        polish.polish_stationary(np.full_like(X, np.inf), Y, W, 0.1)
    with pytest.raises(ValueError, match="target"):
        polish.polish_stationary(X, Y, W, 0.1, target=0.0)
    with pytest.raises(ValueError, match="maxiter"):
        polish.polish_stationary(X, Y, W, 0.1, maxiter=0)
