"""Timing helper shared by the benchmark modules (speed targets are ratios measured in one run)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence


def interleaved_best(fns: Sequence[Callable[[], object]], repeats: int) -> list[float]:
    """Minimum wall time of each function over ``repeats`` interleaved rounds.

    Alternating the calls exposes all of them to the same background load, so their ratio is far
    less noisy on a shared machine than times measured one after the other; the minimum is the
    least-disturbed sample.
    """
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return best
