"""Task metrics, computed the same way for every model family."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


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


TIMING_SUFFIXES = ("seconds", "_s")  # fit_seconds, rows_per_s, elapsed_s


def is_timing(name: str) -> bool:
    """A wall-clock measure (`fit_seconds`, `train_rows_per_s`, `hpo_seconds`): it differs on
    every run and with the machine's load, so it is logged to MLflow and a run's
    timings.json, never to the DVC metrics files that `dvc metrics diff` compares."""
    return name.rsplit("/", 1)[-1].endswith(TIMING_SUFFIXES)


def classification(y_true: np.ndarray, pred_or_probs: np.ndarray) -> dict:
    """Accuracy, F1/precision/recall of label 1, ROC-AUC (from probabilities; NaN when only
    labels were given or one class is present) and the confusion matrix as
    {"true_<i>": {"pred_<j>": count}}. Accepts labels 0/1, P(1) as (n,), or (n, 2) probs."""
    y_true = np.asarray(y_true).astype(int)
    arr = np.asarray(pred_or_probs, dtype=float)
    if arr.ndim == 2:
        arr = arr[:, 1]
    if arr.shape != y_true.shape or y_true.size == 0:
        raise ValueError(f"cannot score {arr.shape} predictions against {y_true.shape}")
    is_labels = bool(np.all((arr == 0) | (arr == 1)))
    y_pred = arr.astype(int) if is_labels else (arr >= 0.5).astype(int)
    tp = int(np.sum((y_pred == 1) & (y_true == 1)))
    fp = int(np.sum((y_pred == 1) & (y_true == 0)))
    fn = int(np.sum((y_pred == 0) & (y_true == 1)))
    tn = int(np.sum((y_pred == 0) & (y_true == 0)))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {
        "accuracy": float(np.mean(y_pred == y_true)),
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "precision": precision,
        "recall": recall,
        "roc_auc": float("nan") if is_labels else _roc_auc(y_true, arr),
        "confusion": {
            "true_0": {"pred_0": tn, "pred_1": fp},
            "true_1": {"pred_0": fn, "pred_1": tp},
        },
    }


def _roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Mann-Whitney U with tied ranks averaged; NaN if one class is absent."""
    from scipy.stats import rankdata

    pos = y_true == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_by_group(y_true: np.ndarray, pred_or_probs: np.ndarray, groups) -> dict:
    """Overall metrics plus per-group accuracy/F1/ROC-AUC (no per-group confusion)."""
    result = classification(y_true, pred_or_probs)
    if groups is not None:
        groups = np.asarray(groups)
        arr = np.asarray(pred_or_probs)
        for group in sorted(set(groups.tolist())):
            mask = groups == group
            sub = classification(np.asarray(y_true)[mask], arr[mask])
            result[str(group)] = {k: sub[k] for k in ("accuracy", "f1", "roc_auc")}
    return result


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


def perplexities(frame: pd.DataFrame, groups: np.ndarray | None = None) -> dict:
    """Token-weighted perplexity (and mean loss) overall and per group, for `nll` and, when
    present, `base_nll`."""

    def one(part: pd.DataFrame) -> dict:
        tokens = float(part["tokens"].sum())
        out = {"tokens": tokens}
        for column, name in (("nll", ""), ("base_nll", "base_")):
            if column in part:
                loss = float(part[column].sum()) / max(tokens, 1.0)
                out[f"{name}loss"] = loss
                out[f"{name}perplexity"] = math.exp(loss)
        return out

    metrics = one(frame)
    if groups is not None and len(set(groups)) > 1:
        for group in sorted(set(groups)):
            metrics[str(group)] = one(frame[np.asarray(groups) == group])
    return metrics
