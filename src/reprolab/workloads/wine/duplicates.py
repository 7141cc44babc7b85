"""How much the published wine figures owe to duplicate rows: a 5-fold cross-validation of
one random forest on the raw UCI files, once with the 1,177 exact duplicates kept (the
published setting) and once without (this project's split), with the kept-duplicates score
split into rows that have a twin and rows that do not. A wine whose twin sits in the
training folds is predicted almost perfectly, so keeping them inflates accuracy.

    python -m reprolab.workloads.wine.duplicates [data/raw/wine]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from reprolab.core.metrics import regression_by_group
from reprolab.workloads.wine.data import COLOR, FILES, INPUTS, TARGET, read_raw

FOLDS = 5
SEED = 42


def raw_rows(raw_dir: Path) -> pd.DataFrame:
    frames = [read_raw(raw_dir / FILES[c].name).assign(**{COLOR: c}) for c in ("red", "white")]
    return pd.concat(frames, ignore_index=True)


def cross_validated(rows: pd.DataFrame) -> np.ndarray:
    """Out-of-fold predictions of a 500-tree forest over the 11 inputs and the colour."""
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.model_selection import KFold

    X = rows[INPUTS].assign(is_red=(rows[COLOR] == "red").astype(float))
    y = rows[TARGET].to_numpy(float)
    out = np.empty(len(rows))
    for train, test in KFold(FOLDS, shuffle=True, random_state=SEED).split(X):
        forest = RandomForestRegressor(500, max_features="sqrt", random_state=SEED, n_jobs=1)
        out[test] = forest.fit(X.iloc[train], y[train]).predict(X.iloc[test])
    return out


def measure(raw_dir: Path) -> list[tuple[str, int, dict]]:
    """(setting, rows, metrics by colour) for kept duplicates, its twin/no-twin parts, and
    the deduplicated rows."""
    raw = raw_rows(raw_dir)
    rows = []
    for name, frame in (("duplicates kept", raw), ("deduplicated", raw.drop_duplicates())):
        frame = frame.reset_index(drop=True)
        predicted = cross_validated(frame)
        y, colour = frame[TARGET].to_numpy(float), frame[COLOR].to_numpy()
        rows.append((name, len(frame), regression_by_group(y, predicted, colour)))
        if name == "duplicates kept":
            twin = frame.duplicated(keep=False).to_numpy()
            for part, mask in (("  rows with a twin", twin), ("  rows without", ~twin)):
                metrics = regression_by_group(y[mask], predicted[mask], colour[mask])
                rows.append((part, int(mask.sum()), metrics))
    return rows


def main(argv: list[str]) -> None:
    raw_dir = Path(argv[0] if argv else "data/raw/wine")
    print(f"{FOLDS}-fold CV, random forest (500 trees, sqrt features), {raw_dir}")
    print(f"{'setting':<20} {'rows':>5}  acc±0.5 red  white   MAE red  white")
    for name, n, m in measure(raw_dir):
        red, white = m["red"], m["white"]
        print(
            f"{name:<20} {n:>5}  {red['acc_0_5']:>11.1%} {white['acc_0_5']:>6.1%}"
            f"   {red['mae']:>7.3f} {white['mae']:>6.3f}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
