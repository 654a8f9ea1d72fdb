"""The invbounds command line: verdict table, exit codes, JSON report, reproduce."""

from __future__ import annotations

import json

import pytest

from verification import cli

FAST = "dln.stationary_points_encode_subspace"


def test_verify_prints_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = cli.main(["verify", "--claims", FAST, "--json", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert FAST in text and "holds" in text and "BLAS" in text
    report = json.loads(out.read_text())
    assert report["schema_version"] == 1
    assert {"package_version", "seed", "numpy", "blas"} <= set(report["metadata"])
    (entry,) = report["claims"]
    for key in ("id", "family", "provenance", "kind", "verdict", "margin", "tightness",
                "hypotheses", "reproduce"):
        assert key in entry
    assert entry["id"] == FAST and entry["verdict"] == "holds"
    assert entry["hypotheses"] == {"lam_positive": True}
    assert "DLNSpec(" in entry["reproduce"]["instance"]


def test_verify_exit_code_on_violation(monkeypatch, capsys):
    from verification import engine
    from verification.engine import Evidence

    claim = engine.get(FAST)

    def broken(spec):
        ev = Evidence()
        ev.compare("deliberately false", 2.0, 1.0)
        return ev

    monkeypatch.setitem(engine.REGISTRY, FAST, engine.dataclasses.replace(claim, evaluate=broken))
    assert cli.main(["verify", "--claims", FAST]) == 1
    text = capsys.readouterr().out
    assert "violated" in text and "invbounds reproduce" in text


def test_reproduce_round_trip(capsys):
    code = cli.main(["reproduce", FAST, "DLNSpec(d=10, m=6, s=2, n=5, L=2, d_w=4, steps=3)"])
    assert code == 0
    assert "holds" in capsys.readouterr().out


def test_unknown_claim_glob_and_bad_spec(capsys):
    with pytest.raises(SystemExit, match="no claim matches"):
        cli.main(["verify", "--claims", "nope.*"])
    assert cli.main(["reproduce", FAST, "DLNSpec(d=-1)"]) == 2
    assert "d: must be >= 1" in capsys.readouterr().err


def test_progress_bar_only_after_delay():
    import io

    stream = io.StringIO()
    bar = cli.Progress(3, stream=stream, delay=10.0)
    bar.update(1, "x")
    bar.close()
    assert stream.getvalue() == ""
    # A StringIO is not a terminal: one line per finished tenth, no carriage returns.
    bar = cli.Progress(20, stream=stream, delay=0.0)
    for i in range(1, 21):
        bar.update(i, "claim.a")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10 and "\r" not in stream.getvalue() and lines[0].startswith("2/20 claims")

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    bar = cli.Progress(2, stream=tty, delay=0.0)
    bar.update(1, "claim.a")
    bar.close()
    assert "1/2" in tty.getvalue() and "claim.a" in tty.getvalue() and "\r" in tty.getvalue()


def test_json_report_survives_infinite_fit_window(tmp_path):
    import math

    from verification import report
    from verification.engine import ExponentFit

    fit = ExponentFit("one-sided", -0.5, -0.7, -0.3, 0.99, window=(-math.inf, -0.25))
    out = report._check_json(fit)
    assert out["window"] == ["-inf", -0.25]
    path = tmp_path / "r.json"
    report.write_json(str(path), {"fit": out})
    assert json.loads(path.read_text())["fit"]["window"][0] == "-inf"
