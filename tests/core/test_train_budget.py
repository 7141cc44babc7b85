"""The wall-clock guard of long trainings, on a fake clock: it never changes the plan (steps,
schedule), it stops a run only once max_seconds have passed, and a run it stops is tagged and
described as cut short; without a guard no clock is read."""

from __future__ import annotations

from reprolab.core.train import budget as budget_module
from reprolab.core.train.budget import TimeGuard, cut_short_note


class Clock:
    """Advances `per_call` seconds each time it is read."""

    def __init__(self, per_call: float = 1.0) -> None:
        self.now, self.per_call, self.reads = 0.0, per_call, 0

    def __call__(self) -> float:
        self.now += self.per_call
        self.reads += 1
        return self.now


class Run:
    def __init__(self) -> None:
        self.tags: dict = {}

    def set_tags(self, tags: dict) -> None:
        self.tags.update(tags)


def loop(guard: TimeGuard, limit: int) -> int:
    """A training loop's use of the guard: tick after each step, end at the plan."""
    step = 0
    while step < min(limit, guard.total):
        step += 1
        guard.tick(step)
    return step


def test_a_guard_that_does_not_bite_changes_nothing(capsys):
    run = Run()
    guard = TimeGuard("unet", 1000.0, 100, run=run, clock=Clock(1.0))  # ~101 s of 1000
    assert loop(guard, 10_000) == 100 and guard.total == 100 and not guard.cut_short
    assert run.tags == {}
    assert capsys.readouterr().err == ""


def test_a_slow_machine_trains_the_same_planned_steps():
    """1.4 s a step: 8000 steps take over 3 hours, but a guard of 4 hours lets them all run:
    no probe shrinks the plan any more."""
    guard = TimeGuard("unet", 4 * 3600.0, 8000, clock=Clock(1.4))
    assert loop(guard, 10_000) == 8000 and not guard.cut_short


def test_a_guard_that_bites_cuts_the_run_short_and_says_so(capsys):
    clock = Clock(0.1)
    run = Run()
    guard = TimeGuard("hf_classifier", 10.0, 500, run=run, clock=clock)
    for step in range(1, 30):
        assert not guard.tick(step)
    clock.per_call = 1.0
    step = 29
    while not guard.tick(step + 1):
        step += 1
    assert guard.total == step + 1 == 29 + 8  # 2.9 + 8 x 1.0 s >= 10 s
    assert guard.cut_short
    assert run.tags == {"cut_short": "true", "cut_at_step": "37", "planned_steps": "500"}
    err = capsys.readouterr().err.strip()
    assert err.startswith("hf_classifier: cut short: max_seconds=10 reached at step 37 of 500")
    assert len(err.splitlines()) == 1


def test_the_model_card_line_of_a_cut_run():
    assert cut_short_note(False, 100, 10.0) == []
    (line,) = cut_short_note(True, 37, 10.0)
    assert line.startswith("Cut short: training stopped by max_seconds=10 at step 37")


def test_no_guard_reads_no_clock():
    clock = Clock()
    guard = TimeGuard("unet", None, 50, clock=clock)
    assert loop(guard, 10_000) == 50 and clock.reads == 0


def test_the_default_clock_is_read_when_used(monkeypatch):
    clock = Clock(100.0)
    monkeypatch.setattr(budget_module, "_now", clock)
    guard = TimeGuard("unet", 50.0, 10)
    assert guard.tick(1) and guard.total == 1 and clock.reads == 2
