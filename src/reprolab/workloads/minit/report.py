"""Report section of language models pretrained here (pretrain@<name> on a language-modelling
dataset, e.g. Mini-T on Tiny Shakespeare): training budget and throughput, final validation
loss against the target, the loss curves, and generations sampled after training.

Reads reports/train/<name>/ (dvclive metrics and curves) and models/<name>/training.json and
samples.json (written by the model at the end of training; any change of the model changes
its train metrics too, so the report stage's dependency on reports/train covers them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from reprolab.core import figures
from reprolab.core.document import Document
from reprolab.core.layout import model_dir, train_dir

if TYPE_CHECKING:
    from reprolab.params import Params

TARGET = 1.8  # validation loss per character that a character-level Mini-T must reach


def language_models(params: Params) -> list[str]:
    from reprolab import workloads

    names = []
    for name, spec in params.pretrain.items():
        if spec.dataset is None:
            continue
        module = workloads.data_module(params.datasets[spec.dataset])
        if getattr(module, "PROBLEM", "") == "language_modeling":
            names.append(name)
    return names


def base_section(doc: Document, params: Params, figdir: Path) -> None:
    names = [n for n in language_models(params) if (train_dir(n) / "metrics.json").is_file()]
    if not names:
        return
    doc.heading("Language models pretrained here")
    rows = []
    for name in names:
        spec = params.pretrain[name]
        dataset = params.datasets[spec.dataset]
        metrics = _read(train_dir(name) / "metrics.json")
        training = _read(model_dir(name) / "training.json")
        valid = metrics.get("valid", {})
        loss = valid.get("loss")
        char_level = getattr(dataset, "tokenizer", "") == "char"
        verdict = ""
        if loss is not None and char_level:
            verdict = "✓" if loss <= TARGET else "✗"
        rows.append(
            [
                name,
                f"{spec.arch} {spec.n_layer}×{spec.n_embd}",
                f"{training.get('parameters', 0):,}",
                getattr(dataset, "tokenizer", ""),
                str(training.get("steps", "")),
                f"{training.get('tokens_seen', 0):,}",
                f"{training.get('seconds', float('nan')):.0f} s",
                f"{training.get('tokens_per_s', float('nan')):,.0f}",
                f"{loss:.4f} {verdict}".strip() if loss is not None else "",
                f"{valid['perplexity']:.2f}" if "perplexity" in valid else "",
                f"{valid['bits_per_char']:.3f}" if "bits_per_char" in valid else "",
            ]
        )
    doc.table(
        [
            "model",
            "architecture",
            "parameters",
            "tokenizer",
            "steps",
            "tokens seen",
            "time",
            "tokens/s",
            "valid loss",
            "perplexity",
            "bits/char",
        ],
        rows,
    )
    doc.text(
        f"Loss on every token of the validation split (the last part of the text). Target for a "
        f"character-level model: at most {TARGET} within 5 minutes on 2 cores (nanoGPT's CPU "
        "recipe reaches 1.88 in about 3 minutes). Throughput depends on the machine's load: "
        "see docs/minit.md."
    )
    curves = {n: c for n in names if (c := figures.train_curves(n)) is not None}
    if curves:
        doc.figure(_loss_curves(curves, figdir / "lm-loss-curves.png"), "Loss by step")
    for name in names:
        samples = _read(model_dir(name) / "samples.json", default=[])
        if samples:
            doc.text(f"Samples from `{name}` (temperature {params.pretrain[name].temperature}):")
            for sample in samples[:3]:
                doc.code(sample["prompt"] + sample["completion"])


def _loss_curves(curves: dict, path: Path) -> Path:
    fig, axes = figures.grid(len(curves))
    for ax, (name, frame) in zip(axes, curves.items(), strict=True):
        for column in ("train_loss", "valid_loss"):
            if column in frame:
                points = frame[["step", column]].dropna()
                ax.plot(points["step"], points[column], label=column.removesuffix("_loss"))
        ax.axhline(TARGET, color="grey", lw=0.8, ls="--", label=f"target {TARGET}")
        ax.set(title=name, xlabel="step", ylabel="cross-entropy (nats/token)")
        ax.legend(fontsize=8)
    return figures.save(fig, path)


def _read(path: Path, default=None):
    return json.loads(path.read_text()) if path.is_file() else ({} if default is None else default)
