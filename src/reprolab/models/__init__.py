"""Model families behind one interface (see base.Model). The `kind` in a model's params picks
the family; modules are imported only when a model of their kind is built."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

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


def save_pyfunc(path: str | Path, *, ship_code: bool = True, **kwargs) -> None:
    """`mlflow.pyfunc.save_model(path, **kwargs)` for our wrappers. Their classes live in
    reprolab, so with `ship_code` its source travels as `<model>/code/reprolab` (MLflow puts
    `code/` on sys.path at load): the model loads where reprolab is not installed, and its
    requirements must not name reprolab. One place, too, that silences MLflow's nag about type
    hints on `predict` (we pass explicit signatures/requirements)."""
    import tempfile
    import warnings

    import mlflow.pyfunc

    from reprolab.models.requirements import check_portable

    check_portable(kwargs.get("pip_requirements"))
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*type hints.*")
        if ship_code:
            kwargs["code_paths"] = [*(kwargs.get("code_paths") or ()), _package_copy(tmp)]
        mlflow.pyfunc.save_model(str(path), **kwargs)


def _package_copy(parent: str | Path) -> str:
    """A copy of the reprolab package source under `parent`, without bytecode: what a saved
    model carries is the source alone, the same bytes on every machine and Python."""
    import shutil
    from pathlib import Path

    import reprolab

    target = Path(parent) / "reprolab"
    shutil.copytree(
        Path(reprolab.__file__).parent,
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"),
    )
    return str(target)


def load_predictor(location):
    """A saved model directory or a `models:/` URI, as a pyfunc with `.predict(frame)`."""
    import warnings

    import mlflow.pyfunc

    with warnings.catch_warnings():  # MLflow nags about type hints on our pyfunc wrappers
        warnings.filterwarnings("ignore", message=".*type hints.*")
        return mlflow.pyfunc.load_model(str(location))
