"""Tests of the DIP overparameterization claims (``verification/claims/dip_width.py``) and of the
crossing / bootstrap helpers of ``verification/stats.py``.

The probability machinery is driven on small seeded cells: a true bound must be confirmed, and a
deliberately over-optimistic bound passed through the same evaluation path must be refuted. The
exact certificate-ratio identity is a Hypothesis property test of the registered claim.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from bounds import dip_two_layer as dipb
from dynamics import dip_two_layer as dip
from verification import engine
from verification import stats as vstats
from verification.claims import dip_width as W
from verification.engine import Claim, Kind, Verdict
from verification.instances import parse_spec
from verification.testing import check_claim

IDS = ("dip.overparam_sigma0_probability", "dip.overparam_width_threshold",
       "dip.certificate_ratio_sqrt_k_scaling", "dip.certificate_threshold_prediction",
       "dip.empirical_below_certificate", "dip.profile_paper_width_4th_power")


def _throwaway(evaluate) -> Claim:
    """An unregistered claim, so evidence from a modified evaluation gets the engine's verdict."""
    return Claim(id="dip.synthetic", family="dip", provenance="[test]", kind=Kind.STATISTICAL,
                 statement="synthetic", hypotheses=(), instances=lambda profile, seed: [],
                 evaluate=evaluate)


# --------------------------------------------------------------------------------------------
# the spec and the sampler


def test_dip_width__spec_repr_round_trip_and_validation():
    spec = W.DIPCellSpec(n=4, m=3, widths=(8, 16), deltas=(0.5, 0.9), median_rtol=0.1, cell=2, seed=7)
    assert parse_spec(repr(spec)) == spec
    for bad in ({"widths": (16, 8)}, {"widths": ()}, {"deltas": (1.0,)}, {"delta0": 0.0},
                {"v_law": "gauss"}, {"level": 1.0}, {"trials": 1}):
        with pytest.raises(ValueError):
            W.DIPCellSpec(**bad)


@pytest.mark.parametrize("v_law", ["rademacher", "uniform"])
def test_dip_width__sampler_matches_explicit_network(monkeypatch, v_law):
    # Small blocks, so the nested widths (3, 7, 12) cut blocks in the middle and at their ends.
    monkeypatch.setattr(W, "BLOCK", 5)
    spec = W.DIPCellSpec(n=3, m=2, widths=(3, 7, 12), v_law=v_law, activation="softplus", seed=3)
    sample = W.sample_networks(spec, spec.widths, 4)
    monkeypatch.setattr(W, "BATCH_ELEMENTS", 1)  # one replicate at a time: same stream, same values
    single = W.sample_networks(spec, spec.widths, 4)
    for r in range(4):
        z, rows = W._draw_network(W.generator_for(spec, W.STREAM_NETWORK, r), 12, spec.n, v_law)
        for j, k in enumerate(spec.widths):
            inst = dip.build_instance(np.ones(1), z[:k, None], rows[:k].T, np.eye(3), np.zeros(3),
                                      activation="softplus", require_kd=False)
            # Same products summed in a different order (blocks): rounding ~ k u of the scale.
            scale = 1e-14 * max(1.0, float(np.abs(dip.gram(inst)).max()))
            assert np.allclose(sample.K[r, j], dip.gram(inst), rtol=0, atol=scale)
            assert np.allclose(sample.g0[r, j], dip.generator(inst), rtol=0, atol=1e-14)
            assert sample.col_norm2_max[r, j] == pytest.approx(np.max(np.sum(rows[:k] ** 2, axis=1)),
                                                               rel=1e-15)
    assert np.allclose(single.K, sample.K, rtol=0, atol=1e-14)
    if v_law == "rademacher":
        assert np.all(sample.col_norm2_max == spec.n)  # ||v_i||^2 = n exactly


# --------------------------------------------------------------------------------------------
# Lemma D3


D3_SMALL = W.DIPCellSpec(n=3, widths=(32, 64), deltas=(0.5, 0.75, 0.9), trials=50, seed=11)


def test_dip_width__sigma0_probability_confirmed():
    res = check_claim(W.overparam_sigma0_probability, D3_SMALL)
    probs = res.evidence.probabilities
    assert probs and all(p.holds for p in probs)
    # Bonferroni over the checked cells of the instance (family = 1).
    assert all(p.level == pytest.approx(1 - 0.01 / len(probs)) for p in probs)
    # Sized to confirm: even the strongest proven probability is reachable with all successes.
    assert res.evidence.metrics["trials"] >= max(engine.trials_to_confirm(p.proven, p.level) for p in probs)
    seed = probs[0].witness["seed"]
    assert seed["entropy"] == 12128 and seed["spawn_key"] == [D3_SMALL.seed, D3_SMALL.cell, W.STREAM_NETWORK]


def test_dip_width__sigma0_probability_refutes_an_optimistic_bound():
    # Claims P[lambda_min(K_0) <= 0.75 C_phi'^2] <= 1e-3 at k = 8, n = 5: false (it is ~1/2).
    spec = W.DIPCellSpec(n=5, widths=(8,), deltas=(0.25,), trials=50, seed=1)
    synthetic = _throwaway(lambda sp: W.sigma0_probability_evidence(sp, bound=lambda *a: 1e-3))
    res = synthetic.check(spec)
    assert res.verdict is Verdict.VIOLATED
    (p,) = res.evidence.probabilities
    assert p.refuted and p.witness["bad_replicates"]
    # The true bound at the same cell is >= 1: the claim itself says nothing there.
    assert W.overparam_sigma0_probability.claim.check(spec).failed_hypotheses == [W.NONTRIVIAL_BOUND]


def test_dip_width__sigma0_probability_vacuous_and_budget():
    vac = W.overparam_sigma0_probability.claim.check(W.DIPCellSpec(n=5, widths=(2, 4), deltas=(0.5,)))
    assert vac.verdict is Verdict.VACUOUS and vac.failed_hypotheses == [W.NONTRIVIAL_BOUND]
    small_budget = D3_SMALL.replace(max_trials=2, trials=2)
    res = W.overparam_sigma0_probability.claim.check(small_budget)
    assert res.verdict is Verdict.VACUOUS and res.failed_hypotheses == ["confirmable_within_budget"]


@pytest.mark.parametrize("claim_id", ["dip.overparam_sigma0_probability", "dip.overparam_width_threshold"])
@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_dip_width__bonferroni_family_and_streams_per_profile(claim_id, profile):
    specs = engine.get(claim_id).instances(profile, 0)
    # the 99% family level is shared by all instances of the profile ...
    assert all(sp.family == len(specs) for sp in specs)
    # ... and every instance draws from its own stream
    assert len({(sp.cell, sp.seed) for sp in specs}) == len(specs)


# --------------------------------------------------------------------------------------------
# Theorem D5


def test_dip_width__width_threshold_checks_the_implication_on_every_sample():
    spec = W.DIPCellSpec(n=3, m=2, widths=(1,), delta0=0.25, trials=12, seed=4)
    res = check_claim(W.overparam_width_threshold, spec)
    (p,) = res.evidence.probabilities
    links = [c for c in res.evidence.comparisons if c.label.startswith("premise =>")]
    assert len(links) == 4
    # every sample meeting the premise is checked (the premise frequency is reported)
    assert all(c.witness["samples"] == round(res.evidence.metrics["premise_frequency"] * p.trials)
               for c in links)
    assert res.evidence.metrics["k"] > res.evidence.metrics["k_lazy"]


def test_dip_width__width_threshold_refutes_a_too_small_width():
    spec = W.DIPCellSpec(n=5, m=5, widths=(1,), delta0=0.25, trials=20, seed=2)

    def too_small(sp):
        _, wt, rho = W.d5_width(sp)
        return 2 * sp.n, wt, rho  # the proven probability of k_D5 claimed at k = 2n

    res = _throwaway(lambda sp: W.width_threshold_evidence(sp, width=too_small)).check(spec)
    assert res.verdict is Verdict.VIOLATED
    (p,) = res.evidence.probabilities
    assert p.refuted and p.successes == 0


# --------------------------------------------------------------------------------------------
# certificate scaling law


@st.composite
def scaling_specs(draw):
    n = draw(st.integers(2, 10))
    k0 = 2 ** draw(st.integers(8, 10))
    # The regime of the catalogue's cells (m/n in [1/2, 2], spec §12: n = 10, m in {5, 20}) with a
    # factor 16 of widths (5 fit points) and >= 60 replicates: there the exponent interval is
    # expected well below the 0.5 informativeness limit (m = 1 makes psi_0 a folded Gaussian whose
    # median is too noisy at this N).
    return W.DIPCellSpec(n=n, m=draw(st.integers(max(2, n // 2), 2 * n)), widths=(k0, 4 * k0, 16 * k0),
                         activation=draw(st.sampled_from(("tanh", "sigmoid", "softplus"))),
                         cond=draw(st.floats(1.0, 4.0)), trials=draw(st.integers(60, 80)), z_draws=20_000,
                         resamples=400, seed=draw(st.integers(0, 2 ** 20)))


@given(scaling_specs())
def test_dip_width__certificate_ratio_identity_and_law(spec):
    res = check_claim(W.certificate_ratio_sqrt_k_scaling, spec, target_label="ratio identity residual/tol")
    event(str(res.verdict))
    identity = res.evidence.comparisons[0]
    assert identity.label.startswith("|sqrt(k) R'/R") and identity.holds
    assert identity.witness["samples"] == spec.trials * len(W._fit_grid(spec.widths))


def test_dip_width__median_se_and_edge_bias():
    x = np.random.default_rng(0).standard_normal(40_000)
    # The median of N(0, 1) has standard error sqrt(pi/2)/sqrt(M); the estimate is a spacing over
    # ~2 x 1.96 sqrt(M)/2 = 392 ranks, whose relative sd is ~1/sqrt(392) = 5%: 4 sd allowed.
    assert W._median_se(x) == pytest.approx(math.sqrt(math.pi / 2) / 200, rel=0.2)
    b = [W.gram_edge_bias(10, 2 ** j, "tanh") for j in (10, 12, 14)]
    assert b[0] > b[1] > b[2] > 0 and W.gram_edge_bias(10, 4, "tanh") == math.inf


# --------------------------------------------------------------------------------------------
# crossing points and the bootstrap


def test_stats__isotonic_increasing():
    assert np.allclose(vstats.isotonic_increasing([1, 3, 2, 4]), [1, 2.5, 2.5, 4])
    assert np.allclose(vstats.isotonic_increasing([0, 0.2, 0.9]), [0, 0.2, 0.9])
    assert np.allclose(vstats.isotonic_increasing([3, 1], weights=[1, 3]), [1.5, 1.5])
    fit = vstats.isotonic_increasing(np.random.default_rng(1).random(30))
    assert np.all(np.diff(fit) >= 0)
    with pytest.raises(ValueError):
        vstats.isotonic_increasing([1.0, np.nan])


def test_stats__crossing_point():
    x = [1.0, 2.0, 4.0, 8.0]
    assert vstats.crossing_point(x, [0, 0.25, 0.75, 1]) == pytest.approx(2 ** 1.5, rel=1e-14)
    assert vstats.crossing_point(x, [0, 0.25, 0.75, 1], log=False) == pytest.approx(3.0)
    assert vstats.crossing_point(x, [0.6, 0.7, 0.8, 1]) == -math.inf
    assert vstats.crossing_point(x, [0, 0.1, 0.2, 0.4]) == math.inf
    assert vstats.crossing_point(x, [0.5, 0.7, 0.8, 1]) == 1.0
    # a dip is pooled before interpolating: [0, 0.6, 0.4, 1] -> [0, 0.5, 0.5, 1]
    assert vstats.crossing_point(x, [0, 0.6, 0.4, 1]) == pytest.approx(2.0)
    with pytest.raises(ValueError):
        vstats.crossing_point([2.0, 1.0], [0, 1])


def test_stats__bootstrap_ci_reproducible_and_covers():
    data = np.random.default_rng(2).standard_normal(200)
    a = vstats.bootstrap_ci(data, np.median, rng=np.random.default_rng(5), n_resamples=500)
    b = vstats.bootstrap_ci(data, np.median, rng=np.random.default_rng(5), n_resamples=500)
    assert a.low == b.low and a.high == b.high and a.low <= a.estimate <= a.high
    covered = 0
    for rep in range(60):
        sample = np.random.default_rng(100 + rep).standard_normal(80)
        ci = vstats.bootstrap_ci(sample, np.median, rng=np.random.default_rng(rep), n_resamples=300)
        covered += ci.low <= 0.0 <= ci.high
    assert covered >= 51  # 95% nominal: >= 85% of 60 intervals cover the true median 0
    # infinite statistics (censored crossings) give order-statistic ends, not NaN
    ci = vstats.bootstrap_ci(np.arange(10.0), lambda r: math.inf if r.mean() > 4.5 else r.mean(),
                             rng=np.random.default_rng(0), n_resamples=200)
    assert ci.high == math.inf and math.isfinite(ci.low)
    with pytest.raises(ValueError):
        vstats.bootstrap_ci(data[:1], np.median, rng=np.random.default_rng(0))


def test_stats__bootstrap_crossing_recovers_a_known_transition():
    # P[success at k] = logistic(2 (log2 k - 5)): the 50% point is k = 32.
    widths = 2.0 ** np.arange(2, 9)
    p = 1 / (1 + np.exp(-2 * (np.log2(widths) - 5)))
    success = np.random.default_rng(3).random((400, widths.size)) < p
    ci = vstats.bootstrap_ci(success.astype(float), lambda r: vstats.crossing_point(widths, r.mean(axis=0)),
                             rng=np.random.default_rng(4), n_resamples=1000)
    assert ci.low < 32 < ci.high and ci.high / ci.low < 1.5


# --------------------------------------------------------------------------------------------
# phase transitions


def test_dip_width__gd_reparametrized_step_equals_unit_input_run():
    # gd_success runs replicate i with gamma = 1 and u = (sqrt(gamma_i),): Lemma D0 makes that the
    # unit-u run with step gamma_i.
    spec = W.DIPCellSpec(n=4, m=3, widths=(6,), trials=2, steps=40, seed=5)
    data = W.cell_data(spec)
    z, rows = W._draw_network(W.generator_for(spec, W.STREAM_GD, 0), 6, 4, "rademacher")
    V = rows.T
    base = dip.build_instance(np.ones(1), z[:, None], V, data.A, data.y, require_kd=False)
    gamma = 0.37
    s = math.sqrt(gamma)
    scaled = dip.build_instance(np.array([s]), z[:, None] / s, V, data.A, data.y, require_kd=False)
    loss = dip.make_loss("mse")
    ref = dip.run_gd(base, loss, gamma, 40).records["loss"]
    got = dip.run_gd_batch([scaled], loss, 1.0, 40).records["loss"][:, 0]
    assert np.allclose(got, ref, rtol=1e-12, atol=1e-15 * ref[0])


def test_dip_width__threshold_prediction_nonvacuous_over_seeds():
    # Spec §10.5 companion: over 20 fixed cells the grid brackets the transition (>= 90%
    # non-vacuous) and every non-vacuous cell holds.
    base = W.DIPCellSpec(n=5, m=5, widths=tuple(2 ** j for j in range(8, 15)), trials=40, resamples=300)
    verdicts = []
    for seed in range(20):
        res = W.certificate_threshold_prediction.claim.check(base.replace(seed=seed))
        assert res.verdict in (Verdict.HOLDS, Verdict.VACUOUS), (seed, res.worst())
        verdicts.append(res.verdict)
    assert sum(v is Verdict.HOLDS for v in verdicts) >= 18


# --------------------------------------------------------------------------------------------
# the [unverified] profile


@given(n=st.integers(2, 30), m=st.integers(1, 40), d=st.integers(2, 16), cond=st.floats(1.0, 20.0))
def test_dip_width__profile_internal_consistency(n, m, d, cond):
    check_claim(W.profile_paper_width_4th_power, W.DIPCellSpec(n=n, m=m, d=d, cond=cond, seed=n + m))


def test_dip_width__profile_golden_value():
    g = W.golden_profile_inputs()
    assert g["Ax_inf"] == pytest.approx(0.865294567790, abs=1e-12)  # g_0[1] of spec §10.7
    # d = 1: log d = 0, X = sqrt(2) ||y||_inf, k = 2 X^4
    assert dipb.paper_width_4th_power(**g).value == pytest.approx(2 * (math.sqrt(2) * g["Ax_inf"]) ** 4,
                                                                  rel=1e-14)
    assert W.profile_paper_width_4th_power.claim.informational


# --------------------------------------------------------------------------------------------
# the registered claims on their quick profiles


@pytest.mark.parametrize("claim_id", IDS)
def test_dip_width__quick_profile_holds(claim_id):
    result = engine.get(claim_id).run("quick")
    assert result.verdict is Verdict.HOLDS, (claim_id, result.witness())
