"""Report section: where the pipeline's time went, one row per timed stage, read from the
timings.json each run writes beside its metrics (the stage's wall time since its process
started, and the fit time inside it)."""

from __future__ import annotations

import json
from pathlib import Path

from reprolab.core.document import Document
from reprolab.core.layout import TIMINGS_FILE, eval_dir, hpo_dir, train_dir
from reprolab.params import Params

# params section -> its training stage's name, and whether evaluate runs in the same stage
_TRAINING = {
    "models": ("train", False),
    "pretrain": ("pretrain", False),
    "imports": ("import", False),
    "finetune": ("finetune", True),
    "ensembles": ("ensemble", True),
}
UNTIMED = "check, prepare, register, infer and report write no timings"


def stage_times(params: Params) -> list[tuple[str, float, float | None]]:
    """(stage, wall seconds, fit seconds or None) for every stage whose run left timings."""
    rows: list[tuple[str, float, float | None]] = []
    for name in params.hpo:
        t = _read(hpo_dir(name) / TIMINGS_FILE)
        if t:
            rows.append((f"hpo@{name}", t["stage_seconds"], None))
    for section, (stage, with_eval) in _TRAINING.items():
        for name in getattr(params, section):
            train = _read(train_dir(name) / TIMINGS_FILE)
            task = params.model(name).task
            test = _read(eval_dir(task, name) / TIMINGS_FILE) if task else {}
            if with_eval and train:
                seconds = train["stage_seconds"] + test.get("stage_seconds", 0.0)
                rows.append((f"{stage}@{name}", seconds, train.get("fit_seconds")))
                continue
            if train:
                rows.append((f"{stage}@{name}", train["stage_seconds"], train.get("fit_seconds")))
            if test and section == "models":
                rows.append((f"evaluate@{name}", test["stage_seconds"], None))
    return rows


def section(doc: Document, params: Params) -> None:
    rows = stage_times(params)
    if not rows:
        return
    total = sum(seconds for _, seconds, _ in rows)
    doc.heading("Time per stage")
    doc.table(
        ["stage", "wall time", "of which fitting", "share"],
        [
            [stage, _minutes(seconds), _minutes(fit) if fit else "", f"{seconds / total:.0%}"]
            for stage, seconds, fit in sorted(rows, key=lambda r: -r[1])
        ],
    )
    doc.text(
        f"{len(rows)} timed stages, {_minutes(total)} in all, as each ran last (a stage "
        f"DVC skipped keeps the time of the run that made its outputs); {UNTIMED}. Wall time "
        f"counts from the stage's process start, so imports and data loading are included."
    )


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}
