"""The ``invbounds`` command line.

``invbounds verify`` runs every registered claim's profile and prints the verdict table;
``invbounds list`` lists the claims; ``invbounds reproduce`` re-checks one instance from its repr;
``invbounds figures FAMILY --out DIR`` draws a family's figures; ``invbounds sweep SPEC.toml`` runs a
sweep into a resumable SQLite store (``verification/sweep.py``) and ``invbounds report DB --out DIR``
writes its tightness atlas (``verification/atlas.py``); ``invbounds hunt CLAIM`` searches for the
tightest instance and for a violation (``verification/hunt.py``) and ``invbounds boundaries`` shows what
breaks when one hypothesis is dropped (``verification/boundaries.py``).
"""

from __future__ import annotations

import os

# One BLAS thread unless the user says otherwise: the problems here are small, and a second thread
# on a loaded 2-core machine made small SVDs ~70x slower (measured); it also makes reductions
# deterministic. Must run before numpy is first imported.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import fnmatch  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from verification import atlas, boundaries, engine, hunt, sweep  # noqa: E402
from verification.engine import Verdict  # noqa: E402
from verification.progress import Progress  # noqa: E402


def select(patterns: list[str] | None) -> list[engine.Claim]:
    """Registered claims whose id matches any glob in ``patterns`` (all when ``None``)."""
    registry = engine.load_all()
    ids = sorted(registry)
    if patterns:
        chosen = [i for i in ids if any(fnmatch.fnmatchcase(i, p) for p in patterns)]
        if not chosen:
            raise SystemExit(f"invbounds: no claim matches {patterns}; see `invbounds list`")
        ids = chosen
    return [registry[i] for i in ids]


def cmd_verify(args) -> int:
    from verification import report

    claims = select(args.claims)
    meta = report.run_metadata(args.seed, args.profile)
    print(f"invbounds {meta['package_version']}  profile={args.profile}  seed={args.seed}  "
          f"numpy {meta['numpy']}  BLAS: {meta['blas']}")
    bar = Progress(len(claims))
    results = []
    t0 = time.perf_counter()
    try:
        for i, c in enumerate(claims):
            bar.update(i, c.id)
            results.append(c.run(args.profile, args.seed))
            bar.update(i + 1, c.id)
    except KeyboardInterrupt:
        bar.close()
        print(f"interrupted after {len(results)} of {len(claims)} claims", file=sys.stderr)
    bar.close()
    print(report.table(results))
    counts = {v: sum(r.verdict is v for r in results) for v in Verdict}
    blocking = [r for r in results if r.verdict in (Verdict.VIOLATED, Verdict.ERROR)
                and not r.claim.informational]
    print(f"\n{len(results)} claims in {time.perf_counter() - t0:.1f}s: "
          + ", ".join(f"{n} {v}" for v, n in counts.items() if n))
    for r in results:
        wit = r.witness()
        if wit is not None:
            print(f"\n{r.claim.id}: {r.verdict}{' (profile)' if r.claim.informational else ''}")
            print(f"  instance: {wit.instance!r}")
            if wit.error:
                print(f"  error: {wit.error}")
            worst = wit.worst()
            if worst is not None:
                print(f"  check: {worst}")
            print(f"  reproduce: {report.reproduce_command(r, wit)['instance_command']}")
    if args.json:
        report.write_json(args.json, report.json_report(results, args.seed, args.profile))
        print(f"\nJSON report written to {args.json}")
    return 1 if blocking else 0


def cmd_list(args) -> int:
    for c in select(args.claims):
        flag = " (profile)" if c.informational else ""
        print(f"{c.id:52s} {c.kind!s:12s} {c.provenance}{flag}")
        if args.verbose:
            print(f"    {c.statement}")
            for h in c.hypotheses:
                print(f"    hypothesis {h.name}: {h.description}")
    return 0


def cmd_reproduce(args) -> int:
    from verification.instances import parse_spec

    claim = engine.get(args.claim)
    spec = parse_spec(args.instance)
    res = claim.check(spec)
    print(f"{claim.id} on {spec!r}: {res.verdict}")
    if res.failed_hypotheses:
        print("  failed hypotheses: " + ", ".join(res.failed_hypotheses))
    if res.error:
        print(f"  error: {res.error}")
    for c in res.evidence.comparisons:
        mark = "ok " if c.holds else "BAD"
        print(f"  {mark} {c.label}: observed {c.observed:.6g} <= bound {c.bound:.6g} "
              f"+ {c.allowance:.3g}  {c.witness or ''}")
    for f in res.evidence.fits:
        mark = "ok " if f.holds else "BAD"
        print(f"  {mark} {f.label}: exponent {f.exponent:.4f} CI [{f.ci_low:.4f}, "
              f"{f.ci_high:.4f}] window {f.window} R^2 {f.r_squared:.3f}")
    for p in res.evidence.probabilities:
        mark = "ok " if p.holds else ("BAD" if p.refuted else "?? ")
        print(f"  {mark} {p}")
    for k, v in res.evidence.metrics.items():
        print(f"  metric {k}: {v}")
    return 1 if res.verdict in (Verdict.VIOLATED, Verdict.ERROR) else 0


def cmd_figures(args) -> int:
    import importlib

    try:
        mod = importlib.import_module(f"verification.figures_{args.family}")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("matplotlib"):
            raise SystemExit("invbounds: figures need matplotlib: "
                             "python -m pip install 'invbounds[plot]'") from exc
        raise SystemExit(f"invbounds: no figures for family {args.family!r}") from exc
    paths = mod.make_figures(args.out, profile=args.profile, seed=args.seed)
    for p in paths:
        print(p)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="invbounds", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="run the claims and print the verdict table")
    v.add_argument("--claims", action="append", metavar="GLOB",
                   help="only claims whose id matches GLOB (repeatable), e.g. 'dln.oracle*'")
    v.add_argument("--profile", choices=engine.PROFILES, default="quick")
    v.add_argument("--json", metavar="PATH", help="also write the JSON report to PATH")
    v.add_argument("--seed", type=int, default=0, help="added to every instance seed")
    v.set_defaults(func=cmd_verify)
    ls = sub.add_parser("list", help="list the registered claims")
    ls.add_argument("--claims", action="append", metavar="GLOB")
    ls.add_argument("-v", "--verbose", action="store_true")
    ls.set_defaults(func=cmd_list)
    r = sub.add_parser("reproduce", help="check one claim on one instance given by its repr")
    r.add_argument("claim")
    r.add_argument("instance", help="the instance repr printed by verify, e.g. \"DLNSpec(d=40)\"")
    r.set_defaults(func=cmd_reproduce)
    f = sub.add_parser("figures", help="draw a family's figures (needs matplotlib)")
    f.add_argument("family", choices=["dln", "dip", "jpo"])
    f.add_argument("--out", required=True, metavar="DIR")
    f.add_argument("--profile", choices=engine.PROFILES, default="quick")
    f.add_argument("--seed", type=int, default=0)
    f.set_defaults(func=cmd_figures)
    atlas.add_report_parser(sub)
    sweep.add_sweep_parser(sub)
    hunt.add_hunt_parser(sub)
    boundaries.add_boundaries_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``invbounds`` console script."""
    args = build_parser().parse_args(argv)
    if getattr(args, "seed", 0) is not None and getattr(args, "seed", 0) < 0:
        raise SystemExit("invbounds: --seed must be >= 0")
    try:
        return args.func(args)
    except (KeyError, ValueError) as exc:
        print(f"invbounds: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
