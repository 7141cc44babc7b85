"""After a person moves an alias: rewrite the task's registry files (reports/registry/), so
that `dvc repro` reruns the stages that use the champion (infer@, report)."""

from __future__ import annotations

from typing import Any


def rewrite(task: str, spec: Any) -> str | None:
    """The sentence saying what was rewritten; None outside a pipeline workspace (no
    reports/registry/ folder here, as in a serving container)."""
    from reprolab.core.layout import registry_file
    from reprolab.pipeline.register import refresh

    if not registry_file(task).parent.is_dir():
        return None
    refresh(task, spec)
    return f"{registry_file(task)} rewritten: `dvc repro` brings predictions in line"
