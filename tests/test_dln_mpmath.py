"""High-precision (mpmath) checks of the deep-linear dynamics and bounds (class H).

Every test works in a private :class:`mpmath.ctx_mp.MPContext` from
:func:`verification.oracle.make_context`; an autouse fixture asserts that the global
``mpmath.mp`` precision is never changed. References are written from the definitions
(``svd_r``, rank-truncated pseudo-inverse, spectral norm as the top singular value) and rounded
once to float64.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from bounds import dln_weight_decay as dlb
from dynamics import deep_linear as dl
from verification import oracle as mpo
from verification import tolerance as tol
from verification.claims import dln_high_precision as claims
from verification.dln_instances import DLNSpec, materialize
from verification.testing import check_claim

pytestmark = [pytest.mark.mp, pytest.mark.exact]

U = 2.0**-53


@pytest.fixture(autouse=True)
def global_mpmath_untouched():
    before = (mpmath.mp.dps, mpmath.mp.prec)
    yield
    assert (mpmath.mp.dps, mpmath.mp.prec) == before, "a test changed the global mpmath.mp"
    assert before == (15, 53), f"mpmath.mp was left at dps={before[0]} by an earlier test"


# --------------------------------------------------------------------------------------------
# the oracle helpers themselves


def test_make_context_refuses_float64_precision():
    for dps in (15, 10, 0):
        with pytest.raises(ValueError, match="dps"):
            mpo.make_context(dps)
    with pytest.raises(ValueError, match="dps"):
        mpo.make_context(30.0)
    ctx = mpo.make_context(16)
    assert ctx.dps == 16 and ctx is not mpmath.mp
    assert mpo.make_context().dps == mpo.DEFAULT_DPS == 50


def test_to_float64_rounds_once_to_nearest():
    ctx = mpo.make_context(60)
    one, ulp = ctx.mpf(1), ctx.mpf(2) ** -52
    assert mpo.to_float64(one / 3, ctx) == 1.0 / 3.0
    assert mpo.to_float64(-ctx.mpf(2) / 3, ctx) == -2.0 / 3.0
    # Ties go to even: 1 + ulp/2 -> 1, 1 + 3 ulp/2 -> 1 + 2 ulp.
    assert mpo.to_float64(one + ulp / 2, ctx) == 1.0
    assert mpo.to_float64(one + 3 * ulp / 2, ctx) == 1.0 + 2 * 2.0**-52
    # Just above a tie: a double rounding through an intermediate 64-bit value would give 1.0.
    assert mpo.to_float64(one + ulp / 2 + ctx.mpf(2) ** -120, ctx) == 1.0 + 2.0**-52
    with pytest.raises(ValueError, match="x"):
        mpo.to_float64(ctx.mpf("nan"), ctx)
    with pytest.raises(ValueError, match="another mpmath context"):
        mpo.to_float64(mpmath.mpf(1), ctx)


def test_lift_is_exact_and_guarded():
    ctx = mpo.make_context(50)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4, 3)) * 10.0 ** rng.integers(-200, 200, (4, 3))
    lifted = mpo.lift(a, ctx)
    assert lifted.dtype == object and all(isinstance(v, ctx.mpf) for v in lifted.ravel())
    assert np.array_equal(mpo.to_float64_array(lifted, ctx), a)  # bitwise round trip
    assert all(v - ctx.mpf(float(x)) == 0 for v, x in zip(lifted.ravel(), a.ravel(), strict=True))
    bad = a.copy()
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="weights"):
        mpo.lift(bad, ctx, "weights")
    other = mpo.make_context(40)
    with pytest.raises(ValueError, match="context"):
        mpo.fro_norm(mpo.lift(a, other), ctx)


def test_spectral_norm_avoids_the_norm2_trap():
    ctx = mpo.make_context(50)
    A = [[1.0, 2.0], [3.0, 1.0]]
    # A^T A = [[10, 5], [5, 5]]: sigma_1^2 = (15 + 5 sqrt 5) / 2.
    exact = ctx.sqrt((15 + 5 * ctx.sqrt(5)) / 2)
    assert abs(mpo.spectral_norm(A, ctx) - exact) <= ctx.mpf("1e-45")
    assert abs(ctx.norm(ctx.matrix(A), 2) - ctx.sqrt(15)) <= ctx.mpf("1e-45")  # the trap
    assert mpo.to_float64(mpo.spectral_norm(A, ctx), ctx) == pytest.approx(
        np.linalg.norm(np.array(A), 2), rel=4 * U)


def test_pinv_satisfies_the_penrose_equations():
    ctx = mpo.make_context(50)
    rng = np.random.default_rng(1)
    B = mpo.lift(rng.standard_normal((5, 2)), ctx) @ mpo.lift(rng.standard_normal((2, 4)), ctx)
    assert mpo.numerical_rank(B, ctx) == 2
    P = mpo.pinv(B, ctx)
    eps = ctx.mpf("1e-45") * mpo.fro_norm(B, ctx) * mpo.fro_norm(P, ctx)
    for resid in (B @ P @ B - B, P @ B @ P - P, (B @ P).T - B @ P, (P @ B).T - P @ B):
        assert mpo.fro_norm(resid, ctx) <= eps * (1 + mpo.fro_norm(B, ctx) + mpo.fro_norm(P, ctx))
    with pytest.raises(ValueError, match="rank"):
        mpo.pinv(B, ctx, rank=5)


# --------------------------------------------------------------------------------------------
# replaying GD: float64 against 50 digits


REPLAY_SPECS = [
    DLNSpec(d=6, m=4, s=2, n=3, L=3, d_w=8, lam=0.1, steps=50, seed=0),
    DLNSpec(d=5, m=4, s=2, n=3, L=2, d_w=4, lam=0.2, steps=50, seed=1, convention="mean",
            update="seed002_ntk", stepsize="seed002"),
]


def _replay(spec: DLNSpec, ctx):
    inst = materialize(spec)
    data = {"X": inst.data.X, "Y": inst.data.Y, "eta": inst.eta, "lam": spec.lam, "a": inst.a,
            "c": inst.c, "update": spec.update}
    return mpo.replay(dl.gd_step, inst.weights0, data, spec.steps, ctx)


@pytest.mark.parametrize("spec", REPLAY_SPECS, ids=["standard-talk", "ntk-mean"])
def test_replay_float64_drift_within_rounding_bound(spec):
    ctx = mpo.make_context(50)
    rep = _replay(spec, ctx)
    drift = rep.drift()
    dim = max(spec.d, spec.m, spec.d_w, spec.n)
    for t, ws in enumerate(rep.float64):
        # Rounding bound: a float64 step W' = rho W - gamma G commits a local error of at most
        # c k u (rho ||W|| + gamma ||G||) (k <= 8 the inner dimension of the products); at a
        # stable step (eta <= eta_hat, so gamma ||G|| stays below ||W||) the GD map carries
        # earlier errors forward without amplification, so after t steps
        #     ||W_64(t) - W_mp(t)||_F <= 64 u (t + 1) sum_l ||W_l(t)||_F     (class U),
        # i.e. steps * c * u * scale with c = 64 and scale = sum_l ||W_l||_F.
        bound = tol.update_path((t + 1) * sum(float(np.linalg.norm(w)) for w in ws), dim)
        assert drift[t] <= bound, f"step {t}: drift {drift[t]:.3g} > rounding bound {bound:.3g}"
    # The reference must really be more precise than float64: the drift is not identically zero
    # and the mp iterates are not doubles.
    assert drift[-1] > 0
    assert any(v != ctx.mpf(mpo.to_float64(v, ctx)) for v in rep.mp[-1][0].ravel())
    assert drift[0] == 0  # the lift is exact


def test_replay_reference_is_converged():
    # Twenty more digits must not move the reference: 50 and 70 digits agree to ~1e-48.
    spec = REPLAY_SPECS[0].replace(steps=25)
    lo = _replay(spec, mpo.make_context(50))
    hi = _replay(spec, mpo.make_context(70))
    ctx = hi.ctx
    for W50, W70 in zip(lo.mp[-1], hi.mp[-1], strict=True):
        diff = mpo.lift(mpo.to_float64_array(W50, lo.ctx), ctx) - W70
        # Compare the 50-digit values through their exact decimal strings in the 70-digit context.
        exact50 = np.vectorize(lambda v: ctx.mpf(lo.ctx.nstr(v, 55, strip_zeros=False)),
                               otypes=[object])(W50)
        assert mpo.fro_norm(exact50 - W70, ctx) <= ctx.mpf("1e-45") * mpo.fro_norm(W70, ctx)
        assert mpo.fro_norm(diff, ctx) <= 16 * U * mpo.fro_norm(W70, ctx)


# --------------------------------------------------------------------------------------------
# D9 and the oracle against bounds/dln_weight_decay.py


SMALL_SPECS = [
    DLNSpec(d=6, m=4, s=2, n=3, seed=0),
    DLNSpec(d=8, m=5, s=3, n=6, seed=1, design="prescribed_rip", rip_delta=0.1),
    DLNSpec(d=8, m=5, s=3, n=6, seed=2, design="prescribed_rip", rip_delta=0.5),
    DLNSpec(d=7, m=4, s=2, n=5, seed=3, z_log10_cond=3.0),
    DLNSpec(d=9, m=6, s=1, n=2, seed=4, design="isotropic", beta=2.0),
]


@pytest.mark.parametrize("spec", SMALL_SPECS, ids=lambda sp: f"{sp.design}-s{sp.s}-seed{sp.seed}")
def test_dln__rip_constant_exact_mp(spec):
    ctx = mpo.make_context(50)
    data = materialize(spec).data
    sv = mpo.singular_values(mpo.lift(data.A, ctx) @ mpo.orthonormalize(data.R, ctx), ctx)
    a_norm = float(np.linalg.norm(data.A, 2))
    dim = max(spec.d, spec.m)
    for power in (1, 2):
        ref = mpo.rip_delta(data.A, data.R, ctx, power)
        # Literal D9 from the singular values.
        assert ref == max(sv[0] ** power - 1, 1 - sv[-1] ** power)
        # float64 SVD is backward stable: sigma moves by ~u ||A||, sigma^2 by 2 sigma_1 of that.
        scale = (2 * mpo.to_float64(sv[0], ctx) if power == 2 else 1.0) * a_norm
        got = dlb.rip_delta(data.A, data.R, power)
        assert abs(got - mpo.to_float64(ref, ctx)) <= tol.pseudo_inverse(scale, 1.0, dim)
    if spec.design == "prescribed_rip":
        ref2 = mpo.to_float64(mpo.rip_delta(data.A, data.R, ctx, 2), ctx)
        assert abs(ref2 - spec.rip_delta) <= tol.pseudo_inverse(2 * a_norm**2, 1.0, dim)


@pytest.mark.parametrize("spec", SMALL_SPECS, ids=lambda sp: f"{sp.design}-s{sp.s}-seed{sp.seed}")
def test_dln__oracle_sample_independent_mp(spec):
    ctx = mpo.make_context(50)
    inst = materialize(spec)
    data = inst.data
    M0 = mpo.subspace_oracle(data.A, data.R, ctx)
    sv_ar = [mpo.to_float64(v, ctx) for v in mpo.singular_values(
        mpo.lift(data.A, ctx) @ mpo.orthonormalize(data.R, ctx), ctx)]
    kappa_ar = sv_ar[0] / sv_ar[-1]
    dim = max(spec.d, spec.m, spec.n)
    m0_norm = mpo.to_float64(mpo.spectral_norm(M0, ctx), ctx)
    # ||X Y^+||_2 = 1 / sigma_s(A R), at 50 digits.
    assert abs(m0_norm - 1 / sv_ar[-1]) <= 4 * U * m0_norm
    # float64 oracle R (A R)^+ against the reference: class P with kappa(A R).
    diff = mpo.fro_norm(mpo.lift(dlb.oracle(data.A, data.R), ctx) - M0, ctx)
    assert mpo.to_float64(diff, ctx) <= tol.pseudo_inverse(m0_norm, kappa_ar, dim)
    # float64 data oracle X Y^+: class P with kappa(Y) and the scale ||X||_2 ||Y^+||_2.
    sv_y = np.linalg.svd(data.Y, compute_uv=False)
    kappa_y = sv_y[0] / sv_y[spec.s - 1]
    scale = float(np.linalg.norm(data.X, 2)) / sv_y[spec.s - 1]
    diff = mpo.fro_norm(mpo.lift(dl.data_oracle(data.X, data.Y, spec.s), ctx) - M0, ctx)
    assert mpo.to_float64(diff, ctx) <= tol.pseudo_inverse(scale, kappa_y, dim)


def test_dln__oracle_sample_independent_two_code_draws_mp():
    # D1 at 50 digits: two independent code matrices Z, Z' give the same X Y^+ = R (A R)^+.
    ctx = mpo.make_context(50)
    data = materialize(DLNSpec(d=7, m=4, s=2, n=3, seed=5)).data
    R = mpo.orthonormalize(data.R, ctx)
    A = mpo.lift(data.A, ctx)
    rng = np.random.default_rng(99)
    oracles = []
    for _ in range(2):
        Z = mpo.lift(rng.standard_normal((2, 3)), ctx)
        X = R @ Z
        oracles.append(X @ mpo.pinv(A @ X, ctx, 2))
    ref = R @ mpo.pinv(A @ R, ctx, 2)
    scale = mpo.fro_norm(ref, ctx)
    for M in oracles:
        assert mpo.fro_norm(M - ref, ctx) <= ctx.mpf("1e-40") * scale


def test_T_D2_matches_mp_ceiling():
    # Deterministic grid (SciPy pattern): the float64 ceiling of log(B/eps) / -log(rho) agrees
    # with the 50-digit one wherever the exact value is not within 1e-9 of an integer.
    ctx = mpo.make_context(50)
    checked = 0
    for eps in (1e-10, 1e-6, 1e-3):
        for rho in (0.5, 0.9, 0.995, 1 - 1e-6):
            for B in (1.0, 3.7, 1e4):
                exact = ctx.log(ctx.mpf(B) / ctx.mpf(eps)) / -ctx.log(ctx.mpf(rho))
                if abs(exact - ctx.nint(exact)) < ctx.mpf("1e-9") * exact:
                    continue
                assert dlb.T_D2(eps, rho, B) == int(ctx.ceil(exact)), (eps, rho, B)
                checked += 1
    assert checked >= 30
    # The engineering guide's literal: log(1e-10 / 3.7) / log(1 - 0.01 * 0.5) = 4854.659...
    assert dlb.T_D2(1e-10, 1 - 0.01 * 0.5, 3.7) == 4855 == math.ceil(4854.65949337144)


# --------------------------------------------------------------------------------------------
# the registered claim


@pytest.mark.parametrize("index", [0, 1])
def test_dln__high_precision_identities(index):
    spec = claims.high_precision_identities.claim.instances("quick", 0)[index]
    res = check_claim(claims.high_precision_identities, spec)
    assert res.evidence.metrics["worst_mp_relative_residual"] <= 1e-45


def test_high_precision_claim_is_vacuous_beyond_tiny_sizes_or_when_diverging():
    from verification.engine import Verdict

    res = claims.high_precision_identities.claim.check(DLNSpec(d=12, m=6, s=2, n=5, steps=5))
    assert res.verdict is Verdict.VACUOUS and res.failed_hypotheses == ["tiny_sizes"]
    # A diverging step makes the rounding comparison meaningless: vacuous, not an error.
    diverging = claims.high_precision_identities.claim.instances("quick", 0)[0].replace(k=50.0)
    res = claims.high_precision_identities.claim.check(diverging)
    assert res.verdict is Verdict.VACUOUS and res.failed_hypotheses == ["stable_run"]
