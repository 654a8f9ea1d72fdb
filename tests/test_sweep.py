"""Sweeps (``verification/sweep.py``): designs, executors, resume, interrupts and kills.

The toy claims of ``tests/sweep_toy.py`` (registered only for this module) make cells whose cost
and failures the tests control; the real cheap claims (``dln.oracle_min_norm``, ...) check that the
executors reproduce the serial results bit for bit.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import sweep_toy

from verification import sweep
from verification.progress import Progress
from verification.store import Store

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
COMPARED = ("claim_id", "cell_index", "params_json", "status", "verdict", "margin", "tightness",
            "instance", "checks_json", "hypotheses_json", "failed_hypotheses_json", "metrics_json",
            "error")
"""Row fields that must not depend on the executor or on interruptions (not seconds/finished)."""
REAL = {"name": "real", "claims": ["dln.oracle_min_norm", "dln.induced_regularizer_bound",
                                   "dip.jacobian_lipschitz"],
        "grid": {"seed": [1, 2, 3, 4, 5, 6]}}
"""Cheap real claims of two families (a few ms a cell) sharing the ``seed`` field."""


@pytest.fixture(scope="module", autouse=True)
def toy():
    sweep_toy.register()
    yield
    sweep_toy.unregister()


def table(store: Store, sweep_id: str) -> dict:
    return {r["cell_key"]: tuple(r[c] for c in COMPARED) for r in store.cells(sweep_id)}


def run_to(tmp_path, name, spec, **kw):
    s = sweep.define(spec)
    with Store(tmp_path / f"{name}.sqlite") as store:
        summary = sweep.run(s, store, progress=False, **kw)
        return s, summary, table(store, s.sweep_id), store.cells(s.sweep_id)


# --------------------------------------------------------------------------------------------
# designs


def test_grid_expands_in_a_deterministic_order_with_schema_keys():
    spec = {"name": "g", "claims": ["dln.oracle_min_norm", "dln.gradient_formula"],
            "grid": {"lam": [0, 0.1], "L": [1, 2]}}
    a, b = sweep.define(spec), sweep.define(json.loads(json.dumps(spec)))
    assert [c.key for c in a.cells] == [c.key for c in b.cells] and a.sweep_id == b.sweep_id
    # Points in grid order (first axis outermost), claims inside each point.
    got = [(c.params["lam"], c.params["L"], c.claim_id) for c in a.cells]
    assert got == [(lam, L, cid) for lam in (0.0, 0.1) for L in (1, 2)
                   for cid in ("dln.oracle_min_norm", "dln.gradient_formula")]
    assert [c.index for c in a.cells] == list(range(8))
    # lam = 0 became 0.0 (a float field), L stays an int.
    assert type(a.cells[0].params["lam"]) is float and type(a.cells[0].params["L"]) is int
    for c in a.cells:  # the key is the schema's hash of {"claim", "params", "base"}
        text = json.dumps({"claim": c.claim_id, "params": c.params, "base": c.base_repr},
                          sort_keys=True, separators=(",", ":"))
        assert c.key == hashlib.sha256(text.encode()).hexdigest()[:24]
    assert len(a.sweep_id) == 16 and a.sweep_id == hashlib.sha256(
        a.design_json.encode()).hexdigest()[:16]
    assert a.design["axes"] == {"lam": [0.0, 0.1], "L": [1, 2]}
    other = sweep.define({**spec, "grid": {"lam": [0, 0.2], "L": [1, 2]}})
    assert other.sweep_id != a.sweep_id


def test_random_design_is_reproducible_from_its_seed_and_in_range():
    spec = {"name": "r", "claims": ["dln.oracle_min_norm"],
            "random": {"samples": 40, "seed": 3, "lam": {"log_uniform": [1e-4, 1e-1]},
                       "L": {"int_uniform": [1, 5]}, "init": {"choice": ["lecun_normal", "balanced"]},
                       "beta": {"uniform": [0.5, 2.0]}}}
    a, b = sweep.define(spec), sweep.define(spec)
    assert [c.params for c in a.cells] == [c.params for c in b.cells]
    c = sweep.define({**spec, "random": {**spec["random"], "seed": 4}})
    assert [x.params for x in c.cells] != [x.params for x in a.cells]
    for cell in a.cells:
        p = cell.params
        assert 1e-4 <= p["lam"] <= 1e-1 and 0.5 <= p["beta"] <= 2.0
        assert type(p["L"]) is int and 1 <= p["L"] <= 5
        assert p["init"] in ("lecun_normal", "balanced")
    assert len({x.params["L"] for x in a.cells}) == 5  # 40 draws reach every depth
    assert len(a.cells) + a.duplicates == 40


def test_grid_times_random_plus_points():
    s = sweep.define({"name": "m", "claims": ["toy.am_gm", "toy.square_below"],
                      "grid": {"x": [1.0, 2.0]},
                      "random": {"samples": 3, "seed": 0, "y": {"uniform": [0.0, 1.0]}},
                      "points": [{"x": 5.0, "y": 0.5}]})
    assert len(s.cells) == (2 * 3 + 1) * 2
    xs = [c.params["x"] for c in s.cells[::2]]
    assert xs == [1.0] * 3 + [2.0] * 3 + [5.0]
    ys = [c.params["y"] for c in s.cells[::2]]
    assert ys[:3] == ys[3:6] and ys[6] == 0.5  # the same samples under every grid point


def test_unknown_axis_names_axis_claim_and_fields_unless_skipped():
    spec = {"name": "u", "claims": ["dln.oracle_min_norm", "toy.other"], "grid": {"lam": [0.1]}}
    with pytest.raises(ValueError) as info:
        sweep.define(spec)
    msg = str(info.value)
    for part in ("'lam'", "toy.other", "OtherSpec", "'z'", "skip_incompatible"):
        assert part in msg
    s = sweep.define({**spec, "skip_incompatible": True})
    assert [cid for cid, _ in s.skipped] == ["toy.other"] and "OtherSpec" in s.skipped[0][1]
    assert {c.claim_id for c in s.cells} == {"dln.oracle_min_norm"}
    assert s.design["skipped"][0]["claim"] == "toy.other"


def test_nested_fields_through_dotted_axes():
    s = sweep.define({"name": "n", "claims": ["dln.init_off_subspace_norm"],
                      "grid": {"base.d_w": [8, 32]}})
    spec0 = sweep._start_spec("dln.init_off_subspace_norm", 0)
    built = [sweep.apply_params(spec0, c.params) for c in s.cells]
    assert [b.base.d_w for b in built] == [8, 32] and built[0].base.d == spec0.base.d
    with pytest.raises(ValueError, match="DLNSpec has no field 'nope'"):
        sweep.define({"name": "n", "claims": ["dln.init_off_subspace_norm"],
                      "grid": {"base.nope": [1]}})


@pytest.mark.parametrize("change, match", [
    ({"bogus": 1}, "unknown key 'bogus'"),
    ({"name": "a b"}, "name: expected"),
    ({"claims": ["nothing.*"]}, "matches no registered claim"),
    ({"grid": {"x": 1.0}}, r"grid.x: expected a non-empty list"),
    ({"grid": {"x": [float("nan")]}}, "non-finite"),
    ({"random": {"y": {"uniform": [0, 1]}}}, "random.samples"),
    ({"random": {"samples": 2, "y": {"gauss": [0, 1]}}}, "unknown distribution 'gauss'"),
    ({"random": {"samples": 2, "y": {"log_uniform": [0, 1]}}}, "log_uniform needs low > 0"),
    ({"random": {"samples": 2, "y": {"int_uniform": [0.5, 1]}}}, "int_uniform needs integers"),
    ({"random": {"samples": 2, "y": {"uniform": [0, 1]}}, "grid": {"y": [1.0]}}, "also a grid axis"),
    ({"base": {"x": 1.0}}, "both a fixed field and a swept axis"),
    ({"base_instance": 7}, "has 1 quick instance"),
    ({"base": {"x": -2.0}, "grid": {"y": [1.0]}}, "rejects the fixed fields"),
])
def test_bad_specs_fail_before_anything_runs(change, match):
    spec = {"name": "bad", "claims": ["toy.square_below"], "grid": {"x": [1.0]}, **change}
    with pytest.raises(ValueError, match=match):
        sweep.define(spec)


def test_toml_file_errors_name_the_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("name = \n")
    with pytest.raises(ValueError, match=r"s\.toml: invalid TOML"):
        sweep.load(path)
    with pytest.raises(ValueError, match="cannot read"):
        sweep.load(tmp_path / "missing.toml")
    path.write_text('name = "t"\nclaims = ["toy.am_gm"]\n[grid]\nlam = [1]\n')
    with pytest.raises(ValueError, match=r"s\.toml: .*'lam' is not a field of ToySpec"):
        sweep.load(path)


# --------------------------------------------------------------------------------------------
# running


def test_serial_and_process_pool_store_identical_rows(tmp_path):
    s1, sum1, serial, rows = run_to(tmp_path, "serial", REAL, workers=1)
    s2, sum2, pooled, _ = run_to(tmp_path, "pool", REAL, workers=2)
    assert s1.sweep_id == s2.sweep_id and sum1.ran == sum2.ran == 18
    assert pooled == serial
    assert {r["verdict"] for r in rows} == {"holds"} and all(r["tightness"] is not None for r in rows)
    first = rows[0]
    assert first["reproduce"] == f'invbounds reproduce {first["claim_id"]} "{first["instance"]}"'
    assert json.loads(first["params_json"]) == {"seed": 1}
    assert first["package_version"] and first["blas"] and first["finished"] > 0


def test_rejected_parameters_are_error_cells_and_the_sweep_goes_on(tmp_path):
    spec = {"name": "rej", "claims": ["toy.am_gm", "dip.jacobian_lipschitz"],
            "skip_incompatible": True, "grid": {"x": [1.0, -1.0, 4.0]}}
    _, summary, _, rows = run_to(tmp_path, "rej", spec, workers=1)
    assert summary.ran == 3 and summary.errors == 1
    bad = [r for r in rows if r["status"] == "error"]
    assert len(bad) == 1 and json.loads(bad[0]["params_json"]) == {"x": -1.0}
    assert "x: must be >= 0" in bad[0]["error"] and bad[0]["verdict"] is None
    assert bad[0]["instance"] is None
    assert [r["verdict"] for r in rows if r["status"] == "done"] == ["holds", "holds"]
    # A real spec's own validation, in a pool worker: k d < n is refused by DIPSpec.
    _, summary, _, rows = run_to(tmp_path, "dip", {"name": "dip", "claims": ["dip.jacobian_lipschitz"],
                                                   "grid": {"k": [1, 8]}}, workers=2)
    assert [r["status"] for r in rows] == ["error", "done"] and "k d = 3 < n = 6" in rows[0]["error"]


def test_resume_after_limit_skips_finished_cells(tmp_path):
    spec = {"name": "res", "claims": ["toy.am_gm", "toy.square_below"],
            "grid": {"x": [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]}}
    s = sweep.define(spec)
    with Store(tmp_path / "res.sqlite") as store:
        first = sweep.run(s, store, workers=1, limit=5, progress=False)
        assert (first.ran, first.not_run) == (5, 7)
        before = {r["cell_key"]: r["finished"] for r in store.cells(s.sweep_id)}
        assert set(before) == {c.key for c in s.cells[:5]}
        time.sleep(0.01)
        rest = sweep.run(s, store, workers=2, progress=False)
        assert (rest.already_done, rest.ran, rest.not_run) == (5, 7, 0)
        after = {r["cell_key"]: r["finished"] for r in store.cells(s.sweep_id)}
        assert {k: after[k] for k in before} == before  # the first five were not run again
        resumed = table(store, s.sweep_id)
        again = sweep.run(s, store, workers=2, progress=False)
        assert (again.already_done, again.ran) == (12, 0)
    _, _, uninterrupted, _ = run_to(tmp_path, "ref", spec, workers=1)
    assert resumed == uninterrupted
    assert sorted(rest.verdicts.items()) == [("holds", 4), ("violated", 3)]  # x^2 <= x fails for x > 1


def test_error_cells_are_retried_only_on_request(tmp_path):
    s = sweep.define({"name": "err", "claims": ["toy.am_gm"], "grid": {"x": [-1.0, 2.0]}})
    with Store(tmp_path / "e.sqlite") as store:
        assert sweep.run(s, store, workers=1, progress=False).errors == 1
        t0 = [r["finished"] for r in store.cells() if r["status"] == "error"]
        skip = sweep.run(s, store, workers=1, progress=False)
        assert (skip.ran, skip.already_done, skip.skipped_errors) == (0, 1, 1)
        time.sleep(0.01)
        retry = sweep.run(s, store, workers=1, retry_errors=True, progress=False)
        assert (retry.ran, retry.errors, retry.skipped_errors) == (1, 1, 0)
        t1 = [r["finished"] for r in store.cells() if r["status"] == "error"]
        assert len(t1) == 1 and t1[0] > t0[0]


def test_keyboard_interrupt_stores_only_complete_cells(tmp_path):
    s = sweep.define({"name": "int", "claims": ["toy.am_gm"], "base": {"interrupt_at": 3.0},
                      "grid": {"x": [0.0, 1.0, 2.0, 3.0, 4.0]}})
    with Store(tmp_path / "i.sqlite") as store:
        summary = sweep.run(s, store, workers=1, progress=False)
        assert summary.interrupted and (summary.ran, summary.not_run) == (3, 2)
        rows = store.cells(s.sweep_id)
        assert [json.loads(r["params_json"])["x"] for r in rows] == [0.0, 1.0, 2.0]
        assert all(r["status"] == "done" and r["verdict"] == "holds" for r in rows)


def test_a_killed_pool_worker_is_replaced_and_nothing_is_lost(tmp_path):
    marker = tmp_path / "died"
    spec = {"name": "die", "claims": ["toy.am_gm"], "base": {"die_marker": str(marker)},
            "grid": {"x": [float(i) for i in range(8)]}}
    _, summary, pooled, _ = run_to(tmp_path, "die", spec, workers=2)
    assert marker.exists()  # a worker did SIGKILL itself
    assert (summary.ran, summary.errors, summary.not_run) == (8, 0, 0)
    _, _, serial, _ = run_to(tmp_path, "die-serial", spec, workers=1)
    assert pooled == serial


class _ScriptedExecutor(cf.Executor):
    """Runs tasks inline; every task after the first ``ok`` ones fails with ``exc``."""

    def __init__(self, ok: int, exc: Exception):
        self.ok, self.exc, self.calls = ok, exc, 0

    def submit(self, fn, /, *args, **kwargs):
        fut = cf.Future()
        self.calls += 1
        if self.calls > self.ok:
            fut.set_exception(self.exc)
        else:
            fut.set_result(fn(*args, **kwargs))
        return fut


class KilledWorker(Exception):
    """Stands in for ``distributed.scheduler.KilledWorker`` (matched by name)."""


def test_executor_failures_keep_cells_unrun_unless_the_task_killed_workers(tmp_path, monkeypatch,
                                                                           capsys):
    spec = {"name": "ex", "claims": ["toy.am_gm"], "grid": {"x": [0.0, 1.0, 2.0, 3.0]}}
    s = sweep.define(spec)
    with Store(tmp_path / "a.sqlite") as store:
        with pytest.raises(sweep.SweepFailed, match=r"OSError: scheduler gone.*resume"):
            sweep.run(s, store, executor=_ScriptedExecutor(2, OSError("scheduler gone")),
                      max_inflight=1, progress=False)
        assert [r["status"] for r in store.cells()] == ["done", "done"]  # no error rows invented
        summary = sweep.run(s, store, workers=1, progress=False)  # and a rerun completes
        assert (summary.already_done, summary.ran, summary.errors) == (2, 2, 0)
    with Store(tmp_path / "b.sqlite") as store:
        summary = sweep.run(s, store, executor=_ScriptedExecutor(1, KilledWorker("boom")),
                            max_inflight=1, progress=False)
        assert (summary.ran, summary.errors) == (4, 3)
        errors = [r["error"] for r in store.cells() if r["status"] == "error"]
        assert len(errors) == 3 and all("task failed in the executor" in e for e in errors)

    def broken(*args, **kwargs):
        raise sweep.SweepFailed("pool workers died 4 times")

    monkeypatch.setattr(sweep, "run", broken)
    path = tmp_path / "s.toml"
    path.write_text('name = "ex"\nclaims = ["toy.am_gm"]\n[grid]\nx = [1.0]\n')
    assert sweep.main([str(path), "--db", str(tmp_path / "c.sqlite"), "--workers", "2"]) == 1
    err = capsys.readouterr().err
    assert "pool workers died" in err and "resume: invbounds sweep" in err


def test_dask_local_cluster_matches_serial(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    spec = {**REAL, "grid": {"seed": [1, 2]}}
    _, _, serial, _ = run_to(tmp_path, "serial", spec, workers=1)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        s, summary, on_dask, _ = run_to(tmp_path, "dask", spec, executor=client.get_executor())
        assert summary.ran == 6 and on_dask == serial
        # The command-line path: --dask ADDRESS connects its own client.
        path = tmp_path / "s.toml"
        path.write_text('name = "real"\nclaims = ["dln.oracle_min_norm", '
                        '"dln.induced_regularizer_bound", "dip.jacobian_lipschitz"]\n'
                        '[grid]\nseed = [1, 2]\n')
        db = tmp_path / "cli.sqlite"
        assert sweep.main([str(path), "--db", str(db), "--dask", cluster.scheduler_address]) == 0
    with Store(db) as store:
        assert table(store, s.sweep_id) == serial
    assert "6 run now" in capsys.readouterr().out


def test_missing_dask_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ValueError, match=r"pip install 'invbounds\[dask\]'"):
        sweep._dask_executor("tcp://127.0.0.1:1")


# --------------------------------------------------------------------------------------------
# the command line and the progress bar


def test_cli_summary_limit_resume_and_dry_run(tmp_path, capsys):
    path = tmp_path / "s.toml"
    path.write_text('name = "cli"\nclaims = ["toy.am_gm", "toy.square_below"]\n'
                    '[grid]\nx = [0.5, 2.0, -1.0]\n')
    db = str(tmp_path / "cli.sqlite")
    assert sweep.main([str(path), "--db", db, "--workers", "1", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "cells: 6 total, 0 already done, 2 run now, 0 errors" in out
    assert "4 cells not run yet" in out
    assert sweep.main([str(path), "--db", db, "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "cells: 6 total, 2 already done, 4 run now, 2 errors" in out
    assert "stored verdicts: 2 cell error, 3 holds, 1 violated" in out
    assert f"invbounds report {db} --out DIR" in out
    assert sweep.main([str(path), "--db", db, "--dry-run"]) == 0
    assert "6 cells, 2 claims" in capsys.readouterr().out
    assert sweep.main([str(path), "--workers", "2", "--dask", "tcp://x:1"]) == 2
    assert "choose one" in capsys.readouterr().err


def test_default_db_is_under_results(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "d.toml"
    path.write_text('name = "dflt"\nclaims = ["toy.am_gm"]\n[grid]\nx = [1.0]\n')
    assert sweep.main([str(path), "--workers", "1"]) == 0
    assert (tmp_path / "results" / "dflt.sqlite").is_file()
    assert "results/dflt.sqlite" in capsys.readouterr().out


def test_progress_does_not_spam_a_log():
    log = io.StringIO()
    bar = Progress(1000, log, delay=0.0, unit="cells")
    for i in range(1, 1001):
        bar.update(i, extra=f", {i // 100} failed")
    bar.close()
    lines = log.getvalue().splitlines()
    assert 1 <= len(lines) <= 10 and lines[-1].startswith("1000/1000 cells, 10 failed")


# --------------------------------------------------------------------------------------------
# killing the coordinator in a subprocess

# 64 cells of 0.15 s on 2 workers run ~5 s: enough margin that a loaded machine cannot finish the
# sweep between the test seeing 3 stored cells and its signal arriving (24 cells did, once).
SLOW_CELLS = 64
SLOW = {"name": "slow", "claims": ["toy.am_gm"], "base": {"delay": 0.15},
        "grid": {"x": [float(i) for i in range(SLOW_CELLS)]}}
SLOW_TOML = ('name = "slow"\nclaims = ["toy.am_gm"]\n[base]\ndelay = 0.15\n[grid]\nx = ['
             + ", ".join(str(float(i)) for i in range(SLOW_CELLS)) + "]\n")


@pytest.fixture(scope="module")
def slow_reference(tmp_path_factory):
    _, _, ref, _ = run_to(tmp_path_factory.mktemp("ref"), "ref", SLOW, workers=2)
    return ref


def _start(tmp_path, db):
    spec = tmp_path / "slow.toml"
    spec.write_text(SLOW_TOML)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, HERE])}
    return subprocess.Popen([sys.executable, os.path.join(HERE, "sweep_toy.py"), str(spec), "--db",
                             str(db), "--workers", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def _wait_for_cells(db, proc, n: int, timeout: float = 90.0) -> list[dict]:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        assert proc.poll() is None, proc.communicate()
        if os.path.exists(db):
            try:
                con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
                try:
                    count = con.execute("SELECT COUNT(*) FROM cells").fetchone()[0]
                finally:
                    con.close()
                if count >= n:
                    with Store(db, create=False) as store:
                        return store.cells()
            except sqlite3.OperationalError:
                pass  # the schema is not there yet
        time.sleep(0.02)
    raise AssertionError("the sweep stored no cells in time")


def _cleanup(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # orphaned pool workers of a killed coordinator
    except ProcessLookupError:
        pass


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_killed_coordinator_loses_nothing_and_resumes(sig, tmp_path, slow_reference):
    db = tmp_path / "slow.sqlite"
    proc = _start(tmp_path, db)
    try:
        snapshot = _wait_for_cells(db, proc, 3)
        os.kill(proc.pid, sig)
        proc.wait(timeout=60)
        if sig == signal.SIGINT:  # the coordinator ended its own workers
            with pytest.raises(ProcessLookupError):
                os.killpg(proc.pid, 0)
    finally:
        _cleanup(proc)  # before reading: orphaned workers would hold the pipes open
    _, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130, err
        assert "resume with the same command" in err and "Traceback" not in err
    else:
        assert proc.returncode == -signal.SIGKILL
    with Store(db, create=False) as store:  # opens cleanly: nothing half-written
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        con.close()
        after = {r["cell_key"]: r for r in store.cells()}
        assert all(after[r["cell_key"]] == r for r in snapshot)  # every committed cell is intact
        assert all(r["status"] == "done" for r in after.values())
        assert 3 <= len(after) < SLOW_CELLS
        s = sweep.define(SLOW)
        summary = sweep.run(s, store, workers=2, progress=False)
        assert summary.already_done == len(after) and summary.ran == SLOW_CELLS - len(after)
        final = {r["cell_key"]: r for r in store.cells(s.sweep_id)}
        assert all(final[k]["finished"] == r["finished"] for k, r in after.items())  # not re-run
        assert table(store, s.sweep_id) == slow_reference
