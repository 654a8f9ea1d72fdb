"""Test-only claims for ``tests/test_sweep.py`` (family ``toy``), and a sweep entry point for the
subprocess tests.

They are registered by :func:`register` (and removed by :func:`unregister`) instead of at import,
so no other test that walks the registry ever sees them. Run as a script, this module registers
them and calls ``verification.sweep.main`` with its arguments: ``python tests/sweep_toy.py
SPEC.toml --db DB`` is ``invbounds sweep`` with the toy claims available.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import signal
import sys
import time

from verification import engine
from verification.engine import Evidence, Hypothesis, Kind


@dataclasses.dataclass(frozen=True)
class ToySpec:
    """A toy instance.

    ``delay`` makes a cell slow (the kill tests); ``interrupt_at`` raises KeyboardInterrupt in the
    cell whose ``x`` equals it (a deterministic Ctrl-C); ``die_marker`` makes a *pool worker* kill
    itself the first time (while the marker file does not exist yet).
    """

    x: float = 1.0
    y: float = 2.0
    delay: float = 0.0
    interrupt_at: float = -1.0
    die_marker: str = ""
    seed: int = 0

    def __post_init__(self):
        if not self.x >= 0:
            raise ValueError(f"x: must be >= 0, got {self.x!r}")


@dataclasses.dataclass(frozen=True)
class OtherSpec:
    """A second spec type, without ``x`` (for the incompatible-axis tests)."""

    z: int = 1


def _side_effects(spec: ToySpec) -> None:
    if spec.delay:
        time.sleep(spec.delay)
    if spec.x == spec.interrupt_at:
        raise KeyboardInterrupt
    if spec.die_marker and multiprocessing.parent_process() is not None \
            and not os.path.exists(spec.die_marker):
        with open(spec.die_marker, "w") as fh:
            fh.write(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)


def _am_gm(spec: ToySpec) -> Evidence:
    _side_effects(spec)
    ev = Evidence()
    ev.compare("sqrt(x y) <= (x + y)/2", math.sqrt(spec.x * spec.y), (spec.x + spec.y) / 2, 1e-12)
    ev.metrics["gap"] = (spec.x + spec.y) / 2 - math.sqrt(spec.x * spec.y)
    return ev


def _square(spec: ToySpec) -> Evidence:
    _side_effects(spec)
    ev = Evidence()
    ev.compare("x^2 <= x", spec.x ** 2, spec.x)  # false for x > 1: violations for the store
    return ev


def _other(spec: OtherSpec) -> Evidence:
    ev = Evidence()
    ev.compare("z <= z + 1", spec.z, spec.z + 1)
    return ev


CLAIMS = (
    engine.Claim(id="toy.am_gm", family="toy", provenance="[test]", kind=Kind.INEQUALITY,
                 statement="sqrt(x y) <= (x + y) / 2 for x, y >= 0",
                 hypotheses=(Hypothesis("y_nonnegative", "y >= 0", lambda s: s.y >= 0),),
                 instances=lambda profile, seed: [ToySpec(), ToySpec(x=3.0)], evaluate=_am_gm),
    engine.Claim(id="toy.square_below", family="toy", provenance="[test]", kind=Kind.INEQUALITY,
                 statement="x^2 <= x (true only on [0, 1])", hypotheses=(),
                 instances=lambda profile, seed: [ToySpec(x=0.5)], evaluate=_square),
    engine.Claim(id="toy.other", family="toy", provenance="[test]", kind=Kind.INEQUALITY,
                 statement="z <= z + 1", hypotheses=(),
                 instances=lambda profile, seed: [OtherSpec()], evaluate=_other),
)


def register() -> None:
    """Add the toy claims to the registry (idempotent)."""
    engine.load_all()
    for c in CLAIMS:
        engine.REGISTRY.setdefault(c.id, c)


def unregister() -> None:
    """Remove the toy claims from the registry."""
    for c in CLAIMS:
        engine.REGISTRY.pop(c.id, None)


if __name__ == "__main__":
    from verification import sweep

    register()
    sys.exit(sweep.main(sys.argv[1:]))
