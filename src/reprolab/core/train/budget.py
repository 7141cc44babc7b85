"""A wall-clock guard for a step-counted training loop (`max_seconds`): never the plan.

Training length is set in steps (or epochs), so that the same commit, params and data give the
same model on a fast CPU, a slow one or a busy one. `max_seconds` only stops a run that would
otherwise go on far too long: a run it stops is *cut short*, which the guard says in one line,
tags on the run (`cut_short=true`, `cut_at_step`) and the model card repeats; the registry's
gate never promotes a cut-short version over a complete champion, and `reprolab reproduce`
refuses to rebuild one (its length depended on the machine's speed). A guard that does not
bite changes nothing: the same steps, the same schedule, the same weights."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from reprolab.core.train.setup import record

CUT_SHORT = "cut_short"  # the run tag (and model-card line) of a run stopped by max_seconds


class TimeGuard:
    """Stops a loop of `total` planned steps once `max_seconds` have passed (None: never).
    Call `tick(step)` after each optimiser step (`step`: steps done so far); `total` stays the
    plan unless the guard bites, and then becomes the step it stopped at."""

    def __init__(
        self,
        name: str,
        max_seconds: float | None,
        total: int,
        *,
        run: Any = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.name, self.max_seconds, self.total, self.run = name, max_seconds, total, run
        self.clock = clock or _now
        self.started = self.clock() if max_seconds is not None else 0.0
        self.cut_short = False

    def __call__(self) -> int:
        return self.total

    def tick(self, step: int) -> bool:
        """True once the time is up before the plan's end (the run is then cut short)."""
        if self.max_seconds is None or step >= self.total:
            return False
        if self.clock() - self.started < self.max_seconds:
            return False
        planned, self.total, self.cut_short = self.total, step, True
        print(
            f"{self.name}: cut short: max_seconds={self.max_seconds:g} reached at step {step} of"
            f" {planned}; this model depends on the machine's speed and is not promoted over a"
            " complete one",
            file=sys.stderr,
            flush=True,
        )
        record(self.run, **{CUT_SHORT: True, "cut_at_step": step, "planned_steps": planned})
        return True


def cut_short_note(cut_short: bool, steps: int | None, max_seconds: float | None) -> list[str]:
    """The model card's line for a run the guard stopped (none for a complete run)."""
    if not cut_short:
        return []
    return [
        f"Cut short: training stopped by max_seconds={max_seconds:g} at step {steps} instead of"
        " the planned steps, so this model depends on the speed of the machine that trained it;"
        " it is never promoted over a complete version."
    ]


def _now() -> float:
    return time.perf_counter()
