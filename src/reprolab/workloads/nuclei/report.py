"""Report section of a segmentation task: metrics beside the Otsu baseline, a grid of test
images with their true mask and the predicted mask overlaid, the worst images' Dice, and the
training curves. Predicted masks come from the evaluation's predictions.csv (run-length
encoded), images and true masks from the prepared test split."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from reprolab.core import figures
from reprolab.core.document import Document
from reprolab.core.layout import eval_dir, processed_dir, registry_file
from reprolab.core.summary import champion_sentence, versions_by_model
from reprolab.workloads.nuclei import images

if TYPE_CHECKING:
    from reprolab.params import Params

COLUMNS = [("dice", "Dice"), ("iou", "IoU"), ("pixel_accuracy", "pixel acc.")]


def task_section(doc: Document, task: str, params: Params, figdir: Path) -> None:

    names = params.models_of_task(task)
    evals = {n: json.loads((eval_dir(task, n) / "metrics.json").read_text()) for n in names}
    preds = {
        n: pd.read_csv(eval_dir(task, n) / "predictions.csv", dtype={"id": str}) for n in names
    }
    registry = json.loads(registry_file(task).read_text())
    spec = params.registry[task]
    by_model = versions_by_model(registry)
    champion = (registry.get("champion") or {}).get("model")

    doc.heading(f"Task `{task}`")
    doc.text(champion_sentence(registry, spec.metric, registry.get("previous_champion")))
    rows = []
    for name in names:
        m = evals[name]
        label = f"**{name}** ★" if champion == name else name
        rows.append([label, *[f"{m[k]:.4f}" for k, _ in COLUMNS], by_model.get(name, "")])
    otsu = evals[names[0]].get("otsu", {})
    if otsu:
        rows.append(["_Otsu, automatic polarity_", *[f"{otsu[k]:.4f}" for k, _ in COLUMNS], ""])
    doc.table(["model", *[label for _, label in COLUMNS], "registry"], rows)
    doc.text(
        f"Test split, mean over images (each image counts once). ★ marks the `champion` of "
        f"`{task}` (metric `{spec.metric}`, {spec.direction}, threshold {spec.threshold}). "
        "The Otsu row is a no-learning baseline computed in the same evaluation."
    )

    shown = champion if champion in preds else names[0]
    frame = preds[shown].sort_values("dice")
    dataset_dir = processed_dir(params.model(shown).dataset) / "test"
    worst = frame.head(params.report.worst_images)
    doc.table(
        ["image", "size", "Dice", "IoU", "Otsu Dice"],
        [
            [
                f"`{r.id[:16]}`",
                f"{r.width}x{r.height}",
                f"{r.dice:.4f}",
                f"{r.iou:.4f}",
                f"{r.otsu_dice:.4f}",
            ]
            for r in worst.itertuples()
        ],
    )
    doc.text(f"The {len(worst)} test images where `{shown}` has the lowest Dice.")
    picks = _examples(frame, params.report.segmentation_examples)
    doc.figure(
        overlay_grid(picks, dataset_dir, figdir / f"{task}-examples.png"),
        f"{shown} on test images (worst, median, best Dice): image, true mask, prediction "
        "(green: correct nucleus, red: false positive, blue: missed)",
    )
    curves = {n: figures.train_curves(n) for n in names}
    curves = {n: c for n, c in curves.items() if c is not None}
    if curves:
        doc.figure(
            training_curves(curves, figdir / f"{task}-training.png"),
            "Training loss and whole-image validation Dice by step",
        )


def _examples(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """Spread over the Dice range: worst first, then evenly up to the best."""
    if len(frame) <= count:
        return frame
    positions = np.unique(np.linspace(0, len(frame) - 1, count).round().astype(int))
    return frame.iloc[positions]


def overlay(rgb: np.ndarray, true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    out = rgb.astype(np.float32) * 0.55
    for mask, colour in ((true & pred, (0, 200, 0)), (pred & ~true, (230, 0, 0))):
        out[mask] = out[mask] * 0.3 + np.array(colour) * 0.7
    out[true & ~pred] = out[true & ~pred] * 0.3 + np.array((30, 80, 255)) * 0.7
    return out.clip(0, 255).astype(np.uint8)


def overlay_grid(rows: pd.DataFrame, dataset_dir: Path, path: Path) -> Path:
    import matplotlib.pyplot as plt

    n = len(rows)
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    for ax_row, r in zip(axes, rows.itertuples(), strict=True):
        rgb = images.read_rgb(dataset_dir / "images" / f"{r.id}.png")
        true = images.read_mask(dataset_dir / "masks" / f"{r.id}.png")
        pred = images.rle_decode(r.mask_rle, int(r.height), int(r.width))
        panels = (rgb, true, overlay(rgb, true, pred))
        titles = (f"{r.id[:10]} {r.width}x{r.height}", "true mask", f"Dice {r.dice:.3f}")
        for ax, panel, title in zip(ax_row, panels, titles, strict=True):
            ax.imshow(panel, cmap="gray" if panel.ndim == 2 else None, interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    return figures.save(fig, path)


def training_curves(curves: dict[str, pd.DataFrame], path: Path) -> Path:
    fig, axes = figures.grid(len(curves), size=4.2)
    for ax, (name, frame) in zip(axes, curves.items(), strict=True):
        if "train_loss" in frame:
            ax.plot(frame["step"], frame["train_loss"], label="train loss (BCE + Dice)")
        if "valid_dice" in frame:
            ax.plot(frame["step"], frame["valid_dice"], marker=".", label="valid Dice")
        ax.set(title=name, xlabel="step", ylim=(0, 1))
        ax.legend(fontsize=8)
    return figures.save(fig, path)
