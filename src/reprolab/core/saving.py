"""Saving and loading MLflow pyfunc models: one place for how every wrapper travels (its
source shipped as code, portable requirements) and for MLflow's quirks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def save_pyfunc(path: str | Path, *, ship_code: bool = True, **kwargs) -> None:
    """`mlflow.pyfunc.save_model(path, **kwargs)` for our wrappers. Their classes live in
    reprolab, so with `ship_code` its source travels as `<model>/code/reprolab` (MLflow puts
    `code/` on sys.path at load): the model loads where reprolab is not installed, and its
    requirements must not name reprolab. One place, too, that silences MLflow's nag about type
    hints on `predict` (we pass explicit signatures/requirements)."""
    import tempfile
    import warnings

    import mlflow.pyfunc

    from reprolab.core.requirements import check_portable

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

    target = Path(parent) / "reprolab"
    shutil.copytree(
        Path(__file__).resolve().parent.parent,  # the reprolab package
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


def save_sklearn(
    estimator: Any,
    path: str | Path,
    input_example: Any,
    outputs: Callable[[Any], Any],
    pyfunc_predict_fn: str = "predict",
    requires: tuple[str, ...] = (),
) -> None:
    """A scikit-learn estimator as an MLflow sklearn model, stored with skops (no pickle).
    skops refuses types it cannot audit (tree node arrays); these are our own freshly trained
    objects, so trust exactly the types this estimator contains. The signature describes what
    the pyfunc returns (`outputs` of the example: values, or probabilities). An estimator
    that calls reprolab functions (`requires` then names the packages they import) carries
    reprolab's source as its code, as the pyfunc wrappers do."""
    import tempfile

    import mlflow.sklearn
    import skops.io
    from mlflow.models import infer_signature

    from reprolab.core.requirements import SKLEARN, pins

    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(estimator))
    signature = None
    if input_example is not None:
        signature = infer_signature(input_example, outputs(input_example))
    ours = any(t.startswith("reprolab.") for t in trusted)
    with tempfile.TemporaryDirectory() as tmp:
        mlflow.sklearn.save_model(
            estimator,
            str(path),
            input_example=input_example,
            signature=signature,
            skops_trusted_types=trusted,
            pyfunc_predict_fn=pyfunc_predict_fn,
            pip_requirements=pins(*SKLEARN, *requires),
            code_paths=[_package_copy(tmp)] if ours else None,
        )


HF_COMPONENTS = "components"  # where MLflow's transformers flavour looks for the tokenizer


def add_transformers_flavor(path: str | Path, model: Any, tokenizer: Any, task: str) -> None:
    """Declare the Hugging Face files at the root of the model directory `path` as MLflow's
    transformers flavour, beside the pyfunc: `mlflow.transformers.load_model(path)` then
    gives a `transformers` pipeline for `task` over the same weights (no second copy; only
    the small tokenizer files are repeated under components/tokenizer, where the flavour
    reads them). `model` and `tokenizer` are the objects just saved there."""
    import warnings

    import transformers
    from mlflow.models import Model
    from mlflow.transformers.flavor_config import build_flavor_config

    from reprolab.core.card import model_name

    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipe = transformers.pipeline(task=task, model=model, tokenizer=tokenizer)
        conf = build_flavor_config(pipe, save_pretrained=True)
    conf.update(model_binary=".", source_model_name=model_name(path))  # not the staging dir
    tokenizer.save_pretrained(str(path / HF_COMPONENTS / "tokenizer"))
    mlmodel = Model.load(str(path))
    mlmodel.add_flavor("transformers", transformers_version=transformers.__version__, **conf)
    mlmodel.save(str(path / "MLmodel"))
