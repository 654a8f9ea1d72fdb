"""Plumbing shared by the figure modules: profile and seed checks, stderr progress, tidy CSV tables."""

from __future__ import annotations

import csv
import math
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np

PROFILES = ("quick", "paper")
Progress = Callable[[int, int, str], None]
"""``progress(done, total, detail)``, called by the data functions after each unit of work."""


def check_profile(profile: str) -> str:
    """``profile`` if it is one of :data:`PROFILES`, else a ``ValueError`` naming it."""
    if profile not in PROFILES:
        raise ValueError(f"profile: expected one of {PROFILES}, got {profile!r}")
    return profile


def check_seed(seed) -> int:
    """``seed`` as an ``int`` if it is an integer ``>= 0``, else a ``ValueError`` naming it."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    return int(seed)


def stderr_progress(family: str, label: str, delay: float = 1.0) -> Progress:
    """A ``progress(done, total, detail)`` callback keeping one stderr line up to date.

    It writes at most once a second, only once the work has taken ``delay`` seconds, and ends the
    line when ``done == total``.
    """
    t0 = time.perf_counter()
    state = {"shown": False, "last": -math.inf}

    def report(done: int, total: int, detail: str = "") -> None:
        now = time.perf_counter()
        final = done >= total
        if now - t0 < delay or (now - state["last"] < 1.0 and not final):
            return
        if final and not state["shown"]:
            return
        state["shown"], state["last"] = True, now
        sys.stderr.write(f"\r[invbounds figures {family}] {label}: {done}/{total} {detail[:40]:<40} "
                         f"({now - t0:.0f}s)" + ("\n" if final else ""))
        sys.stderr.flush()

    return report


def tick(progress: Progress | None, done: int, total: int, detail: str) -> None:
    """Call ``progress`` if there is one."""
    if progress is not None:
        progress(done, total, detail)


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return "True" if value else "False"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))
    return str(value)


def write_table(path: str, rows: Sequence[dict], columns: Sequence[str]) -> str:
    """Write ``rows`` as a CSV file with header ``columns`` (tidy: one row per run).

    Floats are written with ``repr`` (round-trip exact; ``inf``/``nan`` as such), booleans as
    ``True``/``False`` and missing values as empty fields.

    Returns
    -------
    str
        ``path``.
    """
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_format(row.get(c)) for c in columns])
    return path


def _parse(text: str):
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_table(path: str) -> list[dict]:
    """Read a table written by :func:`write_table` back into dicts of ints, floats, bools, strings."""
    with open(path, newline="") as fh:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(fh)]
