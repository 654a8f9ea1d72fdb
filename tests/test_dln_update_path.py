"""Property tests of the deep-linear update-path claims (D0, D2, D3, D6, conventions, gradient).

Each test drives the registered claim on Hypothesis-built instances, so the tested statement and
its tolerance are exactly those ``invbounds verify`` reports.
"""

from __future__ import annotations

import pytest
from hypothesis import example, given

from verification.claims import dln_update_path as claims
from verification.dln_instances import DLNSpec
from verification.strategies import dln_specs
from verification.testing import check_claim

pytestmark = pytest.mark.exact


@given(dln_specs(steps=(0, 60), updates=("standard", "seed002_ntk")))
def test_dln__row_space_reduction_exact(spec):
    check_claim(claims.row_space_reduction_exact, spec, target_label="reduction residual/tol")


@given(dln_specs(steps=(1, 60)))
def test_dln__gram_only_dependence(spec):
    check_claim(claims.gram_only_dependence, spec, target_label="gram residual/tol")


@given(dln_specs(steps=(1, 60)))
def test_dln__convention_equivalence(spec):
    check_claim(claims.convention_equivalence, spec, target_label="convention residual/tol")


@given(dln_specs(steps=(0, 0)))
def test_dln__gradient_formula(spec):
    check_claim(claims.gradient_formula, spec, target_label="fd error/tol")


@given(dln_specs(steps=(0, 200), updates=("standard", "seed002_ntk")))
def test_dln__first_layer_off_subspace_decay(spec):
    check_claim(claims.first_layer_off_subspace_decay, spec, target_label="D2 residual/tol")


# L = 1 makes the bound an equality: pinned after a too-small rounding allowance (fixed) and, before
# that, a divergence of the spec's gn_bound step at k = 1 (lam_bar > sigma_1(Y)^2; see
# test_spec_gn_step_without_weight_decay_curvature_diverges).
@example(spec=DLNSpec(d=3, m=2, s=1, n=1, L=1, d_w=1, lam=0.1, k=1.0, steps=8))
@given(dln_specs(steps=(1, 200), updates=("standard", "seed002_ntk")))
def test_dln__end_to_end_off_subspace_bound(spec):
    check_claim(claims.end_to_end_off_subspace_bound, spec.replace(record_every=5),
                target_label="D2 bound tightness")


@given(dln_specs(steps=(1, 40), lam_zero=True))
def test_dln__no_weight_decay_keeps_off_subspace(spec):
    check_claim(claims.no_weight_decay_keeps_off_subspace, spec, target_label="D2 lam=0 residual")


# steps = 0 (hunt, docs/hunt.md): no step to check; was a TypeError, now vacuous (at_least_one_step).
@example(spec=DLNSpec(d=18, m=8, s=3, n=18, L=3, d_w=11, lam=0.0, k=0.1496534531282293,
                      design="prescribed_rip", z_log10_cond=1.0, steps=0, seed=71169))
@given(dln_specs(steps=(1, 30)))
def test_dln__balancedness_recursion(spec):
    res = check_claim(claims.balancedness_recursion, spec, allow_vacuous=spec.L == 1 or spec.steps == 0,
                      target_label="D3 residual/tol")
    if spec.steps == 0:
        assert res.failed_hypotheses == ["at_least_one_step"]


@example(claims.STATIONARY_ROUNDING_WITNESS)
@given(dln_specs(steps=(0, 60), lam_zero=False))
def test_dln__stationary_points_encode_subspace(spec):
    check_claim(claims.stationary_points_encode_subspace, spec, target_label="D6-i residual/tol")


@example(claims.BALANCED_ROUNDING_WITNESS)
@given(dln_specs(steps=(0, 60), lam_zero=False))
def test_dln__stationary_points_balanced(spec):
    check_claim(claims.stationary_points_balanced, spec, allow_vacuous=spec.L == 1,
                target_label="D6-ii residual/tol")


def test_dln__gradient_flow_balancedness_decay():
    claim = claims.gradient_flow_balancedness_decay.claim
    for spec in claim.instances("quick", 0):
        check_claim(claim, spec)


def test_lam_zero_claims_are_vacuous_with_weight_decay():
    from verification.engine import Verdict

    res = claims.no_weight_decay_keeps_off_subspace.claim.check(DLNSpec(lam=0.1, steps=5))
    assert res.verdict is Verdict.VACUOUS
    assert res.failed_hypotheses == ["lam_zero"]


def test_spec_gn_step_without_weight_decay_curvature_diverges():
    """Counterexample to the spec's gn_bound step 1/max(L_0, L_star) (docs/theory, D10).

    For L = 1 the objective is a quadratic whose top curvature is a sigma_1(Y)^2 + lam_bar, while
    L_0 = L_star = a sigma_1(Y)^2 ignores lam_bar: with lam_bar > a sigma_1(Y)^2, the step 1/L_0
    makes |1 - eta (a sigma_1^2 + lam_bar)| > 1 and GD diverges at k = 1. The project's step
    1/(max(L_0, L_star) + lam_bar) is stable there.
    """
    import numpy as np

    from bounds import dln_weight_decay as dlb
    from dynamics import deep_linear as dl
    from verification.dln_instances import materialize

    spec = DLNSpec(d=3, m=2, s=1, n=1, L=1, d_w=1, lam=0.1, k=1.0, steps=200)
    inst = materialize(spec)
    sigma1 = float(np.linalg.norm(inst.data.Y, 2))
    assert inst.lam_bar > sigma1**2  # the regime of the counterexample
    spec_eta = 1.0 / max(inst.eta_hat.parameters["L0"], inst.eta_hat.parameters["L_star"])
    with pytest.raises(dl.DivergenceError) as info:
        dl.run_gd(inst.data.X, inst.data.Y, inst.weights0, eta=spec_eta, lam=spec.lam, steps=200)
    assert info.value.iteration > 0
    traj = dl.run_gd(inst.data.X, inst.data.Y, inst.weights0, eta=inst.eta, lam=spec.lam, steps=200)
    assert np.all(np.isfinite(traj["fit_error"]))
    assert inst.eta == pytest.approx(1.0 / (sigma1**2 + inst.lam_bar))
    assert dlb.eta_gn(inst.weights0, inst.data.Y, 1.0, lam_bar=0.0).value == spec_eta


def test_diverged_trajectory_makes_claims_vacuous():
    from verification.engine import Verdict

    res = claims.end_to_end_off_subspace_bound.claim.check(DLNSpec(k=60.0, steps=300))
    assert res.verdict is Verdict.VACUOUS
    assert res.failed_hypotheses == ["stable_run"]
    assert "diverged at iteration" in res.evidence.metrics["hypothesis_detail"]


# Instances of the hunt (docs/hunt.md, evaluation errors) on which run_gd diverges inside claims that
# call the dynamics directly: the DivergenceError used to escape as an error verdict.
_DIVERGING = [
    (claims.first_layer_off_subspace_decay,
     DLNSpec(d=42, m=7, s=3, n=20, L=3, d_w=20, lam=0.1, update="seed002_ntk", stepsize="seed002",
             rip_delta=0.030303259323920053, seed=949040)),
    (claims.gram_only_dependence,
     DLNSpec(d=12, m=19, s=3, n=20, L=1, d_w=16, lam=0.1, k=2.0425222869917152,
             init_scale=2.013127906104679, beta=2.0425222869917152, steps=178, seed=2048565)),
    (claims.row_space_reduction_exact,
     DLNSpec(d=13, m=19, s=3, n=7, L=1, d_w=16, lam=0.1, k=2.0425222869917152,
             init_scale=2.013127906104679, beta=2.0425222869917152, steps=342, seed=2048565)),
    (claims.convention_equivalence,
     DLNSpec(d=24, m=16, s=2, n=37, L=1, d_w=31, lam=0.1, k=2.757169070715922,
             init_scale=2.2473799662479665, convention="mean", rip_delta=0.07754023269356461,
             beta=0.25, seed=8663)),
]


@pytest.mark.parametrize(("fn", "spec"), _DIVERGING, ids=lambda v: getattr(v, "__name__", ""))
def test_direct_run_divergence_is_stable_run_hypothesis(fn, spec):
    from verification.engine import Verdict

    res = fn.claim.check(spec)
    assert res.verdict is Verdict.VACUOUS, res.error
    assert res.failed_hypotheses == ["stable_run"]
    assert "diverged at iteration" in res.evidence.metrics["hypothesis_detail"]


def test_balancedness_recursion_without_steps_is_vacuous_even_if_ignored():
    from verification.engine import Verdict

    # Standard update and L = 3: only the ignored hypothesis fails, so the evaluation runs.
    spec = DLNSpec(d=18, m=8, s=3, n=18, L=3, d_w=11, steps=0)
    res = claims.balancedness_recursion.claim.check(spec, ignore_hypotheses=["at_least_one_step"])
    assert res.verdict is Verdict.VACUOUS, res.error
    assert "at_least_one_step" in res.failed_hypotheses


@pytest.mark.parametrize(("changes", "field"), [
    ({"s": 4, "m": 3}, "s"), ({"s": 5, "d": 4}, "s"), ({"s": 3, "n": 2}, "n"),
    ({"rip_delta": 1.0}, "rip_delta"), ({"beta": 0.0}, "beta"), ({"z_log10_cond": -1.0}, "z_log10_cond"),
])
def test_spec_rejects_what_make_data_refuses(changes, field):
    with pytest.raises(ValueError, match=rf"^{field}:"):
        DLNSpec(**changes)


def test_spec_accepts_the_boundary_sizes():
    # s = m = d and n = s are valid (make_data accepts them).
    spec = DLNSpec(d=3, m=3, s=3, n=3, L=2, d_w=3)
    assert spec.s == spec.m == spec.n
