"""Task metrics, computed the same way for every model family."""

from __future__ import annotations

import numpy as np


def regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R² and the share of predictions within 0.5 / 1.0 of the true grade
    (Cortez et al. 2009 report accuracy at tolerance 0.5 and 1.0)."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"cannot score {y_pred.shape} predictions against {y_true.shape}")
    err = y_pred - y_true
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(err**2))),
        "mae": float(np.mean(np.abs(err))),
        "r2": float(1 - np.sum(err**2) / total) if total > 0 else float("nan"),
        "acc_0_5": float(np.mean(np.abs(err) <= 0.5)),
        "acc_1_0": float(np.mean(np.abs(err) <= 1.0)),
    }


def regression_by_group(
    y_true: np.ndarray, y_pred: np.ndarray, groups: np.ndarray | None
) -> dict[str, float | dict[str, float]]:
    """Overall metrics plus one nested dict per group (e.g. per wine color)."""
    result: dict[str, float | dict[str, float]] = dict(regression(y_true, y_pred))
    if groups is not None:
        groups = np.asarray(groups)
        for group in sorted(set(groups.tolist())):
            mask = groups == group
            result[str(group)] = regression(np.asarray(y_true)[mask], np.asarray(y_pred)[mask])
    return result


def flatten(metrics: dict, prefix: str = "", sep: str = "_") -> dict[str, float]:
    """{"rmse": 1, "red": {"rmse": 2}} -> {"rmse": 1, "red_rmse": 2} (MLflow wants flat keys)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{sep}{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten(value, name, sep))
        else:
            flat[name] = float(value)
    return flat


def mask_scores(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Dice, IoU and pixel accuracy of one binary mask (two empty masks agree perfectly)."""
    true, pred = np.asarray(true, dtype=bool), np.asarray(pred, dtype=bool)
    if true.shape != pred.shape:
        raise ValueError(f"cannot score a {pred.shape} mask against a {true.shape} mask")
    inter = float(np.logical_and(true, pred).sum())
    total = float(true.sum() + pred.sum())
    union = total - inter
    return {
        "dice": 2 * inter / total if total else 1.0,
        "iou": inter / union if union else 1.0,
        "pixel_accuracy": float(np.mean(true == pred)),
    }


def segmentation(trues: list[np.ndarray], preds: list[np.ndarray]) -> dict[str, float]:
    """Per-image mean of Dice, IoU and pixel accuracy (each image counts once, whatever its
    size, as in the Data Science Bowl)."""
    if len(trues) != len(preds) or not trues:
        raise ValueError(f"cannot score {len(preds)} masks against {len(trues)}")
    per_image = [mask_scores(t, p) for t, p in zip(trues, preds, strict=True)]
    return {key: float(np.mean([s[key] for s in per_image])) for key in per_image[0]}
