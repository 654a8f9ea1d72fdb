"""The sweep results store: one SQLite file per set of sweeps (schema: ``docs/sweeps.md``).

A sweep (:mod:`verification.sweep`) writes one row per finished cell, each in its own transaction,
so a sweep that is interrupted (Ctrl-C, a killed coordinator, a crash) keeps every cell it had
finished and resumes from there. Only the coordinating process writes; workers return plain rows.

Opening a file that is not a store (random bytes, an empty file, a foreign SQLite database, a store
written by a newer invbounds) raises :class:`StoreError` with the path and the reason, never a
traceback from the middle of a query and never a silently empty result.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterable
from typing import Any

SCHEMA_NAME = "invbounds-sweep-store"
SCHEMA_VERSION = 1

DDL = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sweeps (
  sweep_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  spec_text TEXT NOT NULL,
  design_json TEXT NOT NULL,
  created REAL NOT NULL,
  package_version TEXT, numpy TEXT, blas TEXT
);
CREATE TABLE cells (
  sweep_id TEXT NOT NULL REFERENCES sweeps(sweep_id),
  cell_key TEXT NOT NULL,
  cell_index INTEGER NOT NULL,
  claim_id TEXT NOT NULL,
  family TEXT NOT NULL,
  kind TEXT NOT NULL,
  params_json TEXT NOT NULL,
  instance TEXT,
  status TEXT NOT NULL,
  verdict TEXT,
  margin REAL, tightness REAL,
  hypotheses_json TEXT,
  failed_hypotheses_json TEXT,
  checks_json TEXT,
  metrics_json TEXT,
  reproduce TEXT,
  error TEXT,
  seconds REAL,
  package_version TEXT, blas TEXT,
  finished REAL NOT NULL,
  PRIMARY KEY (sweep_id, cell_key)
);
"""
"""The schema v1 tables (``docs/sweeps.md``); the atlas tests build their fixture stores with it."""

CELL_COLUMNS = ("sweep_id", "cell_key", "cell_index", "claim_id", "family", "kind", "params_json",
                "instance", "status", "verdict", "margin", "tightness", "hypotheses_json",
                "failed_hypotheses_json", "checks_json", "metrics_json", "reproduce", "error",
                "seconds", "package_version", "blas", "finished")
"""The columns of ``cells``, in table order."""
SWEEP_COLUMNS = ("sweep_id", "name", "spec_text", "design_json", "created", "package_version",
                 "numpy", "blas")
"""The columns of ``sweeps``, in table order."""
JSON_COLUMNS = ("params_json", "hypotheses_json", "failed_hypotheses_json", "checks_json",
                "metrics_json")
"""Cell columns holding JSON text (decoded by ``cells(decode=True)``)."""
STATUSES = ("done", "error")
VERDICTS = ("holds", "violated", "inconclusive", "vacuous", "error")
_REQUIRED = ("sweep_id", "cell_key", "cell_index", "claim_id", "family", "kind", "params_json",
             "status", "finished")


class StoreError(ValueError):
    """A file that cannot be used as a sweep store; the message names the path and the reason.

    A subclass of :class:`ValueError`, so the command line reports it as bad input (exit 2).
    """


def _create(path: str) -> None:
    """Write a new empty store to ``path`` atomically.

    The schema is built in a temporary file beside ``path`` and renamed into place, so a process
    killed while creating the store never leaves a half-initialized file that later opens as a
    foreign database.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".store-", suffix=".sqlite.tmp")
    os.close(fd)
    try:
        conn = sqlite3.connect(tmp)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(DDL)
            conn.execute("INSERT INTO meta VALUES ('schema', ?), ('schema_version', ?)",
                         (SCHEMA_NAME, str(SCHEMA_VERSION)))
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.commit()
        finally:
            conn.close()
        # A second creator may have won the race; keep its file (it has the same empty schema).
        if os.path.exists(path):
            os.unlink(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Store:
    """A sweep store (an SQLite file in WAL mode).

    Parameters
    ----------
    path : str or os.PathLike
        The database file.
    create : bool
        Create the file (and its directory) if it does not exist; with ``False`` a missing file is
        a :class:`StoreError` (what a report wants: a typo in the path is not an empty store).

    Raises
    ------
    StoreError
        If the file is not an SQLite database, is empty, lacks the invbounds ``meta`` table, or was
        written with a newer schema version.

    Examples
    --------
    >>> with Store("results/dln.sqlite") as store:           # doctest: +SKIP
    ...     rows = store.cells(decode=True)
    """

    def __init__(self, path: str | os.PathLike, create: bool = True):
        self.path = os.fspath(path)
        if os.path.isdir(self.path):
            raise StoreError(f"{self.path}: is a directory, not a sweep store")
        if not os.path.exists(self.path):
            if not create:
                raise StoreError(f"{self.path}: no such sweep store")
            try:
                _create(self.path)
            except (OSError, sqlite3.Error) as exc:
                raise StoreError(f"{self.path}: cannot create the sweep store: {exc}") from exc
        elif os.path.getsize(self.path) == 0:
            # SQLite would treat an empty file as an empty database; here it is almost certainly a
            # truncated or placeholder file, and reporting it as "no cells" would hide that.
            raise StoreError(f"{self.path}: empty file, not an invbounds sweep store "
                             f"(delete it or choose another --db)")
        try:
            self._conn = sqlite3.connect(self.path, timeout=30.0)
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open: {exc}") from exc
        try:
            self._check_schema()
            self._conn.execute("PRAGMA foreign_keys = ON")
            # NORMAL is durable against a killed process (the commit is in the WAL); only a power
            # loss can drop the last few commits, and it never corrupts the file.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            if self._conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                self._conn.execute("PRAGMA journal_mode=WAL")
        except StoreError:
            self._conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"{self.path}: not an SQLite database or corrupt ({exc})") from exc

    # -- schema ------------------------------------------------------------------------------
    def _check_schema(self) -> None:
        tables = {r[0] for r in self._conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            listed = ", ".join(sorted(tables)) or "none"
            raise StoreError(f"{self.path}: an SQLite database but not an invbounds sweep store "
                             f"(no meta table; its tables: {listed})")
        meta = dict(self._conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("schema") != SCHEMA_NAME:
            raise StoreError(f"{self.path}: an SQLite database but not an invbounds sweep store "
                             f"(meta.schema is {meta.get('schema')!r}, expected {SCHEMA_NAME!r})")
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            raise StoreError(f"{self.path}: invalid schema_version "
                             f"{meta.get('schema_version')!r} in the meta table") from None
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: written by a newer invbounds (store schema_version "
                             f"{version} > {SCHEMA_VERSION} understood here); upgrade invbounds")
        if version < 1:
            raise StoreError(f"{self.path}: invalid schema_version {version} in the meta table")
        missing = [t for t in ("sweeps", "cells") if t not in tables]
        if missing:
            raise StoreError(f"{self.path}: damaged sweep store, missing table(s) "
                             f"{', '.join(missing)}")
        cols = {r[1] for r in self._conn.execute("PRAGMA table_info(cells)")}
        absent = [c for c in CELL_COLUMNS if c not in cols]
        if absent:
            raise StoreError(f"{self.path}: damaged sweep store, cells lacks column(s) "
                             f"{', '.join(absent)}")

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (idempotent)."""
        conn = getattr(self, "_conn", None)
        if conn is not None:
            conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the store is closed")
        return self._conn

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        try:
            return self._connection().execute(sql, tuple(params))
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    # -- sweeps ------------------------------------------------------------------------------
    def add_sweep(self, sweep_id: str, name: str, spec_text: str, design_json: str, *,
                  package_version: str | None = None, numpy: str | None = None,
                  blas: str | None = None) -> bool:
        """Record a sweep definition (once: an existing ``sweep_id`` is kept as it is).

        Returns
        -------
        bool
            Whether the sweep was new.
        """
        for arg, value in (("sweep_id", sweep_id), ("name", name), ("spec_text", spec_text),
                           ("design_json", design_json)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"{arg}: expected a non-empty string, got {value!r}")
        json.loads(design_json)  # a malformed design would break every reader later
        with self._connection():
            cur = self._execute("INSERT OR IGNORE INTO sweeps VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (sweep_id, name, spec_text, design_json, time.time(),
                                 package_version, numpy, blas))
        return cur.rowcount == 1

    def sweeps(self) -> list[dict[str, Any]]:
        """Every recorded sweep as a dict of its columns, oldest first."""
        cur = self._execute(f"SELECT {', '.join(SWEEP_COLUMNS)} FROM sweeps "
                            f"ORDER BY created, sweep_id")
        return [dict(zip(SWEEP_COLUMNS, row, strict=True)) for row in cur.fetchall()]

    # -- cells -------------------------------------------------------------------------------
    def done_keys(self, sweep_id: str, statuses: Iterable[str] = ("done",)) -> set[str]:
        """The cell keys of ``sweep_id`` stored with one of ``statuses`` (default: finished)."""
        statuses = tuple(statuses)
        bad = [s for s in statuses if s not in STATUSES]
        if bad:
            raise ValueError(f"statuses: unknown status {bad[0]!r}; known: {list(STATUSES)}")
        if not statuses:
            return set()
        marks = ", ".join("?" * len(statuses))
        cur = self._execute(f"SELECT cell_key FROM cells WHERE sweep_id = ? AND status IN ({marks})",
                            (sweep_id, *statuses))
        return {r[0] for r in cur.fetchall()}

    def write_cell(self, row: dict[str, Any]) -> None:
        """Store one finished cell in its own transaction (replacing an earlier row of its key).

        Parameters
        ----------
        row : dict
            Column name -> value (see :data:`CELL_COLUMNS`); absent optional columns are NULL.

        Raises
        ------
        ValueError
            On an unknown column, a missing required one, or an invalid status or verdict.
        """
        unknown = sorted(set(row) - set(CELL_COLUMNS))
        if unknown:
            raise ValueError(f"row: unknown column(s) {unknown}; columns: {list(CELL_COLUMNS)}")
        missing = [c for c in _REQUIRED if row.get(c) is None]
        if missing:
            raise ValueError(f"row: missing required column(s) {missing}")
        if row["status"] not in STATUSES:
            raise ValueError(f"row: status must be one of {list(STATUSES)}, got {row['status']!r}")
        verdict = row.get("verdict")
        if row["status"] == "done" and verdict not in VERDICTS:
            raise ValueError(f"row: a done cell needs a verdict in {list(VERDICTS)}, got {verdict!r}")
        if row["status"] == "error" and verdict is not None:
            raise ValueError(f"row: an error cell has no verdict, got {verdict!r}")
        values = tuple(row.get(c) for c in CELL_COLUMNS)
        with self._connection():
            self._execute(f"INSERT OR REPLACE INTO cells ({', '.join(CELL_COLUMNS)}) VALUES "
                          f"({', '.join('?' * len(CELL_COLUMNS))})", values)

    def cells(self, sweep_id: str | None = None, *, decode: bool = False) -> list[dict[str, Any]]:
        """The stored cells (of one sweep, or of all), ordered by sweep and cell index.

        Parameters
        ----------
        sweep_id : str, optional
            Only this sweep's cells.
        decode : bool
            Parse the ``*_json`` columns into Python objects (default: the stored JSON text).
        """
        sql = f"SELECT {', '.join(CELL_COLUMNS)} FROM cells"
        params: tuple = ()
        if sweep_id is not None:
            sql += " WHERE sweep_id = ?"
            params = (sweep_id,)
        cur = self._execute(sql + " ORDER BY sweep_id, cell_index", params)
        rows = [dict(zip(CELL_COLUMNS, r, strict=True)) for r in cur.fetchall()]
        if decode:
            for row in rows:
                for col in JSON_COLUMNS:
                    if row[col] is not None:
                        row[col] = json.loads(row[col])
        return rows

    def counts(self, sweep_id: str) -> dict[str, int]:
        """Cells of ``sweep_id`` per verdict, plus ``"cell error"`` for status-error cells."""
        out: dict[str, int] = {}
        cur = self._execute("SELECT status, verdict, COUNT(*) FROM cells WHERE sweep_id = ? "
                            "GROUP BY status, verdict", (sweep_id,))
        for status, verdict, n in cur.fetchall():
            key = verdict if status == "done" else "cell error"
            out[key] = out.get(key, 0) + n
        return out
