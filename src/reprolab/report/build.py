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
from reprolab.report import control, figures, hpo, lm
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
    "nsmc": "Test set: the first 48,000 of NSMC's 50,000 test reviews (the rest are held out); "
    "the published figures are on all 50,000. Empty reviews are dropped from train and kept "
    "(as empty text) in test.",
}
CLASSIFICATION_COLUMNS = [
    ("accuracy", "accuracy", "{:.2%}"),
    ("f1", "F1", "{:.4f}"),
    ("roc_auc", "ROC-AUC", "{:.4f}"),
]
# Published accuracy on NSMC's test set (dataset kind -> (label, accuracy)).
CLASSIFICATION_REFERENCES = {
    "nsmc": [
        ("KcBERT-base (Lee 2020)", 0.8962),
        ("KcBERT-large (Lee 2020)", 0.9068),
        ("multilingual BERT (KcBERT README)", 0.875),
    ],
}
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
            if params.models_of_task(task):
                _section_for(_problem(task, params))(doc, task, params, staging)
        lm.section(doc, params, staging)
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
    kind = params.datasets[params.model(names[0]).dataset].kind
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


def _champion_sentence(registry: dict, metric: str, previous: dict | None) -> str:
    """Who is champion, chosen on valid among how many versions, and its test score."""
    champion = registry.get("champion")
    if not champion:
        return "No version is champion yet: none passed the threshold in a committed workspace."
    compared = registry.get("compared")
    among = f" among {compared} registered versions" if compared else ""
    test = champion.get("test")
    shown_test = f"; test {metric} {test:.4f}" if test is not None and test == test else ""
    text = (
        f"Champion: **{champion['model']}** (v{champion['version']}), chosen on validation "
        f"{metric} {champion['value']:.4f}{among}{shown_test}."
    )
    if previous:
        delta = champion["value"] - previous["value"]
        text += (
            f" Previous champion: {previous['model']} v{previous['version']} "
            f"(validation {previous['value']:.4f}); change {delta:+.4f}."
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


def _problem(task: str, params: Params) -> str:
    """What kind of predictions a task makes: its dataset module's PROBLEM."""
    from reprolab import data

    names = params.models_of_task(task)
    if not names:
        return "regression"
    kind = params.datasets[params.model(names[0]).dataset].kind
    return getattr(data.module_for(kind), "PROBLEM", "regression")


def _section_for(problem: str):
    """The report section writer of a problem type: (doc, task, params, figdir) -> None."""
    if problem == "segmentation":
        from reprolab.report import segmentation

        return segmentation.section
    if problem == "control":
        return lambda doc, task, params, figdir: control.section(
            doc, task, params, figdir, _champion_sentence
        )
    if problem == "classification":
        return _classification_section
    if problem == "language-modeling":
        from reprolab.report import llm

        return lambda doc, task, params, figdir: llm.section(
            doc, task, params, figdir, _champion_sentence
        )
    return _task_section


def _classification_section(doc: Document, task: str, params: Params, figdir: Path) -> None:
    """Accuracy/F1/ROC-AUC and throughput per model, published references, confusion matrices."""
    names = params.models_of_task(task)
    evals = {n: json.loads((eval_dir(task, n) / "metrics.json").read_text()) for n in names}
    trains = {n: _read_json(train_dir(n) / "metrics.json") for n in names}
    registry = json.loads(registry_file(task).read_text())
    spec = params.registry[task]
    by_model = _versions_by_model(registry)
    champion = registry.get("champion") or {}
    dataset = params.datasets[params.model(names[0]).dataset]

    doc.heading(f"Task `{task}`")
    doc.text(_champion_sentence(registry, spec.metric, registry.get("previous_champion")))
    header = ["model", *[c[1] for c in CLASSIFICATION_COLUMNS]]
    header += ["train examples/s", "predict examples/s", "registry"]
    rows = []
    for name in names:
        metrics, train = evals[name], trains[name]
        row = [f"**{name}** ★" if champion.get("model") == name else name]
        row += [
            fmt.format(metrics.get(key, float("nan"))) for key, _, fmt in CLASSIFICATION_COLUMNS
        ]
        row += [
            _rate(train.get("train_rows_per_s")),
            _rate(metrics.get("predict_rows_per_s")),
            by_model.get(name, ""),
        ]
        rows.append(row)
    for label, accuracy in CLASSIFICATION_REFERENCES.get(dataset.kind, []):
        rows.append([f"_{label}_", f"{accuracy:.2%}", "", "", "", "", "published"])
    doc.table(header, rows)
    doc.text(
        f"Test split; ★ marks the `champion` alias of `{task}` (metric `{spec.metric}`, "
        f"{spec.direction}, threshold {spec.threshold}). {NOTES.get(dataset.kind, '')}".strip()
    )
    confusions = {n: evals[n]["confusion"] for n in names if "confusion" in evals[n]}
    if confusions:
        labels = list(getattr(dataset, "label_names", ["0", "1"]))
        doc.figure(
            figures.confusion_matrices(confusions, labels, figdir / f"{task}-confusion.png"),
            "Confusion matrices on the test split (counts and share of each actual class)",
        )


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _rate(value) -> str:
    return f"{value:,.0f}" if isinstance(value, int | float) else ""
