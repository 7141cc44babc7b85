"""`SentimentPredictor`: the registered sentiment model behind the original KcBERT API.

    SentimentPredictor(alias="champion").predict("재밌어요", return_probs=True)
    -> [{"text": ..., "label": "positive", "confidence": 0.93, "probs": {...}}]

Any model whose pyfunc maps a frame with a `text` column to (n, 2) probabilities works (the
TF-IDF baseline today, an encoder later). Defined behaviour for bad input, never a traceback:
- empty or whitespace-only text: no guess; `label` None, `confidence` 0.0, `probs` None and
  a `note` saying why;
- text longer than `max_length` characters (dataset params): cut to that length, `note` says so;
- a non-string item: PredictorError naming its position and type (nothing is predicted)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprolab.errors import ReprolabError

DEFAULT_TASK = "nsmc-sentiment"
DEFAULT_LABELS = ["negative", "positive"]
DEFAULT_MAX_LENGTH = 300


class PredictorError(ReprolabError):
    """Input the predictor cannot take (e.g. not a string)."""


class SentimentPredictor:
    def __init__(
        self,
        alias: str = "champion",
        task: str = DEFAULT_TASK,
        model: Any = None,
        label_names: list[str] | None = None,
        max_length: int | None = None,
        params_path: str | Path = "params.yaml",
    ) -> None:
        """Loads `models:/<task>@<alias>` (or `model`: a model directory, URI or a loaded
        pyfunc). Label names and max_length come from the task's dataset in params.yaml when
        present, else the defaults (negative/positive, 300)."""
        labels, length = _from_params(task, params_path)
        self.label_names = list(label_names or labels)
        self.max_length = int(max_length or length)
        self.task, self.alias = task, alias
        if model is None:
            model = f"models:/{task}@{alias}"
        if isinstance(model, str | Path):
            self.source = str(model)
            model = _load(self.source)
        else:
            self.source = type(model).__name__
        self.model = model

    def predict(self, texts: str | list[str], return_probs: bool = True) -> list[dict]:
        """One dict per input, in order: {text, label, confidence[, probs][, note]}."""
        items = [texts] if isinstance(texts, str) else texts
        if not isinstance(items, list | tuple):
            raise PredictorError(
                f"expected a string or a list of strings, got {type(texts).__name__}"
            )
        for i, item in enumerate(items):
            if not isinstance(item, str):
                raise PredictorError(
                    f"input {i}: expected a string, got {type(item).__name__} ({item!r:.40})"
                )
        results: list[dict] = [{} for _ in items]
        todo = []
        for i, text in enumerate(items):
            if not text.strip():
                results[i] = {
                    "text": text,
                    "label": None,
                    "confidence": 0.0,
                    **({"probs": None} if return_probs else {}),
                    "note": "empty text: no prediction",
                }
            else:
                todo.append(i)
        if todo:
            import pandas as pd

            cut = [items[i][: self.max_length] for i in todo]
            probs = self.model.predict(pd.DataFrame({"text": cut}))
            for row, i in enumerate(todo):
                p = [float(x) for x in probs[row]]
                best = int(p[1] >= p[0])
                result = {"text": items[i], "label": self.label_names[best], "confidence": p[best]}
                if return_probs:
                    result["probs"] = dict(zip(self.label_names, p, strict=True))
                if len(items[i]) > self.max_length:
                    result["note"] = f"truncated to max_length={self.max_length} characters"
                results[i] = result
        return results


def _from_params(task: str, params_path: str | Path) -> tuple[list[str], int]:
    """Label names and max_length of the task's dataset; defaults if params are unavailable."""
    path = Path(params_path)
    if not path.is_file():
        return DEFAULT_LABELS, DEFAULT_MAX_LENGTH
    from reprolab.params import load_params

    params = load_params(path)
    for name in params.models_of_task(task):
        dataset = params.datasets[params.model(name).dataset]
        if hasattr(dataset, "label_names"):
            return list(dataset.label_names), int(dataset.max_length)
    return DEFAULT_LABELS, DEFAULT_MAX_LENGTH


def _load(location: str):
    """The pyfunc at `location`; a missing alias, version or directory is a RegistryError."""
    from mlflow.exceptions import MlflowException

    from reprolab import models
    from reprolab.errors import RegistryError

    try:
        return models.load_predictor(location)
    except (MlflowException, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RegistryError(
            f"{location}: cannot load the model ({first}); run the pipeline (register stage) "
            "or name a model directory"
        ) from err
