"""Property tests of the deep-linear update-path claims (D0, D2, D3, D6, conventions, gradient).

Each test drives the registered claim on Hypothesis-built instances, so the tested statement and
its tolerance are exactly those ``invbounds verify`` reports.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from verification.claims import dln_update_path as claims
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


@given(dln_specs(steps=(1, 200), updates=("standard", "seed002_ntk")))
def test_dln__end_to_end_off_subspace_bound(spec):
    check_claim(claims.end_to_end_off_subspace_bound, spec.replace(record_every=5),
                target_label="D2 bound tightness")


@given(dln_specs(steps=(1, 40), lam_zero=True))
def test_dln__no_weight_decay_keeps_off_subspace(spec):
    check_claim(claims.no_weight_decay_keeps_off_subspace, spec, target_label="D2 lam=0 residual")


@given(dln_specs(steps=(1, 30)))
def test_dln__balancedness_recursion(spec):
    check_claim(claims.balancedness_recursion, spec, allow_vacuous=spec.L == 1,
                target_label="D3 residual/tol")


@given(dln_specs(steps=(0, 60), lam_zero=False))
def test_dln__stationary_points_encode_subspace(spec):
    check_claim(claims.stationary_points_encode_subspace, spec, target_label="D6-i residual/tol")


@given(dln_specs(steps=(0, 60), lam_zero=False))
def test_dln__stationary_points_balanced(spec):
    check_claim(claims.stationary_points_balanced, spec, allow_vacuous=spec.L == 1,
                target_label="D6-ii residual/tol")


def test_dln__gradient_flow_balancedness_decay():
    claim = claims.gradient_flow_balancedness_decay.claim
    for spec in claim.instances("quick", 0):
        check_claim(claim, spec)


def test_lam_zero_claims_are_vacuous_with_weight_decay():
    from verification.dln_instances import DLNSpec
    from verification.engine import Verdict

    res = claims.no_weight_decay_keeps_off_subspace.claim.check(DLNSpec(lam=0.1, steps=5))
    assert res.verdict is Verdict.VACUOUS
    assert res.failed_hypotheses == ["lam_zero"]
