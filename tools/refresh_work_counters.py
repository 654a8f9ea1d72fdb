"""Measure the work counters and rewrite ``benchmarks/work_counters.json``.

Usage (from the repository root, threads pinned as in the tests)::

    OPENBLAS_NUM_THREADS=1 python tools/refresh_work_counters.py            # this env's values
    OPENBLAS_NUM_THREADS=1 python tools/refresh_work_counters.py --check    # compare, write nothing
    python tools/refresh_work_counters.py --env blas-netlib                  # store under another key

The environment key defaults to ``EXPECTED_BLAS`` (set by the tox envs) or ``default``. Values of
other environments are kept; a non-default environment stores only the counters that differ from
``default``. Review the printed differences before committing: a counter that grew is a regression
unless the change was meant to do more work.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_gate():
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    sys.path.insert(0, str(ROOT))
    spec = importlib.util.spec_from_file_location("work_counters", ROOT / "benchmarks" / "work_counters.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="environment key (default: EXPECTED_BLAS or 'default')")
    parser.add_argument("--check", action="store_true", help="only print the differences")
    args = parser.parse_args(argv)
    gate = _load_gate()
    env = args.env or gate.env_name()
    counts, margins = gate.measure_all()
    try:
        store = gate.load_store()
    except FileNotFoundError:
        store = {"schema": gate.SCHEMA, "values": {}, "margins": {}, "tolerances": {}}
    old = gate.stored_values(store, env)
    changed = 0
    for name in sorted(set(counts) | set(old)):
        new, before = counts.get(name), old.get(name)
        if new != before:
            changed += 1
            print(f"{name}: {before} -> {new}")
    print(f"{changed} change(s) for env {env!r}")
    if args.check:
        return 1 if changed else 0
    values = store.setdefault("values", {})
    if env == "default":
        values["default"] = dict(sorted(counts.items()))
    else:
        base = values.get("default", {})
        values[env] = {k: v for k, v in sorted(counts.items()) if base.get(k) != v}
    store["schema"] = gate.SCHEMA
    store.setdefault("margins", {})[env] = {k: float(f"{v:.4g}") for k, v in sorted(margins.items())}
    # Documentation only: the gate reads its tolerances from benchmarks/work_counters.py.
    classes: dict[str, dict] = {}
    for name in sorted(counts):
        t = gate.tolerance(name)
        entry = classes.setdefault(f"max(+{t.rel:.0%}, +{t.abs})", {"why": t.why, "counters": []})
        entry["counters"].append(name)
    store["tolerances"] = classes
    store["refresh"] = "python tools/refresh_work_counters.py (see docs/certified.md)"
    with open(gate.STORE, "w") as fh:
        json.dump(store, fh, indent=1, sort_keys=False)
        fh.write("\n")
    print(f"wrote {gate.STORE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
