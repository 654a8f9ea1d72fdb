"""Hypothesis-boundary demonstrations (``verification.boundaries``): every stored boundary fails
exactly its dropped hypothesis and its conclusion breaks; every not-necessary instance fails exactly
its hypothesis and the conclusion holds; ``check_ignoring`` agrees with ``Claim.check`` when it
ignores nothing; the rows carry the sweep-store columns."""

from __future__ import annotations

import json

import pytest

from verification import boundaries as bd
from verification import engine
from verification.engine import Claim, Evidence, Hypothesis, HypothesisFailed, Kind, Verdict
from verification.instances import parse_spec


def _param(entry):
    marks = [pytest.mark.slow] if entry.slow else []
    return pytest.param(entry, id=f"{entry.claim_id}-{'+'.join(entry.dropped)}", marks=marks)


@pytest.mark.parametrize("entry", [_param(b) for b in bd.BOUNDARIES])
def test_boundary_fails_exactly_its_hypothesis_and_breaks_the_conclusion(entry):
    (r,) = bd.evaluate_entry(entry)
    assert r.plain.verdict is Verdict.VACUOUS
    assert r.fails_exactly, r.plain.failed_hypotheses
    assert r.ignoring.verdict is Verdict.VIOLATED, (r.ignoring.verdict, r.ignoring.error)
    assert set(entry.dropped) <= set(r.ignoring.ignored_hypotheses)
    worst = r.ignoring.worst()
    assert worst is not None and not worst.holds


@pytest.mark.parametrize("entry", [_param(n) for n in bd.NOT_NECESSARY])
def test_not_necessary_instances_fail_exactly_and_still_hold(entry):
    for r in bd.evaluate_entry(entry):
        assert r.fails_exactly, (r.instance, r.plain.failed_hypotheses)
        assert r.ignoring.verdict is Verdict.HOLDS, (r.instance, r.ignoring.verdict, r.ignoring.error)
        assert r.ok


def test_the_table_covers_three_families_and_each_entry_is_distinct():
    fams = {b.claim_id.split(".")[0] for b in bd.BOUNDARIES}
    assert fams == {"dln", "dip", "jpo"} and len(bd.BOUNDARIES) >= 8
    keys = [(b.claim_id, b.dropped) for b in bd.BOUNDARIES]
    assert len(keys) == len(set(keys))
    registry = engine.load_all()
    for e in bd.BOUNDARIES + bd.NOT_NECESSARY:
        names = {h.name for h in registry[e.claim_id].hypotheses}
        assert set(e.dropped) <= names, (e.claim_id, e.dropped)
        for text in ([e.instance] if isinstance(e, bd.Boundary) else e.tried):
            assert repr(parse_spec(text)) == repr(parse_spec(repr(parse_spec(text))))


def _claim(evaluate, hypotheses=()):
    return Claim(id="toy.boundary", family="toy", provenance="[test]", kind=Kind.INEQUALITY,
                 statement="toy", hypotheses=tuple(hypotheses),
                 instances=engine.seeded({"quick": [parse_spec("DLNSpec(d=5, m=3, s=1, n=4)")]}),
                 evaluate=evaluate)


POS = Hypothesis("d_small", "d <= 10", lambda sp: sp.d <= 10)
EVEN = Hypothesis("m_even", "m even", lambda sp: sp.m % 2 == 0)


def _d_below_8(spec):
    ev = Evidence()
    ev.compare("d <= 8", spec.d, 8.0)
    return ev


@pytest.mark.parametrize("text", ["DLNSpec(d=5, m=4, s=1, n=4)", "DLNSpec(d=9, m=4, s=1, n=4)",
                                  "DLNSpec(d=12, m=4, s=1, n=4)", "DLNSpec(d=12, m=3, s=1, n=4)"])
def test_check_ignoring_nothing_is_claim_check(text):
    c = _claim(_d_below_8, [POS, EVEN])
    spec = parse_spec(text)
    a, b = c.check(spec), bd.check_ignoring(c, spec, ())
    assert (a.verdict, a.failed_hypotheses, a.hypotheses) == (b.verdict, b.failed_hypotheses, b.hypotheses)
    assert b.ignored_hypotheses == []


def test_check_ignoring_evaluates_past_the_named_hypotheses_only():
    c = _claim(_d_below_8, [POS, EVEN])
    spec = parse_spec("DLNSpec(d=12, m=3, s=1, n=4)")  # fails both hypotheses
    only_one = bd.check_ignoring(c, spec, ["d_small"])
    assert only_one.verdict is Verdict.VACUOUS and only_one.failed_hypotheses == ["d_small", "m_even"]
    both = bd.check_ignoring(c, spec, ["d_small", "m_even"])
    assert both.verdict is Verdict.VIOLATED and both.ignored_hypotheses == ["d_small", "m_even"]
    assert both.failed_hypotheses == ["d_small", "m_even"]
    with pytest.raises(ValueError, match="ignore_hypotheses"):
        bd.check_ignoring(c, spec, [3])


def test_check_ignoring_reports_evaluation_failures():
    def diverges(spec):
        raise HypothesisFailed("stable_run", "blew up")

    def crashes(spec):
        raise ZeroDivisionError("division by zero")

    def post_hoc(spec):
        ev = _d_below_8(spec)
        ev.failed_hypotheses.append("d_small")
        return ev

    spec = parse_spec("DLNSpec(d=12, m=4, s=1, n=4)")
    r = bd.check_ignoring(_claim(diverges, [POS]), spec, ["d_small"])
    assert r.verdict is Verdict.VACUOUS and "stable_run" in r.failed_hypotheses
    r = bd.check_ignoring(_claim(crashes, [POS]), spec, ["d_small"])
    assert r.verdict is Verdict.ERROR and "ZeroDivisionError" in r.error
    # A hypothesis the evaluation itself reports failed is ignored too when named.
    r = bd.check_ignoring(_claim(post_hoc), spec, ["d_small"])
    assert r.verdict is Verdict.VIOLATED and r.ignored_hypotheses == ["d_small"]
    assert bd.check_ignoring(_claim(post_hoc), spec, ()).verdict is Verdict.VACUOUS


def test_an_entry_that_does_not_fail_its_hypothesis_is_flagged():
    wrong = bd.Boundary("dln.ridge_case_L1", "depth_one", "DLNSpec(d=12, m=6, s=2, n=10, L=1, lam=0.05)",
                        "L = 1 satisfies the hypothesis")
    (r,) = bd.evaluate_entry(wrong)
    assert not r.fails_exactly and not r.ok
    row = bd.result_row(r)
    assert row["verdict"] == "error" and "does not fail exactly" in row["error"]


STORE_COLUMNS = {"claim_id", "family", "kind", "params_json", "instance", "status", "verdict", "margin",
                 "tightness", "hypotheses_json", "failed_hypotheses_json", "checks_json", "metrics_json",
                 "reproduce", "error", "seconds", "package_version", "blas", "finished"}


def test_boundary_rows_have_the_store_columns():
    entries = [bd.BOUNDARIES[0], bd.NOT_NECESSARY[0]]
    rows = bd.boundary_rows(entries)
    assert len(rows) == 1 + len(bd.NOT_NECESSARY[0].tried)
    for row in rows:
        assert STORE_COLUMNS <= set(row)
        assert row["status"] == "done"
        assert json.loads(row["params_json"]) == {"dropped": row["ignored_hypotheses"][0]}
        for key in ("hypotheses_json", "failed_hypotheses_json", "checks_json", "metrics_json"):
            json.loads(row[key])
        assert row["reproduce"].startswith(f"invbounds reproduce {row['claim_id']} \"")
    broken, held = rows[0], rows[1]
    assert broken["verdict"] == "violated" and broken["boundary"] and broken["margin"] < 0
    assert held["verdict"] == "holds" and not held["boundary"]
    assert json.loads(broken["failed_hypotheses_json"]) == list(bd.BOUNDARIES[0].dropped)


def test_command_line_table_and_json(tmp_path, capsys):
    import argparse

    p = argparse.ArgumentParser()
    bd.add_boundaries_parser(p.add_subparsers(dest="command"))
    out = tmp_path / "b.json"
    md = tmp_path / "b.md"
    md.write_text(f"before\n{bd.MARK_BEGIN}\nstale\n{bd.MARK_END}\nafter\n")
    args = p.parse_args(["boundaries", "--claims", "jpo.*", "--json", str(out), "--markdown",
                         "--write-markdown", str(md)])
    assert args.func(args) == 0
    text = capsys.readouterr().out
    assert "| jpo.logistic_conjugacy | mp_precision | boundary | yes | yes (" in text
    doc = md.read_text()
    assert "stale" not in doc and "before" in doc and "after" in doc and "jpo.logistic_conjugacy" in doc
    rows = json.loads(out.read_text())["rows"]
    assert {r["claim_id"] for r in rows} >= {"jpo.logistic_conjugacy", "jpo.sign_probability_monotone_in_n"}
    args = p.parse_args(["boundaries", "--claims", "nope.*"])
    with pytest.raises(ValueError, match="no boundary entry"):
        args.func(args)


def test_boundary_rows_go_to_the_atlas_as_vacuous_cells_with_broken_checks(tmp_path):
    from verification import atlas
    from verification.store import Store

    entry = next(e for e in bd.BOUNDARIES if e.claim_id == "dip.gd_discretization_constant")
    db = tmp_path / "b.sqlite"
    assert bd.store_rows(str(db), bd.boundary_rows([entry])) == 1
    with Store(db, create=False) as store:
        (row,) = store.cells()
    assert row["verdict"] == "vacuous" and row["tightness"] > 1
    assert json.loads(row["failed_hypotheses_json"]) == list(entry.dropped)
    model = atlas.build_atlas(db)
    (claim_atlas,) = model.claims
    assert [c.instance for c in claim_atlas.boundary] == [entry.instance]
    assert not claim_atlas.violations
