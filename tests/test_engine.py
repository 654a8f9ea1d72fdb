"""The claim engine's verdict rules, the statistics helpers, and the spec parser."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from verification import engine
from verification.engine import Claim, Evidence, ExponentFit, Hypothesis, Kind, Verdict
from verification.instances import parse_spec, spec_type
from verification.stats import binomial_upper, clopper_pearson, fit_exponent


@spec_type
@dataclasses.dataclass(frozen=True)
class ToySpec:
    value: float = 0.0
    seed: int = 0


def _claim(evaluate, hypotheses=(), specs=(ToySpec(),)):
    return Claim(id="toy.claim", family="toy", provenance="[derived]", kind=Kind.INEQUALITY,
                 statement="toy", hypotheses=tuple(hypotheses),
                 instances=engine.seeded({"quick": list(specs)}), evaluate=evaluate)


def test_comparison_margin_and_tightness():
    c = engine.Comparison("x", observed=1.0, bound=4.0, allowance=0.5)
    assert c.holds and c.margin == 3.5 and c.tightness == 0.25
    bad = engine.Comparison("x", observed=5.0, bound=4.0, allowance=0.5)
    assert not bad.holds and bad.margin == -0.5
    assert not engine.Comparison("nan", observed=float("nan"), bound=1.0).holds


def test_verdicts_holds_violated_vacuous_error():
    def ev(spec):
        e = Evidence()
        e.compare("v <= 1", spec.value, 1.0)
        return e

    hyp = Hypothesis("nonneg", "value >= 0", lambda sp: sp.value >= 0)
    holds = _claim(ev, [hyp], [ToySpec(0.5), ToySpec(-1.0)]).run()
    assert holds.verdict is Verdict.HOLDS
    assert holds.tightness == pytest.approx(0.5) and holds.margin == pytest.approx(0.5)
    assert holds.failed_hypotheses == ["nonneg"]
    violated = _claim(ev, [hyp], [ToySpec(0.5), ToySpec(2.0)]).run()
    assert violated.verdict is Verdict.VIOLATED
    assert violated.witness().instance == ToySpec(2.0)
    assert violated.margin == pytest.approx(-1.0)
    vacuous = _claim(ev, [hyp], [ToySpec(-1.0)]).run()
    assert vacuous.verdict is Verdict.VACUOUS

    def boom(spec):
        raise RuntimeError("bug in evaluation")

    errored = _claim(boom).run()
    assert errored.verdict is Verdict.ERROR and "bug in evaluation" in errored.witness().error
    assert _claim(lambda sp: Evidence()).run().verdict is Verdict.ERROR


def test_post_hoc_hypothesis_makes_instance_vacuous():
    def ev(spec):
        e = Evidence()
        e.failed_hypotheses.append("converged")
        return e

    res = _claim(ev).run()
    assert res.verdict is Verdict.VACUOUS and res.failed_hypotheses == ["converged"]


def test_seeded_shifts_seeds():
    inst = engine.seeded({"quick": [ToySpec(seed=3)]})
    assert inst("quick", 0) == [ToySpec(seed=3)]
    assert inst("quick", 5) == [ToySpec(seed=8)]
    assert inst("paper", 0) == [ToySpec(seed=3)]  # falls back to quick


def test_exponent_fit_window_width_and_r2():
    fit = ExponentFit("f", -1.02, -1.05, -0.99, 0.99, window=(-1.0, -1.0), max_ci_width=0.2,
                      min_r_squared=0.95)
    assert fit.holds
    assert not dataclasses.replace(fit, ci_high=-1.01).holds
    assert not dataclasses.replace(fit, ci_low=-1.5).holds  # too wide
    assert not dataclasses.replace(fit, r_squared=0.5).holds


def test_fit_exponent_recovers_power_law_and_ci_covers():
    rng = np.random.default_rng(0)
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    covered = 0
    for _ in range(200):
        y = 3.0 * x**-1.5 * np.exp(0.05 * rng.standard_normal(x.size))
        f = fit_exponent(x, y, label="t", window=(-1.5, -1.5))
        covered += f.ci_low <= -1.5 <= f.ci_high
    # A 95% interval covers the true exponent in ~190/200 trials; 175 is a 4-sigma floor.
    assert covered >= 175
    exact = fit_exponent(x, 2 * x**0.5, label="t", window=(0.5, 0.5))
    assert exact.exponent == pytest.approx(0.5, abs=1e-12) and exact.r_squared == pytest.approx(1)
    with pytest.raises(ValueError, match="y"):
        fit_exponent(x, -x, label="t", window=(0, 0))


def test_clopper_pearson_matches_beta_quantiles_and_edges():
    lo, hi = clopper_pearson(7, 20)
    assert lo == pytest.approx(stats.beta.ppf(0.025, 7, 14))
    assert hi == pytest.approx(stats.beta.ppf(0.975, 8, 13))
    assert clopper_pearson(0, 10)[0] == 0.0 and clopper_pearson(10, 10)[1] == 1.0
    with pytest.raises(ValueError, match="successes"):
        clopper_pearson(11, 10)
    assert binomial_upper(1000, 1000) == 1.0
    assert 0.5 < binomial_upper(500, 1000) < 0.6


def test_parse_spec_round_trip_and_rejects_code():
    from verification.dln_instances import DLNSpec

    spec = DLNSpec(d=7, m=5, s=2, lam=0.25, init="orthogonal", seed=11)
    assert parse_spec(repr(spec)) == spec
    assert parse_spec("ToySpec(value=-1.5)") == ToySpec(-1.5)
    with pytest.raises(ValueError, match="unknown spec type"):
        parse_spec("__import__('os')")
    with pytest.raises(ValueError, match="unknown spec type"):
        parse_spec("Evil(x=1)")
    with pytest.raises(ValueError):
        parse_spec("DLNSpec(d=__import__('os'))")


def test_registry_ids_are_unique_and_prefixed():
    registry = engine.load_all()
    assert registry, "no claims registered"
    for cid, c in registry.items():
        assert cid.startswith(c.family + ".")
        assert c.provenance and c.statement
    with pytest.raises(ValueError, match="registered twice"):
        engine.register(next(iter(registry.values())))


def test_one_sided_window_needs_the_whole_interval_inside():
    import math

    # "the exponent is negative": a flat fit whose interval straddles 0 meets the window but
    # shows nothing, so it must not hold; a significantly negative one does.
    flat = ExponentFit("drift ~ d_w^a", 0.0, -0.3, 0.3, 0.99, window=(-math.inf, 0.0),
                       max_ci_width=1.0)
    assert not flat.holds and "not inside one-sided" in flat.failure
    negative = dataclasses.replace(flat, exponent=-0.3, ci_low=-0.5, ci_high=-0.1)
    assert negative.holds
    # Two-sided windows keep the "meets" rule.
    two_sided = dataclasses.replace(flat, window=(0.2, 0.4))
    assert two_sided.holds


def test_probability_check_confirms_refutes_or_is_inconclusive():
    # 300/300 at 99%: lower end (0.005)^(1/300) = 0.98250 -> confirms 0.98, not 0.99.
    ok = engine.ProbabilityCheck("p", 300, 300, proven=0.98)
    assert ok.holds and not ok.refuted
    assert ok.interval[0] == pytest.approx(0.005 ** (1 / 300), rel=1e-12)
    unsure = engine.ProbabilityCheck("p", 300, 300, proven=0.99)
    assert not unsure.holds and not unsure.refuted and "does not confirm" in unsure.failure
    # 80/100 has 99% upper end ~0.88 < 0.9: the bound is refuted.
    bad = engine.ProbabilityCheck("p", 80, 100, proven=0.9)
    assert bad.refuted and not bad.holds and "refutes" in bad.failure
    with pytest.raises(ValueError, match="successes, trials"):
        engine.ProbabilityCheck("p", 5, 3, proven=0.5)
    with pytest.raises(ValueError, match="level"):
        engine.ProbabilityCheck("p", 1, 3, proven=0.5, level=1.0)


def test_trials_to_confirm_is_the_smallest_sufficient_sample():
    for proven in (0.5, 0.9, 0.99):
        n = engine.trials_to_confirm(proven)
        assert engine.ProbabilityCheck("p", n, n, proven).holds
        assert not engine.ProbabilityCheck("p", n - 1, n - 1, proven).holds
    with pytest.raises(ValueError, match="proven"):
        engine.trials_to_confirm(1.0)


def test_probability_verdicts_through_the_engine():
    def ev(spec):
        e = Evidence()
        e.probability("event", int(spec.value), 100, proven=0.9)
        return e

    verdicts = {v: _claim(ev).check(ToySpec(value=v)).verdict for v in (100, 93, 80)}
    assert verdicts == {100: Verdict.HOLDS, 93: Verdict.INCONCLUSIVE, 80: Verdict.VIOLATED}
    res = _claim(ev, specs=(ToySpec(value=100), ToySpec(value=93))).run()
    assert res.verdict is Verdict.INCONCLUSIVE and res.witness().instance.value == 93
    # A refuted cell wins over a passing comparison.
    def mixed(spec):
        e = ev(spec)
        e.compare("fine", 0.0, 1.0)
        return e

    assert _claim(mixed).check(ToySpec(value=80)).verdict is Verdict.VIOLATED


def test_fit_refuted_or_undecided():
    import math

    fit = ExponentFit("f", -1.02, -1.05, -0.99, 0.99, window=(-1.0, -1.0), max_ci_width=0.2,
                      min_r_squared=0.95)
    assert fit.holds and not fit.refuted
    # the interval misses the theory: the data contradict the law
    assert dataclasses.replace(fit, exponent=-0.5, ci_low=-0.55, ci_high=-0.45).refuted
    # a narrow interval on a poor line: not a power law
    assert dataclasses.replace(fit, r_squared=0.5).refuted
    # meets the window but too wide to confirm: undecided, and R^2 of a wide fit does not refute
    wide = dataclasses.replace(fit, ci_low=-1.8, ci_high=-0.3, r_squared=0.5)
    assert not wide.holds and not wide.refuted
    # one-sided: straddling the finite end is undecided, lying beyond it is refuted
    flat = ExponentFit("a < 0", 0.0, -0.3, 0.3, 0.99, window=(-math.inf, 0.0), max_ci_width=1.0)
    assert not flat.holds and not flat.refuted
    assert dataclasses.replace(flat, exponent=0.3, ci_low=0.1, ci_high=0.5).refuted


def test_fit_verdicts_through_the_engine():
    def ev(spec):
        e = Evidence()
        half = spec.value / 2
        e.fits.append(ExponentFit("f", -1.0, -1.0 - half, -1.0 + half, 0.99, window=(-1.0, -1.0),
                                  max_ci_width=0.2))
        return e

    verdicts = {v: _claim(ev).check(ToySpec(value=v)).verdict for v in (0.1, 1.0)}
    assert verdicts == {0.1: Verdict.HOLDS, 1.0: Verdict.INCONCLUSIVE}

    def missed(spec):
        e = ev(spec)
        e.fits[0] = dataclasses.replace(e.fits[0], exponent=0.0, ci_low=-0.05, ci_high=0.05)
        return e

    assert _claim(missed).check(ToySpec(value=0.1)).verdict is Verdict.VIOLATED
