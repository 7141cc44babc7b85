"""The study as images (matplotlib, Agg): optimisation history and parameter importances."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from reprolab.core.figures import save  # also selects the Agg backend

_COLORS = {"COMPLETE": "tab:blue", "PRUNED": "tab:orange", "FAIL": "tab:red"}


def history(trials: list[dict], direction: str, metric: str, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    best, xs, ys = None, [], []
    for t in trials:
        if t["state"] == "COMPLETE":
            v = t["value"]
            better = best is None or (v < best if direction == "minimize" else v > best)
            best = v if better else best
            xs.append(t["number"])
            ys.append(best)
    for state, color in _COLORS.items():
        pts = [(t["number"], t["value"]) for t in trials if t["state"] == state and t["value"]]
        if state != "COMPLETE":
            pts = [(t["number"], ys[-1] if ys else 0) for t in trials if t["state"] == state]
        if pts:
            marker = "o" if state == "COMPLETE" else "x"
            ax.scatter(*zip(*pts, strict=True), c=color, marker=marker, label=state.lower(), s=22)
    if xs:
        ax.step(xs, ys, where="post", c="k", lw=1.2, label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {metric}")
    ax.set_title("Optimisation history (pruned/failed drawn at the best value)")
    ax.legend(fontsize=8)
    return save(fig, path)


def importances(study: Any, path: Path) -> tuple[Path, dict[str, float]]:
    """fANOVA importances (Optuna's default); a note instead when too few trials finished."""
    import optuna

    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    try:
        scores = optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError) as err:
        scores = {}
        ax.text(0.5, 0.5, f"no importances: {err}"[:90], ha="center", va="center", fontsize=8)
        ax.axis("off")
    if scores:
        names = list(scores)[::-1]
        ax.barh(names, [scores[n] for n in names], color="tab:blue")
        ax.set_xlabel("importance (fANOVA)")
    ax.set_title("Parameter importances")
    return save(fig, path), {k: float(v) for k, v in scores.items()}
