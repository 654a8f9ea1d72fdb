"""Helpers that let tests drive registered claims on Hypothesis-built instances."""

from __future__ import annotations

import math

from verification.engine import InstanceResult, Verdict


def check_claim(fn_or_claim, instance, *, allow_vacuous: bool = False,
                target_label: str | None = None) -> InstanceResult:
    """Check a claim on ``instance`` and fail with the witness unless it holds.

    Parameters
    ----------
    fn_or_claim
        A registered claim, or the evaluation function the ``@claim`` decorator returned.
    instance
        The instance spec.
    allow_vacuous : bool
        Accept ``vacuous`` (for strategies that may draw instances outside the hypotheses).
    target_label : str, optional
        If given, report the tightest observed/bound ratio to Hypothesis ``target()`` so the
        search climbs towards instances where the bound is nearly attained.

    Returns
    -------
    InstanceResult
    """
    claim = getattr(fn_or_claim, "claim", fn_or_claim)
    res = claim.check(instance)
    if target_label is not None and res.evidence.comparisons:
        from hypothesis import target

        ratio = max(c.tightness for c in res.evidence.comparisons)
        # A bound that underflows gives ratios ~1e300 that Hypothesis would chase as artefacts.
        if math.isfinite(ratio) and ratio < 1e6:
            target(ratio, label=target_label)
    ok = {Verdict.HOLDS} | ({Verdict.VACUOUS} if allow_vacuous else set())
    if res.verdict not in ok:
        raise AssertionError(
            f"{claim.id}: {res.verdict} on {instance!r}\n  error: {res.error}\n"
            f"  failed hypotheses: {res.failed_hypotheses}\n  worst check: {res.worst()}")
    return res
