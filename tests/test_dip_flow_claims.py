"""Property tests of the DIP gradient-flow, recovery and vacuity claims (``verification.claims.dip_flow``).

Each test drives the registered claims on Hypothesis-built instances (spec ``dip.md`` §10.5: constructed
certificates, "construct, do not filter"), so the tested statements and their tolerances are exactly
those ``invbounds verify`` reports. Claims that read the same flow on the same kind of instance are
driven together on each draw (one cached solve serves them all; each claim reports its own target and
event). Deterministic companions over 20 fixed seeds check that the hypotheses do not make the tests
vacuous.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from bounds import dip_two_layer as bd
from dynamics import dip_two_layer as dip
from verification.claims import dip_flow as claims
from verification.dip_instances import DIPSpec, materialize
from verification.engine import Verdict
from verification.strategies import dip_specs
from verification.testing import check_claim

pytestmark = pytest.mark.inequality

MAX_N, MAX_K = 8, 1024


def _drive(fn, spec):
    res = check_claim(fn, spec, allow_vacuous=True, target_label=f"{fn.claim.id} observed/bound")
    event(f"{fn.claim.id}: {res.verdict.value}")
    return res


def _ids(fns):
    return [fn.claim.id for fn in fns]


# ---------------------------------------------------------------------------------------------
# strategies

# Solve time is set by the stiffness kappa_up/kappa = 4 J_max^2 ||A||^2/(sigma_0 sigma_A)^2 (the explicit
# DOP853 takes ~kappa_up steps per unit time over a 30/kappa horizon). Two restrictions keep each solve
# well under a second (the claims hold beyond them; the quick and paper profiles go there):
# * k >= 2n: at k = n a square V can make K_0 nearly singular (sigma_0 ~ 1e-3, kappa ~ 1e-9);
# * cond(A) <= 3 (stiffness grows like cond^2): the strategy's [1, 10] is mapped onto [1, 3].


def _moderate(spec):
    return spec.replace(cond=1.0 + (spec.cond - 1.0) / 4.5)


def _specs(**kw):
    return dip_specs(max_n=MAX_N, max_k=MAX_K, min_k_factor=2, **kw).map(_moderate)


BASE = _specs()
REFINED = _specs(t_R=(0.02, 1.98))
NOISY = _specs(t_R=(0.02, 1.98), noise=(0.01, 0.5))
NOISY_INJECTIVE = _specs(t_R=(0.02, 1.98), noise=(0.01, 0.5), m_range=(1.0, 2.0))
NATURAL_TEACHER = dip_specs(max_n=MAX_N, max_k=MAX_K, natural=True).map(
    lambda s: s.replace(signal="teacher"))


@st.composite
def obs_specs(draw):
    """Theorem GF-obs instances, including ``r_A < k < n`` (``sigma_0 = 0``: only GF-obs applies).

    As for the other strategies, ``k >= 2 r_A`` keeps ``A K_0 A^T`` away from near-singularity
    (at ``k = r_A``, ``s_0 ~ 4e-3`` and a solve takes ~30 s; the quick profile has ``k = 4``, ``r_A = 3``).
    """
    spec = _moderate(draw(dip_specs(max_n=MAX_N, max_k=MAX_K, t_R=(0.02, 1.98), target="obs",
                                    m_range=(0.25, 2.0), min_k_factor=2)))
    if 2 * spec.m < spec.n and draw(st.booleans()):
        k = draw(st.integers(2 * spec.m, spec.n - 1))
        spec = spec.replace(k=k, d=max(spec.d, math.ceil(spec.n / k)))
    return spec


_ACTS = ("tanh", "sigmoid", "softplus")


@st.composite
def vacuity_specs(draw):
    """Noiseless natural teacher data for Proposition Vac, in the regime of its demonstration.

    * ``n - m >= 3``: the trained limit's distance to ``x_bar`` is roughly the norm of the
      ``ker A``-part of ``x_0 - x_bar`` (``n - m`` Gaussian-like coordinates of scale ``~C_phi``), so
      ``P[||x_inf - x_bar|| <= 1e-2] ~ (1e-2/C_phi)^(n - m)``: about 1% at ``n - m = 1`` (pinned in
      :func:`test_dip__trained_witness_threshold_at_codimension_one`), negligible at 3;
    * ``d >= 2``: ``||W_0||_F ~ sqrt(kd)`` makes the teacher interior to ``Sigma'`` (spec §8(b));
    * ``k >= 4n`` (``rank V = n``, ``sigma_0 > 0``) and ``cond(A) <= 2`` with 3000 steps of
      ``1/L_nabla(R)``: GD contracts by ``~1 - lambda_{r_A}(M_0)/L_nabla`` per step and reaches the
      ``1e-12`` floor that makes a trained witness (60/60 random draws did).
    """
    n = draw(st.integers(4, MAX_N))
    # k <= 512: 5000 GD steps cost ~k each, and the witness needs no more width.
    k = n * 2 ** draw(st.integers(2, int(math.log2(512 / n))))
    return DIPSpec(n=n, m=draw(st.integers(1, n - 3)), k=k, d=draw(st.integers(2, 6)),
                   activation=draw(st.sampled_from(_ACTS)), v_law=draw(st.sampled_from(("rademacher",
                                                                                      "uniform"))),
                   cond=draw(st.floats(1.0, 2.0)), loss="mse", t_R=None, signal="teacher", steps=3000,
                   record_every=3000, seed=draw(st.integers(0, 2 ** 31 - 1)))


# ---------------------------------------------------------------------------------------------
# Theorems GF, GF+, Proposition GF-

BASE_CLAIMS = [claims.gf_loss_rate, claims.gf_path_length_within_r_prime, claims.gf_sigma_min_stays_half,
               claims.gf_parameter_convergence]


@example(spec=claims.GF_NOISE_FLOOR_WITNESS)
@example(spec=claims.GF_STATE_ERROR_WITNESS)
@given(spec=st.one_of(BASE, BASE, _specs(natural=True)))
def test_dip__gf_base_certificate_and_lower_bound(spec):
    """Theorem GF (four claims) and Proposition GF- on the same flow; natural draws are (mostly)
    uncertified, where only GF- applies."""
    for fn in BASE_CLAIMS:
        _drive(fn, spec)
    res = _drive(claims.gf_rate_lower_bound, spec)
    assert res.verdict is Verdict.HOLDS  # no certificate needed: never vacuous on smooth activations


# Pinned: theta(T) at the end of a run in the solver's noise (fixed: theta at the last checked time).
@example(spec=DIPSpec(n=7, m=10, k=14, d=1, t_R=0.02, step_c=1.0, steps=50, seed=0))
@given(spec=REFINED)
def test_dip__gf_refined_certificate(spec):
    _drive(claims.gf_refined_certificate, spec)


@given(spec=obs_specs())
def test_dip__gf_observation_kernel_certificate(spec):
    _drive(claims.gf_observation_kernel_certificate, spec)


def test_dip__observation_certificate_applies_below_width_n():
    """At ``r_A <= k < n``, ``sigma_0 = 0``: Theorem GF is vacuous while GF-obs certifies the flow."""
    spec = DIPSpec(n=8, m=3, k=4, d=3, target="obs", t_R=0.5, seed=0)
    case = materialize(spec)
    assert case.sigma0 == 0.0 and case.rank_A == 3 and case.obs.base
    base = claims.gf_loss_rate.claim.check(spec)
    assert base.verdict is Verdict.VACUOUS
    assert {"width_at_least_n", "sigma0_positive"} <= set(base.failed_hypotheses)
    res = check_claim(claims.gf_observation_kernel_certificate, spec)
    assert res.evidence.metrics["k_below_n"]
    assert any(c.label.startswith("base:") for c in res.evidence.comparisons)


def test_dip__obs_weyl_tolerance_covers_eigvalsh_rounding():
    """Found by Hypothesis (its flow takes ~30 s, so the instance is pinned here without it): with
    ``s_0 = 4.1e-3``, ``sigma_{r_A}(A J)`` at the flow's ``t = 0`` state (``z_0`` up to rounding) differed
    from ``s_0`` by 2e-14: ``eigvalsh`` errs by ~u lambda_max(A K A^T) in lambda, i.e. by that over
    ``2 s_0`` in ``s_0``, and an allowance scaled by ``s_0`` itself (1.4e-15) failed the Weyl check at
    ``t = 0``. One-ulp perturbations of ``z_0`` reproduce the size."""
    spec = DIPSpec(n=8, m=11, k=8, d=5, cond=1.0, t_R=1.3515056283037141, target="obs",
                   step_c=0.8060228964569545, steps=142, seed=12910072)
    case = materialize(spec)
    z0 = case.inst.z0
    signs = np.random.default_rng(0).choice([-1.0, 1.0], size=(5, z0.size))
    again = claims._sigma_rA(case, z0 * (1.0 + np.finfo(float).eps * signs))
    change = float(np.max(np.abs(again - case.s0)))
    old = claims.tol.inequality(case.s0, case.s0, case.s0, spec.k)
    allowance = claims.tol.inequality(case.s0, case.s0, (case.norm_A * case.J_max) ** 2 / case.s0,
                                      max(spec.m, spec.n))
    assert old < change <= allowance


# ---------------------------------------------------------------------------------------------
# solver self-consistency (spec §10.2)

# Pinned: the literal §10.2 statement fails here (relative change 9.5e-3 at ||r|| ~ 1e-8 ||r_0||).
SELF_CONSISTENCY_WITNESS = DIPSpec(n=6, m=8, k=256, d=3, t_R=0.5, seed=0)


@example(spec=SELF_CONSISTENCY_WITNESS)
@example(spec=claims.DEFAULT_STATE_ERROR_WITNESS)
@given(spec=dip_specs(max_n=6, max_k=256, losses=("mse",)))
def test_dip__ode_solver_self_consistency(spec):
    _drive(claims.ode_solver_self_consistency, spec)


def test_dip__default_run_state_error_finding():
    """Found by Hypothesis when the claim compared the default run (rtol 1e-10) with the accurate
    one: with PyPI's OpenBLAS the state moved by 1.6e-7 ||z|| > 1e-7 there (with the reference BLAS
    by less: the excursion is a dense-output artefact whose size depends on the last bits), so the
    claim now checks the accurate run the GF claims read, which passes; the default run is the
    one that is off, by far more than the accurate one."""
    res = check_claim(claims.ode_solver_self_consistency, claims.DEFAULT_STATE_ERROR_WITNESS)
    default = claims.self_consistency_evidence(claims.DEFAULT_STATE_ERROR_WITNESS,
                                               loose=claims.DEFAULT_FLOW, tight=claims.ACCURATE)
    state_default, state_accurate = default.comparisons[0], res.evidence.comparisons[0]
    assert state_default.label == state_accurate.label
    assert state_default.label.startswith("||z_loose(t) - z_tight(t)||")
    assert state_default.observed > 10 * state_accurate.observed


def test_dip__ode_self_consistency_spec_counterexample():
    """The spec §10.2 criterion (||r(t)|| within 1e-7 relative down to 1e-8 ||r_0||) fails on the
    witness because the solver's error in r is absolute (~rtol ||z||), while the corrected claim
    (state within 1e-7, residual within the Lipschitz image of the state change) holds."""
    check_claim(claims.ode_solver_self_consistency, SELF_CONSISTENCY_WITNESS)
    ev = claims.self_consistency_evidence(SELF_CONSISTENCY_WITNESS, loose=claims.DEFAULT_FLOW,
                                          tight=claims.ACCURATE)
    assert all(c.holds for c in ev.comparisons)
    assert ev.metrics["spec_relative_r_change"] > 1e3 * claims.SELF_CONSISTENCY_RTOL
    assert ev.metrics["spec_relative_r_change_residual_ratio"] < 1e-6


@pytest.mark.parametrize("spec", [claims.GF_STATE_ERROR_WITNESS, claims.GF_NOISE_FLOOR_WITNESS],
                         ids=["state_error", "noise_floor"])
def test_dip__default_solver_tolerances_exceed_gf_allowance(spec):
    """Why the GF claims read ``claims.gf_flow`` (rtol 1e-12, atol 1e-14): on these instances the
    default run (rtol 1e-10, atol 1e-12) differs from it by more than the §10.3 allowance
    ``1e-6 ||r|| + 1e-9 ||r_0||`` inside the checked range, while every GF claim holds on the accurate
    run. If this starts failing, the default flow became accurate enough to be read directly."""
    ev = claims.self_consistency_evidence(spec, loose=claims.DEFAULT_FLOW, tight=claims.ACCURATE)
    assert ev.metrics["max_change_over_gf_allowance"] > 1.0
    for fn in BASE_CLAIMS:
        check_claim(fn, spec)


# ---------------------------------------------------------------------------------------------
# recovery (spec §8)

RECOVERY_CLAIMS = [claims.recovery_observation_space, claims.recovery_signal_space,
                   claims.recovery_limit_least_squares, claims.early_stopping_time]


# Pinned: T_eps beyond the end of the cached run read the dense output out of its interval (fixed),
# and a power loss whose finite horizon ends before T_eps with ||r|| > ||eps|| (fixed: continued run).
@example(spec=DIPSpec(n=2, m=3, k=64, d=3, activation="softplus", cond=6.0, loss="huber",
                      t_R=0.7131578947368421, noise_rel=0.37842105263157894, seed=1014))
@example(spec=DIPSpec(n=2, m=1, k=4, d=1, loss="power", p=5.0, t_R=1.0, noise_rel=0.01, steps=50, seed=0))
@example(spec=claims.GF_STATE_ERROR_WITNESS)
@given(spec=st.one_of(NOISY_INJECTIVE, NOISY, NOISY_INJECTIVE.map(lambda s: s.replace(loss="mse"))))
def test_dip__recovery_and_early_stopping(spec):
    """Rec-obs, Rec-sig (regime (a) when m >= n, else vacuous), the least-squares limit (MSE,
    regime (a)) and early stopping, on the same noisy flow."""
    for fn in RECOVERY_CLAIMS:
        _drive(fn, spec)


@given(spec=NATURAL_TEACHER)
def test_dip__teacher_in_reachable_set(spec):
    _drive(claims.teacher_in_reachable_set, spec)


@given(spec=vacuity_specs())
def test_dip__underdetermined_signal_bound_vacuous(spec):
    _drive(claims.underdetermined_signal_bound_vacuous, spec)


# Found by Hypothesis: GD converges (ratio 1.6e-14, so mu(x_bar) ~ 0 is still witnessed) but lands
# 5.0e-3 from x_bar, inside the catalogue's distance threshold 1e-2. Proposition Vac is not at fault
# (the curve witness holds); the threshold is a demonstration convention sized for n = 10, m = 5.
TRAINED_WITNESS_CODIM_ONE = DIPSpec(n=2, m=1, k=4, d=1, activation="sigmoid", v_law="uniform", cond=1.0,
                                    t_R=None, signal="teacher", step_c=1.0, steps=3000, record_every=3000,
                                    seed=101)


@pytest.mark.xfail(strict=True, reason=(
    "spec §8/§12 demonstration threshold: with n - m = 1 the trained limit lands within 1e-2 of x_bar "
    "with probability ~1e-2/C_phi (here 5.0e-3 away, ratio 1.6e-14); the absolute 1e-2 is not a "
    "property of Proposition Vac"))
def test_dip__trained_witness_threshold_at_codimension_one():
    res = check_claim(claims.underdetermined_signal_bound_vacuous, TRAINED_WITNESS_CODIM_ONE)
    assert res.verdict is Verdict.HOLDS


def test_dip__teacher_premise_frequent_for_d_at_least_2():
    """Spec §8(b): with d >= 2, ||W_0||_F ~ sqrt(kd) exceeds ||z_star|| ~ sqrt(k) by ~(sqrt 2 - 1) sqrt k,
    about 3 standard deviations of the difference at k = 64, so the premise holds for all but rare seeds."""
    spec = DIPSpec(n=4, m=8, k=64, d=2, t_R=None, signal="teacher", seed=3)
    res = check_claim(claims.teacher_in_reachable_set, spec)
    assert res.evidence.metrics["premise_frequency_d"] == 2
    assert res.evidence.metrics["premise_frequency"] >= 0.9


# ---------------------------------------------------------------------------------------------
# non-vacuity companions (spec §10.5): 20 fixed seeds, >= 90% non-vacuous, none violated

_LOSSES = (("mse", 3.0), ("power", 3.0), ("huber", 3.0), ("power", 5.0))


def _fixed(seed: int, **over) -> DIPSpec:
    n = 2 + seed % 7
    fields = dict(n=n, m=max(1, n - 1 + seed % 4), k=n * 2 ** (1 + seed % 5), d=1 + seed % 4,
                  activation=_ACTS[seed % 3], v_law=("rademacher", "uniform")[seed % 2],
                  cond=1.0 + (seed % 5) / 2, loss=_LOSSES[seed % 4][0], p=_LOSSES[seed % 4][1],
                  t_R=0.05 + 0.9 * seed / 19, seed=1000 + seed)
    fields.update({k: (v(seed) if callable(v) else v) for k, v in over.items()})
    return DIPSpec(**fields)


# Three flow families shared across claims (the flows are cached, so each is solved once):
# constructed base instances (Delta < 1/2 covers GF, GF+ and GF-), observation-kernel instances
# including r_A < k < n, and noisy MSE instances with m >= n (regime (a)) for the recovery claims.
_BASE_FAMILY: dict = {}
_OBS_FAMILY = {"target": "obs", "t_R": lambda s: 0.05 + 1.9 * s / 19, "m": lambda s: 1 + s % 3,
               "k": lambda s: 4 + s % 3, "n": lambda s: 7 + s % 2, "d": 2}
_NOISY_FAMILY = {"noise_rel": lambda s: 0.01 + 0.3 * s / 19, "loss": "mse",
                 "m": lambda s: 2 + s % 7 + s % 3}
_COMPANIONS = {
    claims.gf_loss_rate: _BASE_FAMILY, claims.gf_path_length_within_r_prime: _BASE_FAMILY,
    claims.gf_sigma_min_stays_half: _BASE_FAMILY, claims.gf_parameter_convergence: _BASE_FAMILY,
    claims.gf_refined_certificate: _BASE_FAMILY, claims.gf_rate_lower_bound: _BASE_FAMILY,
    claims.gf_observation_kernel_certificate: _OBS_FAMILY,
    claims.recovery_observation_space: _NOISY_FAMILY, claims.recovery_signal_space: _NOISY_FAMILY,
    claims.recovery_limit_least_squares: _NOISY_FAMILY, claims.early_stopping_time: _NOISY_FAMILY,
    claims.teacher_in_reachable_set: {"t_R": None, "signal": "teacher", "d": lambda s: 1 + s % 4},
    # The regime of vacuity_specs (see there): n - m >= 3, d >= 2, k >= 4n, cond <= 2.
    claims.underdetermined_signal_bound_vacuous: {
        "t_R": None, "signal": "teacher", "loss": "mse", "n": lambda s: 4 + s % 5,
        "m": lambda s: 1 + s % (1 + s % 5), "k": lambda s: (4 + s % 5) * 2 ** (2 + s % 3),
        "d": lambda s: 2 + s % 3, "cond": lambda s: 1.0 + (s % 3) / 2, "steps": 3000, "record_every": 3000},
}


@pytest.mark.parametrize("fn", list(_COMPANIONS), ids=_ids(_COMPANIONS))
def test_dip__flow_claims_non_vacuous(fn):
    specs = [_fixed(s, **_COMPANIONS[fn]) for s in range(20)]
    results = [check_claim(fn, spec, allow_vacuous=True) for spec in specs]
    non_vacuous = sum(r.verdict is Verdict.HOLDS for r in results)
    assert non_vacuous >= 18, [(r.instance, r.failed_hypotheses) for r in results
                               if r.verdict is Verdict.VACUOUS]


# ---------------------------------------------------------------------------------------------
# gradient descent with a tiny step tracks the flow (issue requirement)

def test_dip__gd_with_tiny_step_tracks_the_flow():
    """Explicit Euler on the Lemma D0 system: ``||z_tau - z(tau gamma)|| <= E_tau(gamma) = O(gamma)``.

    Both trajectories stay in ``B(theta_0, R)`` (GF: ``R' < R``; GD: ``R'_gamma < R``), where
    ``F = -nabla f`` is ``L = L_nabla(R)``-Lipschitz (Lemma S) and ``nabla^2 f >= -mu I`` with
    ``mu = L_J ||A|| h'(varrho)`` (the ``J^T A^T A J`` part is PSD; the curvature part is bounded by
    ``||A^T r|| L_J``, MSE ``h'(varrho) = varrho``). Along GF, ``||F|| <= G := J_max ||A|| ||r_0||``
    (``||r||`` is non-increasing). Then:

    * local error ``||z(t + gamma) - z(t) - gamma F(z(t))|| <= L G gamma^2 / 2``;
    * one step maps a difference ``e`` to ``||e - gamma (nabla f - nabla f')|| <= q ||e||``,
      ``q = sqrt(1 + 2 gamma mu + gamma^2 L^2)``;

    so ``E_tau = (L G gamma^2/2) (q^tau - 1)/(q - 1)`` (~ ``gamma L G (e^{mu t} - 1)/(2 mu)``). The
    solver's own error (the accurate run, ``rtol = 1e-12`` on ``||z|| ~ sqrt k``, accumulated:
    <= 1e-8 ||z|| with a wide margin) is added.
    Halving ``gamma`` must halve the error: Euler's global error is ``gamma e_1(t) + O(gamma^2)``, and
    ``gamma L <= 0.02`` keeps the second-order term within a few percent, hence the window [1.8, 2.2].
    """
    spec = DIPSpec(n=4, m=6, k=256, d=2, t_R=0.3, seed=7)
    case = materialize(spec)
    assert case.cert.base
    inst, loss = case.inst, case.loss
    traj = claims.gf_flow(spec)
    L = case.L_nabla_R
    varrho = case.r0 + case.norm_A * case.J_max * case.R
    mu = case.L_J * case.norm_A * varrho
    G = case.J_max * case.norm_A * case.r0
    T = min(2.0 / mu, float(traj.times[-1]))
    errors = {}
    for gamma in (0.02 / L, 0.01 / L):
        step = bd.step_constants(gamma, L, case.cert.R_prime, case.cert.kappa)
        assert step.R_prime_gamma < case.R  # GD stays in B(theta_0, R) too
        checkpoints = [round(T * j / 5 / gamma) for j in range(1, 6)]
        q = math.sqrt(1.0 + 2.0 * gamma * mu + (gamma * L) ** 2)
        z = inst.z0.copy()
        for tau in range(1, checkpoints[-1] + 1):
            z = dip.gd_step_z(inst, loss, z, gamma)
            if tau in checkpoints:
                z_flow = traj.solution.sol(tau * gamma)[: spec.k]
                err = float(np.linalg.norm(z - z_flow))
                bound = 0.5 * L * G * gamma ** 2 * (q ** tau - 1.0) / (q - 1.0)
                assert err <= bound + 1e-8 * float(np.linalg.norm(z_flow)), (gamma, tau, err, bound)
        # the recorded GD run is the same recursion
        run = dip.run_gd(inst, loss, gamma, checkpoints[-1], record_every=checkpoints[-1])
        np.testing.assert_array_equal(run.z, z)
        errors[gamma] = err
    big, small = errors.values()
    assert 1.8 <= big / small <= 2.2
