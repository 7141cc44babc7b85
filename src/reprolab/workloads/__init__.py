"""The workloads: one package each (wine, sentiment, nuclei, control, minit, llm) holding its
params (each kind declared once, with the `module:Class` that implements it), its data
module, its models, its report section and its benchmark. Modules are imported only when
an entry of their kind is built, so a stage loads its own workload's code and no other."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reprolab.core.model import Model
    from reprolab.core.params import DatasetBase, ModelBase


def _package(spec: DatasetBase | ModelBase) -> str:
    return type(spec).__module__.rpartition(".")[0]


def build(spec: ModelBase, seed: int) -> Model:
    """A fresh, unfitted model for `spec` (one model entry of params.yaml)."""
    module_name, class_name = spec.impl.split(":")
    cls = getattr(importlib.import_module(f"{_package(spec)}.{module_name}"), class_name)
    return cls(spec, seed)


def data_module(spec: DatasetBase) -> ModuleType:
    """The module that prepares and loads `spec`'s dataset: `prepare(name, params, seed,
    raw_dir, out_dir, mirror)` and `load_split(out_dir, split)`."""
    return importlib.import_module(f"{_package(spec)}.{spec.impl}")
