"""One adapter per workload: the typed request and answer of a task's predict route, how its
model loads, and how a request becomes a prediction. `reprolab.serve.tasks.<workload>` is
found by the workload's name (the one the params entries carry); a workload without a module
here has no predict route."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from typing import Any, Protocol, runtime_checkable

import pandas as pd
from pydantic import BaseModel, ConfigDict

MAX_ITEMS = 1024  # rows, texts or plants in one request


class Served(BaseModel):
    """What every answer carries: which task and model version answered."""

    task: str
    version: str


class Strict(BaseModel):
    """A request as its schema states it: no unknown field, and no coercion (`0` is not a
    boolean, `"5"` not a number), so what the server takes is what /openapi.json says."""

    model_config = ConfigDict(extra="forbid", strict=True)


@runtime_checkable
class TaskAdapter(Protocol):
    Request: type[BaseModel]
    Response: type[Served]

    def load(self, uri: str) -> Any:
        """The model at `uri` (a models:/ URI or a directory), ready to predict."""

    def predict(self, model: Any, request: Any) -> dict[str, Any]:
        """The answer's fields (without task and version)."""


@runtime_checkable
class RowAdapter(TaskAdapter, Protocol):
    """A per-row model: requests can be concatenated into one call (micro-batching)."""

    def to_frame(self, request: Any) -> pd.DataFrame: ...

    def run(self, model: Any, frame: pd.DataFrame) -> Sequence[Any]:
        """One output per row of `frame`."""

    def respond(self, request: Any, outputs: Sequence[Any]) -> dict[str, Any]: ...


@runtime_checkable
class ImageAdapter(TaskAdapter, Protocol):
    """A task that also takes an uploaded image file (multipart) instead of base64 JSON."""

    def segment(self, model: Any, data: bytes, overlay: bool) -> dict[str, Any]: ...


def adapter_for(workload: str, task: str, params: Any, settings: Any) -> TaskAdapter | None:
    """The adapter of `workload` for `task`; None when the workload has no predict route."""
    try:
        module = import_module(f"{__name__}.{workload}")
    except ModuleNotFoundError as err:
        if err.name != f"{__name__}.{workload}":
            raise
        return None
    return module.adapter(task, params, settings)


def load_pyfunc(uri: str) -> Any:
    from reprolab.core import saving

    return saving.load_predictor(uri)


def unchecked(pyfunc: Any) -> Any:
    """The pyfunc's own predict without MLflow's per-call input-schema enforcement, for a
    route whose pydantic model already checks the same columns and types: for a small model
    that check costs more than the prediction (0.77 ms against 0.19 ms for the wine MLP).
    Falls back to the checked `predict` when the wrapper is not where MLflow keeps it."""
    impl = getattr(pyfunc, "_model_impl", None)
    return Unchecked(pyfunc, impl) if callable(getattr(impl, "predict", None)) else pyfunc


class Unchecked:
    """A pyfunc's unchecked `predict`, with the pyfunc itself kept for the MLflow-compatible
    route (whose bodies MLflow's own parser and schema check)."""

    def __init__(self, pyfunc: Any, impl: Any) -> None:
        self.pyfunc, self.predict = pyfunc, impl.predict


def pyfunc_of(model: Any) -> Any | None:
    """The MLflow pyfunc behind what a task's adapter loaded (None: there is none, as for a
    language model, which the OpenAI routes serve)."""
    from mlflow.pyfunc import PyFuncModel

    for found in (model, getattr(model, "pyfunc", None), getattr(model, "model", None)):
        if isinstance(found, PyFuncModel):
            return found
    return None
