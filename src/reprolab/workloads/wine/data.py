"""UCI Wine Quality (Cortez et al. 2009): fetch both colors, validate every cell, add a
`color` column, drop exact duplicates (over 1,100 rows would otherwise leak across splits),
split train/valid/test by seed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reprolab.core.errors import DataError
from reprolab.core.fetch import RemoteFile, fetch
from reprolab.core.io import (
    atomic_write_json,
    atomic_write_text,
    read_input_csv,
    write_predictions_csv,
)
from reprolab.core.metrics import regression_by_group
from reprolab.core.split import Split
from reprolab.workloads.wine.params import WineDataset

UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases/wine-quality"
FILES = {
    "red": RemoteFile(
        "winequality-red.csv",
        f"{UCI}/winequality-red.csv",
        "4a402cf041b025d4566d954c3b9ba8635a3a8a01e039005d97d6a710278cf05e",
        "wine-quality/winequality-red.csv",
    ),
    "white": RemoteFile(
        "winequality-white.csv",
        f"{UCI}/winequality-white.csv",
        "76c3f809815c17c07212622f776311faeb31e87610d52c26d87d6e361b169836",
        "wine-quality/winequality-white.csv",
    ),
}
INPUTS = [
    "fixed acidity",
    "volatile acidity",
    "citric acid",
    "residual sugar",
    "chlorides",
    "free sulfur dioxide",
    "total sulfur dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
]
TARGET = "quality"
COLOR = "color"
FEATURES = [*INPUTS, "is_red"]  # what every model sees
SPLITS = ("train", "valid", "test")


def source_files(params: WineDataset, mirror: Path | None = None) -> list[RemoteFile]:
    """The pinned files prepare reads (the check stage verifies the mirror's copies)."""
    return [FILES[c] for c in params.colors]


@dataclass(frozen=True)
class TabularSplit(Split):
    """Features, target and group labels of one split; `score` gives the task's metrics."""

    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray

    def score(self, y_pred: np.ndarray) -> dict:
        return regression_by_group(self.y, y_pred, self.groups)


def read_raw(path: Path) -> pd.DataFrame:
    """Read one UCI file; any problem is a DataError naming the file, row and column."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, sep=";", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot parse as ';'-separated CSV: {err}") from err
    columns = list(frame.columns)
    if len(columns) == 1 and ("," in columns[0] or "\t" in columns[0]):
        raise DataError(f"{path}: wrong delimiter, expected ';'-separated columns")
    expected = [*INPUTS, TARGET]
    missing = [c for c in expected if c not in columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {columns}")
    extra = [c for c in columns if c not in expected]
    if extra:
        raise DataError(f"{path}: unexpected column(s) {extra}; expected {expected}")
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    return to_numeric(frame[expected], path, integer=[TARGET])


def to_numeric(frame: pd.DataFrame, source: Path | str, integer: list[str] = ()) -> pd.DataFrame:
    """Convert every column to float (ints for `integer`), naming the first bad cell."""
    out = {}
    for column in frame.columns:
        values = pd.to_numeric(frame[column].astype(str).str.strip(), errors="coerce")
        bad = values.isna() | ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            cell = frame[column].iloc[row]
            what = "missing value" if str(cell).strip() == "" else f"not a number: {cell!r}"
            # +2: one header line, 1-based line numbers
            raise DataError(f"{source}: row {row + 1} (line {row + 2}), column {column!r}: {what}")
        if column in integer:
            if not np.all(values == np.round(values)):
                row = int(np.flatnonzero((values != np.round(values)).to_numpy())[0])
                raise DataError(
                    f"{source}: row {row + 1} (line {row + 2}), column {column!r}: "
                    f"expected an integer, got {frame[column].iloc[row]!r}"
                )
            values = values.astype(int)
        out[column] = values
    result = pd.DataFrame(out)
    if TARGET in result:
        outside = ~result[TARGET].between(0, 10)
        if outside.any():
            row = int(np.flatnonzero(outside.to_numpy())[0])
            raise DataError(
                f"{source}: row {row + 1} (line {row + 2}), column {TARGET!r}: "
                f"must be an integer grade 0-10, got {result[TARGET].iloc[row]}"
            )
    return result


def prepare(
    params: WineDataset, seed: int, raw_dir: Path, out_dir: Path, mirror: Path | None
) -> dict:
    """Fetch → validate → deduplicate → split → write CSVs and a summary; returns the summary."""
    from sklearn.model_selection import train_test_split

    paths = fetch([FILES[c] for c in params.colors], raw_dir, mirror)
    frames = []
    for color, path in zip(params.colors, paths, strict=True):
        frame = read_raw(path)
        frame.insert(len(INPUTS), COLOR, color)
        frames.append(frame)
    data = pd.concat(frames, ignore_index=True)
    rows = len(data)
    if params.drop_duplicates:
        data = data.drop_duplicates(ignore_index=True)
    duplicates = rows - len(data)
    if params.sample_fraction < 1:
        data = data.sample(frac=params.sample_fraction, random_state=seed, ignore_index=True)

    holdout = params.valid_size + params.test_size
    train, rest = train_test_split(data, test_size=holdout, random_state=seed, stratify=data[COLOR])
    valid, test = train_test_split(
        rest, test_size=params.test_size / holdout, random_state=seed, stratify=rest[COLOR]
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, split in zip(SPLITS, (train, valid, test), strict=True):
        atomic_write_text(out_dir / f"{name}.csv", split.to_csv(index=False))
    summary = {
        "rows_raw": rows,
        "duplicates_dropped": duplicates,
        "rows": {n: len(s) for n, s in zip(SPLITS, (train, valid, test), strict=True)},
        "by_color": data[COLOR].value_counts().sort_index().to_dict(),
        "features": FEATURES,
        "target": TARGET,
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def features(frame: pd.DataFrame, source: str = "input") -> pd.DataFrame:
    """Model inputs from a frame with the 11 UCI inputs and `color` (red/white) or `is_red`.
    Extra columns (an id, the true quality) are ignored; missing ones are an error."""
    has_color = COLOR in frame.columns or "is_red" in frame.columns
    missing = [c for c in INPUTS if c not in frame.columns] + ([] if has_color else [COLOR])
    if missing:
        raise DataError(
            f"{source}: missing column(s) {missing}; expected {INPUTS} and {COLOR!r} (red/white)"
        )
    X = to_numeric(frame[INPUTS].astype(str), source).astype("float64")
    if "is_red" in frame.columns:
        X["is_red"] = to_numeric(frame[["is_red"]].astype(str), source)["is_red"].astype(float)
    else:
        colors = frame[COLOR].astype(str).str.strip().str.lower()
        unknown = ~colors.isin(["red", "white"])
        if unknown.any():
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise DataError(
                f"{source}: row {row + 1}, column {COLOR!r}: expected 'red' or 'white', "
                f"got {frame[COLOR].iloc[row]!r}"
            )
        X["is_red"] = (colors == "red").astype(float).to_numpy()
    return X[FEATURES]


def load_split(out_dir: Path, split: str) -> TabularSplit:
    path = Path(out_dir) / f"{split}.csv"
    if not path.is_file():
        raise DataError(f"{path}: not found; run the prepare stage first")
    frame = pd.read_csv(path)
    return TabularSplit(
        X=features(frame, str(path)),
        y=frame[TARGET].to_numpy(dtype=float),
        groups=frame[COLOR].to_numpy(),
    )


def profile(out_dir: Path) -> pd.DataFrame:
    """The train split as retrain's drift report compares it: inputs, grade and colour."""
    return pd.read_csv(Path(out_dir) / "train.csv")[[*INPUTS, TARGET, COLOR]]


def read_inputs(source: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """infer@: the CSV as given and the model's features from it (one line on a bad file)."""
    frame = read_input_csv(source)
    return frame, features(frame, str(source))


def write_predictions(predictor, inputs: tuple, output: Path, params: WineDataset) -> Path:
    """The input rows with a `prediction` column."""
    frame, feats = inputs
    frame["prediction"] = predictor.predict(feats)
    return write_predictions_csv(frame, output)
