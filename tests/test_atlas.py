"""The tightness atlas (``invbounds report``) on a synthetic sweep store.

Every expected number is recomputed here from the fixture's rows (``tests/atlas_fixture.py``), so
the tests check the report against the store, not against the report code's own arithmetic.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import os
import sqlite3
import statistics
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser

import pytest
from atlas_fixture import SCRIPT_ERROR, Fixture, build_fixture, canonical, write_store

from verification import atlas

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EVALUATED = ("holds", "violated", "inconclusive")
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "wbr", "source"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="invbounds")
    atlas.add_report_parser(p.add_subparsers(dest="command", required=True))
    return p


def run_cli(*argv: str) -> int:
    args = parser().parse_args(["report", *argv])
    return args.func(args)


def verdict_of(cell: dict) -> str:
    return "error" if cell["status"] == "error" or cell["verdict"] is None else cell["verdict"]


def params_text(cell: dict) -> str:
    return atlas._params_text(cell["params"])


def sections(md: str) -> dict[str, str]:
    """Markdown section text per claim id (from its ``### id`` heading to the next heading)."""
    out: dict[str, str] = {}
    current = None
    for line in md.splitlines():
        if line.startswith("#"):
            current = line[4:].strip() if line.startswith("### ") else None
            if current:
                out[current] = ""
            continue
        if current:
            out[current] += line + "\n"
    return out


class Tags(HTMLParser):
    """Collects start tags and image sources, and checks that non-void tags nest and close."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: Counter[str] = Counter()
        self.images: list[str] = []
        self.links: list[str] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src", ""))
        if "href" in a:
            self.links.append(a["href"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1] if self.stack else 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Fixture:
    return build_fixture(tmp_path_factory.mktemp("atlas") / "sweeps.db")


@pytest.fixture(scope="module")
def report(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    files = atlas.write_report(store.path, out)
    return {"files": files, "dir": out, "md": files.markdown.read_text(),
            "html": files.html.read_text(), "sections": sections(files.markdown.read_text())}


def test_summary_table_has_every_claim_with_its_counts(store, report):
    rows = {}
    for line in report["md"].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0] in store.claim_ids:
            rows[cells[0]] = cells
    assert sorted(rows) == store.claim_ids
    header = list(atlas.SUMMARY_COLUMNS)
    for cid in store.claim_ids:
        cells = store.claim_cells(cid)
        counts = Counter(verdict_of(c) for c in cells)
        row = dict(zip(header, rows[cid], strict=True))
        assert row["family"] == cells[0]["family"] and row["kind"] == cells[0]["kind"]
        assert int(row["cells"]) == len(cells)
        for v in ("holds", "violated", "vacuous", "inconclusive", "error"):
            assert int(row[v]) == counts[v], (cid, v)
        assert cid in report["html"]


def test_tightness_distribution_matches_the_store(store, report):
    model = {a.claim_id: a for a in report["files"].atlas.claims}
    for cid in store.claim_ids:
        ratios = [c["tightness"] for c in store.claim_cells(cid)
                  if verdict_of(c) in EVALUATED and c["tightness"] is not None]
        a = model[cid]
        assert sorted(a.ratios) == sorted(ratios)
        sec = report["sections"][cid]
        if ratios:
            assert a.median == statistics.median(ratios)
            assert (f"Tightness over {len(ratios)} cells whose hypotheses hold: min {min(ratios):.4g}, "
                    f"median {statistics.median(ratios):.4g}, max {max(ratios):.4g}.") in sec
        else:
            assert "records a tightness ratio" in sec


def test_tightest_and_loosest_cells_with_parameters_and_commands(store, report):
    checked = 0
    for cid in store.claim_ids:
        holding = [c for c in store.claim_cells(cid) if verdict_of(c) == "holds" and c["tightness"]]
        if not holding:
            continue
        lines = report["sections"][cid].splitlines()
        for word, pick in (("Tightest", max), ("Loosest", min)):
            best = pick(holding, key=lambda c: c["tightness"])
            line = next(x for x in lines if x.startswith(f"- {word} "))
            assert params_text(best) in line and best["reproduce"] in line, (cid, word, line)
            assert html.escape(params_text(best)) in report["html"]
        checked += 1
    assert checked >= 3


def test_every_violation_with_failing_checks_and_reproduce_command(store, report):
    violated = [c for c in store.cells if verdict_of(c) == "violated"]
    assert len(violated) >= 2
    for c in violated:
        sec = report["sections"][c["claim_id"]]
        block = sec.split("**Violations")[1].split("\n\n")[0]
        assert params_text(c) in block
        assert c["reproduce"] in block
        assert html.escape(c["reproduce"]) in report["html"]
        for chk in json.loads(c["checks_json"]):
            label = atlas._md(chk["label"])
            if chk["holds"]:
                assert label not in block, f"a check that holds is listed as failing: {label}"
            else:
                assert f"{label}: observed {chk['observed']:.6g} > bound {chk['bound']:.6g}" in block


def test_vacuous_fraction_and_failed_hypothesis_counts(store, report):
    for cid in store.claim_ids:
        cells = store.claim_cells(cid)
        vac = sum(verdict_of(c) == "vacuous" for c in cells)
        sec = report["sections"][cid]
        assert f"Vacuous: {vac} of {len(cells)} cells ({100 * vac / len(cells):.0f}%)" in sec
        failed = Counter(h for c in cells for h in json.loads(c["failed_hypotheses_json"]))
        for name, n in failed.items():
            assert f"`{name}` ×{n}" in sec
            assert f"<code>{name}</code> ×{n}" in report["html"]
    assert sum(1 for c in store.cells if verdict_of(c) == "vacuous") > 0


def test_hypothesis_boundary_cells_are_shown(store, report):
    boundary = [c for c in store.cells if verdict_of(c) == "vacuous" and c["tightness"]
                and c["tightness"] > 1]
    assert boundary
    for c in boundary:
        block = report["sections"][c["claim_id"]].split("**Hypothesis boundary")[1].split("\n\n")[0]
        assert params_text(c) in block and c["reproduce"] in block


def test_errors_are_listed_separately_and_escaped(store, report):
    errors = [c for c in store.cells if verdict_of(c) == "error"]
    assert {c["status"] for c in errors} == {"error", "done"}  # both kinds of error are present
    for c in errors:
        block = report["sections"][c["claim_id"]].split("**Errors")[1]
        assert " ".join(c["error"].split()) in block
        assert html.escape(c["error"]) in report["html"]
    assert SCRIPT_ERROR not in report["html"]
    tags = Tags()
    tags.feed(report["html"])
    assert "script" not in tags.tags
    assert "alert('atlas')" in "".join(tags.text)  # the text survives, as text
    assert "<script>" not in report["md"].replace(f"`{SCRIPT_ERROR}`", "")


def test_html_is_well_formed_and_self_contained(report):
    tags = Tags()
    tags.feed(report["html"])
    tags.close()
    assert tags.errors == [] and tags.stack == []
    assert tags.tags["html"] == 1 and tags.tags["table"] >= 2
    assert not {"script", "link", "iframe", "object"} & set(tags.tags)
    pngs = sorted((report["dir"] / "figures").glob("*.png"))
    assert len(tags.images) == len(pngs) == len(report["files"].figures) > 0
    on_disk = {p.read_bytes() for p in pngs}
    for src in tags.images:
        assert src.startswith("data:image/png;base64,")
        data = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert data.startswith(PNG_SIGNATURE) and data in on_disk
    assert all(h.startswith("#") for h in tags.links)  # only in-page anchors, no network
    for name in (p.name for p in pngs):
        assert f"](figures/{name})" in report["md"]


def test_heat_map_is_the_max_over_the_other_axes(store, report):
    cid = "dln.distance_to_oracle_end_phase2"
    a = next(x for x in report["files"].atlas.claims if x.claim_id == cid)
    cells = store.claim_cells(cid)
    distinct = {k: len({canonical(c["params"][k]) for c in cells}) for k in cells[0]["params"]}
    top2 = sorted(distinct, key=lambda k: (-distinct[k], k))[:2]
    assert a.heat_axes == tuple(top2)
    g = atlas.heat_grid(a)
    other = [k for k in distinct if k not in top2]
    assert other
    for j, yv in enumerate(sorted({c["params"][top2[1]] for c in cells})):
        for i, xv in enumerate(sorted({c["params"][top2[0]] for c in cells})):
            here = [c for c in cells if c["params"][top2[0]] == xv and c["params"][top2[1]] == yv]
            ratios = [c["tightness"] for c in here if verdict_of(c) in EVALUATED and c["tightness"]]
            assert g.value[j][i] == (max(ratios) if ratios else None)
            assert g.vacuous[j][i] == sum(verdict_of(c) == "vacuous" for c in here)
            assert g.violated[j][i] == sum(verdict_of(c) == "violated" for c in here)
    assert f"the max over {', '.join(other)}" in report["sections"][cid]


def test_axes_override_and_bad_axes(store, tmp_path, capsys):
    a = atlas.build_atlas(store.path, axes=("seed", "lam"))
    by_id = {x.claim_id: x for x in a.claims}
    assert by_id["dln.distance_to_oracle_end_phase2"].heat_axes == ("seed", "lam")
    assert by_id["jpo.alignment_law"].heat_axes == ()
    assert "not swept for this claim" in by_id["jpo.alignment_law"].heat_note
    assert run_cli(store.path, "--out", str(tmp_path / "o"), "--axes", "width,depth") == 2
    err = capsys.readouterr().err
    assert "--axes" in err and "width" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["report", store.path, "--out", str(tmp_path), "--axes", "lam"])
    assert exc.value.code == 2


def test_sweep_selection(store, tmp_path, capsys):
    jpo = next(s for s in store.sweeps if s["name"] == "jpo-n")
    for key in (jpo["sweep_id"], jpo["sweep_id"][:6], "jpo-n"):
        out = tmp_path / key
        assert run_cli(store.path, "--out", str(out), "--sweep", key) == 0
        claims = {a.claim_id for a in atlas.build_atlas(store.path, sweeps=[key]).claims}
        assert claims == {c["claim_id"] for c in store.cells if c["sweep_id"] == jpo["sweep_id"]}
        md = (out / "summary.md").read_text()
        assert "jpo.alignment_law" in md and "dln.error_decomposition" not in md
    capsys.readouterr()
    assert run_cli(store.path, "--out", str(tmp_path / "x"), "--sweep", "no-such-sweep") == 2
    err = capsys.readouterr().err
    assert "no-such-sweep" in err and jpo["sweep_id"] in err and "Traceback" not in err


def test_run_metadata_and_mixed_environment_notes(store, report):
    md, page = report["md"], report["html"]
    for s in store.sweeps:
        assert s["name"] in md and s["sweep_id"] in md and s["blas"] in md and s["name"] in page
    mixed = {cid for cid in store.claim_ids
             if len({c["blas"] for c in store.claim_cells(cid)}) > 1
             or len({c["package_version"] for c in store.claim_cells(cid)}) > 1}
    assert len(mixed) >= 2
    for cid, sec in report["sections"].items():
        assert ("**Note:** cells of this claim come from several" in sec) == (cid in mixed), cid
    assert page.count('class="note"><b>Note:</b> cells of this claim') == len(mixed)


def test_readme_excerpt(store):
    text = atlas.readme_excerpt(store.path, max_claims=3)
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == 3
    violated = sorted({c["claim_id"] for c in store.cells if verdict_of(c) in ("violated", "error")})
    assert [r.split("`")[1] for r in rows[:len(violated)]] == violated[:3]
    assert f"… and {len(store.claim_ids) - 3} more claim(s)" in text
    full = atlas.readme_excerpt(store.path, max_claims=50)
    assert len([ln for ln in full.splitlines() if ln.startswith("| `")]) == len(store.claim_ids)
    assert "more claim" not in full
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="max_claims"):
            atlas.readme_excerpt(store.path, max_claims=bad)


def test_report_without_matplotlib(store, tmp_path, monkeypatch, capsys):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert run_cli(store.path, "--out", str(tmp_path)) == 0
    captured = capsys.readouterr()
    assert "matplotlib is not installed" in captured.err
    page = (tmp_path / "report.html").read_text()
    tags = Tags()
    tags.feed(page)
    assert tags.images == [] and "matplotlib is not installed" in page
    md = (tmp_path / "summary.md").read_text()
    assert "No figures" in md and "](figures/" not in md
    assert all(cid in md for cid in store.claim_ids)
    assert not (tmp_path / "figures").exists()


def test_report_does_not_modify_the_store(store, tmp_path):
    before = hashlib.sha256(open(store.path, "rb").read()).hexdigest()
    atlas.write_report(store.path, tmp_path, figures=False)
    assert hashlib.sha256(open(store.path, "rb").read()).hexdigest() == before


def _bad_store(kind: str, tmp_path) -> tuple[str, str]:
    """A bad store file and a phrase its error message must contain."""
    path = tmp_path / f"{kind}.db"
    if kind == "missing":
        return str(path), "no such file"
    if kind == "directory":
        path.mkdir()
        return str(path), "not a regular file"
    if kind == "empty":
        path.write_bytes(b"")
        return str(path), "empty file"
    if kind == "text":
        path.write_text("claim,verdict\ndln.x,holds\n")
        return str(path), "not a SQLite database"
    if kind == "truncated":
        build_fixture(path)
        data = path.read_bytes()
        path.write_bytes(data[:100] + b"\xff" * 4000)
        return str(path), "damaged or unreadable SQLite"
    con = sqlite3.connect(path)
    if kind == "foreign":
        con.execute("CREATE TABLE users (id INTEGER, name TEXT)")
        con.commit()
        con.close()
        return str(path), "without a 'meta' table"
    con.close()
    if kind == "other_schema":
        write_store(path, [], [], schema="someone-elses-store")
        return str(path), "meta.schema is 'someone-elses-store'"
    if kind == "newer":
        write_store(path, [], [], schema_version=2)
        return str(path), "schema_version 2 is newer"
    if kind == "no_cells":
        build_fixture(path, with_cells=False)
        return str(path), "holds no cells"
    if kind == "bad_json":
        fx = build_fixture(path)
        con = sqlite3.connect(path)
        con.execute("UPDATE cells SET params_json = '{lam: oops' WHERE cell_key = ?",
                    (fx.cells[3]["cell_key"],))
        con.commit()
        con.close()
        return str(path), "invalid JSON in params_json"
    raise AssertionError(kind)


BAD_KINDS = ("missing", "directory", "empty", "text", "truncated", "foreign", "other_schema", "newer",
             "no_cells", "bad_json")


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_store_gives_a_clear_error_and_exit_2(kind, tmp_path, capsys):
    path, reason = _bad_store(kind, tmp_path)
    out = tmp_path / "out"
    assert run_cli(path, "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert reason in err and path in err, err
    assert "Traceback" not in err
    assert not (out / "report.html").exists()
    with pytest.raises(atlas.ReportError, match="sweep store"):
        atlas.readme_excerpt(path)


@pytest.mark.parametrize("kind", ["text", "newer"])
def test_bad_store_in_a_subprocess_prints_no_traceback(kind, tmp_path):
    path, reason = _bad_store(kind, tmp_path)
    code = ("import argparse, sys; from verification import atlas; "
            "p = argparse.ArgumentParser(prog='invbounds'); "
            "atlas.add_report_parser(p.add_subparsers(required=True)); "
            "a = p.parse_args(sys.argv[1:]); sys.exit(a.func(a))")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([sys.executable, "-c", code, "report", path, "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2
    assert reason in res.stderr and "Traceback" not in res.stderr


def test_invbounds_cli_has_the_report_command(store, tmp_path, capsys):
    from verification import cli

    p = cli.build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    if "report" not in sub.choices:
        pytest.skip("`invbounds report` is not wired into verification/cli.py yet")
    assert cli.main(["report", store.path, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "report.html").exists()
    assert cli.main(["report", str(tmp_path / "summary.md"), "--out", str(tmp_path / "x")]) == 2
    assert "not a SQLite database" in capsys.readouterr().err


def _random_design_store(path, n: int = 40) -> Fixture:
    """One claim over a random design: lam log-uniform over four decades, k over many integers."""
    sweep = {"sweep_id": "feedc0ffee000001", "name": "random-lam-k", "spec_text": "name = 'r'",
             "design_json": canonical({"claims": ["dip.jacobian_norm_bound"], "random": {"samples": n}}),
             "created": 1.0, "package_version": "0.1.0", "numpy": "2.4.6", "blas": "libopenblas.so"}
    cells = []
    for i in range(n):
        lam = 10 ** (-4 + 4 * ((i * 7) % n) / (n - 1))  # a permutation of log-spaced values
        k = 16 + 3 * i
        params = {"k": k, "lam": lam}
        inst = f"DIPSpec(k={k}, lam={lam!r})"
        verdict = "vacuous" if i % 9 == 0 else "holds"
        cells.append({"sweep_id": sweep["sweep_id"], "cell_key": f"{i:024x}", "cell_index": i,
                      "claim_id": "dip.jacobian_norm_bound", "family": "dip", "kind": "inequality",
                      "params": params, "params_json": canonical(params), "instance": inst,
                      "status": "done", "verdict": verdict, "margin": 0.5, "tightness": 0.01 + lam / 2,
                      "hypotheses_json": canonical({"bounded_derivative": verdict == "holds"}),
                      "failed_hypotheses_json": canonical([] if verdict == "holds"
                                                          else ["bounded_derivative"]),
                      "checks_json": "[]", "metrics_json": "{}", "reproduce": None, "error": None,
                      "seconds": 0.1, "package_version": "0.1.0", "blas": "libopenblas.so",
                      "finished": 2.0 + i})
    write_store(path, [sweep], cells)
    return Fixture(str(path), [sweep], cells)


def test_random_design_axes_are_binned(tmp_path):
    fx = _random_design_store(tmp_path / "r.db")
    a = atlas.build_atlas(fx.path).claims[0]
    g = atlas.heat_grid(a)
    lams = [c["params"]["lam"] for c in fx.cells]
    assert g.x.name == "k" or g.y.name == "k"
    lam_axis = g.x if g.x.name == "lam" else g.y
    assert lam_axis.binned and lam_axis.log and len(lam_axis.labels) == atlas.HEATMAP_BINS
    assert lam_axis.index(min(lams)) == 0 and lam_axis.index(max(lams)) == atlas.HEATMAP_BINS - 1
    # Every cell lands in exactly one bin, and the vacuous ones are counted where they are.
    assert sum(map(sum, g.cells)) == len(fx.cells)
    assert sum(map(sum, g.vacuous)) == sum(c["verdict"] == "vacuous" for c in fx.cells)
    # No reproduce column stored: the command is rebuilt from the instance repr.
    assert a.tightest[0].reproduce == f'invbounds reproduce {a.claim_id} "{a.tightest[0].instance}"'
    out = atlas.write_report(fx.path, tmp_path / "out")
    assert len(out.figures) == 2 and "Binned axes" in out.html.read_text()


def test_unwritable_out_dir_is_a_clear_error(store, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert run_cli(store.path, "--out", str(blocker)) == 2
    err = capsys.readouterr().err
    assert "--out" in err and str(blocker) in err and "Traceback" not in err
