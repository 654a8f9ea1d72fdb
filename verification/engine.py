"""The claim engine: every checkable statement is a :class:`Claim`.

A claim has a stable id, provenance, kind, named hypotheses evaluated per instance, a function that
lists the instances of a profile, and an evaluation that returns :class:`Evidence`: comparisons
``observed <= bound + allowance`` (identities are comparisons of a residual against a rounding
tolerance), exponent fits of scaling laws, hypotheses that turned out to fail during evaluation, and
reported metrics. The engine alone turns evidence into verdicts, so every claim of every family is
judged by the same rules:

* ``violated`` if any comparison of any instance fails under the hypotheses, or a fit or a
  probability check is refuted (the exponent's interval lies outside the theory's window, or the
  whole confidence interval lies below the proven probability);
* ``inconclusive`` if a fit or a probability check is neither confirmed nor refuted (an exponent
  interval too wide to decide, an interval straddling the proven probability: more points or trials
  would decide it);
* ``vacuous`` if every instance failed a hypothesis (the failing names are reported);
* ``holds`` otherwise, with the margin and the tightness (observed / bound) of the tightest check.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any


class Kind(enum.StrEnum):
    """What sort of statement a claim is."""

    IDENTITY = "identity"
    INEQUALITY = "inequality"
    SCALING = "scaling law"
    STATISTICAL = "statistical"


class Verdict(enum.StrEnum):
    """The outcome of a claim."""

    HOLDS = "holds"
    VIOLATED = "violated"
    INCONCLUSIVE = "inconclusive"
    VACUOUS = "vacuous"
    ERROR = "error"


class HypothesisFailed(Exception):
    """Raised by an evaluation when a hypothesis turns out to fail while the claim is evaluated
    (a run that diverges, a solver that does not reach stationarity); the instance is vacuous.

    Parameters
    ----------
    name : str
        The hypothesis name, as it will appear in the verdict.
    detail : str
        What was observed.
    """

    def __init__(self, name: str, detail: str = ""):
        self.name = name
        self.detail = detail
        super().__init__(f"{name}: {detail}" if detail else name)


@dataclasses.dataclass(frozen=True)
class Hypothesis:
    """A named hypothesis, checked on an instance before evaluation.

    Attributes
    ----------
    name : str
        Short stable name (``"lam_positive"``).
    description : str
        What it says, in the theory's words.
    check : callable
        ``check(instance) -> bool``.
    """

    name: str
    description: str
    check: Callable[[Any], bool]


@dataclasses.dataclass
class Comparison:
    """One check ``observed <= bound + allowance``.

    For an identity ``observed`` is a residual norm and ``bound`` the rounding tolerance of its
    class (``allowance = 0``); for an inequality ``observed`` is the left side, ``bound`` the right
    side and ``allowance`` the float64 rounding allowance.
    """

    label: str
    observed: float
    bound: float
    allowance: float = 0.0
    witness: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.observed = float(self.observed)
        self.bound = float(self.bound)
        self.allowance = float(self.allowance)

    @property
    def holds(self) -> bool:
        """Whether the check passes; a NaN anywhere fails it."""
        return bool(self.observed <= self.bound + self.allowance)

    @property
    def margin(self) -> float:
        """``bound + allowance - observed`` (negative when violated)."""
        return self.bound + self.allowance - self.observed

    @property
    def tightness(self) -> float:
        """``observed / bound`` (1 means the bound is attained)."""
        if self.bound > 0:
            return self.observed / self.bound
        return 0.0 if self.observed <= 0 else math.inf


@dataclasses.dataclass
class ExponentFit:
    """A fitted scaling exponent with its 95% confidence interval.

    The fit holds when the interval is no wider than ``max_ci_width``, ``r_squared`` reaches
    ``min_r_squared``, and the interval relates to ``window`` as follows:

    * a two-sided window (the theoretical exponent, widened by the claim's finite-size
      allowance; a point window means the exponent itself) must *meet* the interval;
    * a one-sided window (an infinite end: "the exponent is below -0.25") must *contain* the
      whole interval. Meeting would be satisfied by any interval reaching that way, so a flat
      exponent with a wide interval could never fail.

    A fit that does not hold is *refuted* (the claim is ``violated``) when the data contradict the
    law: the interval lies entirely outside the window, or the interval is narrow enough but the
    log-log relation is not a line (``r_squared`` too low). Otherwise the sweep lacked the precision
    to decide (an interval wider than ``max_ci_width`` that meets the window, or one straddling the
    finite end of a one-sided window) and the verdict is ``inconclusive``: more points or seeds
    would decide it.
    """

    label: str
    exponent: float
    ci_low: float
    ci_high: float
    r_squared: float
    window: tuple[float, float]
    max_ci_width: float = math.inf
    min_r_squared: float = 0.0
    points: dict = dataclasses.field(default_factory=dict)

    @property
    def one_sided(self) -> bool:
        return bool(math.isinf(self.window[0]) or math.isinf(self.window[1]))

    def _window_ok(self) -> bool:
        lo, hi = self.window
        if self.one_sided:
            return bool(lo <= self.ci_low and self.ci_high <= hi)
        return bool(self.ci_high >= lo and self.ci_low <= hi)

    @property
    def holds(self) -> bool:
        return bool(self._window_ok() and (self.ci_high - self.ci_low) <= self.max_ci_width
                    and self.r_squared >= self.min_r_squared)

    @property
    def refuted(self) -> bool:
        """The data contradict the law (see the class docstring)."""
        lo, hi = self.window
        outside = bool(self.ci_high < lo or self.ci_low > hi)
        narrow = (self.ci_high - self.ci_low) <= self.max_ci_width
        return outside or (narrow and self._window_ok() and self.r_squared < self.min_r_squared)

    @property
    def failure(self) -> str:
        if self.holds:
            return ""
        if not self._window_ok():
            how = "is not inside one-sided" if self.one_sided else "misses"
            return f"CI [{self.ci_low:.3g}, {self.ci_high:.3g}] {how} window {self.window}"
        if self.ci_high - self.ci_low > self.max_ci_width:
            return f"CI width {self.ci_high - self.ci_low:.3g} > {self.max_ci_width:.3g}"
        return f"R^2 {self.r_squared:.3f} < {self.min_r_squared}"


@dataclasses.dataclass
class ProbabilityCheck:
    """A proven lower bound ``P[event] >= proven`` tested on ``trials`` independent seeds.

    The exact two-sided Clopper-Pearson interval at ``level`` (callers pass a Bonferroni-adjusted
    level when a claim tests several cells) decides:

    * confirmed (``holds``) when the interval's lower end is at least ``proven``;
    * refuted when its upper end is below ``proven`` (a violation of the theorem at that level);
    * otherwise neither: the verdict is ``inconclusive`` and more trials would decide it.

    A proven probability ``<= 0`` says nothing, so callers report such cells as vacuous instead.
    """

    label: str
    successes: int
    trials: int
    proven: float
    level: float = 0.99
    witness: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.trials <= 0 or not 0 <= self.successes <= self.trials:
            raise ValueError(f"successes, trials: need 0 <= successes <= trials > 0, got "
                             f"{self.successes}, {self.trials}")
        if not 0.0 < self.level < 1.0:
            raise ValueError(f"level: must lie in (0, 1), got {self.level}")
        self.successes, self.trials = int(self.successes), int(self.trials)
        self.proven = float(self.proven)

    @property
    def interval(self) -> tuple[float, float]:
        """The exact Clopper-Pearson interval for the success probability."""
        from verification.stats import clopper_pearson  # stats imports this module

        return clopper_pearson(self.successes, self.trials, self.level)

    @property
    def estimate(self) -> float:
        return self.successes / self.trials

    @property
    def holds(self) -> bool:
        return bool(self.interval[0] >= self.proven)

    @property
    def refuted(self) -> bool:
        return bool(self.interval[1] < self.proven)

    @property
    def margin(self) -> float:
        """``lower end - proven`` (negative unless confirmed)."""
        return self.interval[0] - self.proven

    @property
    def failure(self) -> str:
        lo, hi = self.interval
        if self.holds:
            return ""
        how = "refutes" if self.refuted else "does not confirm"
        return (f"{self.successes}/{self.trials}, {self.level:.0%} CI [{lo:.4g}, {hi:.4g}] {how} "
                f"P >= {self.proven:.4g}")

    def __str__(self) -> str:
        lo, hi = self.interval
        return (f"{self.label}: {self.successes}/{self.trials}, {self.level:.3g} CI "
                f"[{lo:.4g}, {hi:.4g}] vs proven {self.proven:.4g}")


def trials_to_confirm(proven: float, level: float = 0.99) -> int:
    """Fewest trials whose all-success Clopper-Pearson lower end reaches ``proven``.

    With ``x = n`` successes the lower end is ``(alpha/2)^(1/n)``, so ``n >= ln(alpha/2)/ln(proven)``.
    A claim sizes its sample with this so that a bound that holds comfortably is confirmed rather
    than reported inconclusive.
    """
    if not 0.0 < proven < 1.0:
        raise ValueError(f"proven: must lie in (0, 1), got {proven}")
    return max(1, math.ceil(math.log((1.0 - level) / 2.0) / math.log(proven)))


@dataclasses.dataclass
class Evidence:
    """What an evaluation found on one instance."""

    comparisons: list[Comparison] = dataclasses.field(default_factory=list)
    fits: list[ExponentFit] = dataclasses.field(default_factory=list)
    probabilities: list[ProbabilityCheck] = dataclasses.field(default_factory=list)
    failed_hypotheses: list[str] = dataclasses.field(default_factory=list)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)

    def compare(self, label: str, observed, bound, allowance=0.0, **witness) -> Comparison:
        """Append a comparison and return it."""
        c = Comparison(label, observed, bound, allowance, witness)
        self.comparisons.append(c)
        return c

    def compare_along(self, label: str, at, lhs, rhs, allowance, *, at_name: str = "t",
                      **witness) -> int:
        """Check ``lhs <= rhs + allowance`` at every point of a trajectory; record one comparison.

        If any point fails (or is NaN) the recorded one is the most violated, so the comparison
        fails; otherwise it is the tightest (largest ``lhs/rhs``) among points after the first
        ``at``, because at the start most trajectory bounds are attained by definition, which would
        hide their tightness. Returns the index of the recorded point.
        """
        import numpy as np

        at, lhs, rhs = (np.atleast_1d(np.asarray(a, dtype=float)) for a in (at, lhs, rhs))
        allowance = np.broadcast_to(np.asarray(allowance, dtype=float), lhs.shape)
        margin = rhs + allowance - lhs
        bad = np.flatnonzero(~np.isfinite(margin))
        if bad.size:
            i = int(bad[0])
        elif np.any(margin < 0):
            i = int(np.argmin(margin))
        else:
            later = at > at.min()
            if not np.any(later):
                later = np.ones(lhs.shape, dtype=bool)
            with np.errstate(divide="ignore", invalid="ignore"):
                tight = np.where(rhs > 0, lhs / rhs, np.where(lhs <= 0, 0.0, np.inf))
            i = int(np.flatnonzero(later)[np.argmax(tight[later])])
        self.compare(label, lhs[i], rhs[i], allowance[i], **{at_name: float(at[i])},
                     points=int(lhs.size), **witness)
        return i

    def probability(self, label: str, successes: int, trials: int, proven: float,
                    level: float = 0.99, **witness) -> ProbabilityCheck:
        """Append a probability check (see :class:`ProbabilityCheck`) and return it."""
        p = ProbabilityCheck(label, successes, trials, proven, level, witness)
        self.probabilities.append(p)
        return p

    def extend(self, other: Evidence) -> Evidence:
        """Merge another evidence object into this one."""
        self.comparisons += other.comparisons
        self.fits += other.fits
        self.probabilities += other.probabilities
        self.failed_hypotheses += other.failed_hypotheses
        self.metrics.update(other.metrics)
        return self


@dataclasses.dataclass
class InstanceResult:
    """The verdict on one instance."""

    instance: Any
    verdict: Verdict
    evidence: Evidence
    failed_hypotheses: list[str]
    hypotheses: dict[str, bool]
    seconds: float
    error: str = ""
    ignored_hypotheses: list[str] = dataclasses.field(default_factory=list)
    """Failed hypotheses the verdict was computed without (``Claim.check(ignore_hypotheses=...)``):
    the verdict is then the one the claim would have if they held (boundary demonstrations)."""

    def worst(self) -> Comparison | ExponentFit | ProbabilityCheck | None:
        """The failing check, or the tightest one if all pass."""
        failing = [c for c in self.evidence.comparisons if not c.holds]
        failing += [f for f in self.evidence.fits if f.refuted]
        failing += [p for p in self.evidence.probabilities if p.refuted]
        failing += [f for f in self.evidence.fits if not f.holds and not f.refuted]
        failing += [p for p in self.evidence.probabilities if not p.holds and not p.refuted]
        if failing:
            return failing[0]
        if self.evidence.comparisons:
            return max(self.evidence.comparisons, key=lambda c: c.tightness)
        if self.evidence.fits:
            return self.evidence.fits[0]
        if self.evidence.probabilities:
            return min(self.evidence.probabilities, key=lambda p: p.margin)
        return None


@dataclasses.dataclass
class ClaimResult:
    """The verdict on a claim across the instances of a profile."""

    claim: Claim
    profile: str
    seed: int
    verdict: Verdict
    instances: list[InstanceResult]
    seconds: float

    def tightest(self) -> Comparison | None:
        comps = [c for r in self.instances for c in r.evidence.comparisons]
        return max(comps, key=lambda c: c.tightness) if comps else None

    @property
    def margin(self) -> float | None:
        c = self._decisive()
        return c.margin if isinstance(c, Comparison) else None

    @property
    def tightness(self) -> float | None:
        c = self._decisive()
        return c.tightness if isinstance(c, Comparison) else None

    def _decisive(self):
        for r in self.instances:
            if r.verdict is Verdict.VIOLATED:
                return r.worst()
        return self.tightest()

    @property
    def fits(self) -> list[ExponentFit]:
        return [f for r in self.instances for f in r.evidence.fits]

    @property
    def failed_hypotheses(self) -> list[str]:
        names: list[str] = []
        for r in self.instances:
            names += [n for n in r.failed_hypotheses if n not in names]
        return names

    @property
    def probabilities(self) -> list[ProbabilityCheck]:
        return [p for r in self.instances for p in r.evidence.probabilities]

    def witness(self) -> InstanceResult | None:
        """The first violated (or errored, or inconclusive) instance."""
        for r in self.instances:
            if r.verdict in (Verdict.VIOLATED, Verdict.ERROR):
                return r
        for r in self.instances:
            if r.verdict is Verdict.INCONCLUSIVE:
                return r
        return None


@dataclasses.dataclass(frozen=True)
class Claim:
    """A checkable statement.

    Attributes
    ----------
    id : str
        Stable id, ``family.snake_case_name``.
    family : str
        ``dln``, ``dip`` or ``jpo``.
    provenance : str
        Where the statement comes from (``[derived]``, ``[seed 000]``, ...).
    kind : Kind
        Identity, inequality, scaling law or statistical.
    statement : str
        The statement in one line.
    hypotheses : tuple of Hypothesis
        Checked on each instance; a failing one makes that instance vacuous.
    instances : callable
        ``instances(profile, seed) -> list`` of instance specs (frozen dataclasses with a
        reproducible repr).
    evaluate : callable
        ``evaluate(instance) -> Evidence``.
    informational : bool
        Profile claims built on [seed]/[unverified] constants: reported, never failing a run.
    reference : str
        Where the proof or the discussion lives (``docs/theory/...``).
    """

    id: str
    family: str
    provenance: str
    kind: Kind
    statement: str
    hypotheses: tuple[Hypothesis, ...]
    instances: Callable[[str, int], Sequence[Any]]
    evaluate: Callable[[Any], Evidence]
    informational: bool = False
    reference: str = ""

    def check(self, instance, ignore_hypotheses: Sequence[str] = ()) -> InstanceResult:
        """Check the hypotheses on ``instance`` and, if they hold, evaluate the claim.

        ``ignore_hypotheses`` names hypotheses whose failure does not stop the evaluation
        (hypothesis-boundary demonstrations): they are still checked and listed in
        ``hypotheses`` and ``failed_hypotheses``, the failed ones also in
        ``ignored_hypotheses``, and the verdict is computed as if they held. A hypothesis that
        fails during the evaluation (:class:`HypothesisFailed`) leaves nothing to judge and makes
        the instance vacuous whatever its name.
        """
        ignore = set(ignore_hypotheses)
        if not all(isinstance(n, str) for n in ignore):
            raise ValueError(f"ignore_hypotheses: expected hypothesis names, got {sorted(map(repr, ignore))}")
        t0 = time.perf_counter()
        hyps = {h.name: bool(h.check(instance)) for h in self.hypotheses}
        failed = [k for k, ok in hyps.items() if not ok]
        ignored = [k for k in failed if k in ignore]
        if len(ignored) < len(failed):
            return InstanceResult(instance, Verdict.VACUOUS, Evidence(), failed, hyps,
                                  time.perf_counter() - t0, ignored_hypotheses=ignored)
        try:
            ev = self.evaluate(instance)
        except HypothesisFailed as exc:
            hyps[exc.name] = False
            return InstanceResult(instance, Verdict.VACUOUS, Evidence(metrics={
                "hypothesis_detail": exc.detail}), failed + [exc.name] * (exc.name not in failed), hyps,
                time.perf_counter() - t0, ignored_hypotheses=ignored)
        except Exception as exc:  # an evaluation bug is reported as an error verdict, not hidden
            return InstanceResult(instance, Verdict.ERROR, Evidence(), failed, hyps,
                                  time.perf_counter() - t0,
                                  error="".join(traceback.format_exception_only(exc)).strip(),
                                  ignored_hypotheses=ignored)
        for name in ev.failed_hypotheses:
            hyps[name] = False
        ignored += [n for n in ev.failed_hypotheses if n in ignore and n not in ignored]
        failed += [n for n in ev.failed_hypotheses if n not in failed]
        if any(n not in ignore for n in ev.failed_hypotheses):
            verdict = Verdict.VACUOUS
        elif not all(c.holds for c in ev.comparisons) or any(f.refuted for f in ev.fits) \
                or any(p.refuted for p in ev.probabilities):
            verdict = Verdict.VIOLATED
        elif not (all(f.holds for f in ev.fits) and all(p.holds for p in ev.probabilities)):
            verdict = Verdict.INCONCLUSIVE
        else:
            verdict = Verdict.HOLDS if (ev.comparisons or ev.fits or ev.probabilities) \
                else Verdict.ERROR
        err = "" if verdict is not Verdict.ERROR else "evaluation produced no checks"
        return InstanceResult(instance, verdict, ev, failed, hyps, time.perf_counter() - t0,
                              error=err, ignored_hypotheses=ignored)

    def run(self, profile: str = "quick", seed: int = 0,
            on_instance: Callable[[int, int], None] | None = None) -> ClaimResult:
        """Evaluate every instance of ``profile`` and aggregate the verdict."""
        t0 = time.perf_counter()
        specs = list(self.instances(profile, seed))
        results = []
        for i, spec in enumerate(specs):
            results.append(self.check(spec))
            if on_instance is not None:
                on_instance(i + 1, len(specs))
        verdicts = {r.verdict for r in results}
        if Verdict.ERROR in verdicts:
            verdict = Verdict.ERROR
        elif Verdict.VIOLATED in verdicts:
            verdict = Verdict.VIOLATED
        elif Verdict.INCONCLUSIVE in verdicts:
            verdict = Verdict.INCONCLUSIVE
        elif verdicts <= {Verdict.VACUOUS}:
            verdict = Verdict.VACUOUS
        else:
            verdict = Verdict.HOLDS
        return ClaimResult(self, profile, seed, verdict, results, time.perf_counter() - t0)


# --------------------------------------------------------------------------------------------
# the registry

REGISTRY: dict[str, Claim] = {}
PROFILES = ("quick", "paper")


def register(claim: Claim) -> Claim:
    """Add ``claim`` to the registry; ids are unique."""
    if claim.id in REGISTRY:
        raise ValueError(f"claim id {claim.id!r} registered twice")
    if not claim.id.startswith(claim.family + "."):
        raise ValueError(f"claim id {claim.id!r} must start with its family {claim.family!r}")
    REGISTRY[claim.id] = claim
    return claim


def load_all() -> dict[str, Claim]:
    """Import every claim module under :mod:`verification.claims` and return the registry."""
    import importlib
    import pkgutil

    import verification.claims as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")
    return REGISTRY


def get(claim_id: str) -> Claim:
    """Return the registered claim ``claim_id`` (loading every claim module first)."""
    if claim_id not in REGISTRY:
        load_all()
    try:
        return REGISTRY[claim_id]
    except KeyError:
        raise KeyError(f"unknown claim id {claim_id!r}; `invbounds list` shows them") from None


def seeded(specs_by_profile: dict[str, Sequence[Any]]) -> Callable[[str, int], list[Any]]:
    """An ``instances`` function: the listed specs, with the run seed added to each spec's seed.

    ``specs_by_profile`` maps profile names to spec lists; a profile that is not listed falls back
    to ``quick``. Specs must be dataclasses with an integer ``seed`` field (or lack one).
    """
    if "quick" not in specs_by_profile:
        raise ValueError("specs_by_profile: a 'quick' profile is required")

    def instances(profile: str, seed: int) -> list[Any]:
        specs = specs_by_profile.get(profile, specs_by_profile["quick"])
        out = []
        for spec in specs:
            if seed and hasattr(spec, "seed"):
                spec = dataclasses.replace(spec, seed=spec.seed + seed)
            out.append(spec)
        return out

    return instances


def claim(claim_id: str, *, provenance: str, kind: Kind, statement: str,
          instances: Callable[[str, int], Sequence[Any]] | dict[str, Sequence[Any]],
          hypotheses: Sequence[Hypothesis] = (), informational: bool = False,
          reference: str = "") -> Callable[[Callable[[Any], Evidence]], Callable[[Any], Evidence]]:
    """Decorator registering an evaluation function as the claim ``claim_id``.

    The family is the id's prefix; ``instances`` may be a profile -> specs dict (see
    :func:`seeded`). The decorated function is returned unchanged, with the claim attached as
    ``fn.claim`` so tests can drive the same claim on Hypothesis-built instances.
    """

    def deco(fn: Callable[[Any], Evidence]) -> Callable[[Any], Evidence]:
        inst = seeded(instances) if isinstance(instances, dict) else instances
        c = register(Claim(id=claim_id, family=claim_id.split(".", 1)[0], provenance=provenance,
                           kind=kind, statement=statement, hypotheses=tuple(hypotheses),
                           instances=inst, evaluate=fn, informational=informational,
                           reference=reference))
        fn.claim = c
        return fn

    return deco
