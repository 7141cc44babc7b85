"""Micro-benchmarks that compare a candidate against a baseline measured in the same process,
interleaved round by round, so that a shared or throttled CPU slows both alike and the printed
ratio stays meaningful. Each workload's bench module defines its Entry."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    name: str
    unit: str  # what one call of a variant does, e.g. "step"
    setup: Callable[[], dict[str, Callable[[], None]]]  # {"baseline": fn, "candidate": fn}
    claim: str  # the speed-up the entry checks, in words
    report: Callable[[], str] | None = None  # extra measurements printed after the ratio


def measure(variants: dict[str, Callable[[], None]], rounds: int, warmup: int) -> dict:
    """Seconds per call of each variant: warm-up calls first, then rounds alternating the
    variants; the median of the rounds is reported."""
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def ratio(seconds: dict[str, float]) -> float:
    return seconds["baseline"] / seconds["candidate"]
