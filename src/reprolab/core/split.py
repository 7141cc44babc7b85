"""The interfaces the pipeline relies on, so that stages call methods instead of probing for
them: a dataset split (what a model learns from and is scored on), what scoring a saved model
returns, and the data module of a workload that predicts from files (`infer@<task>`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd


class Scored(NamedTuple):
    """A saved model scored on a split: metrics, the per-item table (predictions.csv) and
    further JSON files for the eval directory (an LLM's generations, say)."""

    metrics: dict
    table: pd.DataFrame
    files: dict[str, Any]


class Split:
    """A dataset split. Subclasses (dataclasses of each workload) set `X` and implement
    `score`; the defaults below fit labelled splits with `y` and `groups`."""

    X: Any

    def score(self, predicted: Any) -> dict:
        raise NotImplementedError

    def prediction_table(self, predicted: Any) -> pd.DataFrame:
        """Per-item rows kept beside the metrics: actual, predicted and group."""
        import pandas as pd

        rows = {"actual": self.y, "predicted": predicted, "group": self.groups}  # type: ignore[attr-defined]
        return pd.DataFrame(rows)

    def score_model(self, path: Path) -> Scored:
        """Score the saved model at `path`: load it, predict `X`, score. Splits whose metric
        needs the model itself (perplexity) override this."""
        from reprolab.core import saving

        predicted = saving.load_predictor(path).predict(self.X)
        return Scored(self.score(predicted), self.prediction_table(predicted), {})

    def labelled_rows(self) -> int | None:
        """How many labelled examples a pass over the split sees (None: not row data)."""
        return len(self.y)  # type: ignore[attr-defined]

    def example(self, n: int = 5) -> Any:
        """A few inputs for a saved model's signature."""
        import pandas as pd

        return self.X.head(n) if isinstance(self.X, pd.DataFrame | pd.Series) else self.X[:n]


@runtime_checkable
class PredictsFromFiles(Protocol):
    """A workload data module that `infer@<task>` can use: read inputs from a file or folder
    (failing with one line before any model loads) and write the predictions."""

    def read_inputs(self, source: Path) -> Any: ...

    def write_predictions(
        self, predictor: Any, inputs: Any, output: Path, dataset: Any
    ) -> Path: ...
