"""Report section of the sentiment task (classification): accuracy, F1, ROC-AUC and throughput
per model beside published results, and confusion matrices."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from reprolab.core import figures
from reprolab.core.document import Document
from reprolab.core.layout import TIMINGS_FILE, eval_dir, registry_file, train_dir
from reprolab.core.summary import champion_sentence, versions_by_model

if TYPE_CHECKING:
    from reprolab.params import Params

COLUMNS = [
    ("accuracy", "accuracy", "{:.2%}"),
    ("f1", "F1", "{:.4f}"),
    ("roc_auc", "ROC-AUC", "{:.4f}"),
]
NOTE = (
    "Test set: the first 48,000 of NSMC's 50,000 test reviews (the rest are held out); "
    "the published figures are on all 50,000. Empty reviews are dropped from train and kept "
    "(as empty text) in test."
)

# Published accuracy on NSMC's test set: (label, accuracy).
REFERENCES = [
    ("KcBERT-base (Lee 2020)", 0.8962),
    ("KcBERT-large (Lee 2020)", 0.9068),
    ("multilingual BERT (KcBERT README)", 0.875),
]


def task_section(doc: Document, task: str, params: Params, figdir: Path) -> None:
    """Accuracy/F1/ROC-AUC and throughput per model, published references, confusion matrices."""
    names = params.models_of_task(task)
    evals = {n: json.loads((eval_dir(task, n) / "metrics.json").read_text()) for n in names}
    trains = {n: _read_json(train_dir(n) / TIMINGS_FILE) for n in names}
    predicts = {n: _read_json(eval_dir(task, n) / TIMINGS_FILE) for n in names}
    registry = json.loads(registry_file(task).read_text())
    spec = params.registry[task]
    by_model = versions_by_model(registry)
    champion = registry.get("champion") or {}
    dataset = params.datasets[params.model(names[0]).dataset]

    doc.heading(f"Task `{task}`")
    doc.text(champion_sentence(registry, spec.metric, registry.get("previous_champion")))
    header = ["model", *[c[1] for c in COLUMNS]]
    header += ["train examples/s", "predict examples/s", "registry"]
    rows = []
    for name in names:
        metrics, train = evals[name], trains[name]
        row = [f"**{name}** ★" if champion.get("model") == name else name]
        row += [fmt.format(metrics.get(key, float("nan"))) for key, _, fmt in COLUMNS]
        row += [
            _rate(train.get("train_rows_per_s")),
            _rate(predicts[name].get("predict_rows_per_s")),
            by_model.get(name, ""),
        ]
        rows.append(row)
    for label, accuracy in REFERENCES:
        rows.append([f"_{label}_", f"{accuracy:.2%}", "", "", "", "", "published"])
    doc.table(header, rows)
    doc.text(
        f"Test split; ★ marks the `champion` alias of `{task}` (metric `{spec.metric}`, "
        f"{spec.direction}, threshold {spec.threshold}). {NOTE}".strip()
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
