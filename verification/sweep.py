"""Sweeps: a grid or random design over instance parameters, times a set of claims.

A sweep spec (TOML, or the same structure as a dict for :func:`define`) names the claims and a
design; every (claim, parameter point) pair is a *cell*. A cell's instance is the claim's
``base_instance``-th quick-profile instance with the ``[base]`` fields and the cell's parameters
replaced (``dataclasses.replace``), so any field of any claim's spec type can be swept. Each cell
runs ``claim.check(instance)`` in a worker, which returns a plain row; the coordinating process
alone writes the rows to a :class:`verification.store.Store`, one transaction per cell, so an
interrupted sweep keeps every finished cell and re-running the same command resumes it.

The format, the store schema, resume semantics and the executors are documented in
``docs/sweeps.md``. Command line: ``invbounds sweep SPEC.toml`` (or ``python -m
verification.sweep SPEC.toml`` before the subcommand is wired into :mod:`verification.cli`).
"""

from __future__ import annotations

import os

# One BLAS thread per process, before numpy loads (as in verification/cli.py): the cells are small,
# and with one process per core a threaded BLAS would oversubscribe the machine. Workers forked
# from this process inherit the setting.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import collections  # noqa: E402
import concurrent.futures as cf  # noqa: E402
import dataclasses  # noqa: E402
import fnmatch  # noqa: E402
import functools  # noqa: E402
import hashlib  # noqa: E402
import itertools  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tomllib  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Callable, Mapping, Sequence  # noqa: E402
from concurrent.futures.process import BrokenProcessPool  # noqa: E402
from typing import Any, TextIO  # noqa: E402

from verification import engine  # noqa: E402
from verification.progress import Progress  # noqa: E402
from verification.store import Store  # noqa: E402

SPEC_KEYS = ("name", "description", "claims", "grid", "random", "points", "base", "base_instance",
             "skip_incompatible")
"""Top-level keys of a sweep spec (anything else is a typo and an error)."""
DISTRIBUTIONS = ("uniform", "log_uniform", "int_uniform", "choice")
"""Per-axis distributions of a ``[random]`` design."""
DEFAULT_DB_DIR = "results"
"""The default store is ``results/<name>.sqlite`` under the current directory."""
CHUNK_SECONDS = 0.2
"""Target duration of one submitted task: small cells are batched up to about this much work, so
scheduling costs well under a millisecond per cell while an interrupt loses little."""
MAX_CHUNK = 256
MAX_POOL_RESTARTS = 3
"""A process pool whose workers died (killed, out of memory) is rebuilt this many times before the
sweep stops; finished cells stay stored either way."""
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def canonical_json(obj: Any) -> str:
    """Sorted-key, compact, strict JSON: the text that sweep ids and cell keys hash."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def digest(text: str, n: int) -> str:
    """The first ``n`` hex digits of the sha256 of ``text`` (sweep ids: 16, cell keys: 24)."""
    return hashlib.sha256(text.encode()).hexdigest()[:n]


# --------------------------------------------------------------------------------------------
# the sweep definition


@dataclasses.dataclass(frozen=True)
class Cell:
    """One (claim, parameter point) of a sweep.

    Attributes
    ----------
    index : int
        Position in the sweep's deterministic cell order.
    claim_id, family, kind : str
        The claim and its family and kind.
    params : dict
        The swept parameter values (after coercion to the spec's field types).
    key : str
        ``sha256`` (24 hex) of ``{"claim", "params", "base"}`` canonical JSON.
    base_index : int
        Which quick-profile instance of the claim the cell starts from.
    fixed : dict
        The sweep's ``[base]`` fields.
    base_repr : str
        ``repr`` of the starting instance with ``fixed`` applied.
    """

    index: int
    claim_id: str
    family: str
    kind: str
    params: dict
    key: str
    base_index: int
    fixed: dict
    base_repr: str

    def task(self) -> tuple:
        """What a worker needs: plain data only (no spec objects cross process boundaries)."""
        return (self.index, self.key, self.claim_id, self.family, self.kind, self.base_index,
                self.fixed, self.params)


@dataclasses.dataclass
class Sweep:
    """A resolved sweep: its claims, its cells in order, and its canonical definition.

    Build one with :func:`define` (from a dict) or :func:`load` (from a TOML file).
    """

    name: str
    claims: list[str]
    cells: list[Cell]
    design: dict
    spec_text: str
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    duplicates: int = 0

    @property
    def design_json(self) -> str:
        """The canonical JSON of the definition (stored in ``sweeps.design_json``)."""
        return canonical_json(self.design)

    @property
    def sweep_id(self) -> str:
        """``sha256`` (16 hex) of :attr:`design_json`."""
        return digest(self.design_json, 16)


def _coerce(axis: str, value: Any, current: Any) -> Any:
    """A TOML value as the spec field wants it: arrays become tuples (specs are hashable), an
    integer given for a float field becomes a float (so ``lam = 0`` and ``lam = 0.0`` are one
    cell), and non-finite floats are refused (no cell key or report could hold them)."""
    if isinstance(value, dict):
        raise ValueError(f"axis {axis!r}: a table is not a field value; sweep a nested field "
                         f"with a dotted axis name such as 'base.lam'")
    if isinstance(value, (list, tuple)):
        inner = current[0] if isinstance(current, tuple) and current else None
        return tuple(_coerce(axis, v, inner) for v in value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"axis {axis!r}: non-finite value {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and isinstance(current, float):
        return float(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ValueError(f"axis {axis!r}: unsupported value {value!r} of type {type(value).__name__}")


def _field_path(spec: Any, path: str) -> tuple[bool, str, Any]:
    """Resolve a dotted field path on a spec: (found, description of the failure, current value)."""
    obj = spec
    parts = path.split(".")
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(obj) or isinstance(obj, type):
            where = ".".join(parts[:i]) or type(spec).__name__
            return False, f"{where} is not a dataclass", None
        names = [f.name for f in dataclasses.fields(obj) if f.init]
        if part not in names:
            return False, f"{type(obj).__name__} has no field {part!r}; its fields: {names}", None
        obj = getattr(obj, part)
    return True, "", obj


def apply_params(spec: Any, changes: Mapping[str, Any]) -> Any:
    """``dataclasses.replace`` with dotted names reaching into nested spec fields.

    ``apply_params(s, {"lam": 0.1, "base.L": 3})`` replaces ``s.lam`` and ``s.base.L``. The
    spec's ``__post_init__`` validates the result (a rejected value raises its ``ValueError``).
    """
    top: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for name, value in changes.items():
        head, _, rest = name.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            top[name] = value
    for head, sub in nested.items():
        if head in top:
            raise ValueError(f"params: {head!r} is set both whole and through {head}.<field>")
        top[head] = apply_params(getattr(spec, head), sub)
    return dataclasses.replace(spec, **top)


def _axis_values(section: str, axis: str, values: Any) -> list:
    if not isinstance(values, list) or not values:
        raise ValueError(f"{section}.{axis}: expected a non-empty list of values, got {values!r} "
                         f"(put a fixed value in [base])")
    return values


def _sample(axis: str, dist: Any, rng: random.Random) -> Any:
    """One draw of ``dist`` (already validated by :func:`_check_distribution`)."""
    (kind, arg), = dist.items()
    if kind == "uniform":
        return arg[0] + (arg[1] - arg[0]) * rng.random()
    if kind == "log_uniform":
        return math.exp(math.log(arg[0]) + (math.log(arg[1]) - math.log(arg[0])) * rng.random())
    if kind == "int_uniform":
        return rng.randint(arg[0], arg[1])
    return arg[rng.randrange(len(arg))]


def _check_distribution(axis: str, dist: Any) -> None:
    where = f"random.{axis}"
    if not isinstance(dist, dict) or len(dist) != 1:
        raise ValueError(f"{where}: expected one distribution such as {{log_uniform = [1e-4, 1e-1]}}"
                         f"; known: {list(DISTRIBUTIONS)}; got {dist!r}")
    (kind, arg), = dist.items()
    if kind not in DISTRIBUTIONS:
        raise ValueError(f"{where}: unknown distribution {kind!r}; known: {list(DISTRIBUTIONS)}")
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise ValueError(f"{where}: choice needs a non-empty list, got {arg!r}")
        return
    if not isinstance(arg, list) or len(arg) != 2:
        raise ValueError(f"{where}: {kind} needs [low, high], got {arg!r}")
    lo, hi = arg
    if kind == "int_uniform":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in arg) or lo > hi:
            raise ValueError(f"{where}: int_uniform needs integers low <= high, got {arg!r}")
        return
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
               for v in arg) or not lo < hi:
        raise ValueError(f"{where}: {kind} needs finite numbers low < high, got {arg!r}")
    if kind == "log_uniform" and lo <= 0:
        raise ValueError(f"{where}: log_uniform needs low > 0, got {arg!r}")


def _design_points(spec: Mapping[str, Any]) -> tuple[list[dict], dict, dict, list]:
    """The parameter points of a spec, in order: grid x random samples, then explicit points."""
    grid = spec.get("grid", {})
    rand = spec.get("random", {})
    points = spec.get("points", [])
    if not isinstance(grid, dict):
        raise ValueError(f"grid: expected a table of axis = [values], got {grid!r}")
    if not isinstance(rand, dict):
        raise ValueError(f"random: expected a table, got {rand!r}")
    if not isinstance(points, list) or not all(isinstance(p, dict) and p for p in points):
        raise ValueError("points: expected an array of non-empty tables ([[points]] lam = 0.0 ...)")
    grid_axes = {a: _axis_values("grid", a, v) for a, v in grid.items()}
    grid_points = [dict(zip(grid_axes, combo, strict=True))
                   for combo in itertools.product(*grid_axes.values())]
    random_points: list[dict] = [{}]
    random_def: dict = {}
    if rand:
        samples, seed = rand.get("samples"), rand.get("seed", 0)
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
            raise ValueError(f"random.samples: expected an integer >= 1, got {samples!r}")
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"random.seed: expected an integer >= 0, got {seed!r}")
        axes = {a: d for a, d in rand.items() if a not in ("samples", "seed")}
        if not axes:
            raise ValueError("random: no axes; add e.g. lam = {log_uniform = [1e-4, 1e-1]}")
        both = sorted(set(axes) & set(grid_axes))
        if both:
            raise ValueError(f"random: axis {both[0]!r} is also a grid axis")
        for a, d in axes.items():
            _check_distribution(a, d)
        # Python's Mersenne Twister: the same seed gives the same design on every platform and
        # numpy version.
        rng = random.Random(seed)
        random_points = [{a: _sample(a, d, rng) for a, d in axes.items()} for _ in range(samples)]
        random_def = {"samples": samples, "seed": seed, "axes": axes}
    combined = [{**g, **r} for g in grid_points for r in random_points]
    if not grid_axes and not rand:
        combined = [] if points else [{}]
    return combined + [dict(p) for p in points], grid_axes, random_def, points


def _select_claims(patterns: Any) -> list[str]:
    if isinstance(patterns, str):
        patterns = [patterns]
    if not isinstance(patterns, list) or not patterns or \
            not all(isinstance(p, str) and p for p in patterns):
        raise ValueError(f"claims: expected a non-empty list of claim ids or globs, got {patterns!r}")
    registry = engine.load_all()
    ids: list[str] = []
    for pat in patterns:
        hits = sorted(i for i in registry if fnmatch.fnmatchcase(i, pat))
        if not hits:
            raise ValueError(f"claims: {pat!r} matches no registered claim; see `invbounds list`")
        ids += [h for h in hits if h not in ids]
    return ids


def define(spec: Mapping[str, Any], spec_text: str | None = None) -> Sweep:
    """Resolve a sweep spec into its cells (nothing runs).

    Parameters
    ----------
    spec : mapping
        ``name``, ``claims`` (ids or globs), and a design: ``grid`` (axis -> list of values,
        cartesian product), ``random`` (``samples``, ``seed`` and axis -> distribution), ``points``
        (a list of explicit parameter tables); optional ``base`` (fixed fields), ``base_instance``
        (default 0), ``skip_incompatible`` (default false), ``description``.
    spec_text : str, optional
        The source text to store (default: the canonical JSON of ``spec``).

    Returns
    -------
    Sweep

    Raises
    ------
    ValueError
        On an unknown key, a malformed design, a claim pattern matching nothing, or an axis that
        is not a field of some claim's spec type (unless ``skip_incompatible``, which skips that
        claim and lists it in :attr:`Sweep.skipped`).
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"spec: expected a table/dict, got {type(spec).__name__}")
    unknown = [k for k in spec if k not in SPEC_KEYS]
    if unknown:
        raise ValueError(f"spec: unknown key {unknown[0]!r}; known: {list(SPEC_KEYS)}")
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"name: expected a name of letters, digits, '_', '.', '-' (it names the "
                         f"default store file), got {name!r}")
    base = spec.get("base", {})
    if not isinstance(base, dict):
        raise ValueError(f"base: expected a table of fixed fields, got {base!r}")
    k = spec.get("base_instance", 0)
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"base_instance: expected an integer >= 0, got {k!r}")
    skip = spec.get("skip_incompatible", False)
    if not isinstance(skip, bool):
        raise ValueError(f"skip_incompatible: expected true or false, got {skip!r}")
    points, grid_axes, random_def, explicit = _design_points(spec)
    axis_names: list[str] = []
    for p in points:
        axis_names += [a for a in p if a not in axis_names]
    clash = sorted(set(axis_names) & set(base))
    if clash:
        raise ValueError(f"base: {clash[0]!r} is both a fixed field and a swept axis")
    claim_ids = _select_claims(spec.get("claims"))

    resolved = []  # (claim, base spec, fixed fields coerced)
    skipped: list[tuple[str, str]] = []
    for cid in claim_ids:
        claim = engine.get(cid)
        try:
            insts = list(claim.instances("quick", 0))
        except Exception as exc:  # a broken claim module should name itself, not crash the sweep
            raise ValueError(f"claim {cid}: listing its quick instances failed: {exc}") from exc
        if k >= len(insts):
            reason = f"claim {cid} has {len(insts)} quick instance(s), base_instance = {k}"
            if skip:
                skipped.append((cid, reason))
                continue
            raise ValueError(f"base_instance: {reason}; set skip_incompatible = true to skip it")
        spec0 = insts[k]
        problem = None
        for axis in [*axis_names, *base]:
            ok, why, _ = _field_path(spec0, axis)
            if not ok:
                kind = "fixed field" if axis in base else "axis"
                problem = (f"{kind} {axis!r} is not a field of {type(spec0).__name__} (the "
                           f"instance type of claim {cid}): {why}")
                break
        if problem is not None:
            if skip:
                skipped.append((cid, problem))
                continue
            raise ValueError(f"sweep {name!r}: {problem}. Remove the axis, narrow `claims`, or set "
                             f"skip_incompatible = true to skip such claims")
        fixed = {a: _coerce(a, v, _field_path(spec0, a)[2]) for a, v in base.items()}
        try:
            start = apply_params(spec0, fixed)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"base: {type(spec0).__name__} of claim {cid} rejects the fixed "
                             f"fields {fixed}: {exc}") from exc
        resolved.append((claim, start, fixed))
    if not resolved:
        raise ValueError(f"sweep {name!r}: every claim was skipped as incompatible: "
                         + "; ".join(r for _, r in skipped))

    cells: list[Cell] = []
    seen: set[str] = set()
    duplicates = 0
    for point in points:
        for claim, start, fixed in resolved:
            params = {a: _coerce(a, v, _field_path(start, a)[2]) for a, v in point.items()}
            base_repr = repr(start)
            key = digest(canonical_json({"claim": claim.id, "params": params, "base": base_repr}), 24)
            if key in seen:  # a repeated grid value or random draw names the same instance
                duplicates += 1
                continue
            seen.add(key)
            cells.append(Cell(len(cells), claim.id, claim.family, str(claim.kind), params, key, k,
                              fixed, base_repr))
    axes: dict[str, list] = {}
    for cell in cells:
        for a, v in cell.params.items():
            vals = axes.setdefault(a, [])
            if v not in vals:
                vals.append(v)
    design = {"name": name, "claims": [c.id for c, _, _ in resolved], "axes": axes,
              "grid": grid_axes, "random": random_def, "points": explicit, "base": base,
              "base_instance": k, "skip_incompatible": skip,
              "bases": {c.id: repr(s) for c, s, _ in resolved},
              "skipped": [{"claim": c, "reason": r} for c, r in skipped], "cells": len(cells)}
    text = spec_text if spec_text is not None else canonical_json(dict(spec))
    return Sweep(name=name, claims=design["claims"], cells=cells, design=design, spec_text=text,
                 skipped=skipped, duplicates=duplicates)


def load(path: str | os.PathLike) -> Sweep:
    """Read and resolve a TOML sweep spec (see :func:`define`)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the sweep spec: {exc.strerror or exc}") from exc
    text = raw.decode("utf-8", errors="replace")
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: invalid TOML: {exc}") from exc
    try:
        return define(spec, spec_text=text)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc


# --------------------------------------------------------------------------------------------
# running one cell (in a worker)


@functools.lru_cache(maxsize=1)
def _process_meta() -> tuple[str, str]:
    """(package version, BLAS in use) of this process, computed once per worker."""
    from importlib import metadata

    from verification.report import blas_in_use

    try:
        version = metadata.version("invbounds")
    except metadata.PackageNotFoundError:
        version = "uninstalled"
    return version, blas_in_use()


@functools.lru_cache(maxsize=256)
def _start_spec(claim_id: str, base_index: int) -> Any:
    return list(engine.get(claim_id).instances("quick", 0))[base_index]


def _error_text(exc: BaseException) -> str:
    """The exception line and where it was raised (a traceback summary that fits a table cell)."""
    text = "".join(traceback.format_exception_only(exc)).strip()
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        f = frames[-1]
        text += f"\n  at {os.path.basename(f.filename)}:{f.lineno} in {f.name}"
    return text[:4000]


def _finite_or_none(x: Any) -> float | None:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def run_cell(task: tuple) -> dict[str, Any]:
    """Run one cell task (see :meth:`Cell.task`) and return its row (without ``sweep_id``).

    Never raises for a cell-level problem: a spec that rejects the parameters, or any exception
    outside ``claim.check``, gives a row with ``status = 'error'`` and the error text.
    """
    from verification import report

    index, key, claim_id, family, kind, base_index, fixed, params = task
    version, blas = _process_meta()
    row: dict[str, Any] = {"cell_key": key, "cell_index": index, "claim_id": claim_id,
                           "family": family, "kind": kind, "params_json": canonical_json(params),
                           "package_version": version, "blas": blas}
    t0 = time.perf_counter()
    spec = None
    try:
        claim = engine.get(claim_id)
        spec = apply_params(_start_spec(claim_id, base_index), {**fixed, **params})
        res = claim.check(spec)
        worst = res.worst()
        margin = tight = None
        if isinstance(worst, engine.Comparison):
            margin, tight = _finite_or_none(worst.margin), _finite_or_none(worst.tightness)
        elif isinstance(worst, engine.ProbabilityCheck):
            margin = _finite_or_none(worst.margin)
        checks = [report._check_json(c) for c in res.evidence.comparisons + res.evidence.fits
                  + res.evidence.probabilities]
        row.update(
            status="done", verdict=str(res.verdict), instance=repr(spec), margin=margin,
            tightness=tight, hypotheses_json=canonical_json(report._finite(res.hypotheses)),
            failed_hypotheses_json=canonical_json(list(res.failed_hypotheses)),
            checks_json=canonical_json(checks),
            metrics_json=canonical_json(report._finite(res.evidence.metrics)),
            reproduce=f"invbounds reproduce {claim_id} \"{spec!r}\"",
            error=res.error or None, seconds=res.seconds)
    except Exception as exc:  # the cell's error is its result; the sweep goes on
        row.update(status="error", verdict=None, instance=None if spec is None else repr(spec),
                   error=_error_text(exc), seconds=time.perf_counter() - t0)
        if spec is not None:
            row["reproduce"] = f"invbounds reproduce {claim_id} \"{spec!r}\""
    row["finished"] = time.time()
    return row


def run_chunk(tasks: Sequence[tuple]) -> list[dict[str, Any]]:
    """Run several cell tasks in order (one submitted task; amortizes scheduling)."""
    return [run_cell(t) for t in tasks]


def _init_worker() -> None:
    # Ctrl-C on a terminal signals the whole process group; the coordinator alone decides what an
    # interrupt means (stop submitting, keep what is stored), so workers ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# --------------------------------------------------------------------------------------------
# progress


# --------------------------------------------------------------------------------------------
# the coordinator


@dataclasses.dataclass
class RunSummary:
    """What one :func:`run` call did.

    Attributes
    ----------
    sweep_id, name, db : str
        The sweep and the store path.
    total : int
        Cells in the sweep.
    already_done : int
        Cells found finished in the store and skipped.
    skipped_errors : int
        Cells stored with status 'error' earlier and not retried (``retry_errors=False``).
    ran : int
        Cells run and stored now.
    errors : int
        Of those, cells stored with status 'error'.
    verdicts : dict
        Verdict counts of the cells run now.
    interrupted : bool
        The run stopped on KeyboardInterrupt (every stored cell is complete).
    not_run : int
        Cells still missing from the store (a later run of the same sweep does them).
    seconds, cell_seconds : float
        Wall time of the run, and the sum of the cells' own times.
    """

    sweep_id: str
    name: str
    db: str
    total: int
    already_done: int = 0
    skipped_errors: int = 0
    ran: int = 0
    errors: int = 0
    verdicts: dict[str, int] = dataclasses.field(default_factory=dict)
    interrupted: bool = False
    not_run: int = 0
    seconds: float = 0.0
    cell_seconds: float = 0.0


class SweepFailed(RuntimeError):
    """The executor itself failed (pool workers kept dying, a Dask scheduler went away); every
    stored cell is kept and running the same sweep again resumes."""


def _pool(workers: int) -> cf.ProcessPoolExecutor:
    # fork: workers start in milliseconds with the claim registry already loaded, and inherit the
    # one-thread BLAS setting. Elsewhere the platform default (spawn) works as well, just slower.
    ctx = multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker)


def _stop_pool(pool: cf.ProcessPoolExecutor) -> None:
    """Cancel queued work and end the workers now (a running cell's result is not wanted)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)


def run(sweep: Sweep, store: Store, *, workers: int | None = None,
        executor: cf.Executor | None = None, max_inflight: int | None = None,
        retry_errors: bool = False, limit: int | None = None, progress: TextIO | bool | None = None,
        chunk_seconds: float = CHUNK_SECONDS) -> RunSummary:
    """Run the cells of ``sweep`` that ``store`` does not hold yet, writing each as it finishes.

    Parameters
    ----------
    sweep : Sweep
        From :func:`define` or :func:`load`.
    store : Store
        Where rows go (this process is the only writer).
    workers : int, optional
        Process-pool size (default ``os.cpu_count()``); 1 runs serially in this process.
        Ignored when ``executor`` is given.
    executor : concurrent.futures.Executor, optional
        Run on this executor instead (e.g. ``dask.distributed.Client(addr).get_executor()``); it is
        not shut down here.
    max_inflight : int, optional
        Submitted tasks at a time (default twice the worker count): bounded so an interrupt loses
        at most that many tasks' work.
    retry_errors : bool
        Re-run cells stored with status 'error' (default: skip them like finished ones).
    limit : int, optional
        Run at most this many new cells.
    progress : stream or bool, optional
        Progress bar stream (default stderr; ``False`` for none).
    chunk_seconds : float
        Target work per submitted task (cells are batched by their measured mean time).

    Returns
    -------
    RunSummary
        With ``interrupted=True`` if a KeyboardInterrupt stopped the run: queued work is
        cancelled, nothing partial is written, and every stored cell is complete.

    Raises
    ------
    SweepFailed
        If the process pool broke more than :data:`MAX_POOL_RESTARTS` times, or a task failed in
        the executor for a reason other than Dask's ``KilledWorker`` (stored as error cells).
    """
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers: expected an integer >= 1, got {workers!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit: expected an integer >= 0, got {limit!r}")
    if max_inflight is not None and (not isinstance(max_inflight, int) or max_inflight < 1):
        raise ValueError(f"max_inflight: expected an integer >= 1, got {max_inflight!r}")
    if not chunk_seconds > 0:
        raise ValueError(f"chunk_seconds: must be > 0, got {chunk_seconds!r}")
    t0 = time.perf_counter()
    import numpy as np

    version, blas = _process_meta()
    store.add_sweep(sweep.sweep_id, sweep.name, sweep.spec_text, sweep.design_json,
                    package_version=version, numpy=np.__version__, blas=blas)
    done = store.done_keys(sweep.sweep_id)
    failed_before = store.done_keys(sweep.sweep_id, ("error",))
    summary = RunSummary(sweep.sweep_id, sweep.name, store.path, len(sweep.cells))
    summary.already_done = sum(c.key in done for c in sweep.cells)
    skip = done if retry_errors else done | failed_before
    if not retry_errors:
        summary.skipped_errors = sum(c.key in failed_before for c in sweep.cells)
    todo = [c for c in sweep.cells if c.key not in skip]
    if limit is not None:
        todo = todo[:limit]
    if progress is False:
        bar = None
    else:
        bar = Progress(len(todo), None if progress in (None, True) else progress, unit="cells")

    def record(row: dict[str, Any]) -> None:
        row["sweep_id"] = sweep.sweep_id
        store.write_cell(row)
        summary.ran += 1
        summary.cell_seconds += row.get("seconds") or 0.0
        if row["status"] == "error":
            summary.errors += 1
        else:
            summary.verdicts[row["verdict"]] = summary.verdicts.get(row["verdict"], 0) + 1
        if bar is not None:
            failed = summary.errors + summary.verdicts.get("error", 0)
            violated = summary.verdicts.get("violated", 0)
            bar.update(summary.ran, extra=f", {failed} failed"
                       + (f", {violated} violated" if violated else ""))

    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    try:
        if executor is None and n_workers == 1:
            for cell in todo:
                record(run_cell(cell.task()))
        elif todo:
            _run_parallel(todo, record, summary, executor, n_workers, max_inflight, chunk_seconds)
    except KeyboardInterrupt:
        summary.interrupted = True
    finally:
        if bar is not None:
            bar.close()
    stored = store.done_keys(sweep.sweep_id, ("done", "error"))
    summary.not_run = sum(c.key not in stored for c in sweep.cells)
    summary.seconds = time.perf_counter() - t0
    return summary


def _run_parallel(todo: list[Cell], record: Callable[[dict], None], summary: RunSummary,
                  executor: cf.Executor | None, n_workers: int, max_inflight: int | None,
                  chunk_seconds: float) -> None:
    own = executor is None
    if own:
        executor = _pool(n_workers)
    else:
        n_workers = _executor_width(executor)
    inflight_cap = max_inflight or 2 * n_workers
    pending = collections.deque(todo)
    inflight: dict[cf.Future, list[Cell]] = {}
    restarts = 0
    cells_timed, seconds_timed = 0, 0.0

    def chunk_size() -> int:
        if cells_timed == 0:
            return 1  # the first wave measures how long a cell takes
        mean = max(seconds_timed / cells_timed, 1e-5)
        n = int(chunk_seconds / mean)
        # Near the end, smaller chunks keep every worker busy until the last cell.
        tail = math.ceil(len(pending) / (2 * n_workers))
        return max(1, min(n, MAX_CHUNK, tail))

    def recover() -> None:
        # A worker died (killed, out of memory): no row of the in-flight cells was written; put
        # them back in order and start a fresh pool.
        nonlocal executor, restarts
        lost = sorted((c for cs in inflight.values() for c in cs), key=lambda c: c.index)
        inflight.clear()
        pending.extendleft(reversed(lost))
        restarts += 1
        executor.shutdown(wait=False, cancel_futures=True)
        if restarts > MAX_POOL_RESTARTS:
            raise SweepFailed(f"pool workers died {restarts} times (killed, or out of memory?); "
                              f"{summary.ran} cells were stored this run, {len(pending)} remain: "
                              f"run the same command to resume")
        executor = _pool(n_workers)

    try:
        while pending or inflight:
            try:
                while pending and len(inflight) < inflight_cap:
                    cells = [pending.popleft() for _ in range(min(chunk_size(), len(pending)))]
                    inflight[executor.submit(run_chunk, [c.task() for c in cells])] = cells
            except BrokenProcessPool:  # the pool broke since the last wait
                if not own:
                    raise
                pending.extendleft(reversed(cells))
                recover()
                continue
            finished, _ = cf.wait(inflight, return_when=cf.FIRST_COMPLETED)
            broken = False
            for fut in finished:
                cells = inflight.pop(fut)
                try:
                    rows = fut.result()
                except BrokenProcessPool:
                    if not own:
                        raise
                    inflight[fut] = cells  # recover() re-queues it with the others
                    broken = True
                    break
                except Exception as exc:
                    # run_chunk turns every cell-level exception into a row, so this is the
                    # executor failing. Dask's KilledWorker means the task killed worker after
                    # worker (dask already retried it): that is the cells' result. Anything else
                    # (a lost scheduler, a cancelled task) says nothing about the cells, which
                    # must stay unrun rather than be stored as errors.
                    if type(exc).__name__ != "KilledWorker":
                        raise SweepFailed(f"the executor failed ({type(exc).__name__}: {exc}); "
                                          f"{summary.ran} cells were stored this run: run the "
                                          f"same command to resume") from exc
                    rows = [_task_error_row(c, exc) for c in cells]
                for row in rows:
                    record(row)
                    cells_timed += 1
                    seconds_timed += row.get("seconds") or 0.0
            if broken:
                recover()
    except BaseException:
        for fut in inflight:
            fut.cancel()
        if own:
            _stop_pool(executor)
        raise
    if own:
        executor.shutdown(wait=True)


def _executor_width(executor: cf.Executor) -> int:
    """Workers behind an executor: dask's thread count, a pool's ``max_workers``, else the cores."""
    client = getattr(executor, "_client", None)
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # a dask client that cannot answer still runs tasks
            return os.cpu_count() or 1
    return getattr(executor, "_max_workers", None) or os.cpu_count() or 1


def _task_error_row(cell: Cell, exc: BaseException) -> dict[str, Any]:
    version, blas = _process_meta()
    return {"cell_key": cell.key, "cell_index": cell.index, "claim_id": cell.claim_id,
            "family": cell.family, "kind": cell.kind, "params_json": canonical_json(cell.params),
            "status": "error", "error": "task failed in the executor: " + _error_text(exc),
            "seconds": None, "package_version": version, "blas": blas, "finished": time.time()}


# --------------------------------------------------------------------------------------------
# command line


def default_db(name: str) -> str:
    """The default store of sweep ``name``: ``results/<name>.sqlite`` under the current directory."""
    return os.path.join(DEFAULT_DB_DIR, f"{name}.sqlite")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep spec (see docs/sweeps.md)")
    p.add_argument("--db", metavar="PATH",
                   help=f"the results store (default: {DEFAULT_DB_DIR}/<name>.sqlite)")
    p.add_argument("--workers", type=_positive, metavar="N",
                   help="local worker processes (default: the number of cores; 1: serial)")
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run on a Dask cluster, e.g. tcp://scheduler:8786 (pip install 'invbounds[dask]')")
    p.add_argument("--retry-errors", action="store_true",
                   help="re-run cells stored with status 'error' (default: skip them)")
    p.add_argument("--limit", type=_positive, metavar="N",
                   help="run at most N new cells (try a spec; a later run resumes)")
    p.add_argument("--dry-run", action="store_true",
                   help="resolve the spec and print the cells without running anything")


def add_sweep_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand to an ``argparse`` subparsers object."""
    p = subparsers.add_parser("sweep", help="run a sweep spec into a results store (resumable)",
                              description="Run the cells of a sweep spec, storing each as it "
                              "finishes; re-running the same command resumes.")
    _add_arguments(p)
    p.set_defaults(func=cmd_sweep)
    return p


def _dask_executor(address: str):
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ValueError("--dask needs dask.distributed: python -m pip install 'invbounds[dask]'") \
            from exc
    try:
        client = Client(address)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"--dask {address}: cannot connect to the scheduler: {exc}") from exc
    return client, client.get_executor(pure=False)


def _print_dry_run(sweep: Sweep, db: str) -> None:
    print(f"sweep {sweep.name} (id {sweep.sweep_id}): {len(sweep.cells)} cells, "
          f"{len(sweep.claims)} claims -> {db}")
    for axis, values in sweep.design["axes"].items():
        shown = ", ".join(map(repr, values[:8])) + (", ..." if len(values) > 8 else "")
        print(f"  axis {axis}: {len(values)} values [{shown}]")
    for cid in sweep.claims:
        print(f"  claim {cid}")
    for cid, reason in sweep.skipped:
        print(f"  skipped {cid}: {reason}")
    if sweep.duplicates:
        print(f"  {sweep.duplicates} duplicate cells dropped")
    for cell in sweep.cells[:5]:
        print(f"  cell {cell.index}: {cell.claim_id} {canonical_json(cell.params)}")


def cmd_sweep(args: argparse.Namespace) -> int:
    """The ``sweep`` subcommand: 0 when the sweep is complete, 130 when interrupted (resume with
    the same command), 2 on a bad spec or store, 1 when the executor failed."""
    if args.dask and args.workers:
        raise ValueError("--dask and --workers: choose one (the cluster decides its workers)")
    sweep = load(args.spec)
    db = args.db or default_db(sweep.name)
    if args.dry_run:
        _print_dry_run(sweep, db)
        return 0
    command = ["invbounds", "sweep", args.spec] + (["--db", args.db] if args.db else [])
    command += (["--workers", str(args.workers)] if args.workers else []) \
        + (["--dask", args.dask] if args.dask else []) \
        + (["--retry-errors"] if args.retry_errors else [])
    for cid, reason in sweep.skipped:
        print(f"skipped (skip_incompatible): {cid}: {reason}", file=sys.stderr)
    client = executor = None
    with Store(db) as store:
        try:
            if args.dask:
                client, executor = _dask_executor(args.dask)
            summary = run(sweep, store, workers=args.workers, executor=executor,
                          retry_errors=args.retry_errors, limit=args.limit)
        except SweepFailed as exc:
            print(f"invbounds: {exc}\n  resume: {shlex.join(command)}", file=sys.stderr)
            return 1
        finally:
            if client is not None:
                client.close()
        counts = store.counts(sweep.sweep_id)
    print(f"sweep {sweep.name} (id {sweep.sweep_id}) -> {db}")
    line = (f"cells: {summary.total} total, {summary.already_done} already done, {summary.ran} "
            f"run now, {summary.errors} errors")
    if summary.skipped_errors:
        line += f", {summary.skipped_errors} error cells skipped (--retry-errors re-runs them)"
    if sweep.duplicates:
        line += f"; {sweep.duplicates} duplicate cells dropped"
    print(line + f"  [{summary.seconds:.1f}s]")
    if counts:
        print("stored verdicts: " + ", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    if summary.interrupted:
        stored = summary.total - summary.not_run
        print(f"interrupted: {summary.ran} cells finished and stored by this run ({stored} of "
              f"{summary.total} in the store); resume with the same command:\n  "
              f"{shlex.join(command)}", file=sys.stderr)
        return 130
    if summary.not_run:
        print(f"{summary.not_run} cells not run yet (--limit); run again to continue: "
              f"{shlex.join(command)}")
    print(f"report: invbounds report {shlex.quote(db)} --out DIR")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m verification.sweep SPEC.toml ...`` (the same options as ``invbounds sweep``)."""
    p = argparse.ArgumentParser(prog="invbounds sweep", description=cmd_sweep.__doc__)
    _add_arguments(p)
    args = p.parse_args(argv)
    try:
        return cmd_sweep(args)
    except (KeyError, ValueError) as exc:
        print(f"invbounds: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
