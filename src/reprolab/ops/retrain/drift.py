"""How far a new data drop is from the data the champion was trained on: per column, the
population stability index (PSI) and the means, on the train split's profile that each
workload's data module gives (`profile(processed_dir)`: a frame, one row per example or
sampled pixel; numeric columns are binned, the others compared as categories).

PSI reads as usual: < 0.1 stable, 0.1-0.25 a moderate shift, > 0.25 a large one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

MODERATE, LARGE = 0.1, 0.25
_FLOOR = 1e-4  # an empty bin would make the log infinite


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI of numeric samples, over the expected sample's quantile bins."""
    expected, actual = np.asarray(expected, float), np.asarray(actual, float)
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:  # a constant column: everything in one bin, or not
        same = np.isclose(actual, expected[0]).mean() if len(expected) else 1.0
        return _psi(np.array([1.0, 0.0]), np.array([same, 1 - same]))
    edges[0], edges[-1] = -np.inf, np.inf
    return _psi(np.histogram(expected, edges)[0], np.histogram(actual, edges)[0])


def category_psi(expected: pd.Series, actual: pd.Series) -> float:
    """PSI of categories (labels, colours): their shares before and after."""
    levels = sorted(set(expected.astype(str)) | set(actual.astype(str)))
    before = expected.astype(str).value_counts().reindex(levels, fill_value=0).to_numpy()
    after = actual.astype(str).value_counts().reindex(levels, fill_value=0).to_numpy()
    return _psi(before, after)


def _psi(before: np.ndarray, after: np.ndarray) -> float:
    p = np.maximum(before / max(before.sum(), 1), _FLOOR)
    q = np.maximum(after / max(after.sum(), 1), _FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def level(value: float) -> str:
    return "large" if value > LARGE else "moderate" if value > MODERATE else "stable"


def compare(before: pd.DataFrame, after: pd.DataFrame) -> dict:
    """Per column: PSI, its level and the mean (numeric) or shares (categorical) on each side."""
    import pandas as pd

    columns = {}
    for column in before.columns:
        if column not in after.columns:
            continue
        old, new = before[column], after[column]
        if pd.api.types.is_numeric_dtype(old) and pd.api.types.is_numeric_dtype(new):
            value = psi(old.to_numpy(), new.to_numpy())
            entry = {"mean_before": float(old.mean()), "mean_after": float(new.mean())}
        else:
            value = category_psi(old, new)
            entry = {
                "shares_before": _shares(old),
                "shares_after": _shares(new),
            }
        columns[column] = {"psi": round(value, 4), "level": level(value), **entry}
    worst = max(columns, key=lambda c: columns[c]["psi"], default=None)
    return {
        "rows_before": len(before),
        "rows_after": len(after),
        "columns": columns,
        "worst": worst,
        "level": columns[worst]["level"] if worst else "stable",
    }


def _shares(series: pd.Series) -> dict[str, float]:
    shares = series.astype(str).value_counts(normalize=True).sort_index()
    return {k: round(float(v), 4) for k, v in shares.items()}


def summary_lines(drift: dict, top: int = 3) -> list[str]:
    """A few lines for a person: overall level, then the most shifted columns."""
    if not drift.get("columns"):
        return [drift.get("note", "drift: not measured")]
    ranked = sorted(drift["columns"].items(), key=lambda kv: -kv[1]["psi"])[:top]
    lines = [
        f"drift: {drift['level']} ({drift['rows_before']} -> {drift['rows_after']} train rows; "
        "PSI < 0.1 stable, > 0.25 large)"
    ]
    for column, entry in ranked:
        if "mean_before" in entry:
            what = f"mean {entry['mean_before']:.4g} -> {entry['mean_after']:.4g}"
        else:
            what = f"shares {entry['shares_before']} -> {entry['shares_after']}"
        lines.append(f"  {column}: PSI {entry['psi']:.3f} ({entry['level']}), {what}")
    return lines
