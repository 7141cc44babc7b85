"""Report section for every model with an Optuna study (reports/hpo/<model>.json)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from reprolab.core.document import Document
from reprolab.core.layout import hpo_dir, hpo_file


def section(doc: Document, params, figdir: Path) -> None:
    studies = []
    for name in params.hpo:
        path = hpo_file(name)
        if path.is_file():
            report = json.loads(path.read_text())
            if report.get("study"):
                studies.append((name, report))
    if not studies:
        return
    doc.heading("Hyper-parameter studies")
    rows = []
    for name, r in studies:
        baseline = next((t for t in r["trials"] if t["number"] == 0), None)
        best = r["best"]
        shown = ", ".join(f"{k}={_fmt(v)}" for k, v in best["params"].items())
        rows.append(
            [
                f"**{name}**",
                f"`{r['study']}`",
                r["metric"],
                " / ".join(str(r["counts"][s]) for s in ("COMPLETE", "PRUNED", "FAIL")),
                _fmt(baseline["value"]) if baseline and baseline["value"] is not None else "",
                f"{_fmt(best['value'])} (#{best['number']})",
                shown,
                "yes" if r.get("applied") else "no",
            ]
        )
    doc.table(
        [
            "model",
            "study",
            "objective",
            "done / pruned / failed",
            "trial 0 (own params)",
            "best",
            "best params",
            "used by train",
        ],
        rows,
    )
    doc.text(
        "Objective: the task's registry metric on the validation split (`valid_`), or its "
        "k-fold mean over train+valid (`cv<k>_`); lower is better for RMSE and IAE. Trial 0 "
        "runs the model's own params from params.yaml; 'used by train' is `use_hpo`."
    )
    for name, _ in studies:
        for stem, caption in (("history", "optimisation history"), ("importances", "importances")):
            src = hpo_dir(name) / f"{stem}.png"
            if src.is_file():
                dest = figdir / f"hpo-{name}-{stem}.png"
                shutil.copyfile(src, dest)
                doc.figure(dest, f"{name}: {caption}")


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
