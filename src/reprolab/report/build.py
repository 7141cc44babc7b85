"""Gather the pipeline's outputs into one report: each task's section comes from its
workload's report module (metrics per model with the champion marked and the change against
the previous champion, published references beside ours, figures), then the studies and
the time each stage took."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from reprolab.core.document import Document
from reprolab.core.io import atomic_dir, atomic_write_text
from reprolab.params import Params
from reprolab.report import hpo, timings

REPORT_DIR = Path("reports")
FIGURES = REPORT_DIR / "figures"


def _report_module(workload: str) -> ModuleType:
    """A workload's report module: `task_section(doc, task, params, figdir)` for its tasks,
    and optionally `base_section(doc, params, figdir)` for the base models it pretrains."""
    return importlib.import_module(f"reprolab.workloads.{workload}.report")


def build_report(params: Params) -> Path:
    doc = Document(params.report.title)
    with atomic_dir(FIGURES) as staging:
        for task in params.registry:
            if params.models_of_task(task):
                section = _report_module(_workload(task, params)).task_section
                section(doc, task, params, staging)
        for workload in sorted({params.model(n).workload for n in params.pretrain}):
            base_section = getattr(_report_module(workload), "base_section", None)
            if base_section is not None:  # a section on the base models this workload learns
                base_section(doc, params, staging)
        hpo.section(doc, params, staging)
        timings.section(doc, params)
        markdown_figures = doc.to_markdown(base=staging.parent).replace(
            staging.name + "/", FIGURES.name + "/"
        )
        html = doc.to_html()  # figures are inlined while the staging files exist
    atomic_write_text(REPORT_DIR / "report.md", markdown_figures)
    atomic_write_text(REPORT_DIR / "report.html", html)
    return REPORT_DIR / "report.md"


def _workload(task: str, params: Params) -> str:
    """The workload of a task: that of its models (they share one dataset's workload)."""
    return params.model(params.models_of_task(task)[0]).workload
