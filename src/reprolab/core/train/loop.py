"""The one training loop every torch family runs, nanoGPT's loop written once.

A family gives what is its own: `step(i)`, one optimiser step (or one epoch, for the families
that count epochs) returning its train metrics, and `evaluate()`, the validation metrics.
The loop owns the rest, the same way for all of them: the planned length in steps (never
seconds: `max_seconds` is only a guard, and a run it stops is cut short), when to evaluate
and log, early stopping on a monitored metric with the best weights kept and put back,
resumable checkpoints (the family's state plus the loop's own counters, history and
early-stopping state), the progress bar, and the curves sent to the run. Seeds, threads and
deterministic kernels come from `setup.reproducible_fit` around the family's `fit`.

    outcome = Loop("unet", steps=p.max_steps, eval_every=p.eval_every, patience=p.patience,
                   monitor="valid_dice", mode="max").run(step, evaluate, run=run, keep=net)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from reprolab.core.train import checkpoint
from reprolab.core.train.budget import TimeGuard
from reprolab.core.train.early_stopping import EarlyStopping

Metrics = Mapping[str, float]


@dataclass
class Outcome:
    """What a finished loop tells its family: how far it went and why it stopped."""

    steps: int  # steps done in all, a resumed run's earlier ones included
    resumed_from: int  # the step this process started at (0: a fresh run)
    best_step: int  # the step of the best monitored evaluation (0: none monitored)
    best: float | None  # its value
    stopped_early: bool  # early stopping ended the run before its planned steps
    cut_short: bool  # the max_seconds guard ended it (the model depends on the machine)
    seconds: float  # wall time of this process's steps, evaluations included
    history: list[dict[str, float]] = field(default_factory=list)  # every logged point


@dataclass
class Loop:
    """A plan: `steps` optimiser steps (or epochs), evaluated every `eval_every` and at the
    end; train metrics averaged and logged every `log_every` (None: at each evaluation);
    with `monitor`, early stopping after `patience` evaluations without an improvement of
    more than `min_delta` (`best`: the value to beat at the start); with `checkpoint`, the
    state saved every `checkpoint_every` steps and resumed from when the run starts again."""

    name: str
    steps: int
    eval_every: int
    log_every: int | None = None
    unit: str = "step"
    monitor: str | None = None
    mode: Literal["min", "max"] = "min"
    patience: int | None = None
    min_delta: float = 0.0
    best: float | None = None
    max_seconds: float | None = None
    checkpoint: Path | None = None
    checkpoint_every: int | None = None
    quiet: bool = False  # no progress bar (a torchrun rank other than 0)

    def run(
        self,
        step: Callable[[int], Metrics],
        evaluate: Callable[[], Metrics],
        *,
        run: Any = None,
        keep: Any = None,
        status: Callable[[], Metrics] | None = None,
        save_state: Callable[[], dict] | None = None,
        load_state: Callable[[dict], None] | None = None,
    ) -> Outcome:
        """Train: `step(i)` takes step i (0-based) and returns train metrics; `evaluate()`
        scores the model; `status()` adds values read after a step (the learning rate) to
        each logged point; `keep` is the module whose best weights early stopping keeps;
        `save_state`/`load_state` carry the family's own state through checkpoints."""
        from tqdm.auto import tqdm

        stopping = self._stopping(keep)
        done, history = 0, []
        saved = checkpoint.load(self.checkpoint) if self.checkpoint is not None else None
        if saved is not None:
            done, history = self._resume(saved, stopping, load_state, run)
        resumed_from = done
        guard = TimeGuard(self.name, self.max_seconds, self.steps, run=run)
        bar = tqdm(
            total=self.steps,
            initial=done,
            desc=self.name,
            unit=self.unit,
            leave=False,
            disable=True if self.quiet else None,  # None: only on a terminal
        )
        pending: dict[str, list[float]] = {}
        started, best_step, stopped = time.perf_counter(), self._best_step(history), False
        while done < guard.total:
            for key, value in step(done).items():
                pending.setdefault(key, []).append(float(value))
            done += 1
            bar.update(1)
            guard.tick(done)
            last = done >= guard.total
            point: dict[str, float] = {}
            if self.log_every and (done % self.log_every == 0 or last):
                point |= _means(pending)
            if done % self.eval_every == 0 or last:
                if not self.log_every:
                    point |= _means(pending)
                point |= dict(evaluate())
                if stopping is not None and stopping.update(point[self.monitor], keep):
                    best_step = done
            if point:
                point |= dict(status()) if status is not None else {}
                history.append({"step": done, **point})
                bar.set_postfix({k: f"{v:.4g}" for k, v in point.items() if _shown(k)})
                if run is not None:
                    run.log_step(done, point)
            stopped = stopping is not None and stopping.stop and not last
            if stopped:
                break
            if self.checkpoint_every and done % self.checkpoint_every == 0 and not last:
                self._save(done, history, stopping, save_state)
        bar.close()
        if stopping is not None:
            stopping.restore(keep)
        if self.checkpoint is not None:
            checkpoint.clear(self.checkpoint)  # a finished run needs no resume
        return Outcome(
            steps=done,
            resumed_from=resumed_from,
            best_step=best_step,
            best=stopping.best if stopping is not None else None,
            stopped_early=stopped,
            cut_short=guard.cut_short,
            seconds=time.perf_counter() - started,
            history=history,
        )

    def _stopping(self, keep: Any) -> EarlyStopping | None:
        if self.monitor is None:
            return None
        patience = self.patience if self.patience is not None else 10**9
        return EarlyStopping(patience, self.mode, self.min_delta, module=keep, best=self.best)

    def _best_step(self, history: list[dict[str, float]]) -> int:
        """The step of the best monitored point so far (a resumed run's history)."""
        scored = [h for h in history if self.monitor is not None and self.monitor in h]
        if not scored:
            return 0
        pick = max if self.mode == "max" else min
        return int(pick(scored, key=lambda h: h[self.monitor])["step"])

    def _save(
        self,
        done: int,
        history: list[dict[str, float]],
        stopping: EarlyStopping | None,
        save_state: Callable[[], dict] | None,
    ) -> None:
        state = {
            "step": done,
            "history": history,
            "family": save_state() if save_state is not None else {},
            "rng": checkpoint.rng_state(),
        }
        if stopping is not None:
            state["stopping"] = {
                "best": stopping.best,
                "stale": stopping.stale,
                "best_state": stopping.best_state,
            }
        checkpoint.save(self.checkpoint, checkpoint.on_cpu(state))

    def _resume(
        self,
        saved: dict,
        stopping: EarlyStopping | None,
        load_state: Callable[[dict], None] | None,
        run: Any,
    ) -> tuple[int, list[dict[str, float]]]:
        if load_state is not None:
            load_state(saved["family"])
        checkpoint.set_rng_state(saved["rng"])
        if stopping is not None and "stopping" in saved:
            kept = saved["stopping"]
            stopping.best, stopping.stale = kept["best"], kept["stale"]
            stopping.best_state = kept["best_state"]
        done, history = int(saved["step"]), list(saved["history"])
        print(f"{self.name}: resuming from {self.checkpoint} at {self.unit} {done}")
        if run is not None:  # this run's curves start where the interrupted one began
            for point in history:
                run.log_step(int(point["step"]), {k: v for k, v in point.items() if k != "step"})
        return done, history


def _means(pending: dict[str, list[float]]) -> dict[str, float]:
    """The mean of each train metric since the last log, then forgotten."""
    out = {key: sum(values) / len(values) for key, values in pending.items() if values}
    pending.clear()
    return out


def _shown(key: str) -> bool:
    return "loss" in key or key.startswith("valid") or key.endswith("per_s")
