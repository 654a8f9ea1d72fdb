"""The one progress line of the long-running commands (``verify``, ``sweep``), on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """A progress line shown only once a run takes longer than ``delay`` seconds.

    On a terminal the line is redrawn in place (at most ten times a second); into a log (CI, a
    pipe) a carriage return erases nothing, so it writes one line per finished tenth of the run
    instead: a CI log gets ten lines, not thousands.

    Parameters
    ----------
    total : int
        Units of work in the run.
    stream : file, optional
        Where to write (default ``sys.stderr``).
    delay : float
        Seconds of silence before the first line.
    unit : str
        What is counted (``"claims"``, ``"cells"``).
    """

    def __init__(self, total: int, stream: TextIO | None = None, delay: float = 1.0,
                 unit: str = "claims"):
        self.total = max(total, 1)
        self.stream = stream if stream is not None else sys.stderr
        self.t0 = time.perf_counter()
        self.delay = delay
        self.unit = unit
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty()) if callable(isatty) else False
        self.shown = False
        self.logged_tenth = 0
        self.last_draw = 0.0

    def update(self, done: int, label: str = "", extra: str = "") -> None:
        """Report ``done`` units; ``label`` names the current item (terminal only), ``extra`` is
        appended to the count (``", 3 failed"``)."""
        now = time.perf_counter()
        elapsed = now - self.t0
        if elapsed < self.delay:
            return
        frac = min(done / self.total, 1.0)
        eta = elapsed / frac - elapsed if frac > 0 else float("nan")
        count = f"{done}/{self.total} {self.unit}{extra}"
        if not self.tty:
            tenth = int(10 * frac)
            if tenth > self.logged_tenth:
                self.logged_tenth = tenth
                self.stream.write(f"{count}, {elapsed:.1f}s, ~{eta:.0f}s left\n")
                self.stream.flush()
            return
        if now - self.last_draw < 0.1 and done < self.total:
            return
        self.last_draw = now
        self.shown = True
        bar = "#" * int(30 * frac)
        self.stream.write(f"\r[{bar:<30}] {count} {elapsed:6.1f}s ~{eta:5.0f}s left  {label[:48]:<48}")
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
