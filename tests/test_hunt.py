"""Counterexample search (``verification.hunt``): budgets, reproducibility, shrinking, the generic
perturbation strategy, the tightness of fits and probability checks, tables and the command line."""

from __future__ import annotations

import dataclasses
import json
import math
import time

import pytest
from hypothesis import given, settings

from verification import engine, hunt
from verification.dln_instances import DLNSpec
from verification.engine import Claim, Evidence, ExponentFit, Kind, ProbabilityCheck
from verification.instances import parse_spec
from verification.strategies import perturbed_specs

CHEAP_EXACT = "dln.stationary_points_encode_subspace"
"""An identity claim at ~10 ms per instance."""
BASE = DLNSpec(d=24, m=12, s=3, n=20, L=3, d_w=16, lam=0.1, steps=0)


def _toy_claim(evaluate, specs=(BASE,), cid="toy.hunt", informational=False) -> Claim:
    return Claim(id=cid, family="toy", provenance="[test]", kind=Kind.INEQUALITY, statement="toy",
                 hypotheses=(), instances=engine.seeded({"quick": list(specs)}), evaluate=evaluate,
                 informational=informational)


def _d_below(limit: float):
    """A deliberately false claim: ``d <= limit`` (the quick instance has d = 24)."""

    def evaluate(spec):
        ev = Evidence()
        ev.compare("d <= limit", spec.d, limit)
        return ev

    return evaluate


def test_hunt_on_a_cheap_exact_claim_holds_with_tightness_in_unit_interval():
    res = hunt.hunt(engine.get(CHEAP_EXACT), budget=3.0, seed=0)
    assert res.verdict == "holds"
    assert res.examples > 0 and res.holds > 0
    assert 0.0 < res.best_tightness <= 1.0
    assert res.stopped == "budget"
    # The best instance is a repr that reproduce accepts, and it holds there too.
    assert engine.get(CHEAP_EXACT).check(parse_spec(res.best_instance)).verdict is engine.Verdict.HOLDS
    assert res.vacuous_fraction is not None and 0.0 <= res.vacuous_fraction <= 1.0
    rec = res.as_json()
    json.dumps(rec, allow_nan=False)
    assert rec["claim_id"] == CHEAP_EXACT and rec["best_check"]["hunt_tightness"] == res.best_tightness


def test_hunt_is_reproducible_given_seed_and_example_count():
    claim = engine.get(CHEAP_EXACT)
    runs = [hunt.hunt(claim, budget=600, seed=7, max_examples=12, quick_examples=False)
            for _ in range(2)]
    a, b = (r.as_json() for r in runs)
    for key in ("best_instance", "best_tightness", "examples", "holds", "vacuous", "rejects"):
        assert a[key] == b[key], key
    assert a["stopped"] == "max_examples"
    other = hunt.hunt(claim, budget=600, seed=8, max_examples=12, quick_examples=False)
    # Same claim, another seed: the search itself must have been driven by the seed.
    assert other.best_instance != runs[0].best_instance


def test_hunt_finds_a_violation_and_shrinks_it_to_the_boundary():
    res = hunt.hunt(_toy_claim(_d_below(29.0)), budget=60, seed=1, shrink_budget=30)
    assert res.verdict == "violated" and res.stopped == "violation"
    v = res.violation
    assert v["shrunk"] and v["source"] == "generated" and v["replay"] == "violated"
    spec = parse_spec(v["instance"])
    # Minimal: the smallest violating d, every other field back at the quick instance.
    assert spec.d == 30
    assert dataclasses.replace(spec, d=BASE.d) == BASE
    assert v["reproduce"] == f'invbounds reproduce toy.hunt "{v["instance"]}"'
    assert v["check"]["holds"] is False and v["kind"] == "real"
    # The tightest non-violating instance seen is on the boundary itself.
    assert res.best_tightness == pytest.approx(1.0)


def test_a_violating_quick_instance_is_reported_as_such():
    res = hunt.hunt(_toy_claim(_d_below(10.0)), budget=30, seed=0)
    assert res.verdict == "violated"
    assert res.violation["source"] == "quick instance" and not res.violation["shrunk"]
    assert res.violation["instance"] == repr(BASE)


def test_a_slow_example_is_abandoned_after_the_grace_period():
    def slow(spec):
        time.sleep(30)
        return Evidence()

    res = hunt.hunt(_toy_claim(slow), budget=0.2, grace=0.5, seed=0)
    assert res.stopped == "abandoned"
    assert res.examples == 0 and res.verdict == "vacuous"


def test_rejections_are_counted_and_do_not_hang():
    @dataclasses.dataclass(frozen=True)
    class Picky:
        x: float = 1.0
        seed: int = 0

        def __post_init__(self):
            if self.x != 1.0:
                raise ValueError("x: must stay 1.0")

    def ev(spec):
        e = Evidence()
        e.compare("x <= 2", spec.x, 2.0)
        return e

    res = hunt.hunt(_toy_claim(ev, specs=(Picky(),)), budget=600, seed=0, max_examples=20,
                    quick_examples=False)
    assert res.rejects > 0 and res.reject_reasons
    assert "Picky: x: must stay 1.0" in next(iter(res.reject_reasons))
    assert 0.0 < res.reject_fraction < 1.0
    assert res.verdict == "holds" and res.best_tightness == pytest.approx(0.5)


@dataclasses.dataclass(frozen=True)
class _Inner:
    size: int = 4
    scale: float = 0.5
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class _Mixed:
    n: int = 10
    off: int = 0
    neg: int = -6
    rate: float = 0.25
    shift: float = -3.0
    zero: float = 0.0
    name: str = "tanh"
    flag: bool = True
    maybe: float | None = None
    grid: tuple = (1, 2, 3)
    inner: _Inner = _Inner()
    runs: tuple = (_Inner(size=2), _Inner(size=8))
    seed: int = 3


@settings(max_examples=200)
@given(perturbed_specs([_Mixed()]))
def test_perturbed_specs_respect_field_types_and_ranges(spec):
    base = _Mixed()
    assert isinstance(spec, _Mixed)
    assert isinstance(spec.n, int) and not isinstance(spec.n, bool) and 5 <= spec.n <= 20
    assert spec.off == 0 and -12 <= spec.neg <= -3
    assert isinstance(spec.rate, float) and 0.25 / 4 <= spec.rate <= 0.25 * 4 * (1 + 1e-12)
    assert -12.0 * (1 + 1e-12) <= spec.shift <= -0.75 * (1 - 1e-12)
    assert spec.zero == 0.0
    assert (spec.name, spec.flag, spec.maybe, spec.grid) == (base.name, base.flag, base.maybe, base.grid)
    assert 0 <= spec.seed <= 2**31 - 1
    # Nested specs are perturbed by the same rules; their seed is an ordinary int (0 stays 0).
    for inner, ref in [(spec.inner, base.inner), *zip(spec.runs, base.runs, strict=True)]:
        assert isinstance(inner, _Inner) and inner.seed == 0
        assert max(1, ref.size // 2) <= inner.size <= 2 * ref.size
        assert ref.scale / 4 <= inner.scale <= ref.scale * 4 * (1 + 1e-12)


def _draws(strategy, n: int = 5) -> list:
    seen = []

    @settings(max_examples=n, database=None)
    @given(strategy)
    def draw(spec):
        seen.append(spec)

    draw()
    return seen


def test_perturbed_specs_reject_bad_bases():
    with pytest.raises(ValueError, match="bases"):
        _draws(perturbed_specs([]))
    with pytest.raises(ValueError, match="bases"):
        _draws(perturbed_specs([3]))


def test_instance_strategy_uses_the_registry_and_the_claims_own_types():
    assert all(isinstance(s, DLNSpec) for s in _draws(hunt.instance_strategy(engine.get(CHEAP_EXACT))))
    jpo = engine.get("jpo.clipping_preserves_sign_n1")
    assert {type(s).__name__ for s in _draws(hunt.instance_strategy(jpo))} == {"ClipSignSpec"}
    assert {"DLNSpec", "DIPSpec"} <= set(hunt.STRATEGIES)
    with pytest.raises(ValueError, match="no quick instances"):
        hunt.instance_strategy(_toy_claim(_d_below(1.0), specs=()))


def test_fit_and_probability_tightness():
    two = ExponentFit("f", exponent=1.0, ci_low=0.9, ci_high=1.1, r_squared=0.99, window=(1.2, 1.4))
    # Touching: ci_high = 1.1 would need 1.2; |1 - 1.3| / (0.1 + 0.1) = 1.5 > 1 and the fit fails.
    assert hunt.fit_tightness(two) == pytest.approx(1.5) and not two.holds
    edge = dataclasses.replace(two, exponent=1.1, ci_low=1.0, ci_high=1.2)
    assert hunt.fit_tightness(edge) == pytest.approx(1.0) and edge.holds
    point = ExponentFit("p", exponent=2.05, ci_low=2.0, ci_high=2.1, r_squared=1.0, window=(2.0, 2.0))
    assert hunt.fit_tightness(point) == pytest.approx(1.0)
    one = ExponentFit("o", exponent=-0.5, ci_low=-0.6, ci_high=-0.4, r_squared=1.0,
                      window=(-math.inf, -0.25))
    assert hunt.fit_tightness(one) == pytest.approx(0.1 / 0.25) and one.holds
    width = dataclasses.replace(one, max_ci_width=0.1)
    assert hunt.fit_tightness(width) == pytest.approx(2.0) and not width.holds
    r2 = dataclasses.replace(one, r_squared=0.5, min_r_squared=0.9)
    assert hunt.fit_tightness(r2) == pytest.approx(1.8)
    p = ProbabilityCheck("p", successes=95, trials=100, proven=0.8)
    assert hunt.probability_tightness(p) == pytest.approx(0.8 / p.interval[0])
    assert hunt.probability_tightness(p) < 1.0 and p.holds
    assert hunt.probability_tightness(ProbabilityCheck("z", 0, 10, 0.5)) == math.inf
    assert hunt.probability_tightness(ProbabilityCheck("n", 3, 10, 0.0)) == 0.0


def test_comparison_tightness_counts_the_allowance():
    ev = Evidence()
    c = ev.compare("x", 1.0, 1.0 - 1e-3, allowance=2e-3)
    assert c.holds and c.tightness > 1.0
    assert hunt.check_tightness(c) == pytest.approx(1.0 / (1.0 + 1e-3))
    assert hunt.check_tightness(ev.compare("zero", 0.0, 0.0)) == 0.0
    assert hunt.check_tightness(ev.compare("nan", math.nan, 1.0)) == math.inf


def test_hunt_many_resumes_and_tables(tmp_path):
    out = tmp_path / "hunt.jsonl"
    claims = [engine.get(CHEAP_EXACT), _toy_claim(_d_below(10.0), cid="toy.bad", informational=True)]
    rows = hunt.hunt_many(claims, str(out), budget=1.0, seed=0, max_examples=3)
    assert [r["claim_id"] for r in rows] == [CHEAP_EXACT, "toy.bad"]
    assert len(out.read_text().splitlines()) == 2
    again = hunt.hunt_many(claims, str(out), budget=1.0, seed=0, max_examples=3)
    assert again == rows and len(out.read_text().splitlines()) == 2
    # A torn last line (a killed run) is skipped and that claim hunted again.
    out.write_text(out.read_text().splitlines()[0] + "\n{\"claim_id\": \"toy.b")
    hunt.hunt_many(claims, str(out), budget=1.0, seed=0, max_examples=3)
    assert {r["claim_id"] for r in hunt.read_results(str(out))} == {CHEAP_EXACT, "toy.bad"}
    table = hunt.results_table(rows)
    assert CHEAP_EXACT in table and "violated (profile)" in table and "DLNSpec(" in table
    md = tmp_path / "hunt.md"
    md.write_text(f"# Hunt\n\nintro\n\n{hunt.MARK_BEGIN}\nold table\n{hunt.MARK_END}\n\ntail\n")
    hunt.update_markdown(str(md), rows)
    text = md.read_text()
    assert "old table" not in text and "intro" in text and "tail" in text and CHEAP_EXACT in text


def test_command_line(monkeypatch, capsys, tmp_path):
    bad = _toy_claim(_d_below(29.0), cid=CHEAP_EXACT)
    monkeypatch.setitem(engine.REGISTRY, CHEAP_EXACT, bad)
    out = tmp_path / "one.json"
    code = hunt.main([CHEAP_EXACT, "--budget", "60", "--seed", "1", "-q", "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 1 and "VIOLATION" in text and f"invbounds reproduce {CHEAP_EXACT}" in text
    assert json.loads(out.read_text())["verdict"] == "violated"
    assert hunt.main(["--all-kinds", "nonsense"]) == 2
    assert "unknown kind" in capsys.readouterr().err
    assert hunt.main([]) == 2
    assert hunt.main(["nope.*", "--budget", "1"]) == 2
    assert hunt.parse_kinds("identity, scaling") == {Kind.IDENTITY, Kind.SCALING}
    with pytest.raises(ValueError, match="budget"):
        hunt.hunt(bad, budget=0)
