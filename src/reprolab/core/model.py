"""The one interface every model family implements, in scikit-learn's spirit: construct from
params, `fit`, `predict`, `evaluate`, `save`. A saved model is an MLflow model directory with a
real flavour, so the DVC output and the registered artifact are the same bytes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable


class StepLogger(Protocol):
    """What a training loop may report to: a tracking.Run, or anything with this method."""

    def log_step(self, step: int, metrics: dict[str, float]) -> None: ...


@runtime_checkable
class RunLogger(StepLogger, Protocol):
    """A logger that also takes final metrics (a tracking.Run; an HPO trial's is not one)."""

    def log_metrics(self, metrics: dict[str, Any]) -> None: ...


class Model(ABC):
    def __init__(self, params: Any, seed: int) -> None:
        self.params = params
        self.seed = seed

    @abstractmethod
    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        """Learn from `train`; use `valid` for early stopping and step-wise curves."""

    @abstractmethod
    def predict(self, inputs: Any) -> Any: ...

    def evaluate(self, split: Any) -> dict:
        """The task's metrics on a split (the split knows how its task is scored)."""
        return split.score(self.predict(split.X))

    @abstractmethod
    def save(self, path: Path, input_example: Any) -> None:
        """Write an MLflow model directory at `path` (explicit pip requirements: fast)."""

    def hyperparams(self) -> dict[str, Any]:
        """Params to log: the family's knobs, without the routing keys."""
        return self.params.model_dump(exclude={"workload", "dataset", "task"})
