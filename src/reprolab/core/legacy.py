"""Module names of the earlier flat layout (reprolab.models.unet, reprolab.data.wine, ...),
resolved to where that code lives now. Models saved before pickled their pyfunc wrappers by
those names; with this finder they still load in-process (`infer --run-id`, the registry's
older versions). Outside reprolab (a clean virtualenv) they load their own shipped code."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

MOVED = {
    "reprolab.bench": "reprolab.core.bench",
    "reprolab.bench.encoder": "reprolab.workloads.sentiment.bench",
    "reprolab.bench.llm": "reprolab.workloads.llm.bench",
    "reprolab.bench.mlp": "reprolab.workloads.wine.bench",
    "reprolab.bench.unet": "reprolab.workloads.nuclei.bench",
    "reprolab.control": "reprolab.workloads.control",
    "reprolab.control.metrics": "reprolab.workloads.control.metrics",
    "reprolab.control.plants": "reprolab.workloads.control.plants",
    "reprolab.control.simulate": "reprolab.workloads.control.simulate",
    "reprolab.control.tuning": "reprolab.workloads.control.tuning",
    "reprolab.data": "reprolab.workloads",
    "reprolab.data.control": "reprolab.workloads.control.data",
    "reprolab.data.fetch": "reprolab.core.fetch",
    "reprolab.data.images": "reprolab.workloads.nuclei.images",
    "reprolab.data.instructions": "reprolab.workloads.llm.data",
    "reprolab.data.nsmc": "reprolab.workloads.sentiment.data",
    "reprolab.data.nuclei": "reprolab.workloads.nuclei.data",
    "reprolab.data.shakespeare": "reprolab.workloads.minit.data",
    "reprolab.data.tokenizers": "reprolab.lm.tokenizers",
    "reprolab.data.wine": "reprolab.workloads.wine.data",
    "reprolab.devservers": "reprolab.ops.devservers",
    "reprolab.distributed": "reprolab.core.distributed",
    "reprolab.doctor": "reprolab.ops.doctor",
    "reprolab.errors": "reprolab.core.errors",
    "reprolab.interrupts": "reprolab.core.interrupts",
    "reprolab.io": "reprolab.core.io",
    "reprolab.layout": "reprolab.core.layout",
    "reprolab.lineage": "reprolab.core.lineage",
    "reprolab.llm": "reprolab.lm",
    "reprolab.llm.generation": "reprolab.lm.generation",
    "reprolab.llm.gguf_import": "reprolab.workloads.llm.gguf_import",
    "reprolab.llm.instructions": "reprolab.workloads.llm.instructions",
    "reprolab.llm.lora": "reprolab.workloads.llm.lora",
    "reprolab.llm.pyfunc": "reprolab.lm.pyfunc",
    "reprolab.llm.saved": "reprolab.workloads.llm.saved",
    "reprolab.metrics": "reprolab.core.metrics",
    "reprolab.models": "reprolab.workloads",
    "reprolab.models.base": "reprolab.core.model",
    "reprolab.models.bert_mlm": "reprolab.workloads.sentiment.bert_mlm",
    "reprolab.models.card": "reprolab.core.card",
    "reprolab.models.ensemble": "reprolab.workloads.sentiment.ensemble",
    "reprolab.models.hf_classifier": "reprolab.workloads.sentiment.hf_classifier",
    "reprolab.models.hf_import": "reprolab.workloads.sentiment.hf_import",
    "reprolab.models.hf_text": "reprolab.workloads.sentiment.hf_text",
    "reprolab.models.llm_import": "reprolab.workloads.llm.importer",
    "reprolab.models.lora": "reprolab.workloads.llm.lora_model",
    "reprolab.models.minit": "reprolab.workloads.minit.model",
    "reprolab.models.pidnet": "reprolab.workloads.control.pidnet",
    "reprolab.models.requirements": "reprolab.core.requirements",
    "reprolab.models.sklearn_models": "reprolab.workloads.wine.sklearn_models",
    "reprolab.models.tfidf_logreg": "reprolab.workloads.sentiment.tfidf_logreg",
    "reprolab.models.torch_mlp": "reprolab.workloads.wine.torch_mlp",
    "reprolab.models.torch_pyfunc": "reprolab.core.torch_pyfunc",
    "reprolab.models.unet": "reprolab.workloads.nuclei.unet",
    "reprolab.models.unet_net": "reprolab.workloads.nuclei.unet_net",
    "reprolab.offline_plots": "reprolab.ops.offline_plots",
    "reprolab.paths": "reprolab.core.paths",
    "reprolab.pid": "reprolab.workloads.control.gains",
    "reprolab.registry": "reprolab.core.registry",
    "reprolab.remote": "reprolab.ops.remote",
    "reprolab.report.control": "reprolab.workloads.control.report",
    "reprolab.report.document": "reprolab.core.document",
    "reprolab.report.figures": "reprolab.core.figures",
    "reprolab.report.llm": "reprolab.workloads.llm.report",
    "reprolab.report.lm": "reprolab.workloads.minit.report",
    "reprolab.report.segmentation": "reprolab.workloads.nuclei.report",
    "reprolab.review": "reprolab.ops.review",
    "reprolab.runs": "reprolab.ops.runs",
    "reprolab.sandbox": "reprolab.ops.sandbox",
    "reprolab.sentiment": "reprolab.workloads.sentiment.api",
    "reprolab.sweep": "reprolab.ops.sweep",
    "reprolab.tagging": "reprolab.ops.tagging",
    "reprolab.tracking": "reprolab.core.tracking",
}


class _Moved(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old name as the module that now holds its code (the same module object)."""

    def find_spec(self, name: str, path=None, target=None):
        if name not in MOVED:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        return None


def install() -> None:
    """Add the finder once (idempotent); old names then import as their new modules."""
    if not any(isinstance(finder, _Moved) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Moved())  # before the path finders: old parents alias new ones
