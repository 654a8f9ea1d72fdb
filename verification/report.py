"""Verdict tables and the JSON report (schema: ``docs/report-schema.md``)."""

from __future__ import annotations

import dataclasses
import json
import math
import platform
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from verification.engine import (
    ClaimResult,
    Comparison,
    ExponentFit,
    InstanceResult,
    ProbabilityCheck,
    Verdict,
)

SCHEMA_VERSION = 1


def blas_in_use() -> str:
    """The BLAS/LAPACK numpy actually loaded, in one line (``verification.blas``: read from
    ``/proc/self/maps``, so a tox BLAS env reports the backend its ``LD_LIBRARY_PATH`` selected)."""
    from verification import blas

    return blas.describe()


def run_metadata(seed: int, profile: str) -> dict[str, Any]:
    """Package version, seed, profile and the numerical stack."""
    from importlib import metadata

    try:
        version = metadata.version("invbounds")
    except metadata.PackageNotFoundError:
        version = "uninstalled"
    import mpmath
    import scipy

    from verification import blas

    info = blas.loaded_blas()
    return {"package_version": version, "seed": seed, "profile": profile,
            "python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "mpmath": mpmath.__version__, "blas": blas.describe(info),
            "blas_backend": info["backend"], "blas_libraries": info["blas_libraries"],
            "platform": platform.platform(), "argv": sys.argv[1:]}


def _finite(x):
    if x is None:
        return None
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    if isinstance(x, dict):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, np.ndarray):
        return _finite(x.tolist())
    return str(x)


def _check_json(c: Comparison | ExponentFit | ProbabilityCheck) -> dict:
    if isinstance(c, ProbabilityCheck):
        return {"type": "probability", "label": c.label, "successes": c.successes,
                "trials": c.trials, "estimate": _finite(c.estimate), "level": _finite(c.level),
                "interval": _finite(list(c.interval)), "proven": _finite(c.proven),
                "holds": c.holds, "refuted": c.refuted, "margin": _finite(c.margin),
                "witness": _finite(c.witness)}
    if isinstance(c, Comparison):
        return {"type": "comparison", "label": c.label, "observed": _finite(c.observed),
                "bound": _finite(c.bound), "allowance": _finite(c.allowance),
                "holds": c.holds, "margin": _finite(c.margin), "tightness": _finite(c.tightness),
                "witness": _finite(c.witness)}
    return {"type": "fit", "label": c.label, "exponent": _finite(c.exponent),
            "ci95": _finite([c.ci_low, c.ci_high]), "r_squared": _finite(c.r_squared),
            "window": _finite(list(c.window)),
            "max_ci_width": _finite(c.max_ci_width), "holds": c.holds, "refuted": c.refuted,
            "points": _finite(c.points)}


def reproduce_command(result: ClaimResult, inst: InstanceResult | None = None) -> dict:
    """The command and the instance repr that rebuild a verdict."""
    cmd = (f"invbounds verify --claims '{result.claim.id}' --profile {result.profile} "
           f"--seed {result.seed}")
    out = {"command": cmd}
    if inst is not None:
        out["instance"] = repr(inst.instance)
        out["instance_command"] = f"invbounds reproduce {result.claim.id} \"{inst.instance!r}\""
    return out


def claim_json(result: ClaimResult) -> dict:
    """One entry of the report's ``claims`` list."""
    c = result.claim
    hyps: dict[str, bool] = {}
    for r in result.instances:
        for k, v in r.hypotheses.items():
            hyps[k] = hyps.get(k, True) and v
    wit = result.witness()
    return {
        "id": c.id, "family": c.family, "provenance": c.provenance, "kind": str(c.kind),
        "statement": c.statement, "informational": c.informational,
        "verdict": str(result.verdict), "margin": _finite(result.margin),
        "tightness": _finite(result.tightness),
        "fits": [_check_json(f) for f in result.fits],
        "probabilities": [_check_json(p) for p in result.probabilities],
        "hypotheses": hyps, "failed_hypotheses": result.failed_hypotheses,
        "reproduce": reproduce_command(result, wit or (result.instances[0] if result.instances
                                                       else None)),
        "witness": None if wit is None else {
            "instance": repr(wit.instance), "error": wit.error,
            "check": _check_json(wit.worst()) if wit.worst() is not None else None},
        "seconds": round(result.seconds, 4),
        "reference": c.reference,
        "instances": [{"instance": repr(r.instance), "verdict": str(r.verdict),
                       "failed_hypotheses": r.failed_hypotheses, "error": r.error,
                       "checks": [_check_json(x) for x in r.evidence.comparisons
                                  + r.evidence.fits + r.evidence.probabilities],
                       "metrics": _finite(r.evidence.metrics)} for r in result.instances],
    }


def json_report(results: Sequence[ClaimResult], seed: int, profile: str) -> dict:
    """The whole report: ``schema_version``, ``metadata``, ``summary`` and ``claims``."""
    summary: dict[str, int] = {str(v): 0 for v in Verdict}
    for r in results:
        summary[str(r.verdict)] += 1
    return {"schema_version": SCHEMA_VERSION, "metadata": run_metadata(seed, profile),
            "summary": summary, "claims": [claim_json(r) for r in results]}


def write_json(path: str, report: dict) -> None:
    """Write the report atomically (a crash never leaves a truncated file)."""
    import os
    import tempfile

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(report, fh, indent=2, allow_nan=False)
    os.replace(tmp, path)


def _summary_cell(result: ClaimResult) -> str:
    if result.verdict is Verdict.ERROR:
        wit = result.witness()
        return (wit.error if wit else "error")[:60]
    if result.verdict is Verdict.VACUOUS:
        return "failed: " + ", ".join(result.failed_hypotheses)
    probs = result.probabilities
    if probs and not result.fits and result.tightness is None:
        p = min(probs, key=lambda q: q.margin)
        lo, hi = p.interval
        return f"P {p.estimate:.3f} [{lo:.3f},{hi:.3f}] vs {p.proven:.3g} ({len(probs)} cells)"
    fits = result.fits
    if fits:
        f = fits[0] if result.verdict is Verdict.HOLDS else next(x for x in fits if not x.holds)
        text = f"exp {f.exponent:+.3f} [{f.ci_low:+.3f},{f.ci_high:+.3f}]"
        if len(fits) > 1:
            text += f" (+{len(fits) - 1} fits)"
        return text
    t = result.tightness
    m = result.margin
    if t is None or m is None:
        return ""
    return f"tight {t:.3g}  margin {m:.3g}"


def table(results: Sequence[ClaimResult]) -> str:
    """A plain-text verdict table: id, provenance, kind, verdict, margin or fitted exponent."""
    rows = [("claim", "provenance", "kind", "verdict", "margin / exponent", "s")]
    for r in results:
        verdict = str(r.verdict) + (" (profile)" if r.claim.informational else "")
        prov = r.claim.provenance if len(r.claim.provenance) <= 22 else \
            r.claim.provenance[:21] + "…"
        rows.append((r.claim.id, prov, str(r.claim.kind), verdict, _summary_cell(r),
                     f"{r.seconds:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def as_dict(obj) -> dict:
    """Dataclass to dict, for specs in reports."""
    return dataclasses.asdict(obj) if dataclasses.is_dataclass(obj) else {"repr": repr(obj)}
