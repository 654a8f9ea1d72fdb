"""Hypothesis-boundary demonstrations: ``invbounds boundaries``.

A claim's hypotheses are sufficient conditions; a *boundary* shows that one of them is needed: a
stored instance that fails exactly that hypothesis (the engine calls it vacuous) and on which the
claim's conclusion, evaluated anyway, breaks (some check fails). Each demonstration is one
:class:`Boundary` entry of :data:`BOUNDARIES` (general mechanism, no per-claim code); hypotheses
that turned out *not* to be needed on the instances tried are recorded as :class:`NotNecessary`
entries, evaluated the same way and expected to hold.

Evaluating the conclusion past a failed hypothesis needs ``Claim.check(instance,
ignore_hypotheses=...)``; until the engine has it (patch in ``docs/hunt.md``),
:func:`check_ignoring` here does the same thing. :func:`boundary_rows` gives the results as sweep
store rows (``/work/helper_notes/STORE_SCHEMA.md``), so the atlas can show them.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

from verification import engine
from verification.engine import Claim, Comparison, InstanceResult, Verdict


def check_ignoring(claim: Claim, instance, ignore_hypotheses: Iterable[str] = ()) -> InstanceResult:
    """``claim.check(instance)``, except that the hypotheses named in ``ignore_hypotheses`` do not
    stop the evaluation.

    This is the proposed ``Claim.check(instance, ignore_hypotheses=...)`` of the engine (see the
    patch in ``docs/hunt.md``), kept here until the engine has it. Every hypothesis is still
    evaluated and reported; the failed ones that were ignored are listed in
    ``ignored_hypotheses``. A hypothesis that fails *during* the evaluation
    (:class:`~verification.engine.HypothesisFailed`, e.g. a diverged run) cannot be ignored: there
    is no evidence to judge, and the instance is vacuous as usual.

    Parameters
    ----------
    claim : Claim
        The claim.
    instance
        The instance spec.
    ignore_hypotheses : iterable of str
        Hypothesis names whose failure is ignored.

    Returns
    -------
    InstanceResult
        The engine's result, with its ``ignored_hypotheses`` list.
    """
    ignore = set(ignore_hypotheses)
    for name in ignore:
        if not isinstance(name, str):
            raise ValueError(f"ignore_hypotheses: expected hypothesis names, got {name!r}")
    return claim.check(instance, ignore_hypotheses=tuple(sorted(ignore)))


@dataclasses.dataclass(frozen=True)
class Boundary:
    """A stored demonstration that a hypothesis is needed.

    Attributes
    ----------
    claim_id : str
        The claim.
    dropped : tuple of str
        The hypotheses the instance fails: usually one; two when one hypothesis contains the
        other by definition (Theorem GD's ``gd_certificate`` includes ``step_admissible``).
    instance : str
        The instance repr (``invbounds reproduce`` accepts it).
    note : str
        What happens, in a sentence.
    slow : bool
        More than a few seconds to evaluate (tests mark it ``slow``).
    """

    claim_id: str
    dropped: tuple[str, ...]
    instance: str
    note: str
    slow: bool = False

    def __post_init__(self):
        if isinstance(self.dropped, str):
            object.__setattr__(self, "dropped", (self.dropped,))
        if not self.dropped:
            raise ValueError(f"dropped: name at least one hypothesis ({self.claim_id})")


@dataclasses.dataclass(frozen=True)
class NotNecessary:
    """A hypothesis whose dropping did not break the conclusion on any instance tried.

    ``tried`` are instance reprs that fail exactly ``dropped``; the conclusion held on each.
    """

    claim_id: str
    dropped: tuple[str, ...]
    tried: tuple[str, ...]
    note: str
    slow: bool = False

    def __post_init__(self):
        if isinstance(self.dropped, str):
            object.__setattr__(self, "dropped", (self.dropped,))


_DIP_GF = "DIPSpec(t_R={t})"
"""The default DIP instance (n = 6, m = 8, k = 256, tanh, MSE) with certificate ratio R'/R = t."""
_DLN_QUICK_NOISE = ("DLNSpec(d=40, m=20, s=3, n=100, L=4, d_w={d_w}, lam={lam}, k=4.0, steps=5000)")
"""``dln_noise.QUICK_SPEC`` with ``d_w`` and ``lam`` filled in."""

MARK_BEGIN = "<!-- hunt-boundaries:begin -->"
MARK_END = "<!-- hunt-boundaries:end -->"

BOUNDARIES: tuple[Boundary, ...] = (
    # ---- deep linear
    Boundary("dln.no_weight_decay_keeps_off_subspace", "lam_zero",
             "DLNSpec(d=20, m=10, s=2, n=15, L=3, d_w=12, lam=0.2, k=2.0, steps=200)",
             "with weight decay W_1(t) P_perp = rho_1^t W_1(0) P_perp decays (D2) instead of staying put"),
    Boundary("dln.ridge_case_L1", "depth_one",
             "DLNSpec(d=12, m=6, s=2, n=10, L=2, d_w=12, lam=0.05, k=1.0, steps=2000, seed=40)",
             "at depth 2 weight decay on the factors acts like a nuclear-norm penalty on M: the GD limit is "
             "5e-3 (relative) away from the ridge solution X Y^T (Y Y^T + lam_bar I)^-1"),
    Boundary("dln.global_minimizer_reference", "default_init",
             "DLNSpec(d=12, m=6, s=2, n=10, L=3, d_w=12, lam=0.05, k=2.0, init_scale=0.01, steps=2000, "
             "seed=2)",
             "from a 100x smaller initialization GD (L = 3) converges to a rank-1 stationary point (one "
             "singular value on the zero branch), not to the rank-2 global minimizer"),
    Boundary("dln.weight_decay_noise_robustness", "lam_positive", _DLN_QUICK_NOISE.format(d_w=60, lam=0.0),
             "with lambda = 0 in the 'decay' run nothing removes the off-subspace part: assertion (3) "
             "||M_1(T) P_perp|| <= 1e-2 ||M(0) P_perp|| fails"),
    Boundary("dln.weight_decay_noise_robustness", "width_at_least_m", _DLN_QUICK_NOISE.format(d_w=8, lam=1.0),
             "with d_w = 8 < m = 20 the lambda = 0 run loses more than half of ||M(0) P_perp|| (assertion "
             "(2)): 'lambda = 0 keeps the off-subspace part' needs the wide first layer"),
    # ---- deep inverse prior
    Boundary("dip.gd_discretization_constant", "step_at_most_inverse_L", "DIPSpec(step_c=1.5)",
             "gamma = 1.5/L_nabla(R) is admissible (< 2/L_nabla) but beta_gamma = 1 - gamma L/2 = 1/4 < 1/2"),
    Boundary("dip.jacobian_finite_difference", "smooth_activation", "DIPSpec(activation='relu')",
             "at W = 0 every pre-activation sits on the ReLU kink: the Lemma D1(i) formula (phi'(0) = 0) "
             "and the central difference (slope 1/2) disagree"),
    Boundary("dip.gf_sigma_min_stays_half", "base_certificate", _DIP_GF.format(t=5.0),
             "R' = 5R: the flow leaves B(theta_0, R), so sigma_0 - L_J ||theta(t) - theta_0|| drops below "
             "sigma_0/2 (the Weyl chain of Theorem GF breaks; the true sigma_min stays larger)"),
    Boundary("dip.gf_loss_rate", "base_certificate", _DIP_GF.format(t=30.0),
             "R' = 30R: the bounded tanh network cannot fit the constructed far target at the proven rate; "
             "||r(t)|| stays ~2 where e^{-kappa t} ||r_0|| is ~1e-2"),
    Boundary("dip.gf_parameter_convergence", "base_certificate", _DIP_GF.format(t=30.0),
             "R' = 30R: ||theta(t) - theta(s)|| exceeds 2/(sigma_0 sigma_A)(psi(L(t)) - psi(L(s))) by 3.6x"),
    Boundary("dip.gf_path_length_within_r_prime", "base_certificate", _DIP_GF.format(t=50.0),
             "R' = 50R: l(t) exceeds the KL bound 2/(sigma_0 sigma_A)(psi_0 - psi(L(t))) (it still holds "
             "at R' = 1.5R, 5R and 30R: the certificate is far from necessary here)"),
    Boundary("dip.gd_sigma_min_stays_half", "gd_certificate", _DIP_GF.format(t=5.0),
             "R'_gamma > R: the GD iterates leave B(theta_0, R) and the Weyl lower bound drops below "
             "sigma_0/2"),
    Boundary("dip.gd_linear_rate_mse", "gd_certificate", _DIP_GF.format(t=30.0),
             "R'_gamma = 60R: L_{tau+1} <= q_gamma L_tau fails (the loss plateaus near 3.4)"),
    Boundary("dip.gd_kl_rate", "gd_certificate", _DIP_GF.format(t=30.0),
             "R'_gamma = 60R: after 500 steps L_tau = 2.7 is twice the KL-rate bound"),
    Boundary("dip.relu_out_of_hypothesis", "relu", "DIPSpec(activation='tanh')",
             "the contrast claim itself: with a smooth activation the certificates are finite, so 'every "
             "certificate hypothesis fails' is false"),
    # ---- joint parameterised optimisation
    Boundary("jpo.sign_probability_monotone_in_n", "arcsine_n_at_least_3", "MonotoneSpec(arcsine_n_min=2)",
             "the arcsine law is not monotone from n = 2 to 3: P_3 < P_2 by 5.6e-3 at r = 0.01"),
    Boundary("jpo.logistic_conjugacy", "mp_precision", "JPOConjugacySpec(dps=55)",
             "55 digits < 47 + 40 log10 2 = 59.04: the 2^40 amplification leaves a 2.6e-44 residual above "
             "the 1e-45 of the row"),
    Boundary("jpo.clt_error_order_one_over_n", "n_in_grid_range", "CLTOrderSpec(n_values=(1, 2, 4, 8))",
             "n |P_n - Phi| <= 0.05 fails at n = 1 (0.067 at r = 0.3): the O(1/n) constant holds from n = 4"),
)
"""The stored boundary demonstrations (every entry is tested: fails exactly ``dropped``, and the
conclusion breaks)."""

NOT_NECESSARY: tuple[NotNecessary, ...] = (
    NotNecessary("dln.stationary_points_encode_subspace", "lam_positive",
                 ("DLNSpec(lam=0.0)", "DLNSpec(L=2, lam=0.0, convention='mean', seed=10)"),
                 "the claim checks the pointwise form lam_bar W_1 P_perp = nabla_1 F P_perp; at lambda = 0 "
                 "both sides vanish (the rows of G_1 lie in row Y). Only the stationarity consequence "
                 "W_1 P_perp = 0 needs lambda > 0, and it is not evaluated"),
    NotNecessary("dln.stationary_points_balanced", "lam_positive", ("DLNSpec(lam=0.0)",),
                 "at lambda = 0 the pointwise D6-ii identity is the conservation law W_{l+1}^T nabla_{l+1} = "
                 "nabla_l W_l^T of gradient flow, which holds at every W"),
    NotNecessary("dln.stationary_end_to_end_equation", "lam_positive",
                 ("DLNSpec(d=12, m=6, s=2, n=10, L=3, d_w=12, lam=0.0, k=2.0, steps=2000, seed=2)",),
                 "a polished stationary point at lambda = 0 has E Y^T = 0, so both sides of D6-iii vanish"),
    NotNecessary("dln.balancedness_recursion", "standard_update",
                 ("DLNSpec(update='seed002_ntk', steps=40)",),
                 "the evaluation advances the weights itself with layer 1's (rho, gamma) for every layer, "
                 "i.e. a standard update, so the seed002_ntk update is never exercised"),
    NotNecessary("dln.oracle_sample_independent", "standing_H1_H3",
                 ("DLNSpec(d=12, m=6, s=3, n=8, L=2, d_w=8, steps=20, z_log10_cond=12.0)",
                  "DLNSpec(d=12, m=6, s=3, n=8, L=2, d_w=8, steps=20, z_log10_cond=14.0)"),
                 "the numerical-rank guard is conservative: with cond(Z) = 1e12 and 1e14 it fails and the "
                 "D1 identities still hold; from 1e14.5 the evaluation itself refuses (rank < s)"),
    NotNecessary("dln.oracle_singular_bounds", "standing_H1_H3",
                 ("DLNSpec(d=12, m=6, s=3, n=8, L=2, d_w=8, steps=20, z_log10_cond=12.0)",
                  "DLNSpec(d=12, m=6, s=3, n=8, L=2, d_w=8, steps=20, z_log10_cond=14.0)"),
                 "as for dln.oracle_sample_independent: the guard is conservative"),
    NotNecessary("dip.gd_monotone_descent", "gd_certificate", (_DIP_GF.format(t=0.9), _DIP_GF.format(t=5.0)),
                 "the descent inequality L_{tau+1} <= L_tau - c_gamma ||grad f||^2 held with R'_gamma = 1.8R "
                 "and 10R: on these runs it needs only the step condition"),
    NotNecessary("dip.gd_path_length", "gd_certificate", (_DIP_GF.format(t=5.0), _DIP_GF.format(t=30.0)),
                 "the path-length chain held with R'_gamma = 10R and 60R"),
    NotNecessary("dip.both_layers_gram_closed_form", "train_V", ("DIPBothLayersSpec(train_V=False)",),
                 "the evaluation builds the both-layers Jacobian whatever the flag: train_V labels the "
                 "instance and never reaches the computation"),
    NotNecessary("jpo.single_frequency_sign_law", "uniform_phase",
                 ("ArcsineLawSpec(phase_law='nonuniform')",),
                 "phase_law is never read by the evaluation (its Monte Carlo draws uniform phases): the "
                 "flag cannot break anything; a boundary needs a non-uniform phase sampler"),
    NotNecessary("jpo.clt_sign_law", "iid_examples", ("CLTLawSpec(examples='common_landscape')",),
                 "examples is never read by the evaluation (i.i.d. draws either way)"),
    NotNecessary("jpo.alignment_law", "isotropic_gaussian", ("AlignmentSpec(noise='anisotropic')",),
                 "noise is never read by the evaluation (isotropic draws either way)"),
    NotNecessary("jpo.arcsine_small_n_nonmonotone", "single_frequency", ("NonmonotoneSpec(frequencies=2)",),
                 "frequencies is never read by the evaluation (K = 1 either way)"),
)
"""Hypotheses that dropping did not break on the instances tried (each tried instance is tested:
fails exactly ``dropped``, and the conclusion still holds)."""


@dataclasses.dataclass
class BoundaryResult:
    """What evaluating a :class:`Boundary` (or one tried instance of a :class:`NotNecessary`) found."""

    entry: Boundary | NotNecessary
    instance: str
    claim: Claim
    plain: InstanceResult
    """The ordinary check: vacuous, with the dropped hypotheses failed."""
    ignoring: InstanceResult
    """The check with the dropped hypotheses ignored."""

    @property
    def fails_exactly(self) -> bool:
        """The plain check is vacuous and its failed (pre-checked) hypotheses are exactly ``dropped``."""
        declared = [k for k, ok in self.plain.hypotheses.items() if not ok]
        return (self.plain.verdict is Verdict.VACUOUS and set(declared) == set(self.entry.dropped))

    @property
    def broken(self) -> bool:
        """The conclusion, evaluated without the dropped hypotheses, has a failing check."""
        return self.ignoring.verdict is Verdict.VIOLATED

    @property
    def ok(self) -> bool:
        """The entry demonstrates what it says: a boundary breaks, a not-necessary entry holds."""
        if isinstance(self.entry, Boundary):
            return self.fails_exactly and self.broken
        return self.fails_exactly and self.ignoring.verdict is Verdict.HOLDS


def evaluate_entry(entry: Boundary | NotNecessary) -> list[BoundaryResult]:
    """Evaluate a boundary (one result) or a not-necessary entry (one result per tried instance)."""
    from verification.instances import parse_spec

    claim = engine.get(entry.claim_id)
    texts = [entry.instance] if isinstance(entry, Boundary) else list(entry.tried)
    out = []
    for text in texts:
        spec = parse_spec(text)
        out.append(BoundaryResult(entry, text, claim, claim.check(spec),
                                  check_ignoring(claim, spec, entry.dropped)))
    return out


def result_row(r: BoundaryResult) -> dict:
    """One sweep-store row (``STORE_SCHEMA.md`` ``cells`` columns, minus the sweep keys).

    ``verdict`` is the verdict with the dropped hypotheses ignored (``violated`` where the
    conclusion broke); ``failed_hypotheses_json`` names the dropped ones, so the atlas can say
    which hypothesis was dropped. Three extra keys that are not store columns: ``boundary``
    (a :class:`Boundary` rather than a :class:`NotNecessary` entry), ``note`` and
    ``ignored_hypotheses``.
    """
    from verification.report import _check_json, _finite, blas_in_use, run_metadata

    ign = r.ignoring
    worst = ign.worst()
    is_cmp = isinstance(worst, Comparison)
    checks = ign.evidence.comparisons + ign.evidence.fits + ign.evidence.probabilities
    if not r.fails_exactly:
        verdict = "error"
        error = (f"instance does not fail exactly {list(r.entry.dropped)}: plain verdict "
                 f"{r.plain.verdict}, failed {r.plain.failed_hypotheses}")
    elif ign.verdict is Verdict.ERROR:
        verdict, error = "error", ign.error
    else:
        verdict, error = str(ign.verdict), ""
    dropped = list(r.entry.dropped) if len(r.entry.dropped) > 1 else r.entry.dropped[0]
    return {
        "claim_id": r.claim.id, "family": r.claim.family, "kind": str(r.claim.kind),
        "params_json": json.dumps({"dropped": dropped}, sort_keys=True),
        "instance": r.instance, "status": "done", "verdict": verdict,
        "margin": _finite(worst.margin) if is_cmp else None,
        "tightness": _finite(worst.tightness) if is_cmp else None,
        "hypotheses_json": json.dumps(_finite(ign.hypotheses), sort_keys=True),
        "failed_hypotheses_json": json.dumps(ign.failed_hypotheses),
        "checks_json": json.dumps([_check_json(c) for c in checks], allow_nan=False),
        "metrics_json": json.dumps(_finite(ign.evidence.metrics), sort_keys=True, allow_nan=False),
        "reproduce": f'invbounds reproduce {r.claim.id} "{r.instance}"',
        "error": error or None, "seconds": ign.seconds + r.plain.seconds,
        "package_version": run_metadata(0, "quick")["package_version"], "blas": blas_in_use(),
        "finished": time.time(),
        "boundary": isinstance(r.entry, Boundary), "note": r.entry.note,
        "ignored_hypotheses": list(ign.ignored_hypotheses),
    }


def boundary_rows(entries: Sequence[Boundary | NotNecessary] | None = None, *,
                  include_slow: bool = True) -> list[dict]:
    """Sweep-store rows of every boundary and not-necessary entry (``verdict='violated'`` where
    dropping the hypothesis broke the conclusion)."""
    chosen = list(BOUNDARIES + NOT_NECESSARY) if entries is None else list(entries)
    rows = []
    for e in chosen:
        if e.slow and not include_slow:
            continue
        rows += [result_row(r) for r in evaluate_entry(e)]
    return rows


def _row_cells(r: BoundaryResult) -> tuple[str, ...]:
    worst = r.ignoring.worst()
    if r.ignoring.verdict is Verdict.ERROR:
        broke = f"error: {r.ignoring.error[:60]}"
    elif r.ignoring.verdict is Verdict.VACUOUS:
        broke = "not evaluable: " + ", ".join(n for n in r.ignoring.failed_hypotheses
                                              if n not in r.entry.dropped)
    else:
        broke = "yes" if r.broken else "no"
        if worst is not None:
            broke += f" ({worst.label[:60]}"
            if isinstance(worst, Comparison):
                broke += f": {worst.observed:.3g} vs {worst.bound:.3g}"
            broke += ")"
    kind = "boundary" if isinstance(r.entry, Boundary) else "not necessary"
    exact = "yes" if r.fails_exactly else f"NO ({', '.join(r.plain.failed_hypotheses)})"
    return (r.claim.id, ", ".join(r.entry.dropped), kind, exact, broke, r.instance)


def table(results: Sequence[BoundaryResult], markdown: bool = False) -> str:
    """The boundary table: claim, dropped hypothesis, entry kind, fails exactly?, broken?, instance."""
    head = ("claim", "dropped", "entry", "fails exactly", "conclusion broken? (worst check)", "instance")
    rows = [_row_cells(r) for r in results]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in rows:
            cells = [*row[:-1], f"`{row[-1]}`"]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines)
    short = [(*row[:-1], row[-1] if len(row[-1]) <= 90 else row[-1][:89] + "…") for row in rows]
    widths = [max(len(x[i]) for x in [head, *short]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(x, widths, strict=True)).rstrip()
             for x in [head, *short]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def add_boundaries_parser(subparsers) -> None:
    """Add the ``boundaries`` subcommand to an ``argparse`` subparsers object."""
    b = subparsers.add_parser("boundaries", help="show that hypotheses are needed: stored instances "
                                                 "where dropping one breaks the conclusion")
    b.add_argument("--claims", action="append", metavar="GLOB", help="only these claims (repeatable)")
    b.add_argument("--json", metavar="PATH", help="write the results as sweep-store rows (JSON)")
    b.add_argument("--db", metavar="PATH", help="also store them in a sweep store (sweep 'boundaries'), "
                                               "so `invbounds report PATH` shows them")
    b.add_argument("--markdown", action="store_true", help="print a markdown table")
    b.add_argument("--no-slow", action="store_true", help="skip the slow entries")
    b.add_argument("--write-markdown", metavar="FILE",
                   help="also rewrite the table between the hunt-boundaries markers of FILE")
    b.set_defaults(func=cmd_boundaries)


def cmd_boundaries(args) -> int:
    """Run ``invbounds boundaries``: exit 1 if an entry does not demonstrate what it says."""
    import fnmatch

    entries: list[Any] = list(BOUNDARIES + NOT_NECESSARY)
    if args.claims:
        entries = [e for e in entries if any(fnmatch.fnmatchcase(e.claim_id, p) for p in args.claims)]
        if not entries:
            raise ValueError(f"--claims: no boundary entry matches {args.claims}")
    if args.no_slow:
        entries = [e for e in entries if not e.slow]
    results = []
    for i, e in enumerate(entries):
        print(f"[{i + 1}/{len(entries)}] {e.claim_id} without {', '.join(e.dropped)}", file=sys.stderr)
        results += evaluate_entry(e)
    print(table(results, markdown=args.markdown))
    bad = [r for r in results if not r.ok]
    n_b = sum(isinstance(r.entry, Boundary) and r.ok for r in results)
    print(f"\n{n_b} boundaries demonstrated, "
          f"{sum(isinstance(r.entry, NotNecessary) and r.ok for r in results)} not-necessary "
          f"instances hold, {len(bad)} entries do not show what they claim")
    for r in bad:
        print(f"  {r.claim.id} without {', '.join(r.entry.dropped)}: plain {r.plain.verdict} "
              f"{r.plain.failed_hypotheses}; ignoring: {r.ignoring.verdict} {r.ignoring.error}")
    if args.write_markdown:
        from verification.hunt import replace_block

        replace_block(args.write_markdown, MARK_BEGIN, MARK_END, table(results, markdown=True))
    if args.json:
        from verification.report import write_json

        write_json(args.json, {"rows": [result_row(r) for r in results]})
        print(f"JSON written to {args.json}")
    if args.db:
        n = store_rows(args.db, [result_row(r) for r in results])
        print(f"{n} rows stored in {args.db} (sweep 'boundaries'): invbounds report {args.db} --out DIR")
    return 1 if bad else 0


def store_rows(db_path: str, rows: Sequence[dict]) -> int:
    """Write :func:`result_row` rows into a sweep store as the sweep ``boundaries``.

    Under the claim's hypotheses every entry is ``vacuous`` (it fails the dropped hypothesis), and
    that is the verdict stored; the checks evaluated anyway are kept in ``checks_json`` with the
    tightness of the worst, so the atlas lists a broken conclusion among its "Hypothesis boundary"
    cells (vacuous cells whose conclusion fails) and never as a violation. Entries that do not fail
    exactly their hypothesis, or whose evaluation errors, are stored with ``verdict='error'``.

    Returns
    -------
    int
        Rows written.
    """
    from verification.report import blas_in_use, run_metadata
    from verification.store import CELL_COLUMNS, Store
    from verification.sweep import canonical_json, digest

    meta = run_metadata(0, "quick")
    design = {"claims": sorted({r["claim_id"] for r in rows}), "axes": {"dropped": sorted(
        {json.dumps(json.loads(r["params_json"])["dropped"]) for r in rows})}}
    design_json = canonical_json(design)
    sweep_id = digest("boundaries" + design_json, 16)
    with Store(db_path) as store:
        store.add_sweep(sweep_id, "boundaries", "invbounds boundaries", design_json,
                        package_version=meta["package_version"], numpy=meta["numpy"],
                        blas=blas_in_use())
        for i, row in enumerate(rows):
            metrics = json.loads(row["metrics_json"])
            metrics.update(boundary_note=row["note"], ignored_hypotheses=row["ignored_hypotheses"],
                           verdict_ignoring_dropped=row["verdict"])
            cell = {k: v for k, v in row.items() if k in CELL_COLUMNS}
            key = canonical_json({"claim": row["claim_id"], "params": json.loads(row["params_json"]),
                                  "base": row["instance"]})
            cell.update(sweep_id=sweep_id, cell_key=digest(key, 24),
                        cell_index=i, metrics_json=json.dumps(metrics, sort_keys=True),
                        verdict="vacuous" if row["verdict"] != "error" else "error")
            store.write_cell(cell)
    return len(rows)
