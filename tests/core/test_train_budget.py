"""The wall-clock budget of long trainings, on a fake clock: the plan shrinks to fit after
the probe (the schedule decaying over the new total), stays as it is when it fits, and the
time is a hard cap; without a budget nothing is measured."""

from __future__ import annotations

import pytest
import torch

from reprolab.core.train import budget as budget_module
from reprolab.core.train.budget import Budget
from reprolab.core.train.schedule import lambda_lr, warmup_decay


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


def loop(budget: Budget, limit: int) -> int:
    """A training loop's use of the budget: tick after each step, end at the plan."""
    step = 0
    while step < min(limit, budget.total):
        step += 1
        budget.tick(step)
    return step


def test_a_budget_that_fits_changes_nothing(capsys):
    run = Run()
    budget = Budget("unet", 1000.0, 100, run=run, clock=Clock(1.0))  # ~101 s of 1000
    assert loop(budget, 10_000) == 100 and budget.total == 100
    assert run.tags == {"budget_steps": "100"}
    assert capsys.readouterr().err == ""


def test_the_plan_shrinks_to_fit_after_the_probe(capsys):
    run = Run()
    budget = Budget("unet", 2700.0, 8000, run=run, clock=Clock(1.4))
    assert loop(budget, 10_000) == budget.total
    # the probe ends at step 23, 23 x 1.4 s in; 2700 s hold 23 + (2700 - 32.2) / 1.4 steps
    assert budget.total == 23 + int((2700 - 23 * 1.4) / 1.4)
    assert run.tags == {"budget_steps": str(budget.total)}
    err = capsys.readouterr().err.strip()
    assert err == (
        f"unet: 8000 steps would take ~3.1 h at 1.40 s/step; training {budget.total} steps "
        "to fit max_seconds=2700"
    )


def test_the_probe_starts_after_a_resumed_step():
    budget = Budget("bert_mlm", 100.0, 1000, 500, clock=Clock(1.0))
    for step in range(501, 524):
        budget.tick(step)
    assert budget.total == 523 + (100 - 23)  # 23 s in at 1 s/step


def test_time_is_a_hard_cap(capsys):
    """The probe fits (fast first steps), then the machine slows down: the loop stops at
    max_seconds and the plan ends at that step."""
    clock = Clock(0.1)
    run = Run()
    budget = Budget("hf_classifier", 10.0, 50, run=run, clock=clock)
    for step in range(1, 30):
        assert not budget.tick(step)
    assert budget.total == 50  # 2.3 s in at the probe's end, 27 x 0.1 s more: fits
    clock.per_call = 1.0
    step = 29
    while not budget.tick(step + 1):
        step += 1
    assert budget.total == step + 1 == 29 + 8  # 2.9 + 8 x 1.0 s >= 10 s
    assert run.tags["budget_steps"] == str(budget.total)
    assert "max_seconds=10 reached: stopping at step 37" in capsys.readouterr().err


def test_no_budget_reads_no_clock():
    clock = Clock()
    budget = Budget("unet", None, 50, clock=clock)
    assert loop(budget, 10_000) == 50 and clock.reads == 0


def test_the_schedule_follows_the_plan():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    budget = Budget("unet", 1e9, 100, clock=Clock())
    schedule = lambda_lr(opt, warmup=5, total=budget, decay="cosine")
    plain = lambda_lr(
        torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0), warmup=5, total=100
    )
    for _ in range(30):
        opt.step()
        schedule.step()
        plain.optimizer.step()
        plain.step()
    assert schedule.get_last_lr() == plain.get_last_lr()  # an unchanged plan: the same rates
    budget.total = 40  # shrunk: the decay now ends at step 40
    schedule.step()
    assert schedule.get_last_lr()[0] == pytest.approx(warmup_decay(31, warmup=5, total=40))
    for _ in range(9):
        schedule.step()
    assert schedule.get_last_lr()[0] == pytest.approx(0.0)


def test_the_default_clock_is_read_when_used(monkeypatch):
    clock = Clock(100.0)
    monkeypatch.setattr(budget_module, "_now", clock)
    budget = Budget("unet", 100.0, 1000)
    assert budget.tick(1)  # 100 s per read: over after the first step
    assert budget.total == 1 and clock.reads == 2
