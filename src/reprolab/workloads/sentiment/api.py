"""The original KcBERT API over the pipeline: a trainer call and `SentimentPredictor`.

    result = train("nsmc-nblr")            # -> run_id, run_name, metrics, model, tokenizer
    SentimentPredictor(alias="champion").predict("재밌어요", return_probs=True)
    -> [{"text": ..., "label": "positive", "confidence": 0.93, "probs": {...}}]

Any model whose pyfunc maps a frame with a `text` column to (n, 2) probabilities works: the
TF-IDF baseline, NB-LR, a fine-tuned encoder, an ensemble; the predictor does not care which
kind is champion. Defined behaviour for bad input, never a traceback:
- empty or whitespace-only text: no guess; `label` None, `confidence` 0.0, `probs` None and
  a `note` saying why;
- text longer than `max_length` characters (dataset params): cut to that length, `note` says so;
- a non-string item: PredictorError naming its position and type (nothing is predicted)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprolab.core.errors import ReprolabError

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

    from reprolab.core import saving
    from reprolab.core.errors import RegistryError

    try:
        return saving.load_predictor(location)
    except (MlflowException, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise RegistryError(
            f"{location}: cannot load the model ({first}); run the pipeline (register stage) "
            "or name a model directory"
        ) from err


# ---------------------------------------------------------------- trainer API


@dataclass
class TrainResult:
    """What the original trainer returned: the MLflow run, its metrics, model and tokenizer.
    `model` is the Hugging Face classifier for an encoder (with `tokenizer`), else the saved
    MLflow pyfunc (tokenizer None)."""

    run_id: str
    run_name: str
    metrics: dict
    model: Any
    tokenizer: Any = None
    path: Path = field(default_factory=Path)


def train(
    model: str = "nsmc-nblr",
    params_path: str | Path = "params.yaml",
    overrides: dict[str, Any] | None = None,
    evaluate: bool = True,
) -> TrainResult:
    """Train one model of params.yaml (any section: models, pretrain, finetune, ensembles)
    exactly as its stage does, then score it on the test split (`evaluate`, for models with a
    task). `overrides` sets dotted keys first, e.g. {"finetune.nsmc-bert.unfrozen_layers": 2}.

    Run from the repository root with the dataset prepared (and a finetune's base, an
    ensemble's members trained): `dvc repro prepare@nsmc`. The outputs
    land where the stage writes them (models/<model>, reports/); `dvc repro` remains the way to
    record them in dvc.lock."""
    import yaml

    from reprolab.params import parse_params
    from reprolab.pipeline.evaluate import evaluate as run_evaluate
    from reprolab.pipeline.train import train as run_train

    raw = yaml.safe_load(Path(params_path).read_text())
    for key, value in (overrides or {}).items():
        from reprolab.ops.sandbox import set_dotted

        try:
            set_dotted(raw, key, value)
        except (KeyError, TypeError) as err:
            raise ReprolabError(f"overrides: no such key {key!r} in {params_path}") from err
    params = parse_params(raw, source=str(params_path))
    try:
        params.model(model)
    except KeyError:
        raise ReprolabError(f"{params_path}: no model {model!r} in any model section") from None
    info = run_train(model, params)
    metrics = dict(info.get("valid", {}))
    if evaluate and params.model(model).task is not None:
        metrics = run_evaluate(model, params)
    loaded, tokenizer = _load_trained(Path(info["model_path"]))
    return TrainResult(
        run_id=info["run_id"],
        run_name=info["model"],
        metrics=metrics,
        model=loaded,
        tokenizer=tokenizer,
        path=Path(info["model_path"]),
    )


def _load_trained(path: Path) -> tuple[Any, Any]:
    """An HF classifier and its tokenizer when the model holds an HF directory, else the
    pyfunc (a base model directory gives AutoModel + AutoTokenizer)."""
    hf = path / "artifacts" / "hf"
    if (path / "config.json").is_file():
        hf = path
    if (hf / "config.json").is_file():
        from transformers import AutoModel, AutoTokenizer

        from reprolab.workloads.sentiment.hf_classifier_net import load_classifier

        tokenizer = AutoTokenizer.from_pretrained(hf)
        if not (path / "MLmodel").is_file():  # a base model directory (pretrain/import)
            return AutoModel.from_pretrained(hf).eval(), tokenizer
        return load_classifier(hf).eval(), tokenizer
    from reprolab.core import saving

    return saving.load_predictor(path), None
