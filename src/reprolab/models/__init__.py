"""Model families behind one interface (see base.Model). The `kind` in a model's params picks
the family; modules are imported only when a model of their kind is built."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reprolab.models.base import Model

_KINDS = {
    "ridge": "reprolab.models.sklearn_models:SklearnRegressor",
    "random_forest": "reprolab.models.sklearn_models:SklearnRegressor",
    "hist_gradient_boosting": "reprolab.models.sklearn_models:SklearnRegressor",
    "torch_mlp": "reprolab.models.torch_mlp:TorchMLPRegressor",
    "tfidf_logreg": "reprolab.models.tfidf_logreg:TfidfLogReg",
    "unet": "reprolab.models.unet:UNetSegmenter",
    "pidnet": "reprolab.models.pidnet:PIDNet",
    "bert_mlm": "reprolab.models.bert_mlm:BertMLM",
    "hf_classifier": "reprolab.models.hf_classifier:HFClassifier",
    "hf": "reprolab.models.hf_import:HFImport",
    "prob_average": "reprolab.models.ensemble:ProbAverage",
    "minit": "reprolab.models.minit:MiniT",
    "gguf": "reprolab.models.llm_import:LlmImport",
    "hf_causal_lm": "reprolab.models.llm_import:LlmImport",
    "lora": "reprolab.models.lora:LoraFinetune",
}


def build(params, seed: int) -> Model:
    """A fresh, unfitted model for `params` (one entry of params.yaml's `models`)."""
    module_name, class_name = _KINDS[params.kind].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(params, seed)


def save_pyfunc(path, **kwargs) -> None:
    """`mlflow.pyfunc.save_model(path, **kwargs)` for our wrappers: one place that silences
    MLflow's nag about type hints on `predict` (we pass explicit signatures/requirements)."""
    import warnings

    import mlflow.pyfunc

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*type hints.*")
        mlflow.pyfunc.save_model(str(path), **kwargs)


def load_predictor(location):
    """A saved model directory or a `models:/` URI, as a pyfunc with `.predict(frame)`."""
    import warnings

    import mlflow.pyfunc

    with warnings.catch_warnings():  # MLflow nags about type hints on our pyfunc wrappers
        warnings.filterwarnings("ignore", message=".*type hints.*")
        return mlflow.pyfunc.load_model(str(location))
