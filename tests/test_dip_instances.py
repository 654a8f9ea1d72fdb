"""DIP instance construction: the spec validates its fields, constructed data meet the requested
certificate ratio exactly, and the noise split and the MSE effective data are what the claims assume."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynamics import dip_two_layer as dip
from verification.dip_instances import (
    BASE_CERTIFICATE,
    GD_CERTIFICATE,
    DIPSpec,
    flow_horizon,
    materialize,
)
from verification.instances import parse_spec
from verification.strategies import dip_specs

U = np.finfo(float).eps


def _r0_rel_error(case) -> float:
    """Relative rounding of ``r_0 = ||A g_0 - y||``: a subtraction of ``O(||y||)`` terms leaves an
    absolute error ~u ``||y||`` however small ``r_0`` is (plus a few roundings of O(1) factors)."""
    g0 = dip.generator(case.inst)
    cancel = np.linalg.norm(case.inst.A @ g0) + np.linalg.norm(case.inst.y)
    return 64 * U * (1.0 + cancel / case.r0)


@given(dip_specs(max_n=6, max_k=512))
def test_dip__constructed_ratio_is_exact(spec):
    case = materialize(spec)
    if case.cert is None:
        return
    # rho = t_R R sigma_0 sigma_A / 2 and R' = 2 r_0/(sigma_0 sigma_A) with r_0 = rho up to rounding.
    assert case.cert.R_prime / case.cert.R == pytest.approx(spec.t_R, rel=_r0_rel_error(case))
    r0 = dip.generator(case.inst) @ case.inst.A.T - case.inst.y
    assert np.linalg.norm(r0) == pytest.approx(case.r0, rel=64 * U)


@given(dip_specs(max_n=6, max_k=256, target="obs", min_k_factor=1))
def test_dip__constructed_observation_ratio_is_exact(spec):
    case = materialize(spec)
    if case.obs is None:
        return
    assert case.obs.R_prime_A / case.obs.R_A == pytest.approx(spec.t_R, rel=_r0_rel_error(case))


@given(dip_specs(max_n=6, max_k=256, noise=(0.0, 0.9)), st.sampled_from([True, False]))
def test_dip__noise_split_and_effective_data(spec, natural):
    if natural:
        spec = spec.replace(t_R=None, signal="teacher")
    case = materialize(spec)
    A, inst = case.inst.A, case.inst
    scale = np.linalg.norm(A, 2) * np.linalg.norm(inst.x_bar) + np.linalg.norm(case.y_raw)
    # y = A x_bar + eps as drawn, and the effective data keep the identity (P_A A = A).
    assert np.linalg.norm(A @ inst.x_bar + case.eps_raw - case.y_raw) <= 1e3 * U * scale
    assert np.linalg.norm(A @ inst.x_bar + inst.eps - inst.y) <= 1e3 * U * scale
    if spec.loss == "mse":
        P = A @ np.linalg.pinv(A)
        assert np.linalg.norm(P @ inst.y - inst.y) <= 1e3 * U * scale
    if not natural:
        # r_0 = ||A g_0 - y|| is formed by a subtraction of O(||y||) terms, so it carries an
        # absolute error ~u ||y|| whatever its size; the noise norm was set from the exact rho.
        g0 = dip.generator(inst)
        cancel = 64 * U * (np.linalg.norm(A @ g0) + np.linalg.norm(inst.y))
        assert abs(np.linalg.norm(case.eps_raw) - spec.noise_rel * case.r0) <= \
            spec.noise_rel * cancel + 64 * U * np.linalg.norm(case.eps_raw)


def test_dip__spec_validation_names_the_field():
    with pytest.raises(ValueError, match="k: k d = 2 < n = 5"):
        DIPSpec(n=5, k=2, d=1)
    with pytest.raises(ValueError, match="activation"):
        DIPSpec(activation="gelu")
    with pytest.raises(ValueError, match="t_R"):
        DIPSpec(t_R=-0.5)
    with pytest.raises(ValueError, match="noise_rel"):
        DIPSpec(noise_rel=float("nan"))
    with pytest.raises(ValueError, match="step_ball"):
        DIPSpec(step_ball="3R")


def test_dip__spec_repr_round_trips_and_is_reproducible():
    spec = DIPSpec(n=4, m=3, k=64, loss="huber", noise_rel=0.2, seed=7)
    again = parse_spec(repr(spec))
    assert again == spec
    a, b = materialize(spec), materialize(spec.replace(seed=7))
    assert np.array_equal(a.inst.W0, b.inst.W0) and np.array_equal(a.inst.y, b.inst.y)


def test_dip__gd_certificate_follows_the_step():
    spec = DIPSpec(t_R=0.45, step_c=1.0)
    assert BASE_CERTIFICATE.check(spec) and GD_CERTIFICATE.check(spec)
    # beta = 1 - c/2: at c = 1.2 R'_gamma = R'/0.4 = 1.125 R > R, so Theorem GD says nothing.
    wide = spec.replace(step_c=1.2)
    assert not GD_CERTIFICATE.check(wide)
    assert materialize(wide).step.R_prime_gamma / materialize(wide).cert.R == pytest.approx(
        0.45 / 0.4, rel=1e-12)


def test_dip__relu_and_narrow_instances_have_no_certificate():
    assert materialize(DIPSpec(activation="relu")).cert is None
    narrow = materialize(DIPSpec(n=6, k=4, d=3))
    assert narrow.sigma0 == 0.0 and narrow.cert is None
    with pytest.raises(Exception, match="sigma0_positive"):
        flow_horizon(narrow)


def test_dip__flow_horizon_regimes():
    mse = materialize(DIPSpec())
    assert flow_horizon(mse) == pytest.approx(30 / mse.cert.kappa)
    power = materialize(DIPSpec(loss="power", p=4.0))
    assert flow_horizon(power) == pytest.approx(1e3 / (power.cert.kappa * power.r0 ** 2))
    huber = materialize(DIPSpec(loss="huber", huber_rel=0.1))
    t1 = (huber.r0 - huber.loss.delta) / (huber.cert.kappa * huber.loss.delta)
    assert flow_horizon(huber) == pytest.approx(30 / huber.cert.kappa + t1)
    assert math.isfinite(t1) and t1 > 0
