"""Report section of the wine-quality task (regression): RMSE/MAE/R² and accuracy within half
and one grade per model beside published results, predicted vs actual, residuals and learning
curves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from reprolab.core import figures
from reprolab.core.document import Document
from reprolab.core.layout import eval_dir, registry_file
from reprolab.core.summary import champion_sentence, versions_by_model

if TYPE_CHECKING:
    from reprolab.params import Params

COLUMNS = [
    ("rmse", "RMSE", "{:.3f}"),
    ("mae", "MAE", "{:.3f}"),
    ("r2", "R²", "{:.3f}"),
    ("acc_0_5", "acc ±0.5", "{:.1%}"),
    ("acc_1_0", "acc ±1.0", "{:.1%}"),
]
NOTE = (
    "Exact duplicate wines were removed before splitting (they would leak across "
    "splits), which makes the task harder than in the published setting."
)

# Published results to read ours against.
REFERENCES = [
    (
        "Cortez et al. 2009, SVM (per color, with duplicates)",
        {"red": {"acc_0_5": 0.624}, "white": {"acc_0_5": 0.646}},
    ),
]


def task_section(doc: Document, task: str, params: Params, figdir: Path) -> None:
    names = params.models_of_task(task)
    evals = {n: json.loads((eval_dir(task, n) / "metrics.json").read_text()) for n in names}
    registry = json.loads(registry_file(task).read_text())
    spec = params.registry[task]
    by_model = versions_by_model(registry)
    champion = registry.get("champion") or {}
    previous = registry.get("previous_champion")

    doc.heading(f"Task `{task}`")
    doc.text(champion_sentence(registry, spec.metric, previous))
    groups = sorted({k for m in evals.values() for k, v in m.items() if isinstance(v, dict)})
    header = ["model", *[c[1] for c in COLUMNS]]
    header += [f"{g} {label}" for g in groups for _, label, _ in (COLUMNS[0], COLUMNS[3])]
    header.append("registry")
    rows = []
    for name in names:
        metrics = evals[name]
        row = [f"**{name}** ★" if champion.get("model") == name else name]
        row += [fmt.format(metrics[key]) for key, _, fmt in COLUMNS]
        row += [
            fmt.format(metrics[g][key]) for g in groups for key, _, fmt in (COLUMNS[0], COLUMNS[3])
        ]
        row.append(by_model.get(name, ""))
        rows.append(row)
    for label, ref in REFERENCES:
        row = [f"_{label}_", *["" for _ in COLUMNS]]
        row += [
            f"{ref[g]['acc_0_5']:.1%}" if key == "acc_0_5" and g in ref else ""
            for g in groups
            for key, _, _ in (COLUMNS[0], COLUMNS[3])
        ]
        rows.append([*row, "published"])
    doc.table(header, rows)
    doc.text(
        f"Test split; ★ marks the `champion` alias of `{task}` (metric `{spec.metric}`, "
        f"{spec.direction}, threshold {spec.threshold}). {NOTE}".strip()
    )

    preds = {n: pd.read_csv(eval_dir(task, n) / "predictions.csv") for n in names}
    curves = {n: figures.train_curves(n) for n in names}
    doc.figure(
        figures.predicted_vs_actual(
            preds, figdir / f"{task}-predicted-vs-actual.png", params.report.scatter_points
        ),
        "Predicted vs actual grade on the test split (jittered), per model",
    )
    doc.figure(
        figures.residuals(preds, figdir / f"{task}-residuals.png"), "Residuals on the test split"
    )
    doc.figure(
        figures.learning_curves(
            {n: c for n, c in curves.items() if c is not None},
            figdir / f"{task}-learning-curves.png",
        ),
        "Learning curves: RMSE by epoch (MLP), tree count (forest), iteration (boosting)",
    )
