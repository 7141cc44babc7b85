"""Plots a person would rather look at than read. matplotlib with the Agg backend: no
display, no network, deterministic PNGs."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def grid(n: int, size: float = 3.6):
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, size * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def save(fig, path: Path) -> Path:
    """Write a figure as a deterministic PNG (no software stamp) and close it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(fig)
    return path


def predicted_vs_actual(preds: dict[str, pd.DataFrame], path: Path, max_points: int) -> Path:
    """One panel per model; integer grades jittered so that the spread is visible."""
    fig, axes = grid(len(preds))
    rng = np.random.default_rng(0)
    for ax, (name, frame) in zip(axes, preds.items(), strict=True):
        frame = frame.sample(min(len(frame), max_points), random_state=0)
        jitter = rng.uniform(-0.2, 0.2, len(frame))
        for group, part in frame.groupby("group"):
            ax.scatter(
                part["actual"] + jitter[: len(part)],
                part["predicted"],
                s=6,
                alpha=0.4,
                label=str(group),
                color={"red": "#a32638", "white": "#d4a017"}.get(str(group)),
            )
        lo, hi = frame["actual"].min() - 0.5, frame["actual"].max() + 0.5
        ax.plot([lo, hi], [lo, hi], "k--", lw=1)
        ax.set(title=name, xlabel="actual", ylabel="predicted", xlim=(lo, hi), ylim=(lo, hi))
        ax.legend(loc="upper left", fontsize=8)
    return save(fig, path)


def residuals(preds: dict[str, pd.DataFrame], path: Path) -> Path:
    fig, axes = grid(len(preds))
    bins = np.linspace(-3, 3, 49)
    for ax, (name, frame) in zip(axes, preds.items(), strict=True):
        ax.hist(frame["predicted"] - frame["actual"], bins=bins, color="#4c72b0")
        ax.axvline(0, color="k", lw=1)
        ax.set(title=name, xlabel="predicted − actual", ylabel="count")
    return save(fig, path)


def learning_curves(curves: dict[str, pd.DataFrame], path: Path) -> Path:
    """Train and validation RMSE against each model's own step (epoch, tree, iteration)."""
    fig, axes = grid(len(curves))
    for ax, (name, frame) in zip(axes, curves.items(), strict=True):
        for column, style in (("train_rmse", "-"), ("valid_rmse", "-")):
            if column in frame:
                ax.plot(
                    frame["step"],
                    frame[column],
                    style,
                    marker="." if len(frame) < 3 else None,
                    label=column.removesuffix("_rmse"),
                )
        ax.set(title=name, xlabel="step", ylabel="RMSE")
        ax.legend(fontsize=8)
    return save(fig, path)


def confusion_matrices(confusions: dict[str, dict], label_names: list[str], path: Path) -> Path:
    """One 2×2 panel per model from {"true_i": {"pred_j": count}}, counts and row shares."""
    fig, axes = grid(len(confusions), size=3.2)
    for ax, (name, confusion) in zip(axes, confusions.items(), strict=True):
        counts = np.array(
            [[confusion[f"true_{i}"][f"pred_{j}"] for j in (0, 1)] for i in (0, 1)], dtype=float
        )
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for i in (0, 1):
            for j in (0, 1):
                ax.text(
                    j,
                    i,
                    f"{int(counts[i, j]):,}\n{shares[i, j]:.1%}",
                    ha="center",
                    va="center",
                    color="white" if shares[i, j] > 0.5 else "black",
                )
        ax.set(
            title=name,
            xticks=[0, 1],
            yticks=[0, 1],
            xticklabels=label_names,
            yticklabels=label_names,
            xlabel="predicted",
            ylabel="actual",
        )
    return save(fig, path)


def train_curves(model: str) -> pd.DataFrame | None:
    """A model's step-wise training curves (dvclive's plots/metrics/*.tsv), one column each."""
    from reprolab.core.layout import train_dir

    folder = train_dir(model) / "plots" / "metrics"
    frames = [pd.read_csv(f, sep="\t")[["step", f.stem]] for f in sorted(folder.glob("*.tsv"))]
    if not frames:
        return None
    merged = frames[0]
    for frame in frames[1:]:
        merged = merged.merge(frame, on="step", how="outer")
    return merged.sort_values("step")
