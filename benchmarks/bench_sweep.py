"""Sweep throughput (pytest-benchmark): 1,000 small cells through the process pool vs serially.

Ordinary test runs pass ``--benchmark-disable``: then a 40-cell sweep runs once each way as a smoke
test and the two stores must hold identical rows. Measure with

    python -m pytest benchmarks/bench_sweep.py --benchmark-enable --benchmark-only

Targets (issue 5), reported in ``extra_info`` and never asserted (timings on a shared machine are
noisy): on 2 cores the pool is at least 1.7x faster than serial, measured in the same run; the
overhead per cell (store + scheduling) is under 5 ms. Other jobs on a shared machine take cores, so
the benchmark also measures what two processes gain over one on pure CPU work at the same time
(``control_speedup_pure_cpu``): ``pool_speedup_over_control`` near 1 means the pool uses all the
parallelism the machine had to give. The overhead is measured two ways: serially,
``(wall - sum of the cells' own seconds) / cells`` (spec building, row encoding, one SQLite
transaction, bookkeeping); through the pool, ``(wall - sum of cell seconds / workers) / cells``
(everything that keeps the pool from being perfectly parallel, the coordinator included).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import time

from _timing import interleaved_best

from verification import sweep
from verification.store import Store

CLAIM = "dln.oracle_min_norm"
"""About 3 ms a cell (measured): a small SVD-based identity, cheap enough to expose overheads."""
CELLS = 1000
SMOKE_CELLS = 40
WORKERS = 2
TARGET_SPEEDUP = 1.7
TARGET_OVERHEAD_MS = 5.0
_runs = itertools.count()


def _busy(n: int = 2_000_000) -> int:
    total = 0
    for i in range(n):
        total += i * i
    return total


def _control_speedup(repeats: int = 3) -> float:
    """What two processes gain over one on this machine right now, on pure CPU work.

    On a shared machine other jobs take cores; the pool can only be judged against the
    parallelism actually available, measured the same way (interleaved best of ``repeats``).
    """
    ctx = multiprocessing.get_context("fork")

    def parallel():
        procs = [ctx.Process(target=_busy) for _ in range(WORKERS)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()

    def serial():
        for _ in range(WORKERS):
            _busy()

    t_serial, t_parallel = interleaved_best([serial, parallel], repeats=repeats)
    return t_serial / t_parallel


def _sweep(n: int, first_seed: int) -> sweep.Sweep:
    return sweep.define({"name": "bench", "claims": [CLAIM],
                         "grid": {"seed": list(range(first_seed, first_seed + n))}})


def _run(tmp_path, s: sweep.Sweep, workers: int) -> tuple[float, sweep.RunSummary, dict]:
    db = tmp_path / f"run{next(_runs)}.sqlite"
    with Store(db) as store:
        t0 = time.perf_counter()
        summary = sweep.run(s, store, workers=workers, progress=False)
        wall = time.perf_counter() - t0
        rows = {r["cell_key"]: (r["verdict"], r["margin"], r["tightness"], r["checks_json"])
                for r in store.cells(s.sweep_id)}
    return wall, summary, rows


def test_sweep_pool_vs_serial(benchmark, tmp_path):
    if not benchmark.enabled:
        s = _sweep(SMOKE_CELLS, 1)
        _, serial, serial_rows = _run(tmp_path, s, 1)
        _, pooled, pool_rows = _run(tmp_path, s, WORKERS)
        assert serial.ran == pooled.ran == SMOKE_CELLS and serial.errors == pooled.errors == 0
        assert pool_rows == serial_rows
        benchmark(lambda: None)
        return
    # Every timed run gets its own seeds: the instance caches (lru_cache in the claim modules),
    # which forked workers inherit, must not make one mode look faster than the other.
    seeds = itertools.count(1, CELLS)
    last: dict[str, tuple[float, sweep.RunSummary]] = {}

    def timed(workers: int):
        def go():
            wall, summary, _ = _run(tmp_path, _sweep(CELLS, next(seeds)), workers)
            assert summary.ran == CELLS and summary.errors == 0
            last[f"w{workers}"] = (wall, summary)
        return go

    t_serial, t_pool = interleaved_best([timed(1), timed(WORKERS)], repeats=2)
    wall_s, serial = last["w1"]
    wall_p, pooled = last[f"w{WORKERS}"]
    serial_overhead = (wall_s - serial.cell_seconds) / CELLS * 1e3
    pool_overhead = (wall_p - pooled.cell_seconds / WORKERS) / CELLS * 1e3
    # The store alone: one transaction per row.
    rows = [{"sweep_id": "b", "cell_key": f"k{i}", "cell_index": i, "claim_id": CLAIM,
             "family": "dln", "kind": "identity", "params_json": "{}", "status": "done",
             "verdict": "holds", "checks_json": "[]" * 50, "finished": 0.0} for i in range(CELLS)]
    with Store(tmp_path / "write.sqlite") as store:
        store.add_sweep("b", "b", "{}", "{}")
        t0 = time.perf_counter()
        for row in rows:
            store.write_cell(row)
        store_ms = (time.perf_counter() - t0) / CELLS * 1e3
    speedup = t_serial / t_pool
    control = _control_speedup()
    benchmark.extra_info.update({
        "cells": CELLS, "claim": CLAIM, "workers": WORKERS, "cpu_count": os.cpu_count(),
        "serial_s": t_serial, "pool_s": t_pool, "speedup_pool_vs_serial": speedup,
        "meets_1.7x_target": speedup >= TARGET_SPEEDUP,
        "control_speedup_pure_cpu": control,
        "pool_speedup_over_control": speedup / control,
        "mean_cell_ms": serial.cell_seconds / CELLS * 1e3,
        "serial_overhead_ms_per_cell": serial_overhead,
        "pool_overhead_ms_per_cell": pool_overhead,
        "store_write_ms_per_cell": store_ms,
        "meets_5ms_overhead_target": max(serial_overhead, pool_overhead) < TARGET_OVERHEAD_MS,
        "load_average_1min": os.getloadavg()[0],
    })
    benchmark.pedantic(timed(WORKERS), rounds=1, iterations=1)
