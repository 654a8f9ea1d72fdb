"""The sweep results store (``verification/store.py``): schema, round trips, and bad files."""

from __future__ import annotations

import json
import os
import sqlite3
import sys

import pytest

from verification import store as st
from verification.store import Store, StoreError


def _row(key: str = "k1", index: int = 0, **changes) -> dict:
    row = {"sweep_id": "s1", "cell_key": key, "cell_index": index, "claim_id": "dln.x",
           "family": "dln", "kind": "identity", "params_json": json.dumps({"lam": 0.1 * index}),
           "instance": "Spec(a=1)", "status": "done", "verdict": "holds", "margin": 0.5,
           "tightness": 0.25, "hypotheses_json": '{"h": true}', "failed_hypotheses_json": "[]",
           "checks_json": "[]", "metrics_json": '{"m": 1}', "reproduce": "invbounds reproduce x",
           "error": None, "seconds": 0.01, "package_version": "0.1.0", "blas": "libopenblas",
           "finished": 1000.0 + index}
    row.update(changes)
    return row


@pytest.fixture()
def db(tmp_path) -> Store:
    s = Store(tmp_path / "sub" / "s.sqlite")
    s.add_sweep("s1", "demo", "name = 'demo'", '{"claims": [], "axes": {}}', package_version="0.1.0")
    yield s
    s.close()


def test_new_store_has_the_fixed_schema(tmp_path):
    path = tmp_path / "new.sqlite"
    Store(path).close()
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert con.execute("PRAGMA user_version").fetchone()[0] == 1
        assert dict(con.execute("SELECT key, value FROM meta")) == {
            "schema": "invbounds-sweep-store", "schema_version": "1"}
        cols = [r[1] for r in con.execute("PRAGMA table_info(cells)")]
        assert tuple(cols) == st.CELL_COLUMNS
        pk = [r[1] for r in sorted(con.execute("PRAGMA table_info(cells)"), key=lambda r: r[5]) if r[5]]
        assert pk == ["sweep_id", "cell_key"]
        assert tuple(r[1] for r in con.execute("PRAGMA table_info(sweeps)")) == st.SWEEP_COLUMNS
    finally:
        con.close()
    # Created through a temporary file renamed into place: nothing else is left in the directory.
    assert sorted(os.listdir(tmp_path)) == ["new.sqlite"]


def test_round_trip_done_keys_counts_and_replace(db):
    db.write_cell(_row("a", 1))
    db.write_cell(_row("b", 0, verdict="vacuous", margin=None, tightness=None))
    db.write_cell(_row("c", 2, status="error", verdict=None, error="ValueError: x"))
    rows = db.cells("s1")
    assert [r["cell_key"] for r in rows] == ["b", "a", "c"]  # by cell_index
    assert rows[1] == _row("a", 1)
    assert db.cells(decode=True)[1]["params_json"] == {"lam": 0.1}
    assert db.done_keys("s1") == {"a", "b"}
    assert db.done_keys("s1", ("error",)) == {"c"}
    assert db.done_keys("other") == set()
    assert db.counts("s1") == {"holds": 1, "vacuous": 1, "cell error": 1}
    # A retried error cell replaces its row (same primary key).
    db.write_cell(_row("c", 2, finished=5.0))
    assert db.done_keys("s1", ("error",)) == set()
    assert [r["finished"] for r in db.cells() if r["cell_key"] == "c"] == [5.0]
    # A sweep is recorded once; re-adding keeps the first definition.
    assert not db.add_sweep("s1", "demo", "changed", "{}")
    assert [s["spec_text"] for s in db.sweeps()] == ["name = 'demo'"]


def test_each_write_is_committed_at_once(db):
    db.write_cell(_row("a"))
    other = sqlite3.connect(db.path)  # another process's view: sees the committed row
    try:
        assert other.execute("SELECT cell_key FROM cells").fetchall() == [("a",)]
    finally:
        other.close()


@pytest.mark.parametrize("changes, match", [
    ({"bogus": 1}, "unknown column"),
    ({"claim_id": None}, "missing required"),
    ({"status": "running"}, "status must be"),
    ({"verdict": "fine"}, "needs a verdict"),
    ({"status": "error"}, "error cell has no verdict"),
])
def test_bad_rows_are_refused(db, changes, match):
    with pytest.raises(ValueError, match=match):
        db.write_cell(_row(**changes))
    assert db.cells() == []


def test_cells_of_an_unknown_sweep_violate_the_foreign_key(db):
    with pytest.raises(StoreError, match="FOREIGN KEY"):
        db.write_cell(_row(sweep_id="nope"))


def _foreign(path):
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE users (id INTEGER, name TEXT)")
    con.commit()
    con.close()


def _meta_only(path, schema="invbounds-sweep-store", version="1", tables=True):
    Store(path).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (schema,))
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    if not tables:
        con.execute("DROP TABLE cells")
    con.commit()
    con.close()


BAD_FILES = {
    "random bytes": (lambda p: p.write_bytes(os.urandom(4096)), "not an SQLite database"),
    "empty file": (lambda p: p.write_bytes(b""), "empty file"),
    "foreign sqlite": (_foreign, r"not an invbounds sweep store \(no meta table; its tables: users\)"),
    "other meta schema": (lambda p: _meta_only(p, schema="something-else"), "meta.schema is"),
    "newer schema": (lambda p: _meta_only(p, version="2"), "newer invbounds"),
    "bad version": (lambda p: _meta_only(p, version="one"), "invalid schema_version"),
    "missing table": (lambda p: _meta_only(p, tables=False), "missing table"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_files_raise_store_error_naming_path_and_reason(kind, tmp_path):
    make, reason = BAD_FILES[kind]
    path = tmp_path / "bad.sqlite"
    make(path)
    before = path.read_bytes()
    with pytest.raises(StoreError, match=reason) as info:
        Store(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before  # a bad file is reported, never rewritten


def test_missing_file_with_create_false_and_a_directory(tmp_path):
    with pytest.raises(StoreError, match="no such sweep store"):
        Store(tmp_path / "absent.sqlite", create=False)
    assert not (tmp_path / "absent.sqlite").exists()
    with pytest.raises(StoreError, match="is a directory"):
        Store(tmp_path)


def test_closed_store_raises(tmp_path):
    s = Store(tmp_path / "s.sqlite")
    s.close()
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.cells()


def _bad_store_spec(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('name = "bad"\nclaims = ["dln.oracle_min_norm"]\n[grid]\nseed = [0]\n')
    return spec


@pytest.mark.parametrize("kind", ["random bytes", "foreign sqlite", "empty file", "newer schema"])
def test_cli_reports_bad_store_with_exit_2_and_no_traceback(kind, tmp_path, capsys):
    from verification import sweep

    path = tmp_path / "bad.sqlite"
    BAD_FILES[kind][0](path)
    assert sweep.main([str(_bad_store_spec(tmp_path)), "--db", str(path), "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("invbounds: ") and str(path) in err
    assert "Traceback" not in err


def test_cli_bad_store_in_a_subprocess(tmp_path):
    """The real console path: exit status 2, one message line, no traceback."""
    import subprocess

    path = tmp_path / "bad.sqlite"
    path.write_bytes(os.urandom(2048))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root}
    res = subprocess.run([sys.executable, "-m", "verification.sweep", str(_bad_store_spec(tmp_path)),
                          "--db", str(path)], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2
    assert "not an SQLite database" in res.stderr and "Traceback" not in res.stderr
