"""The gate's paired test: two models scored on the same validation examples differ by noise
unless the difference survives resampling those examples. A paired bootstrap resamples the
examples (the same draw for both models), recomputes the task's metric for each, and gives
an interval for the improvement; the gate promotes only when its lower bound clears
`min_improvement`. On 30 images or 1,600 wine rows a point difference of 0.001 is noise.

A task's metric is read from the per-example table that evaluate writes for the validation
split (`valid_predictions.csv`, also an MLflow artifact of the run), as
f(sum(w·a) / sum(w·b)) over bootstrap weights w, which covers every registry metric:
means (accuracy, dice, iae, mae), a root mean (rmse) and a ratio (perplexity = exp of
summed NLL over summed tokens)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

VALID_TABLE = "valid_predictions.csv"  # in the eval directory and under the run's eval/ artifacts
SEED = 0  # the same tables always give the same interval, hence the same decision
CHUNK = 100  # resamples drawn at a time: bounds memory on 15,000-example tables


@dataclass(frozen=True)
class Statistic:
    """metric = f(sum(w * a) / sum(w * b)) for example weights w (all ones: the point value)."""

    a: np.ndarray
    b: np.ndarray
    f: Callable[[np.ndarray], np.ndarray]

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        """(k, n) weights -> (k,) metric values."""
        return self.f((weights @ self.a) / (weights @ self.b))


@dataclass(frozen=True)
class Interval:
    """The improvement of new over old (metric units, positive = better) and its two-sided
    `confidence` interval from `samples` paired resamples of `examples` examples."""

    gain: float
    low: float
    high: float
    confidence: float
    samples: int
    examples: int

    def line(self) -> str:
        return (
            f"{self.gain:+.4f} ({self.confidence:.0%} interval [{self.low:+.4f}, "
            f"{self.high:+.4f}], paired bootstrap over {self.examples} validation examples)"
        )


def statistic(metric: str, table: pd.DataFrame) -> Statistic | None:
    """The task's metric as a Statistic over the table's rows (None: the table cannot give
    it, e.g. a table from before the column existed)."""
    ones = np.ones(len(table))
    columns = set(table.columns)
    if metric == "perplexity" and {"nll", "tokens"} <= columns:
        tokens = table["tokens"].to_numpy(float)
        return Statistic(table["nll"].to_numpy(float), np.maximum(tokens, 1.0), np.exp)
    if metric in columns:  # a per-example score whose mean is the metric: dice, iae
        return Statistic(table[metric].to_numpy(float), ones, _same)
    if not {"actual", "predicted"} <= columns:
        return None
    actual, predicted = table["actual"].to_numpy(float), table["predicted"].to_numpy(float)
    if metric == "accuracy":
        return Statistic((actual == predicted).astype(float), ones, _same)
    if metric == "rmse":
        return Statistic((actual - predicted) ** 2, ones, np.sqrt)
    if metric == "mae":
        return Statistic(np.abs(actual - predicted), ones, _same)
    return None


def _same(x: np.ndarray) -> np.ndarray:
    return x


def same_examples(new: pd.DataFrame, old: pd.DataFrame) -> str | None:
    """Why two tables cannot be paired (None: row i is the same example in both)."""
    if len(new) != len(old):
        return f"{len(new)} vs {len(old)} validation examples"
    for column in ("id", "actual", "group"):
        if column not in new.columns or column not in old.columns:
            continue
        if (new[column].astype(str).to_numpy() != old[column].astype(str).to_numpy()).any():
            return f"the tables' {column!r} columns differ"
    return None


def bootstrap(
    new: Statistic,
    old: Statistic,
    maximize: bool,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = SEED,
) -> Interval:
    """Paired bootstrap of the improvement new - old (old - new when minimizing)."""
    n = len(new.a)
    sign = 1.0 if maximize else -1.0
    point = sign * float(new(np.ones((1, n)))[0] - old(np.ones((1, n)))[0])
    rng = np.random.default_rng(seed)
    gains = []
    for start in range(0, samples, CHUNK):
        k = min(CHUNK, samples - start)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=k).astype(float)
        gains.append(sign * (new(weights) - old(weights)))
    spread = np.concatenate(gains)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(spread, [tail, 1.0 - tail])
    return Interval(point, float(low), float(high), confidence, samples, n)
