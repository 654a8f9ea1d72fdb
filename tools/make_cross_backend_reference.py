#!/usr/bin/env python
"""Write, or compare against, the cross-backend reference (``tests/data/cross_backend_reference.json``).

Usage::

    python tools/make_cross_backend_reference.py            # regenerate (on the default PyPI env)
    python tools/make_cross_backend_reference.py --compare  # table of deviations on this env

Regenerate only on the default environment (PyPI wheels: ``tox -e py311`` or a plain ``pip install``),
and only when the cases in ``verification/cross_backend.py`` or the dynamics change on purpose; the
table printed by ``--compare`` is what ``docs/blas.md`` reports per backend.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

# Pin threads before numpy loads (as the test suite does): reductions then do not depend on threads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "tests" / "data" / "cross_backend_reference.json"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (1 if ``--compare`` finds a record outside its allowance)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT, help="reference file (default: %(default)s)")
    parser.add_argument("--compare", action="store_true", help="compare this env with the reference")
    args = parser.parse_args(argv)

    from verification import blas, cross_backend

    t0 = time.perf_counter()
    outcomes = cross_backend.run_all()
    seconds = time.perf_counter() - t0
    info = blas.loaded_blas()
    print(f"BLAS: {blas.describe(info)}")
    if info["scipy_blas"]:
        print("scipy.linalg (not switched by the env): " + ", ".join(info["scipy_blas"]))
    if args.compare:
        devs = cross_backend.compare(cross_backend.load_reference(args.out), outcomes)
        by_case: dict[str, list] = {}
        for d in devs:
            by_case.setdefault(d.case, []).append(d)
        print(f"{'case':24} {'worst record':28} {'max |dev|':>10} {'allowance':>10} {'dev/allow':>10}")
        for name, ds in by_case.items():
            w = max(ds, key=lambda d: d.ratio)
            print(f"{name:24} {w.record:28} {w.deviation:10.2e} {w.allowance:10.2e} {w.ratio:10.2e}")
        worst = max(devs, key=lambda d: d.ratio)
        exact = sum(d.deviation == 0 for d in devs)
        print(f"largest deviation/allowance {worst.ratio:.2e} ({worst.case} {worst.record}); "
              f"{exact}/{len(devs)} records bitwise equal; {seconds:.2f} s")
        return 0 if worst.ratio <= 1 else 1
    doc = cross_backend.reference_document(outcomes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    print(f"wrote {args.out} ({len(outcomes)} cases, {seconds:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
