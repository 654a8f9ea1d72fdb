"""The tightness atlas: ``invbounds report DB --out DIR`` over a sweep results store.

A sweep store (the SQLite schema of ``verification/store.py``, version 1) holds one row per cell:
a claim checked on one instance of a parameter grid, with its verdict, the margin and the tightness
(``observed / bound`` of the decisive comparison: 1 means the bound is attained, above 1 it is
violated) and the checks behind them. The atlas answers, per claim, grouped by family:

* how tight the bound is over the sweep: count, min, median and max of the tightness over the cells
  whose hypotheses hold, and a histogram (log x axis when the range spans more than a decade);
* where it is tightest and loosest, with the cell parameters and the reproduce commands;
* the fraction of vacuous cells and how often each hypothesis failed;
* every violation with its parameters, its failing checks and its reproduce command, and every
  error with its text;
* a heat map over two sweep axes (the two with the most distinct values, or ``--axes X,Y``):
  colour = the largest tightness over the other axes, hatched where a cell is vacuous, a red X where
  one is violated.

Outputs, in ``DIR``: ``report.html`` (self-contained: inline CSS, the PNGs embedded as base64 data
URIs, no script, no network), the same PNGs in ``DIR/figures/``, and ``summary.md``. Without
matplotlib (the ``plot`` extra) both documents are still written, without figures, and say so.
:func:`readme_excerpt` gives a screenshot-sized markdown table for a README.

The store is read by :func:`read_store` alone (stdlib ``sqlite3``, read-only), which validates the
file and raises :class:`ReportError` naming the path and the reason; everything else works on the
plain dictionaries it returns.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import datetime
import html
import io
import json
import math
import os
import pathlib
import re
import sqlite3
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

SCHEMA_NAME = "invbounds-sweep-store"
SCHEMA_VERSION = 1
"""The store schema this module reads (``meta.schema`` / ``meta.schema_version``)."""

SQLITE_HEADER = b"SQLite format 3\x00"

REQUIRED_COLUMNS = {
    "sweeps": ("sweep_id", "name", "spec_text", "design_json", "created", "package_version", "numpy",
               "blas"),
    "cells": ("sweep_id", "cell_key", "cell_index", "claim_id", "family", "kind", "params_json",
              "instance", "status", "verdict", "margin", "tightness", "hypotheses_json",
              "failed_hypotheses_json", "checks_json", "metrics_json", "reproduce", "error", "seconds",
              "package_version", "blas", "finished"),
}
"""Columns of schema version 1; extra columns (a later additive change) are ignored."""

VERDICTS = ("holds", "violated", "inconclusive", "vacuous", "error")
EVALUATED = frozenset({"holds", "violated", "inconclusive"})
"""Verdicts whose hypotheses held: the cells the tightness distribution is taken over."""

MAX_CATEGORIES = 12
"""A numeric axis with more distinct values than this is binned in a heat map (random designs)."""
HEATMAP_BINS = 10
DECADE_SPAN = 10.0
"""Positive values whose max/min exceeds this are shown on log axes."""
BOUNDARY_LISTED = 20
"""Hypothesis-boundary cells listed in the markdown summary (the HTML lists all)."""
ERROR_EXCERPT = 300
"""Characters of an error text kept in the markdown summary (the HTML keeps all of it)."""

MATPLOTLIB_HINT = "python -m pip install 'invbounds[plot]'"


class ReportError(ValueError):
    """A store the atlas cannot read, or a report option it cannot honour; the message says why."""


# ----------------------------------------------------------------------------------------------
# Reading the store (the only code that touches SQLite)
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class StoreContents:
    """The rows of a sweep store: ``sweeps`` and ``cells`` as column-name dictionaries."""

    path: str
    sweeps: list[dict[str, Any]]
    cells: list[dict[str, Any]]


def read_store(path: str | os.PathLike) -> StoreContents:
    """Read and validate a sweep store (schema version :data:`SCHEMA_VERSION`), read-only.

    Parameters
    ----------
    path : str or path-like
        The SQLite file written by a sweep.

    Returns
    -------
    StoreContents
        Every sweep row and every cell row, as dictionaries keyed by column name, cells in
        ``(sweep_id, cell_index)`` order.

    Raises
    ------
    ReportError
        Naming ``path`` and the reason when the file is missing, empty, not SQLite, damaged, SQLite
        without the ``meta`` table or with another ``meta.schema``, of a newer ``schema_version``,
        missing a required table or column, or holds no cell at all.
    """
    p = pathlib.Path(path)
    where = f"sweep store {str(path)!r}"
    if not p.exists():
        raise ReportError(f"{where}: no such file")
    if not p.is_file():
        raise ReportError(f"{where}: not a regular file")
    try:
        with open(p, "rb") as fh:
            head = fh.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise ReportError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    if not head:
        raise ReportError(f"{where}: empty file (0 bytes), not a sweep store")
    if head != SQLITE_HEADER:
        raise ReportError(f"{where}: not a SQLite database (its first bytes are {head[:16]!r})")
    try:
        # mode=ro: a report never changes a store, even one a sweep is still writing (WAL readers
        # do not block the writer).
        con = sqlite3.connect(p.resolve().as_uri() + "?mode=ro", uri=True, timeout=10.0)
    except sqlite3.Error as exc:
        raise ReportError(f"{where}: cannot be opened as SQLite ({exc})") from None
    try:
        con.row_factory = sqlite3.Row
        return _read_validated(con, str(path), where)
    except sqlite3.DatabaseError as exc:
        raise ReportError(f"{where}: damaged or unreadable SQLite database ({exc})") from None
    finally:
        con.close()


def _read_validated(con: sqlite3.Connection, path: str, where: str) -> StoreContents:
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "meta" not in tables:
        found = ", ".join(sorted(tables)) or "none"
        raise ReportError(f"{where}: SQLite database without a 'meta' table (tables: {found}); "
                          f"not an invbounds sweep store")
    meta = {r[0]: r[1] for r in con.execute("SELECT key, value FROM meta")}
    if meta.get("schema") != SCHEMA_NAME:
        raise ReportError(f"{where}: meta.schema is {meta.get('schema')!r}, expected {SCHEMA_NAME!r}; "
                          f"not an invbounds sweep store")
    raw_version = meta.get("schema_version")
    try:
        version = int(str(raw_version))
    except ValueError:
        raise ReportError(f"{where}: meta.schema_version is {raw_version!r}, not an integer") from None
    user_version = con.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION or user_version > SCHEMA_VERSION:
        newer = max(version, user_version)
        raise ReportError(f"{where}: schema_version {newer} is newer than this invbounds reads "
                          f"({SCHEMA_VERSION}); upgrade invbounds to report on it")
    if version < 1:
        raise ReportError(f"{where}: meta.schema_version {version} is not a valid version")
    for table, columns in REQUIRED_COLUMNS.items():
        if table not in tables:
            raise ReportError(f"{where}: the {table!r} table is missing")
        have = {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
        missing = [c for c in columns if c not in have]
        if missing:
            raise ReportError(f"{where}: the {table!r} table lacks columns {', '.join(missing)}")
    sweeps = [dict(r) for r in con.execute(
        f"SELECT {', '.join(REQUIRED_COLUMNS['sweeps'])} FROM sweeps ORDER BY created, sweep_id")]
    cells = [dict(r) for r in con.execute(
        f"SELECT {', '.join(REQUIRED_COLUMNS['cells'])} FROM cells ORDER BY sweep_id, cell_index")]
    if not cells:
        raise ReportError(f"{where}: the store holds no cells ({len(sweeps)} sweep(s) defined, "
                          f"none with a finished cell); nothing to report")
    return StoreContents(path=path, sweeps=sweeps, cells=cells)


# ----------------------------------------------------------------------------------------------
# The atlas model
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Cell:
    """One stored cell, with its JSON columns decoded."""

    sweep_id: str
    cell_key: str
    cell_index: int
    claim_id: str
    family: str
    kind: str
    params: dict[str, Any]
    instance: str | None
    status: str
    verdict: str
    """The verdict, or ``"error"`` for a cell with ``status='error'``."""
    margin: float | None
    tightness: float | None
    """``None`` when the store has none or a non-finite one."""
    hypotheses: dict[str, bool]
    failed_hypotheses: list[str]
    checks: list[dict[str, Any]]
    reproduce: str | None
    error: str | None
    package_version: str | None
    blas: str | None

    @property
    def is_error(self) -> bool:
        return self.status == "error" or self.verdict == "error"

    def failing_checks(self) -> list[dict[str, Any]]:
        """The stored checks that do not hold."""
        return [c for c in self.checks if isinstance(c, dict) and c.get("holds") is False]


@dataclasses.dataclass
class ClaimAtlas:
    """Everything the report says about one claim."""

    claim_id: str
    family: str
    kind: str
    cells: list[Cell]
    counts: dict[str, int]
    ratios: list[float]
    """Finite tightness of the cells whose hypotheses held (holds / violated / inconclusive)."""
    tightest: list[Cell]
    """The holding cells of the largest tightness (ties kept, in cell order)."""
    loosest: list[Cell]
    hypothesis_failures: dict[str, int]
    violations: list[Cell]
    boundary: list[Cell]
    """Vacuous cells whose recorded conclusion fails anyway (a failing check, or tightness > 1): the
    demonstrations that a hypothesis is needed."""
    errors: list[Cell]
    axes: dict[str, int]
    """Swept parameters of the claim (more than one distinct value) -> number of distinct values."""
    heat_axes: tuple[str, ...]
    """The one or two axes of the heat map; empty when there is none to draw."""
    heat_note: str
    package_versions: list[str]
    blas: list[str]
    sweep_ids: list[str]

    @property
    def n(self) -> int:
        return len(self.cells)

    @property
    def vacuous_fraction(self) -> float:
        return self.counts["vacuous"] / len(self.cells)

    @property
    def median(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    @property
    def min(self) -> float | None:
        return min(self.ratios) if self.ratios else None

    @property
    def max(self) -> float | None:
        return max(self.ratios) if self.ratios else None

    @property
    def mixed_environment(self) -> str:
        """A warning when the cells come from several package versions or BLAS libraries."""
        parts = []
        if len(self.package_versions) > 1:
            parts.append("package versions " + ", ".join(self.package_versions))
        if len(self.blas) > 1:
            parts.append("BLAS libraries " + ", ".join(self.blas))
        if not parts:
            return ""
        return "cells of this claim come from several " + " and ".join(parts) + \
            "; ratios may not be comparable across them"


@dataclasses.dataclass
class Atlas:
    """The whole report: store path, selected sweeps and one :class:`ClaimAtlas` per claim."""

    path: str
    sweeps: list[dict[str, Any]]
    claims: list[ClaimAtlas]
    """Sorted by family, then claim id."""
    axes_override: tuple[str, str] | None

    def families(self) -> list[tuple[str, list[ClaimAtlas]]]:
        out: dict[str, list[ClaimAtlas]] = {}
        for c in self.claims:
            out.setdefault(c.family, []).append(c)
        return list(out.items())


def _json_column(row: dict[str, Any], column: str, default, expect: type, path: str):
    text = row.get(column)
    if text is None or text == "":
        return default
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ReportError(f"sweep store {path!r}: cell {row.get('cell_key')!r} of claim "
                          f"{row.get('claim_id')!r} has invalid JSON in {column} ({exc})") from None
    if not isinstance(value, expect):
        raise ReportError(f"sweep store {path!r}: cell {row.get('cell_key')!r} of claim "
                          f"{row.get('claim_id')!r}: {column} is a {type(value).__name__}, "
                          f"expected a {expect.__name__}")
    return value


def _finite_or_none(x) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _cell(row: dict[str, Any], path: str) -> Cell:
    status = str(row["status"])
    verdict = row["verdict"]
    if status == "error" or verdict is None:
        verdict = "error"
    return Cell(
        sweep_id=str(row["sweep_id"]), cell_key=str(row["cell_key"]), cell_index=int(row["cell_index"]),
        claim_id=str(row["claim_id"]), family=str(row["family"]), kind=str(row["kind"]),
        params=_json_column(row, "params_json", {}, dict, path), instance=row["instance"],
        status=status, verdict=str(verdict),
        margin=_finite_or_none(row["margin"]), tightness=_finite_or_none(row["tightness"]),
        hypotheses=_json_column(row, "hypotheses_json", {}, dict, path),
        failed_hypotheses=[str(h) for h in _json_column(row, "failed_hypotheses_json", [], list, path)],
        checks=_json_column(row, "checks_json", [], list, path),
        reproduce=row["reproduce"] or (f"invbounds reproduce {row['claim_id']} \"{row['instance']}\""
                                       if row["instance"] else None),
        error=row["error"], package_version=row["package_version"], blas=row["blas"])


def _select_sweeps(contents: StoreContents, sweeps: Sequence[str] | None) -> set[str]:
    ids = [s["sweep_id"] for s in contents.sweeps]
    ids += sorted({c["sweep_id"] for c in contents.cells} - set(ids))
    if not sweeps:
        return set(ids)
    chosen: set[str] = set()
    for want in sweeps:
        hits = [i for i in ids if i == want]
        if not hits:  # a name may be shared by several sweeps (one TOML edited): take them all
            hits = [s["sweep_id"] for s in contents.sweeps if s["name"] == want]
        if not hits:
            prefixed = [i for i in ids if i.startswith(want)]
            if len(prefixed) > 1:
                raise ReportError(f"--sweep: {want!r} is a prefix of several sweep ids "
                                  f"({', '.join(prefixed)}) in {contents.path!r}; give more digits")
            hits = prefixed
        if not hits:
            known = ", ".join(f"{s['sweep_id']} ({s['name']})" for s in contents.sweeps) or "none"
            raise ReportError(f"--sweep: {want!r} is not a sweep id, id prefix or sweep name in "
                              f"{contents.path!r}; sweeps: {known}")
        chosen.update(hits)
    return chosen


def _value_key(v) -> str:
    return json.dumps(v, sort_keys=True, separators=(",", ":"))


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _claim_axes(cells: Sequence[Cell]) -> dict[str, int]:
    distinct: dict[str, set[str]] = {}
    for c in cells:
        for k, v in c.params.items():
            distinct.setdefault(k, set()).add(_value_key(v))
    return {k: len(v) for k, v in sorted(distinct.items()) if len(v) > 1}


def _choose_heat_axes(axes: dict[str, int], override: tuple[str, str] | None) -> tuple[tuple[str, ...], str]:
    if override is not None:
        missing = [a for a in override if a not in axes]
        if missing:
            have = ", ".join(axes) or "none"
            return (), (f"no heat map: --axes {','.join(override)} names {', '.join(missing)}, "
                        f"not swept for this claim (its axes: {have})")
        return override, ""
    if not axes:
        return (), "no heat map: every cell of this claim has the same parameters"
    # Most distinct values first; ties by name, so the choice does not depend on row order.
    ranked = sorted(axes, key=lambda a: (-axes[a], a))
    return tuple(ranked[:2]), ""


def build_atlas(db_path: str | os.PathLike, axes: Sequence[str] | None = None,
                sweeps: Sequence[str] | None = None) -> Atlas:
    """Read a sweep store and compute the per-claim atlas.

    Parameters
    ----------
    db_path : str or path-like
        The sweep store.
    axes : sequence of two str, optional
        The heat-map axes for every claim; default: per claim, the two swept parameters with the
        most distinct values.
    sweeps : sequence of str, optional
        Sweep ids (or unique id prefixes, or sweep names) to report on; default: every sweep.

    Returns
    -------
    Atlas

    Raises
    ------
    ReportError
        For an unreadable store (see :func:`read_store`), an unknown sweep, ``axes`` that are not
        two distinct names or that no claim sweeps, or a selection without cells.
    """
    override: tuple[str, str] | None = None
    if axes is not None:
        names = tuple(str(a).strip() for a in axes)
        if len(names) != 2 or not all(names) or names[0] == names[1]:
            raise ReportError(f"--axes: expected two distinct axis names X,Y, got {','.join(names)!r}")
        override = (names[0], names[1])
    contents = read_store(db_path)
    chosen = _select_sweeps(contents, sweeps)
    cells = [_cell(r, contents.path) for r in contents.cells if r["sweep_id"] in chosen]
    if not cells:
        raise ReportError(f"sweep store {contents.path!r}: the selected sweep(s) "
                          f"{', '.join(sorted(chosen))} hold no cells; nothing to report")
    by_claim: dict[str, list[Cell]] = {}
    for c in cells:
        by_claim.setdefault(c.claim_id, []).append(c)
    claims = [_claim_atlas(cid, cs, override) for cid, cs in by_claim.items()]
    claims.sort(key=lambda a: (a.family, a.claim_id))
    if override is not None and not any(a.heat_axes for a in claims):
        swept = sorted({ax for a in claims for ax in a.axes})
        raise ReportError(f"--axes: no claim sweeps both {override[0]!r} and {override[1]!r}; "
                          f"swept axes: {', '.join(swept) or 'none'}")
    selected = [s for s in contents.sweeps if s["sweep_id"] in chosen]
    return Atlas(path=contents.path, sweeps=selected, claims=claims, axes_override=override)


def _claim_atlas(claim_id: str, cells: list[Cell], override: tuple[str, str] | None) -> ClaimAtlas:
    counts = {v: 0 for v in VERDICTS}
    for c in cells:
        counts[c.verdict if c.verdict in counts else "error"] += 1
    ratios = [c.tightness for c in cells if c.verdict in EVALUATED and c.tightness is not None]
    holding = [c for c in cells if c.verdict == "holds" and c.tightness is not None]
    tightest = loosest = []
    if holding:
        hi = max(c.tightness for c in holding)
        lo = min(c.tightness for c in holding)
        tightest = [c for c in holding if c.tightness == hi]
        loosest = [c for c in holding if c.tightness == lo]
    failures: Counter[str] = Counter(h for c in cells for h in c.failed_hypotheses)
    axes = _claim_axes(cells)
    heat_axes, note = _choose_heat_axes(axes, override)
    first = cells[0]
    return ClaimAtlas(
        claim_id=claim_id, family=first.family, kind=first.kind, cells=cells, counts=counts,
        ratios=ratios, tightest=tightest, loosest=loosest,
        hypothesis_failures=dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))),
        violations=[c for c in cells if c.verdict == "violated"],
        boundary=[c for c in cells if c.verdict == "vacuous"
                  and (c.failing_checks() or (c.tightness is not None and c.tightness > 1))],
        errors=[c for c in cells if c.is_error], axes=axes, heat_axes=heat_axes, heat_note=note,
        package_versions=sorted({c.package_version for c in cells if c.package_version}),
        blas=sorted({c.blas for c in cells if c.blas}),
        sweep_ids=sorted({c.sweep_id for c in cells}))


# ----------------------------------------------------------------------------------------------
# Heat-map grids (pure: the figures draw them, the tests check them)
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class AxisScale:
    """The categorical ticks of one heat-map axis: ``labels[i]`` for the values ``index`` maps to i."""

    name: str
    labels: list[str]
    binned: bool
    log: bool
    _index: dict[str, int]
    _edges: list[float] | None

    def index(self, value) -> int:
        if self._edges is not None and _is_number(value):
            edges = self._edges
            for i in range(len(edges) - 1):
                if value <= edges[i + 1]:
                    return i
            return len(edges) - 2
        return self._index[_value_key(value)]


def fmt_value(v) -> str:
    """A parameter value as text: numbers with ``%g``, the rest as JSON."""
    if _is_number(v):
        return f"{v:g}"
    if isinstance(v, str):
        return v
    return _value_key(v)


def _spans_decades(values: Iterable[float]) -> bool:
    vals = list(values)
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) > DECADE_SPAN


def axis_scale(name: str, values: Sequence[Any]) -> AxisScale:
    """Categorical ticks for the values one axis takes: sorted, numbers before other values.

    A numeric axis of more than :data:`MAX_CATEGORIES` distinct values is binned into
    :data:`HEATMAP_BINS` ranges, log-spaced when its values are positive and span decades.
    """
    distinct = {_value_key(v): v for v in values}
    numeric = [v for v in distinct.values() if _is_number(v)]
    log = _spans_decades(numeric) and len(numeric) == len(distinct)
    if len(distinct) > MAX_CATEGORIES and len(numeric) == len(distinct):
        lo, hi = min(numeric), max(numeric)
        if log:
            edges = [lo * (hi / lo) ** (i / HEATMAP_BINS) for i in range(HEATMAP_BINS + 1)]
        else:
            edges = [lo + (hi - lo) * i / HEATMAP_BINS for i in range(HEATMAP_BINS + 1)]
        labels = [f"{edges[i]:.3g}–{edges[i + 1]:.3g}" for i in range(HEATMAP_BINS)]
        return AxisScale(name, labels, True, log, {}, edges)
    ordered = sorted(distinct.values(), key=lambda v: (0, v, "") if _is_number(v)
                     else (1, 0, _value_key(v)))
    return AxisScale(name, [fmt_value(v) for v in ordered], False, log,
                     {_value_key(v): i for i, v in enumerate(ordered)}, None)


@dataclasses.dataclass
class HeatGrid:
    """A heat map: per (row y, column x), the max tightness and what the cells there were."""

    x: AxisScale
    y: AxisScale | None
    value: list[list[float | None]]
    """``value[y][x]``: the largest tightness over the evaluated cells there (``None``: none)."""
    vacuous_value: list[list[float | None]]
    """The largest tightness recorded by the vacuous cells there (what dropping a hypothesis gives)."""
    cells: list[list[int]]
    vacuous: list[list[int]]
    violated: list[list[int]]
    errors: list[list[int]]
    verdicts: list[list[str | None]]
    """The worst verdict there (violated > error > inconclusive > holds > vacuous), for claims
    without ratios."""


_SEVERITY = {"violated": 4, "error": 3, "inconclusive": 2, "holds": 1, "vacuous": 0}


def heat_grid(claim: ClaimAtlas, axes: Sequence[str] | None = None) -> HeatGrid:
    """The heat-map grid of ``claim`` over ``axes`` (default: ``claim.heat_axes``).

    Each grid cell aggregates the store cells with those two parameter values over every other
    parameter: the value is the max tightness over the evaluated ones.

    Raises
    ------
    ValueError
        If ``axes`` is empty or names a parameter the claim does not sweep.
    """
    names = tuple(axes if axes is not None else claim.heat_axes)
    if not names or len(names) > 2:
        raise ValueError(f"axes: expected one or two axis names, got {names!r}")
    for a in names:
        if a not in claim.axes:
            raise ValueError(f"axes: {a!r} is not swept for claim {claim.claim_id} "
                             f"(its axes: {', '.join(claim.axes) or 'none'})")
    xs = axis_scale(names[0], [c.params.get(names[0]) for c in claim.cells])
    ys = axis_scale(names[1], [c.params.get(names[1]) for c in claim.cells]) if len(names) == 2 else None
    nx, ny = len(xs.labels), (len(ys.labels) if ys else 1)

    def grid(fill):
        return [[fill for _ in range(nx)] for _ in range(ny)]

    g = HeatGrid(xs, ys, grid(None), grid(None), grid(0), grid(0), grid(0), grid(0), grid(None))
    for c in claim.cells:
        i = xs.index(c.params.get(names[0]))
        j = ys.index(c.params.get(names[1])) if ys else 0
        g.cells[j][i] += 1
        g.vacuous[j][i] += c.verdict == "vacuous"
        g.violated[j][i] += c.verdict == "violated"
        g.errors[j][i] += c.is_error
        worst = g.verdicts[j][i]
        if worst is None or _SEVERITY.get(c.verdict, 3) > _SEVERITY.get(worst, 3):
            g.verdicts[j][i] = c.verdict
        if c.tightness is not None and (c.verdict in EVALUATED or c.verdict == "vacuous"):
            target = g.value if c.verdict in EVALUATED else g.vacuous_value
            old = target[j][i]
            target[j][i] = c.tightness if old is None else max(old, c.tightness)
    return g


def _shown_value(g: HeatGrid, j: int, i: int) -> float | None:
    """The colour of a heat-map cell: the evaluated cells' ratio, else the vacuous cells' one."""
    v = g.value[j][i]
    return v if v is not None else g.vacuous_value[j][i]


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------


def _load_matplotlib():
    """``(Figure, FigureCanvasAgg, colormaps, colors, Patch, Line2D)``, or ``None`` without it."""
    try:
        from matplotlib import colormaps, colors
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch, Rectangle
        from matplotlib.ticker import NullFormatter
    except ImportError:
        return None
    return {"Figure": Figure, "Canvas": FigureCanvasAgg, "colormaps": colormaps, "colors": colors,
            "Patch": Patch, "Line2D": Line2D, "Rectangle": Rectangle, "NullFormatter": NullFormatter}


def _png(fig, mpl) -> bytes:
    mpl["Canvas"](fig)
    buf = io.BytesIO()
    # No Software/date metadata: the same store gives byte-identical figures.
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


VERDICT_COLORS = {"holds": "#3b75af", "violated": "#d62728", "inconclusive": "#ff9f1c",
                  "vacuous": "#b0b0b0", "error": "#222222"}


def histogram_png(claim: ClaimAtlas, mpl) -> tuple[bytes, str] | None:
    """The tightness histogram of ``claim`` as PNG bytes and its caption (``None`` without ratios)."""
    import numpy as np

    if not claim.ratios:
        return None
    by_verdict = {v: [c.tightness for c in claim.cells if c.verdict == v and c.tightness is not None]
                  for v in ("holds", "inconclusive", "violated")}
    values = np.array(claim.ratios)
    span = np.append(values, 1.0)  # the bound itself, so a loose bound shows how far off it is
    log = _spans_decades(span)
    lo, hi = float(span.min()), float(span.max())
    nbins = int(min(30, max(6, math.ceil(math.sqrt(len(values))) + 2)))
    if log:
        edges = np.geomspace(lo / 1.15, hi * 1.15, nbins + 1)
    else:
        pad = 0.05 * (hi - lo) if hi > lo else 0.05 * max(abs(hi), 1.0)
        edges = np.linspace(lo - pad, hi + pad, nbins + 1)
    fig = mpl["Figure"](figsize=(6.0, 3.2))
    ax = fig.add_subplot()
    stacks = [(v, by_verdict[v]) for v in by_verdict if by_verdict[v]]
    ax.hist([s for _, s in stacks], bins=edges, stacked=True,
            color=[VERDICT_COLORS[v] for v, _ in stacks],
            label=[f"{v} ({len(s)})" for v, s in stacks], edgecolor="white", linewidth=0.5)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1, label="bound attained (1)")
    if log:
        ax.set_xscale("log")
    ax.set_xlabel("tightness = observed / bound")
    ax.set_ylabel("cells")
    ax.set_title(claim.claim_id, fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    caption = (f"Tightness of {claim.claim_id} over {len(values)} cell(s) whose hypotheses hold "
               f"(vacuous and error cells excluded), {'log' if log else 'linear'} x axis; the dashed "
               f"line is the bound.")
    return _png(fig, mpl), caption


def heatmap_png(claim: ClaimAtlas, mpl) -> tuple[bytes, str] | None:
    """The heat map of ``claim`` over its heat axes as PNG bytes and caption (``None``: no axes)."""
    import numpy as np

    if not claim.heat_axes:
        return None
    g = heat_grid(claim)
    nx, ny = len(g.x.labels), len(g.value)
    shown = [[_shown_value(g, j, i) for i in range(nx)] for j in range(ny)]
    by_ratio = any(v is not None for row in shown for v in row)
    fig = mpl["Figure"](figsize=(min(2.5 + 0.55 * nx, 12.0), min(2.2 + 0.45 * ny, 10.0)))
    ax = fig.add_subplot()
    colors = mpl["colors"]
    if by_ratio:
        data = np.ma.masked_invalid(np.array([[np.nan if v is None else v for v in row]
                                              for row in shown], dtype=float))
        present = data.compressed()
        norm = colors.LogNorm(present.min(), present.max()) if _spans_decades(present) and \
            present.max() > present.min() else colors.Normalize(present.min(), present.max())
        if present.max() == present.min():
            norm = colors.Normalize(present.min() - 0.5 * abs(present.min()) - 1e-12,
                                    present.max() + 0.5 * abs(present.max()) + 1e-12)
        # Masked = no cell at all (white); a cell without a ratio is drawn grey below.
        cmap = mpl["colormaps"]["viridis"].with_extremes(bad="white")
        mesh = ax.pcolormesh(np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5, data, cmap=cmap,
                             norm=norm, edgecolors="white", linewidth=0.5)
        bar = fig.colorbar(mesh, ax=ax, label="max tightness", fraction=0.05, pad=0.02)
        if isinstance(norm, colors.LogNorm):
            # Five labelled ticks over the range: a log bar spanning one or two decades otherwise
            # gets either a single label or a crowd of minor ones.
            ticks = np.geomspace(norm.vmin, norm.vmax, 5)
            bar.set_ticks(ticks, labels=[f"{t:.2g}" for t in ticks])
            bar.ax.yaxis.set_minor_formatter(mpl["NullFormatter"]())
    else:
        order = ["holds", "inconclusive", "vacuous", "violated", "error"]
        codes = np.array([[np.nan if v is None else order.index(v) for v in row] for row in g.verdicts],
                         dtype=float)
        cmap = colors.ListedColormap([VERDICT_COLORS[v] for v in order]).with_extremes(bad="white")
        ax.pcolormesh(np.arange(nx + 1) - 0.5, np.arange(ny + 1) - 0.5, np.ma.masked_invalid(codes),
                      cmap=cmap, vmin=-0.5, vmax=len(order) - 0.5, edgecolors="white", linewidth=0.5)
    annotate = nx * ny <= 64
    for j in range(ny):
        for i in range(nx):
            if g.cells[j][i] == 0:
                continue
            if by_ratio and shown[j][i] is None:
                ax.add_patch(mpl["Rectangle"]((i - 0.5, j - 0.5), 1, 1, facecolor="#d9d9d9",
                                              edgecolor="white", linewidth=0.5))
            if g.vacuous[j][i]:
                ax.add_patch(mpl["Rectangle"]((i - 0.5, j - 0.5), 1, 1, fill=False, hatch="///",
                                              edgecolor="#555555", linewidth=0))
            if g.violated[j][i]:
                ax.plot([i], [j], marker="x", color="#d62728", markersize=14, markeredgewidth=3)
            elif g.errors[j][i]:
                ax.text(i, j, "!", ha="center", va="center", color="#d62728", fontsize=12,
                        fontweight="bold")
            elif annotate and by_ratio and shown[j][i] is not None:
                v = shown[j][i]
                ax.text(i, j, f"{v:.2g}", ha="center", va="center", fontsize=7,
                        color="white" if norm(v) < 0.6 else "black")
    ax.set_xticks(range(nx), g.x.labels, rotation=45 if nx > 6 or g.x.binned else 0,
                  ha="right" if nx > 6 or g.x.binned else "center", fontsize=8)
    ax.set_xlabel(g.x.name + (" (log-spaced)" if g.x.log else ""))
    if g.y is not None:
        ax.set_yticks(range(ny), g.y.labels, fontsize=8)
        ax.set_ylabel(g.y.name + (" (log-spaced)" if g.y.log else ""))
    else:
        ax.set_yticks([])
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    ax.set_title(claim.claim_id, fontsize=9)
    handles = [mpl["Patch"](facecolor="white", edgecolor="#555555", hatch="///", label="vacuous"),
               mpl["Line2D"]([], [], marker="x", color="#d62728", linestyle="", markersize=8,
                             markeredgewidth=2, label="violated")]
    if any(g.errors[j][i] for j in range(ny) for i in range(nx)):
        handles.append(mpl["Line2D"]([], [], marker="$!$", color="#d62728", linestyle="",
                                     label="error"))
    if not by_ratio:
        handles += [mpl["Patch"](facecolor=VERDICT_COLORS[v], label=v)
                    for v in ("holds", "inconclusive")]
    fig.legend(handles=handles, fontsize=7, loc="lower center", ncol=len(handles), frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    others = [a for a in claim.axes if a not in claim.heat_axes]
    over = f"the max over {', '.join(others)}" if others else "one cell each"
    what = "colour = tightness, " + over if by_ratio else \
        "no cell records a tightness ratio, so colour = the worst verdict" + (
            f" over {', '.join(others)}" if others else "")
    binned = [s.name for s in (g.x, g.y) if s is not None and s.binned]
    caption = (f"{claim.claim_id} over {' x '.join(claim.heat_axes)}: {what}; hatched: some cell "
               f"there is vacuous (coloured by the ratio it recorded when no cell there holds its "
               f"hypotheses); red X: some cell there is violated; !: an error; grey: cells without a ratio; "
               f"white: no cell."
               + (f" Binned axes: {', '.join(binned)}." if binned else ""))
    return _png(fig, mpl), caption


@dataclasses.dataclass
class FigureFile:
    """One drawn figure: file name under ``figures/``, PNG bytes and caption."""

    name: str
    png: bytes
    caption: str


def _safe_name(claim_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", claim_id)


def draw_figures(atlas: Atlas) -> dict[str, list[FigureFile]] | None:
    """The histogram and heat map of every claim, by claim id; ``None`` without matplotlib."""
    mpl = _load_matplotlib()
    if mpl is None:
        return None
    out: dict[str, list[FigureFile]] = {}
    used: set[str] = set()
    for claim in atlas.claims:
        base = _safe_name(claim.claim_id)
        while base in used:
            base += "_"
        used.add(base)
        figs = []
        for suffix, draw in (("tightness", histogram_png), ("heatmap", heatmap_png)):
            res = draw(claim, mpl)
            if res is not None:
                figs.append(FigureFile(f"{base}_{suffix}.png", res[0], res[1]))
        out[claim.claim_id] = figs
    return out


# ----------------------------------------------------------------------------------------------
# Text helpers
# ----------------------------------------------------------------------------------------------


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None:
        return "—"
    return f"{x:.{digits}g}"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={fmt_value(v)}" for k, v in sorted(params.items())) or "(no swept parameters)"


def _utc(t) -> str:
    try:
        return datetime.datetime.fromtimestamp(float(t), tz=datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return str(t)


def _check_text(check: dict[str, Any]) -> str:
    """One stored check, as text: the fields a reader needs to see why it failed."""
    kind = check.get("type")
    label = check.get("label", "?")
    if kind == "comparison" or "observed" in check:
        return (f"{label}: observed {_num(check.get('observed'))} > bound {_num(check.get('bound'))} "
                f"+ allowance {_num(check.get('allowance'))} (margin {_num(check.get('margin'))})")
    if kind == "fit":
        ci = check.get("ci95") or [None, None]
        return (f"{label}: exponent {_num(check.get('exponent'))}, 95% CI [{_num(ci[0])}, "
                f"{_num(ci[1])}], window {check.get('window')}, R^2 {_num(check.get('r_squared'))}")
    if kind == "probability":
        iv = check.get("interval") or [None, None]
        return (f"{label}: {check.get('successes')}/{check.get('trials')} successes, estimate "
                f"{_num(check.get('estimate'))}, CI [{_num(iv[0])}, {_num(iv[1])}] vs proven "
                f"{_num(check.get('proven'))}")
    return f"{label}: " + json.dumps(check, sort_keys=True)


def _boundary_text(c: Cell) -> str:
    checks = c.failing_checks()
    if checks:
        return "; ".join(_check_text(k) for k in checks)
    return f"recorded tightness {_fmt(c.tightness)} > 1"


def _num(x) -> str:
    if isinstance(x, bool) or x is None:
        return str(x)
    if isinstance(x, int | float):
        return f"{x:.6g}"
    return str(x)  # report._finite stores inf/nan as strings


def _md(text: str) -> str:
    """Markdown text outside code spans: one line, pipes escaped, no raw HTML.

    Only a ``<`` that could open a tag, a comment or a declaration is escaped, so ``a <= b`` stays
    readable in the raw file.
    """
    text = " ".join(str(text).split())
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", text).replace("|", "\\|")


def _md_code(text: str) -> str:
    text = " ".join(str(text).split())
    fence = "`"
    while fence in text:
        fence += "`"
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _h(text) -> str:
    return html.escape(str(text), quote=True)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x in (0.0, 1.0) or x >= 0.01 else f"{100 * x:.2g}%"


def _sweep_rows(atlas: Atlas) -> list[dict[str, str]]:
    counts = Counter(c.sweep_id for a in atlas.claims for c in a.cells)
    return [{"sweep": s["name"], "id": s["sweep_id"], "created": _utc(s["created"]),
             "cells": str(counts.get(s["sweep_id"], 0)), "package": s["package_version"] or "—",
             "numpy": s["numpy"] or "—", "blas": s["blas"] or "—"} for s in atlas.sweeps]


SUMMARY_COLUMNS = ("claim", "family", "kind", "cells", "holds", "violated", "vacuous", "inconclusive",
                   "error", "median tightness", "max tightness")


def _summary_row(a: ClaimAtlas) -> list[str]:
    return [a.claim_id, a.family, a.kind, str(a.n), str(a.counts["holds"]), str(a.counts["violated"]),
            str(a.counts["vacuous"]), str(a.counts["inconclusive"]), str(a.counts["error"]),
            _fmt(a.median, 3), _fmt(a.max, 3)]


DEFINITION = ("Tightness = observed / bound of the decisive comparison of a cell: 1 means the bound "
              "is attained, above 1 that it is violated, near 0 that it is loose.")


# ----------------------------------------------------------------------------------------------
# Markdown
# ----------------------------------------------------------------------------------------------


def render_markdown(atlas: Atlas, figures: dict[str, list[FigureFile]] | None) -> str:
    """The markdown summary (figures linked from ``figures/``; ``None``: drawn without them)."""
    out = ["# Tightness atlas", "",
           f"Sweep store `{atlas.path}`: {len(atlas.claims)} claims, "
           f"{sum(a.n for a in atlas.claims)} cells. {DEFINITION}", ""]
    if figures is None:
        out += [f"> **No figures:** matplotlib is not installed ({MATPLOTLIB_HINT}).", ""]
    out += ["## Run metadata", "", "| sweep | id | created | cells | invbounds | numpy | BLAS |",
            "| --- | --- | --- | ---: | --- | --- | --- |"]
    for r in _sweep_rows(atlas):
        out.append("| " + " | ".join(_md(r[k]) for k in ("sweep", "id", "created", "cells", "package",
                                                         "numpy", "blas")) + " |")
    mixed = [a for a in atlas.claims if a.mixed_environment]
    if mixed:
        out += ["", f"> **Note:** {len(mixed)} claim(s) mix package versions or BLAS libraries "
                    f"across cells: {', '.join(a.claim_id for a in mixed)}."]
    out += ["", "## Summary", "", "| " + " | ".join(SUMMARY_COLUMNS) + " |",
            "| --- | --- | --- | " + " | ".join(["---:"] * (len(SUMMARY_COLUMNS) - 3)) + " |"]
    out += ["| " + " | ".join(_md(x) for x in _summary_row(a)) + " |" for a in atlas.claims]
    for family, claims in atlas.families():
        out += ["", f"## Family `{family}`"]
        for a in claims:
            out += ["", *_claim_markdown(a, figures)]
    return "\n".join(out) + "\n"


def _claim_markdown(a: ClaimAtlas, figures: dict[str, list[FigureFile]] | None) -> list[str]:
    out = [f"### {a.claim_id}", "",
           f"{a.kind}; {a.n} cells: " + ", ".join(f"{a.counts[v]} {v}" for v in VERDICTS) + "."]
    if a.mixed_environment:
        out += ["", f"> **Note:** {a.mixed_environment}."]
    out.append("")
    if a.ratios:
        out.append(f"Tightness over {len(a.ratios)} cells whose hypotheses hold: min {_fmt(a.min)}, "
                   f"median {_fmt(a.median)}, max {_fmt(a.max)}.")
    else:
        out.append("No cell whose hypotheses hold records a tightness ratio (fits and probability "
                   "checks have none).")
    for label, group in (("Tightest", a.tightest), ("Loosest", a.loosest)):
        if group:
            c = group[0]
            ties = f" ({len(group)} cells tie; the first shown)" if len(group) > 1 else ""
            out.append(f"- {label} (tightness {_fmt(c.tightness)}){ties}: {_md(_params_text(c.params))}"
                       f" — {_md_code(c.reproduce or 'no reproduce command stored')}")
    out += ["", f"Vacuous: {a.counts['vacuous']} of {a.n} cells ({_pct(a.vacuous_fraction)})."]
    if a.hypothesis_failures:
        out.append("Failed hypotheses: " + ", ".join(f"`{h}` ×{n}" for h, n in a.hypothesis_failures.items())
                   + ".")
    if a.violations:
        out += ["", f"**Violations ({len(a.violations)}):**"]
        for c in a.violations:
            checks = c.failing_checks()
            why = "; ".join(_check_text(k) for k in checks) if checks else "no failing check recorded"
            out.append(f"- {_md(_params_text(c.params))} (tightness {_fmt(c.tightness)}): {_md(why)}. "
                       f"Reproduce: {_md_code(c.reproduce or 'no reproduce command stored')}")
    if a.boundary:
        out += ["", f"**Hypothesis boundary ({len(a.boundary)}):** vacuous cells whose conclusion fails "
                    "anyway, so the failed hypothesis is needed there:"]
        for c in a.boundary[:BOUNDARY_LISTED]:
            out.append(f"- {_md(_params_text(c.params))} (failed: {_md(', '.join(c.failed_hypotheses))};"
                       f" tightness {_fmt(c.tightness)}): {_md(_boundary_text(c))}. "
                       f"Reproduce: {_md_code(c.reproduce or 'no reproduce command stored')}")
        if len(a.boundary) > BOUNDARY_LISTED:
            out.append(f"- … and {len(a.boundary) - BOUNDARY_LISTED} more in report.html")
    if a.errors:
        out += ["", f"**Errors ({len(a.errors)}):**"]
        for c in a.errors:
            text = " ".join((c.error or "no error text stored").split())
            if len(text) > ERROR_EXCERPT:
                text = text[:ERROR_EXCERPT] + "… (full text in report.html)"
            where = "status=error" if c.status == "error" else "verdict=error"
            out.append(f"- {_md(_params_text(c.params))} ({where}): {_md_code(text)}"
                       + (f" Reproduce: {_md_code(c.reproduce)}" if c.reproduce else ""))
    if figures is not None:
        for f in figures.get(a.claim_id, []):
            out += ["", f"![{_md(f.caption)}](figures/{f.name})"]
        if a.heat_note:
            out += ["", a.heat_note + "."]
    return out


def readme_excerpt(db_path: str | os.PathLike, max_claims: int = 6, *,
                   sweeps: Sequence[str] | None = None) -> str:
    """A screenshot-sized markdown table of a sweep store, for a README.

    Claims with violations or errors come first, then the others in turn across families, up to
    ``max_claims`` rows; a last line counts the rest.

    Parameters
    ----------
    db_path : str or path-like
        The sweep store.
    max_claims : int
        Rows of the table, ``>= 1``.
    sweeps : sequence of str, optional
        As in :func:`build_atlas`.

    Returns
    -------
    str
        Markdown: one header line, the table, and a line for the claims left out.

    Raises
    ------
    ValueError
        If ``max_claims`` is not an integer ``>= 1``; :class:`ReportError` for the store.
    """
    if isinstance(max_claims, bool) or not isinstance(max_claims, int) or max_claims < 1:
        raise ValueError(f"max_claims: expected an integer >= 1, got {max_claims!r}")
    atlas = build_atlas(db_path, sweeps=sweeps)
    flagged = [a for a in atlas.claims if a.counts["violated"] or a.counts["error"]]
    rest = {f: [a for a in cs if a not in flagged] for f, cs in atlas.families()}
    chosen = list(flagged)
    while any(rest.values()):
        for f in rest:
            if rest[f]:
                chosen.append(rest[f].pop(0))
    chosen = chosen[:max_claims]
    names = ", ".join(f"`{s['name']}`" for s in atlas.sweeps) or "(unnamed)"
    versions = sorted({v for a in atlas.claims for v in a.package_versions})
    lines = [f"**Tightness atlas** of sweep(s) {names}"
             + (f" (invbounds {', '.join(versions)})" if versions else "")
             + f": {sum(a.n for a in atlas.claims)} cells, {len(atlas.claims)} claims. "
               "Tightness = observed / bound (1 = attained).", "",
             "| claim | cells | holds | violated | vacuous | error | median tightness | max tightness |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for a in chosen:
        lines.append(f"| `{a.claim_id}` | {a.n} | {a.counts['holds']} | {a.counts['violated']} | "
                     f"{a.counts['vacuous']} | {a.counts['error']} | {_fmt(a.median, 3)} | "
                     f"{_fmt(a.max, 3)} |")
    left = len(atlas.claims) - len(chosen)
    if left:
        lines += ["", f"… and {left} more claim(s) in the full report."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------------------

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:2em auto;max-width:72em;
 padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.8em;font-family:ui-monospace,Menlo,Consolas,monospace}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
code,pre{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.88em}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.note{background:#fff6d6;border-left:4px solid #e0b000;padding:.4em .8em;margin:.6em 0}
.bad{color:#b00020;font-weight:bold}.muted{color:#666}
figure{display:inline-block;margin:.5em 1em .5em 0;vertical-align:top;max-width:100%}
figure img{max-width:100%;border:1px solid #ddd}figcaption{font-size:.8em;color:#555;max-width:40em}
section.claim{border-top:1px solid #eee}
"""


def render_html(atlas: Atlas, figures: dict[str, list[FigureFile]] | None) -> str:
    """The self-contained HTML report: every text escaped, every figure a PNG data URI."""
    total = sum(a.n for a in atlas.claims)
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           "<title>invbounds tightness atlas</title>", f"<style>{CSS}</style>", "</head>", "<body>",
           "<h1>Tightness atlas</h1>",
           f"<p>Sweep store <code>{_h(atlas.path)}</code>: {len(atlas.claims)} claims, {total} cells. "
           f"{_h(DEFINITION)}</p>"]
    if figures is None:
        out.append(f'<p class="note"><b>No figures:</b> matplotlib is not installed '
                   f"(<code>{_h(MATPLOTLIB_HINT)}</code>).</p>")
    out += ["<h2>Run metadata</h2>", "<table>", "<tr><th>sweep</th><th>id</th><th>created</th>"
            "<th>cells</th><th>invbounds</th><th>numpy</th><th>BLAS</th></tr>"]
    for r in _sweep_rows(atlas):
        out.append("<tr>" + "".join(f'<td class="num">{_h(r[k])}</td>' if k == "cells" else
                                    f"<td>{_h(r[k])}</td>" for k in ("sweep", "id", "created", "cells",
                                                                      "package", "numpy", "blas"))
                   + "</tr>")
    out.append("</table>")
    mixed = [a for a in atlas.claims if a.mixed_environment]
    if mixed:
        out.append(f'<p class="note"><b>Note:</b> {len(mixed)} claim(s) mix package versions or BLAS '
                   f"libraries across cells: "
                   + ", ".join(f'<a href="#{_anchor(a)}">{_h(a.claim_id)}</a>' for a in mixed) + ".</p>")
    out += ["<h2>Summary</h2>", "<table>",
            "<tr>" + "".join(f"<th>{_h(c)}</th>" for c in SUMMARY_COLUMNS) + "</tr>"]
    for a in atlas.claims:
        row = _summary_row(a)
        cells = [f'<td><a href="#{_anchor(a)}"><code>{_h(row[0])}</code></a></td>',
                 f"<td>{_h(row[1])}</td>", f"<td>{_h(row[2])}</td>"]
        for k, x in enumerate(row[3:], start=3):
            cls = "num bad" if SUMMARY_COLUMNS[k] in ("violated", "error") and x != "0" else "num"
            cells.append(f'<td class="{cls}">{_h(x)}</td>')
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    for family, claims in atlas.families():
        out.append(f"<h2>Family <code>{_h(family)}</code></h2>")
        for a in claims:
            out += _claim_html(a, figures)
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


def _anchor(a: ClaimAtlas) -> str:
    return _h("claim-" + _safe_name(a.claim_id))


def _reproduce_html(c: Cell) -> str:
    if not c.reproduce:
        return '<span class="muted">no reproduce command stored</span>'
    return f"<code>{_h(c.reproduce)}</code>"


def _claim_html(a: ClaimAtlas, figures: dict[str, list[FigureFile]] | None) -> list[str]:
    out = [f'<section class="claim" id="{_anchor(a)}">', f"<h3>{_h(a.claim_id)}</h3>",
           f"<p>{_h(a.kind)}; {a.n} cells: "
           + ", ".join(f'<span class="bad">{a.counts[v]} {v}</span>' if v in ("violated", "error")
                       and a.counts[v] else f"{a.counts[v]} {v}" for v in VERDICTS) + ".</p>"]
    if a.mixed_environment:
        out.append(f'<p class="note"><b>Note:</b> {_h(a.mixed_environment)}.</p>')
    if a.ratios:
        out.append(f"<p>Tightness over {len(a.ratios)} cells whose hypotheses hold: "
                   f"min {_fmt(a.min)}, median {_fmt(a.median)}, max {_fmt(a.max)}.</p>")
    else:
        out.append("<p>No cell whose hypotheses hold records a tightness ratio (fits and probability "
                   "checks have none).</p>")
    if a.tightest or a.loosest:
        out += ["<table>", "<tr><th></th><th>tightness</th><th>parameters</th><th>reproduce</th></tr>"]
        for label, group in (("tightest", a.tightest), ("loosest", a.loosest)):
            if group:
                c = group[0]
                ties = f' <span class="muted">({len(group)} cells tie)</span>' if len(group) > 1 else ""
                out.append(f"<tr><th>{label}{ties}</th><td class=\"num\">{_fmt(c.tightness)}</td>"
                           f"<td>{_h(_params_text(c.params))}</td><td>{_reproduce_html(c)}</td></tr>")
        out.append("</table>")
    out.append(f"<p>Vacuous: {a.counts['vacuous']} of {a.n} cells ({_pct(a.vacuous_fraction)}).")
    if a.hypothesis_failures:
        out.append(" Failed hypotheses: " + ", ".join(f"<code>{_h(h)}</code> ×{n}"
                                                      for h, n in a.hypothesis_failures.items()) + ".")
    out.append("</p>")
    if figures is not None:
        for f in figures.get(a.claim_id, []):
            data = base64.b64encode(f.png).decode("ascii")
            out.append(f'<figure><img src="data:image/png;base64,{data}" alt="{_h(f.caption)}">'
                       f"<figcaption>{_h(f.caption)}</figcaption></figure>")
        if a.heat_note:
            out.append(f'<p class="muted">{_h(a.heat_note)}.</p>')
    if a.violations:
        out += [f'<h4 class="bad">Violations ({len(a.violations)})</h4>', "<table>",
                "<tr><th>parameters</th><th>tightness</th><th>failing checks</th><th>reproduce</th></tr>"]
        for c in a.violations:
            checks = c.failing_checks()
            why = "<br>".join(_h(_check_text(k)) for k in checks) if checks else \
                '<span class="muted">no failing check recorded</span>'
            out.append(f"<tr><td>{_h(_params_text(c.params))}</td><td class=\"num\">{_fmt(c.tightness)}"
                       f"</td><td>{why}</td><td>{_reproduce_html(c)}</td></tr>")
        out.append("</table>")
    if a.boundary:
        out += [f"<h4>Hypothesis boundary ({len(a.boundary)})</h4>",
                "<p>Vacuous cells whose conclusion fails anyway, so the failed hypothesis is needed "
                "there.</p>", "<table>",
                "<tr><th>parameters</th><th>failed hypotheses</th><th>tightness</th><th>failing checks</th>"
                "<th>reproduce</th></tr>"]
        for c in a.boundary:
            out.append(f"<tr><td>{_h(_params_text(c.params))}</td>"
                       f"<td>{_h(', '.join(c.failed_hypotheses))}</td><td class=\"num\">{_fmt(c.tightness)}"
                       f"</td><td>{_h(_boundary_text(c))}</td><td>{_reproduce_html(c)}</td></tr>")
        out.append("</table>")
    if a.errors:
        out += [f'<h4 class="bad">Errors ({len(a.errors)})</h4>', "<table>",
                "<tr><th>parameters</th><th>status</th><th>error</th><th>reproduce</th></tr>"]
        for c in a.errors:
            where = "status=error" if c.status == "error" else "verdict=error"
            out.append(f"<tr><td>{_h(_params_text(c.params))}</td><td>{where}</td>"
                       f"<td><pre>{_h(c.error or 'no error text stored')}</pre></td>"
                       f"<td>{_reproduce_html(c)}</td></tr>")
        out.append("</table>")
    out.append("</section>")
    return out


# ----------------------------------------------------------------------------------------------
# Writing the report and the CLI
# ----------------------------------------------------------------------------------------------


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a report is as readable as any file
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


@dataclasses.dataclass
class ReportFiles:
    """What :func:`write_report` wrote."""

    html: pathlib.Path
    markdown: pathlib.Path
    figures: list[pathlib.Path]
    with_figures: bool
    atlas: Atlas


def write_report(db_path: str | os.PathLike, out_dir: str | os.PathLike,
                 axes: Sequence[str] | None = None, sweeps: Sequence[str] | None = None,
                 figures: bool = True) -> ReportFiles:
    """Write ``report.html``, ``summary.md`` and ``figures/*.png`` for a sweep store into ``out_dir``.

    Parameters
    ----------
    db_path : str or path-like
        The sweep store.
    out_dir : str or path-like
        Created if missing; existing report files in it are replaced.
    axes, sweeps
        As in :func:`build_atlas`.
    figures : bool
        Draw figures (when matplotlib is importable).

    Returns
    -------
    ReportFiles

    Raises
    ------
    ReportError
        For the store or the options (see :func:`build_atlas`), or an ``out_dir`` that cannot be
        written.
    """
    atlas = build_atlas(db_path, axes=axes, sweeps=sweeps)
    drawn = draw_figures(atlas) if figures else None
    out = pathlib.Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        pngs: list[pathlib.Path] = []
        if drawn is not None:
            (out / "figures").mkdir(exist_ok=True)
            for figs in drawn.values():
                for f in figs:
                    _write_atomic(out / "figures" / f.name, f.png)
                    pngs.append(out / "figures" / f.name)
        _write_atomic(out / "summary.md", render_markdown(atlas, drawn).encode("utf-8"))
        _write_atomic(out / "report.html", render_html(atlas, drawn).encode("utf-8"))
    except OSError as exc:
        raise ReportError(f"--out: cannot write the report into {str(out_dir)!r} "
                          f"({exc.strerror or exc})") from None
    return ReportFiles(out / "report.html", out / "summary.md", pngs, drawn is not None, atlas)


def _axes_arg(text: str) -> tuple[str, str]:
    parts = tuple(p.strip() for p in text.split(","))
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise argparse.ArgumentTypeError(f"expected two distinct axis names X,Y, got {text!r}")
    return parts[0], parts[1]


def add_report_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand to an ``argparse`` subparsers object and return its parser."""
    r = subparsers.add_parser(
        "report", help="write the tightness atlas (HTML + markdown) of a sweep store",
        description="Write report.html (self-contained), figures/*.png and summary.md for a sweep "
                    "store into DIR.")
    r.add_argument("db", metavar="DB", help="the sweep store (SQLite file written by `invbounds sweep`)")
    r.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    r.add_argument("--axes", type=_axes_arg, metavar="X,Y",
                   help="heat-map axes for every claim (default: per claim, the two swept parameters "
                        "with the most distinct values)")
    r.add_argument("--sweep", action="append", metavar="SWEEP_ID",
                   help="only this sweep (id, unique id prefix or name; repeatable; default: all)")
    r.set_defaults(func=cmd_report)
    return r


def cmd_report(args) -> int:
    """Run ``invbounds report``: 0 when written, 2 (a message on stderr, no traceback) on bad input."""
    try:
        files = write_report(args.db, args.out, axes=args.axes, sweeps=args.sweep)
    except ReportError as exc:
        print(f"invbounds report: {exc}", file=sys.stderr)
        return 2
    a = files.atlas
    print(f"{len(a.claims)} claims, {sum(c.n for c in a.claims)} cells, "
          f"{sum(c.counts['violated'] for c in a.claims)} violated, "
          f"{sum(c.counts['error'] for c in a.claims)} errors")
    print(files.html)
    print(files.markdown)
    if not files.with_figures:
        print(f"invbounds report: matplotlib is not installed, so the report has no figures "
              f"({MATPLOTLIB_HINT})", file=sys.stderr)
    else:
        print(f"{len(files.figures)} figures in {files.html.parent / 'figures'}")
    return 0
