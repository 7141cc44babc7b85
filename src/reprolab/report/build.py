"""Gather the pipeline's outputs into one report: a metrics table per task with the
champion marked and the change against the previous champion, published references beside
ours, and figures."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from reprolab.io import atomic_dir, atomic_write_text
from reprolab.layout import eval_dir, registry_file, train_dir
from reprolab.params import Params
from reprolab.report import control, figures, hpo
from reprolab.report.document import Document

REPORT_DIR = Path("reports")
FIGURES = REPORT_DIR / "figures"
COLUMNS = [
    ("rmse", "RMSE", "{:.3f}"),
    ("mae", "MAE", "{:.3f}"),
    ("r2", "R²", "{:.3f}"),
    ("acc_0_5", "acc ±0.5", "{:.1%}"),
    ("acc_1_0", "acc ±1.0", "{:.1%}"),
]
NOTES = {
    "wine": "Exact duplicate wines were removed before splitting (they would leak across "
    "splits), which makes the task harder than in the published setting.",
}
SEGMENTATION_KINDS = {"nuclei"}  # dataset kinds reported by report/segmentation.py
# Published results to read ours against (dataset kind -> rows).
REFERENCES = {
    "wine": [
        (
            "Cortez et al. 2009, SVM (per color, with duplicates)",
            {"red": {"acc_0_5": 0.624}, "white": {"acc_0_5": 0.646}},
        ),
    ],
}


def build_report(params: Params) -> Path:
    doc = Document(params.report.title)
    with atomic_dir(FIGURES) as staging:
        for task in params.registry:
            if not params.models_of_task(task):
                continue
            kind = params.datasets[params.models[params.models_of_task(task)[0]].dataset].kind
            if kind in SEGMENTATION_KINDS:
                from reprolab.report import segmentation

                segmentation.section(doc, task, params, staging)
            elif kind == "control":
                control.section(doc, task, params, staging, _champion_sentence)
            else:
                _task_section(doc, task, params, staging)
        hpo.section(doc, params, staging)
        markdown_figures = doc.to_markdown(base=staging.parent).replace(
            staging.name + "/", FIGURES.name + "/"
        )
        html = doc.to_html()  # figures are inlined while the staging files exist
    atomic_write_text(REPORT_DIR / "report.md", markdown_figures)
    atomic_write_text(REPORT_DIR / "report.html", html)
    return REPORT_DIR / "report.md"


def _task_section(doc: Document, task: str, params: Params, figdir: Path) -> None:
    names = params.models_of_task(task)
    evals = {n: json.loads((eval_dir(task, n) / "metrics.json").read_text()) for n in names}
    registry = json.loads(registry_file(task).read_text())
    spec = params.registry[task]
    by_model = _versions_by_model(registry)
    champion = registry.get("champion") or {}
    previous = registry.get("previous_champion")

    doc.heading(f"Task `{task}`")
    doc.text(_champion_sentence(registry, spec.metric, previous))
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
    kind = params.datasets[params.models[names[0]].dataset].kind
    for label, ref in REFERENCES.get(kind, []):
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
        f"{spec.direction}, threshold {spec.threshold}). {NOTES.get(kind, '')}".strip()
    )

    preds = {n: pd.read_csv(eval_dir(task, n) / "predictions.csv") for n in names}
    curves = {n: _curve(n) for n in names}
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


def _champion_sentence(registry: dict, metric: str, previous: dict | None) -> str:
    champion = registry.get("champion")
    if not champion:
        return "No version is champion yet: none passed the threshold."
    text = (
        f"Champion: **{champion['model']}** (v{champion['version']}, test {metric} "
        f"{champion['value']:.4f})."
    )
    if previous:
        delta = champion["value"] - previous["value"]
        text += (
            f" Previous champion: {previous['model']} v{previous['version']} "
            f"({previous['value']:.4f}); change {delta:+.4f}."
        )
    else:
        text += " It is the first champion of this task."
    return text


def _versions_by_model(registry: dict) -> dict[str, str]:
    """Latest registered version of each model, with its aliases."""
    latest: dict[str, dict] = {}
    for v in registry.get("versions", []):
        if v["model"] not in latest or int(v["version"]) > int(latest[v["model"]]["version"]):
            latest[v["model"]] = v
    return {
        m: f"v{v['version']}" + (f" ({', '.join(v['aliases'])})" if v["aliases"] else "")
        for m, v in latest.items()
    }


def _curve(name: str) -> pd.DataFrame | None:
    folder = train_dir(name) / "plots" / "metrics"
    frames = [pd.read_csv(f, sep="\t")[["step", f.stem]] for f in sorted(folder.glob("*.tsv"))]
    if not frames:
        return None
    merged = frames[0]
    for frame in frames[1:]:
        merged = merged.merge(frame, on="step", how="outer")
    return merged.sort_values("step")
