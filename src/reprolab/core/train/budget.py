"""A wall-clock budget for a step-counted training loop (`max_seconds`), so that a slow machine
trains fewer steps, still annealed, instead of taking many times longer.

After a short probe (`probe` optimiser steps, once `warm` steps have run) the time per step
is known; if the remaining planned steps would overrun `max_seconds`, the planned total
shrinks to what fits, and a schedule built with `total=budget` (read at every step) decays
over the new total from there on. The loop also stops, as a hard cap, once `max_seconds` have
passed. A budget that does not bite changes nothing: the same steps and the same schedule."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from reprolab.core.train.setup import record


class Budget:
    """The planned total of optimiser steps, shrunk to fit `max_seconds` (None: no budget).
    Call `tick(step)` after each optimiser step (`step`: steps done so far); `total` (or the
    budget called) is the current plan, the loop's end and the schedule's horizon."""

    def __init__(
        self,
        name: str,
        max_seconds: float | None,
        total: int,
        start: int = 0,
        *,
        run: Any = None,
        warm: int = 3,
        probe: int = 20,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.name, self.max_seconds, self.total, self.run = name, max_seconds, total, run
        self.probe_from, self.probe_to = start + warm, start + warm + probe
        self.clock = clock or _now
        self.started = self.clock() if max_seconds is not None else 0.0
        self.probe_started: float | None = None

    def __call__(self) -> int:
        return self.total

    def tick(self, step: int) -> bool:
        """Account for step `step`; True once the time is up (the plan then ends here)."""
        if self.max_seconds is None:
            return False
        now = self.clock()
        if step == self.probe_from:
            self.probe_started = now
        elif step == self.probe_to and self.probe_started is not None:
            per_step = (now - self.probe_started) / (self.probe_to - self.probe_from)
            self._plan(step, now - self.started, per_step, self.max_seconds)
        if now - self.started >= self.max_seconds and step < self.total:
            self._say(f"max_seconds={self.max_seconds:g} reached: stopping at step {step}")
            self.total = step
            record(self.run, budget_steps=step)
            return True
        return False

    def _plan(self, step: int, elapsed: float, per_step: float, budget: float) -> None:
        """Shrink the plan when the remaining steps at `per_step` s would overrun."""
        if elapsed + (self.total - step) * per_step > budget:
            fits = step + int(max(0.0, budget - elapsed) / max(per_step, 1e-12))
            planned, self.total = self.total, max(step, min(fits, self.total))
            self._say(
                f"{planned} steps would take ~{_duration(elapsed + (planned - step) * per_step)}"
                f" at {per_step:.2f} s/step; training {self.total} steps to fit"
                f" max_seconds={budget:g}"
            )
        record(self.run, budget_steps=self.total)

    def _say(self, text: str) -> None:
        print(f"{self.name}: {text}", file=sys.stderr, flush=True)


def _now() -> float:
    return time.perf_counter()


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"
