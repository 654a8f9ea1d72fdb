"""Counterexample search: ``invbounds hunt CLAIM_ID [--budget SECONDS]``.

Hypothesis draws instances of a claim, the engine checks each one (hypotheses first, so a
violation is always a violation *under* the hypotheses), and :func:`hypothesis.target` pushes the
search towards the tightest instance: the largest ``observed / (bound + allowance)`` over the
instance's checks (see :func:`check_tightness` for fits and probability checks). A violation is
shrunk by Hypothesis (within a bounded shrink time) and reported as an instance repr that
``invbounds reproduce CLAIM "REPR"`` accepts.

Instances come from a registry mapping spec types to strategies (:data:`STRATEGIES`):
``DLNSpec`` and ``DIPSpec`` mix the hand-written :func:`verification.strategies.dln_specs` /
:func:`verification.strategies.dip_specs` with perturbations of the claim's own ``quick``
instances; every other spec type uses the perturbations alone
(:func:`verification.strategies.perturbed_specs`). ``docs/hunt.md`` describes the rules and holds
the results of the last run over every identity and inequality claim.

Hypothesis has no wall-clock budget, so the test function checks the clock before every example
and raises :class:`BudgetSpent`, a ``BaseException`` (an ``Exception`` would count as a failing
example and be shrunk); the example that is running when the budget runs out finishes first, so
one slow example (a JPO benchmark sweep, a DLN scaling sweep) can overrun the budget by its own
duration. The best instance and the violation are recorded in a closure, since Hypothesis reports
neither the instance behind ``target`` nor a partly shrunk example.
"""

from __future__ import annotations

import collections
import dataclasses
import fnmatch
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from verification import engine
from verification.engine import (
    Claim,
    Comparison,
    ExponentFit,
    InstanceResult,
    Kind,
    ProbabilityCheck,
    Verdict,
)

DEFAULT_BUDGET = 15.0
"""Seconds of search per claim (``--budget``)."""
DEFAULT_SHRINK_BUDGET = 30.0
"""Seconds allowed for shrinking a violation once one is found (``--shrink-budget``)."""
TARGET_CAP = 1e6
"""Tightness values at or above this are not handed to ``target()``: they come from bounds that
underflow to ~0 (ratios ~1e300) and would send the search after rounding artefacts."""
PROGRESS_EVERY = 5.0
"""Seconds between progress lines on stderr."""
MARK_BEGIN = "<!-- hunt-results:begin -->"
MARK_END = "<!-- hunt-results:end -->"

StrategyFactory = Callable[[Sequence[Any], Callable[[str], None] | None], Any]
STRATEGIES: dict[str, StrategyFactory] = {}
"""Spec type name -> ``factory(bases, on_reject) -> SearchStrategy``; ``bases`` are the claim's
quick instances of that type. Types not listed use :func:`verification.strategies.perturbed_specs`."""


def register_strategy(type_name: str) -> Callable[[StrategyFactory], StrategyFactory]:
    """Decorator registering the hunt strategy factory of the spec type ``type_name``."""

    def deco(factory: StrategyFactory) -> StrategyFactory:
        STRATEGIES[type_name] = factory
        return factory

    return deco


@register_strategy("DLNSpec")
def _dln_strategy(bases, on_reject):
    from hypothesis import strategies as st

    from verification.strategies import dln_specs, perturbed_specs

    # The perturbed quick instances come first: Hypothesis shrinks towards the first branch, and
    # they carry the fields dln_specs never draws (isotropic design, balanced init, stepsize rule).
    return st.one_of(perturbed_specs(bases, on_reject=on_reject), dln_specs())


@register_strategy("DIPSpec")
def _dip_strategy(bases, on_reject):
    from hypothesis import strategies as st

    from verification.strategies import dip_specs, perturbed_specs

    # As in tests/test_dip_flow_claims.py: the flow's stiffness grows like cond(A)^2 and near k = n,
    # so k >= 2n, cond in [1, 3] and k <= 512 keep a gradient-flow solve around a second (a 60 s
    # solve was seen at cond ~ 10).
    drawn = dip_specs(max_n=8, max_k=512, min_k_factor=2).map(
        lambda sp: sp.replace(cond=1.0 + (sp.cond - 1.0) / 4.5))
    return st.one_of(perturbed_specs(bases, on_reject=on_reject), drawn)


def instance_strategy(claim: Claim, on_reject: Callable[[str], None] | None = None):
    """The Hypothesis strategy of ``claim``'s hunt: one branch per spec type of its quick instances.

    Parameters
    ----------
    claim : Claim
        The claim; its ``quick`` instances (run seed 0) seed the search.
    on_reject : callable, optional
        Called with a reason for every draw a spec's ``__post_init__`` refused.

    Raises
    ------
    ValueError
        If the claim has no quick instances.
    """
    from hypothesis import strategies as st

    from verification.strategies import perturbed_specs

    bases = list(claim.instances("quick", 0))
    if not bases:
        raise ValueError(f"claim: {claim.id} has no quick instances to start a hunt from")
    by_type: dict[str, list] = {}
    for b in bases:
        by_type.setdefault(type(b).__name__, []).append(b)
    branches = []
    for name, group in by_type.items():
        factory = STRATEGIES.get(name)
        branches.append(factory(group, on_reject) if factory is not None
                        else perturbed_specs(group, on_reject=on_reject))
    return branches[0] if len(branches) == 1 else st.one_of(*branches)


# --------------------------------------------------------------------------------------------
# tightness of a check


def _nan_to_inf(x: float) -> float:
    return math.inf if math.isnan(x) else float(x)


def fit_tightness(f: ExponentFit) -> float:
    """How close a fit is to failing: 1 on the boundary, above 1 when it fails.

    The maximum of: for a two-sided window, ``|exponent - centre| / (half window + half CI)``
    (the brief's ``|exponent - theory| / half-CI-width`` for a point window); for a one-sided
    window, ``half CI / distance from the exponent to the finite end``; ``CI width /
    max_ci_width``; ``min_r_squared / r_squared``.
    """
    lo, hi = f.window
    half_ci = (f.ci_high - f.ci_low) / 2.0
    parts = []
    if f.one_sided:
        if math.isinf(lo) and math.isinf(hi):
            parts.append(0.0)
        else:
            dist = (hi - f.exponent) if math.isinf(lo) else (f.exponent - lo)
            parts.append(half_ci / dist if dist > 0 else math.inf)
    else:
        denom = (hi - lo) / 2.0 + half_ci
        off = abs(f.exponent - (lo + hi) / 2.0)
        parts.append(off / denom if denom > 0 else (0.0 if off == 0 else math.inf))
    if math.isfinite(f.max_ci_width) and f.max_ci_width > 0:
        parts.append((f.ci_high - f.ci_low) / f.max_ci_width)
    if f.min_r_squared > 0:
        parts.append(f.min_r_squared / f.r_squared if f.r_squared > 0 else math.inf)
    return max(_nan_to_inf(p) for p in parts)


def probability_tightness(p: ProbabilityCheck) -> float:
    """``proven / lower end of the interval``: at most 1 when confirmed, above 1 otherwise."""
    if p.proven <= 0:
        return 0.0
    lo = p.interval[0]
    return p.proven / lo if lo > 0 else math.inf


def check_tightness(c: Comparison | ExponentFit | ProbabilityCheck) -> float:
    """The hunt's tightness of one check (1 = on the edge of failing, > 1 = failing).

    For a comparison it is ``observed / (bound + allowance)``, so the float64 rounding allowance
    counts as part of the bound, exactly as in :attr:`Comparison.holds`. The engine's
    ``observed / bound`` is reported beside it; the two differ only when the allowance is not
    negligible against the bound (a bound near 0).
    """
    if isinstance(c, Comparison):
        den = c.bound + c.allowance
        if den > 0:
            return _nan_to_inf(c.observed / den)
        return 0.0 if c.observed <= 0 else math.inf
    if isinstance(c, ExponentFit):
        return fit_tightness(c)
    return probability_tightness(c)


def instance_tightness(res: InstanceResult) -> tuple[float | None, Any]:
    """The largest check tightness of an evaluated instance and the check attaining it."""
    ev = res.evidence
    checks = [*ev.comparisons, *ev.fits, *ev.probabilities]
    if not checks:
        return None, None
    best = max(checks, key=check_tightness)
    return check_tightness(best), best


# --------------------------------------------------------------------------------------------
# the search


class BudgetSpent(BaseException):
    """Raised inside the Hypothesis test function when the wall-clock budget is spent.

    A ``BaseException``: Hypothesis treats ``Exception`` subclasses as failing examples and would
    shrink them; anything else propagates out of the test at once.
    """


class _Violation(AssertionError):
    """A violated instance; the failing example Hypothesis shrinks."""

    def __init__(self, spec, result: InstanceResult):
        self.spec = spec
        self.result = result
        super().__init__(f"violated on {spec!r}")


@dataclasses.dataclass
class HuntResult:
    """The outcome of :func:`hunt` (``as_json()`` gives the JSON-lines record)."""

    claim_id: str
    family: str
    kind: str
    informational: bool
    budget: float
    seed: int
    max_examples: int | None
    verdict: str = "vacuous"
    examples: int = 0
    shrink_calls: int = 0
    holds: int = 0
    vacuous: int = 0
    inconclusive: int = 0
    errors: int = 0
    rejects: int = 0
    best_tightness: float | None = None
    best_instance: str | None = None
    best_check: dict | None = None
    violation: dict | None = None
    vacuous_reasons: dict = dataclasses.field(default_factory=dict)
    reject_reasons: dict = dataclasses.field(default_factory=dict)
    error_samples: list = dataclasses.field(default_factory=list)
    stopped: str = ""
    seconds: float = 0.0
    slowest_example: float = 0.0

    @property
    def vacuous_fraction(self) -> float | None:
        """Vacuous examples among the evaluated ones (``None`` before any)."""
        return self.vacuous / self.examples if self.examples else None

    @property
    def reject_fraction(self) -> float | None:
        """Draws refused by a spec's ``__post_init__`` among all draws."""
        n = self.examples + self.rejects
        return self.rejects / n if n else None

    @property
    def overran(self) -> bool:
        """Whether the search outlived its budget by more than 10% (a slow last example)."""
        return self.violation is None and self.seconds > 1.1 * self.budget

    def as_json(self) -> dict:
        """A JSON-safe dict (non-finite floats as strings, as in the verification report)."""
        from verification.report import _finite

        d = dataclasses.asdict(self)
        d["vacuous_fraction"] = self.vacuous_fraction
        d["reject_fraction"] = self.reject_fraction
        d["overran"] = self.overran
        return _finite(d)


def _check_json(c) -> dict | None:
    from verification.report import _check_json as cj

    if c is None:
        return None
    out = cj(c)
    out["hunt_tightness"] = check_tightness(c)
    return out


def reproduce_line(claim_id: str, instance_repr: str) -> str:
    """The ``invbounds reproduce`` command of an instance."""
    return f'invbounds reproduce {claim_id} "{instance_repr}"'


def _classify(res: InstanceResult) -> str:
    """``rounding`` when the failing comparisons miss by less than 1e-6 of their scale."""
    worst = res.worst()
    if isinstance(worst, Comparison):
        scale = max(abs(worst.bound), abs(worst.observed), abs(worst.allowance))
        excess = worst.observed - worst.bound - worst.allowance
        if math.isfinite(excess) and scale > 0 and excess <= 1e-6 * scale:
            return "rounding"
    return "real"


def hunt(claim: Claim, *, budget: float = DEFAULT_BUDGET, seed: int = 0,
         max_examples: int | None = None, shrink_budget: float = DEFAULT_SHRINK_BUDGET,
         quick_examples: bool = True, database: str | None = None,
         progress: TextIO | None = None, progress_every: float = PROGRESS_EVERY,
         grace: float | None = -1.0, strategy=None) -> HuntResult:
    """Search ``claim``'s instances for the tightest one and for a violation.

    Parameters
    ----------
    claim : Claim
        The claim (registered or not: tests hunt on deliberately broken claims).
    budget : float
        Wall-clock seconds of search; the running example finishes first (see the module
        docstring), shrinking a violation has its own ``shrink_budget``.
    seed : int
        Hypothesis seed: with ``max_examples`` and no ``database`` the same seed gives the same
        examples, hence the same best instance.
    max_examples : int, optional
        Stop after this many valid examples (reproducible runs); default: only the budget stops.
    shrink_budget : float
        Seconds allowed for shrinking once a violation is found; past it the smallest violating
        instance seen so far is reported (``violation["shrunk"]`` is then ``False``).
    quick_examples : bool
        Evaluate the claim's quick instances first (Hypothesis explicit examples).
    database : str, optional
        Directory of a Hypothesis example database (e.g. ``.hypothesis/hunt``): failing examples
        of earlier hunts are replayed first. Off by default, which keeps hunts reproducible.
    progress : file, optional
        Where a progress line goes every ``progress_every`` seconds (``None``: silent).
    grace : float or None
        How long the example running when the budget (or the shrink budget) runs out may go on
        before it is abandoned (a ``SIGALRM`` timer raises :class:`BudgetSpent` inside it; main
        thread on POSIX only). Default (negative): ``max(10, budget)``; ``None``: never abandon.
    strategy : SearchStrategy, optional
        Overrides :func:`instance_strategy` (tests).

    Returns
    -------
    HuntResult

    Raises
    ------
    ValueError
        On a non-positive budget or shrink budget, a negative seed or ``max_examples < 1``.
    """
    from hypothesis import HealthCheck, Phase, example, given, settings, target
    from hypothesis import seed as hseed
    from hypothesis.errors import Flaky, Unsatisfiable
    from hypothesis.reporting import with_reporter

    if not budget > 0 or not math.isfinite(budget):
        raise ValueError(f"budget: must be a positive number of seconds, got {budget}")
    if not shrink_budget > 0:
        raise ValueError(f"shrink_budget: must be positive, got {shrink_budget}")
    if seed < 0:
        raise ValueError(f"seed: must be >= 0, got {seed}")
    if max_examples is not None and max_examples < 1:
        raise ValueError(f"max_examples: must be >= 1, got {max_examples}")
    if grace is not None and grace < 0:
        grace = max(10.0, float(budget))

    out = HuntResult(claim.id, claim.family, str(claim.kind), claim.informational, float(budget),
                     int(seed), max_examples)
    vac_reasons: collections.Counter = collections.Counter()
    rej_reasons: collections.Counter = collections.Counter()
    t0 = time.perf_counter()
    state = {"best": -math.inf, "last_progress": t0, "violation_t": None, "violation": None}

    def say(text: str) -> None:
        if progress is not None:
            progress.write(f"hunt {claim.id}: {text}\n")
            progress.flush()

    def clock(now: float) -> None:
        if state["violation_t"] is not None:
            if now - state["violation_t"] > shrink_budget:
                raise BudgetSpent("shrink")
        elif now - t0 > budget:
            raise BudgetSpent("budget")
        if now - state["last_progress"] >= progress_every:
            state["last_progress"] = now
            best = state["best"]
            say(f"{out.examples} examples ({out.vacuous} vacuous, {out.rejects} rejected), "
                f"best tightness {best:.4g}, {now - t0:.0f}s")

    def on_reject(reason: str) -> None:
        out.rejects += 1
        rej_reasons[reason] += 1
        # Without this, a strategy that rejects everything would never reach the clock check.
        clock(time.perf_counter())

    def body(spec) -> None:
        clock(time.perf_counter())
        res = claim.check(spec)
        out.slowest_example = max(out.slowest_example, res.seconds)
        if state["violation_t"] is None:
            out.examples += 1
        else:
            out.shrink_calls += 1
        tight, check = instance_tightness(res)
        if tight is not None and tight > state["best"] and res.verdict is not Verdict.VIOLATED:
            state["best"] = tight
            out.best_tightness, out.best_instance, out.best_check = tight, repr(spec), _check_json(check)
        if res.verdict is Verdict.VIOLATED:
            if state["violation_t"] is None:
                state["violation_t"] = time.perf_counter()
                alarm.arm(shrink_budget)
                say(f"violation on {spec!r}; shrinking (up to {shrink_budget:g}s)")
            # During shrinking Hypothesis only tries candidates simpler than the current one, so
            # the last violating instance is the smallest so far.
            state["violation"] = (spec, res)
            raise _Violation(spec, res)
        if state["violation_t"] is not None:
            return  # shrink calls are counted apart; the verdict counters describe the search
        if res.verdict is Verdict.HOLDS:
            out.holds += 1
        elif res.verdict is Verdict.INCONCLUSIVE:
            out.inconclusive += 1
        elif res.verdict is Verdict.VACUOUS:
            out.vacuous += 1
            vac_reasons[", ".join(res.failed_hypotheses) or "?"] += 1
        else:
            out.errors += 1
            if len(out.error_samples) < 3:
                out.error_samples.append({"instance": repr(spec), "error": res.error[:300]})
        if tight is not None and math.isfinite(tight) and tight < TARGET_CAP:
            target(tight, label="tightness")

    strat = strategy if strategy is not None else instance_strategy(claim, on_reject)
    test = given(strat)(body)
    if quick_examples and strategy is None:
        for spec in reversed(list(claim.instances("quick", 0))):
            test = example(spec)(test)
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
    db = None
    if database:
        from hypothesis.database import DirectoryBasedExampleDatabase

        db = DirectoryBasedExampleDatabase(database)
    test = settings(max_examples=max_examples or 10**6, deadline=None, database=db, phases=phases,
                    derandomize=False, report_multiple_bugs=False, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large,
                                           HealthCheck.large_base_example])(test)
    test = hseed(seed)(test)

    final = None
    alarm = _Alarm(grace)
    with with_reporter(lambda _msg: None), alarm:
        alarm.arm(budget)
        try:
            test()
            out.stopped = "max_examples" if max_examples and out.examples >= max_examples \
                else "exhausted"
        except _Violation as exc:
            final = (exc.spec, exc.result)
            out.stopped = "violation"
        except BudgetSpent as exc:
            out.stopped = {"shrink": "shrink_budget", "abandoned": "abandoned"}.get(str(exc), "budget")
        except Unsatisfiable:
            out.stopped = "unsatisfiable"
        except Flaky:
            out.stopped = "flaky"
    if final is None and state["violation"] is not None:
        final = state["violation"]
    out.seconds = time.perf_counter() - t0
    if final is not None:
        spec, res = final
        text = repr(spec)
        replay = _replay(claim, text)
        quick = {repr(q) for q in claim.instances("quick", 0)} if quick_examples else set()
        out.violation = {"instance": text, "reproduce": reproduce_line(claim.id, text),
                         "check": _check_json(res.worst()),
                         "source": "quick instance" if text in quick else "generated",
                         "shrunk": out.stopped == "violation" and text not in quick,
                         "kind": _classify(res), "replay": replay,
                         "shrink_seconds": (time.perf_counter() - state["violation_t"]
                                            if state["violation_t"] else 0.0)}
        out.verdict = "violated"
    elif out.holds:
        out.verdict = "holds"
    elif out.inconclusive:
        out.verdict = "inconclusive"
    elif out.errors:
        out.verdict = "error"
    else:
        out.verdict = "vacuous"
    out.vacuous_reasons = dict(vac_reasons.most_common(5))
    out.reject_reasons = dict(rej_reasons.most_common(5))
    return out


class _Alarm:
    """A one-shot ``SIGALRM`` timer that abandons an example running ``grace`` seconds past a
    budget (a no-op off the main thread, without ``setitimer``, or with ``grace=None``)."""

    def __init__(self, grace: float | None):
        import signal
        import threading

        self.grace = grace
        self.active = (grace is not None and hasattr(signal, "setitimer")
                       and threading.current_thread() is threading.main_thread())
        self.old = None

    def __enter__(self) -> _Alarm:
        if self.active:
            import signal

            def fire(signum, frame):
                raise BudgetSpent("abandoned")

            self.old = signal.signal(signal.SIGALRM, fire)
        return self

    def arm(self, seconds: float) -> None:
        """(Re)start the timer: fire ``seconds + grace`` from now."""
        if self.active:
            import signal

            signal.setitimer(signal.ITIMER_REAL, float(seconds) + float(self.grace))

    def __exit__(self, *exc) -> None:
        if self.active:
            import signal

            signal.setitimer(signal.ITIMER_REAL, 0.0)
            signal.signal(signal.SIGALRM, self.old)


def _replay(claim: Claim, text: str) -> str:
    """Rebuild a violating instance from its repr and check it again (what ``reproduce`` does)."""
    from verification.instances import parse_spec

    try:
        spec = parse_spec(text)
    except ValueError as exc:
        return f"repr does not parse: {exc}"
    return str(claim.check(spec).verdict)


# --------------------------------------------------------------------------------------------
# many claims, tables


def parse_kinds(text: str) -> set[Kind]:
    """``identity,inequality`` -> kinds (``scaling`` stands for ``scaling law``).

    Raises
    ------
    ValueError
        On an unknown kind name.
    """
    kinds = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name = "scaling law" if part == "scaling" else part
        try:
            kinds.add(Kind(name))
        except ValueError:
            raise ValueError(f"--all-kinds: unknown kind {part!r}; known: identity, inequality, "
                             f"scaling, statistical") from None
    if not kinds:
        raise ValueError("--all-kinds: name at least one kind")
    return kinds


def select_claims(patterns: Sequence[str] = (), kinds: set[Kind] | None = None) -> list[Claim]:
    """Registered claims matching any glob in ``patterns`` (all when empty) and of ``kinds``."""
    registry = engine.load_all()
    ids = sorted(registry)
    if patterns:
        ids = [i for i in ids if any(fnmatch.fnmatchcase(i, p) for p in patterns)]
    claims = [registry[i] for i in ids if kinds is None or registry[i].kind in kinds]
    if not claims:
        raise ValueError(f"claims: nothing matches {list(patterns) or '*'} of kinds "
                         f"{sorted(map(str, kinds or []))}; see `invbounds list`")
    return claims


def read_results(path: str) -> list[dict]:
    """The records of a JSON-lines results file (missing file: none; a torn last line is skipped)."""
    if not os.path.exists(path):
        return []
    rows = []
    with open(path) as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by a kill; the claim is simply hunted again
    return rows


def _ends_mid_line(path: str) -> bool:
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return False
    with open(path, "rb") as fh:
        fh.seek(-1, os.SEEK_END)
        return fh.read(1) != b"\n"


def hunt_many(claims: Sequence[Claim], out_path: str, *, budget: float = DEFAULT_BUDGET,
              seed: int = 0, progress: TextIO | None = None, **kw) -> list[dict]:
    """Hunt every claim in turn, appending one JSON line per claim to ``out_path``.

    Claims already in the file with the same budget and seed are skipped, so an interrupted run
    resumes where it stopped. Returns every record of the file for these claims.
    """
    done = {(r["claim_id"], r["budget"], r["seed"]): r for r in read_results(out_path)}
    for i, c in enumerate(claims):
        key = (c.id, float(budget), int(seed))
        if key in done:
            continue
        if progress is not None:
            progress.write(f"[{i + 1}/{len(claims)}] {c.id}\n")
            progress.flush()
        try:
            rec = hunt(c, budget=budget, seed=seed, progress=progress, **kw).as_json()
        except Exception as exc:  # one claim's failure to start (no instances...) must not stop the run
            rec = {"claim_id": c.id, "family": c.family, "kind": str(c.kind),
                   "informational": c.informational, "budget": float(budget), "seed": int(seed),
                   "verdict": "error", "stopped": "error", "error": f"{type(exc).__name__}: {exc}"}
        torn = _ends_mid_line(out_path)
        with open(out_path, "a") as fh:
            # After a kill mid-line, start a new line: the torn one stays unparseable and skipped.
            fh.write(("\n" if torn else "") + json.dumps(rec, allow_nan=False) + "\n")
        done[key] = rec
    return [done[(c.id, float(budget), int(seed))] for c in claims]


def _fmt(x, spec: str = ".3g") -> str:
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    return format(x, spec)


def results_table(rows: Sequence[dict]) -> str:
    """A markdown table of hunt records."""
    lines = ["| claim | kind | budget s | examples | vacuous | rejected | best tightness | verdict | "
             "shrunk violation |",
             "|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        verdict = r.get("verdict", "?") + (" (profile)" if r.get("informational") else "")
        if r.get("stopped") == "error":
            verdict += f": {r.get('error', '')[:60]}"
        elif r.get("errors"):
            verdict += f" ({r['errors']} error{'s' if r['errors'] != 1 else ''})"
        viol = r.get("violation") or {}
        shrunk = f"`{viol['instance']}` ({viol.get('kind', '?')})" if viol else ""
        vf = r.get("vacuous_fraction")
        lines.append(
            f"| {r['claim_id']} | {r.get('kind', '')} | {_fmt(r.get('budget'), 'g')} | "
            f"{r.get('examples', '–')} | {'–' if vf is None else f'{vf:.0%}'} | {r.get('rejects', '–')} | "
            f"{_fmt(r.get('best_tightness'))} | {verdict} | {shrunk.replace('|', chr(92) + '|')} |")
    return "\n".join(lines)


def replace_block(path: str, begin: str, end: str, body: str) -> None:
    """Replace the text between the marker lines ``begin`` and ``end`` of ``path`` with ``body``
    (append the markers and the body if they are missing)."""
    block = f"{begin}\n{body}\n{end}"
    text = open(path).read() if os.path.exists(path) else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    with open(path, "w") as fh:
        fh.write(text)


def update_markdown(path: str, rows: Sequence[dict], header: str = "") -> None:
    """Replace the block between the hunt-results markers of ``path`` with the table of ``rows``."""
    replace_block(path, MARK_BEGIN, MARK_END, header + results_table(rows))


def format_result(r: HuntResult) -> str:
    """The human-readable report of one hunt."""
    vf = r.vacuous_fraction
    rf = r.reject_fraction
    lines = [f"{r.claim_id} ({r.kind}{', profile' if r.informational else ''}): {r.verdict}",
             f"  {r.examples} examples in {r.seconds:.1f}s (budget {r.budget:g}s, seed {r.seed}, "
             f"stopped: {r.stopped}; slowest example {r.slowest_example:.2f}s)",
             f"  vacuous {r.vacuous} ({'–' if vf is None else f'{vf:.0%}'}), rejected draws "
             f"{r.rejects} ({'–' if rf is None else f'{rf:.0%}'}), holds {r.holds}, "
             f"inconclusive {r.inconclusive}, errors {r.errors}"]
    if r.vacuous_reasons:
        lines.append("  vacuous because: " + "; ".join(f"{k} ({v})" for k, v in r.vacuous_reasons.items()))
    if r.reject_reasons:
        lines.append("  rejected because: " + "; ".join(f"{k} ({v})" for k, v in r.reject_reasons.items()))
    for e in r.error_samples:
        lines.append(f"  error on {e['instance']}: {e['error']}")
    if r.best_tightness is not None:
        label = (r.best_check or {}).get("label", "")
        lines.append(f"  best tightness {r.best_tightness:.6g} ({label})")
        lines.append(f"    on {r.best_instance}")
    if r.overran:
        lines.append(f"  note: the last example overran the budget ({r.seconds:.1f}s > {r.budget:g}s)")
    if r.violation is not None:
        v = r.violation
        lines.append(f"  VIOLATION ({v['kind']}; {'shrunk' if v['shrunk'] else 'partly shrunk'}, "
                     f"replay: {v['replay']}): {v['instance']}")
        if v.get("check"):
            lines.append(f"    check: {json.dumps(v['check'])}")
        lines.append(f"  reproduce: {v['reproduce']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# command line


def add_hunt_parser(subparsers) -> None:
    """Add the ``hunt`` subcommand to an ``argparse`` subparsers object."""
    h = subparsers.add_parser("hunt", help="search a claim's instances for a violation (Hypothesis)",
                              description="Counterexample search: Hypothesis targets the tightness "
                                          "observed/bound and shrinks any violation found.")
    h.add_argument("claims", nargs="*", metavar="CLAIM_ID",
                   help="claim ids or globs (several, or --all-kinds: one JSON line each to --out)")
    h.add_argument("--all-kinds", metavar="KINDS",
                   help="every claim of these kinds, e.g. 'identity,inequality'")
    h.add_argument("--budget", type=float, default=DEFAULT_BUDGET, metavar="SECONDS",
                   help=f"search time per claim (default {DEFAULT_BUDGET:g}; a slow example may overrun)")
    h.add_argument("--shrink-budget", type=float, default=DEFAULT_SHRINK_BUDGET, metavar="SECONDS",
                   help=f"time to shrink a violation (default {DEFAULT_SHRINK_BUDGET:g})")
    h.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
    h.add_argument("--max-examples", type=int, default=None, metavar="N",
                   help="stop after N valid examples (reproducible regardless of machine speed)")
    h.add_argument("--no-quick", action="store_true",
                   help="do not evaluate the claim's quick instances first")
    h.add_argument("--database", metavar="DIR", nargs="?", const=".hypothesis/hunt", default=None,
                   help="replay failures of earlier hunts from a Hypothesis example database "
                        "(default directory .hypothesis/hunt)")
    h.add_argument("--json", metavar="PATH", help="write the result (one claim) as JSON")
    h.add_argument("--out", metavar="FILE", help="append one JSON line per claim (resumable)")
    h.add_argument("--markdown", metavar="FILE",
                   help="rewrite the hunt-results table between the markers of FILE")
    h.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    h.set_defaults(func=cmd_hunt)


def cmd_hunt(args) -> int:
    """Run ``invbounds hunt``: exit 1 if a non-profile claim is violated, 2 on bad input."""
    kinds = parse_kinds(args.all_kinds) if args.all_kinds else None
    if not args.claims and kinds is None:
        raise ValueError("hunt: name a claim id (or globs), or use --all-kinds")
    claims = select_claims(args.claims, kinds)
    progress = None if args.quiet else sys.stderr
    kw = {"max_examples": args.max_examples, "shrink_budget": args.shrink_budget,
          "quick_examples": not args.no_quick, "database": args.database}
    single = len(claims) == 1 and kinds is None and not args.out
    if single:
        res = hunt(claims[0], budget=args.budget, seed=args.seed, progress=progress, **kw)
        print(format_result(res))
        rows = [res.as_json()]
        if args.json:
            from verification.report import write_json

            write_json(args.json, rows[0])
            print(f"JSON written to {args.json}")
    else:
        out = args.out or "hunt_results.jsonl"
        rows = hunt_many(claims, out, budget=args.budget, seed=args.seed, progress=progress, **kw)
        print(results_table(rows))
        print(f"\n{len(rows)} claims; results in {out}")
        if args.json:
            from verification.report import write_json

            write_json(args.json, {"results": rows})
    if args.markdown:
        update_markdown(args.markdown, rows)
    blocking = [r for r in rows if r.get("verdict") == "violated" and not r.get("informational")]
    for r in blocking:
        print(f"\nVIOLATED {r['claim_id']}: {r['violation']['instance']}\n  reproduce: "
              f"{r['violation']['reproduce']}")
    return 1 if blocking else 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m verification.hunt ...``: the same as ``invbounds hunt ...``."""
    from verification import cli

    return cli.main(["hunt", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
