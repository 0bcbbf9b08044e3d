"""The row type and timing helpers shared by every benchmark module."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One benchmark result: a rate (or latency) against a baseline from the same run."""

    benchmark: str
    metric: str  # e.g. "msg/s", "p99 ms"
    value: float
    baseline_name: str = ""
    baseline: float | None = None
    target: str = ""  # e.g. ">= 0.25"
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """value / baseline, where a baseline was measured."""
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline  # type: ignore[operator]


def rate(fn: Callable[[], object], n: int, *, repeat: int = 3) -> float:
    """Best-of-``repeat`` operations per second of calling ``fn`` ``n`` times."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds of a list of durations in seconds."""
    ordered = sorted(samples_s)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return p50 * 1000, p99 * 1000
