"""NSMC (Naver Sentiment Movie Corpus v1.0, e9t/nsmc): Korean movie reviews labelled
0 negative / 1 positive. Fetch with pinned sha256 (or the mirror), parse line by line with
quoting off (documents carry literal quote runs), validate ids and labels, split a
validation set from train by seed, write TSVs.

Empty documents (5 in train, 3 in test): dropped from train/valid (nothing to learn from),
kept as empty strings in test so that the test set stays the full 48,000 rows and accuracy is
comparable across models. Both counts are in summary.json.

The mirror's `ratings_test.txt` is upstream's header plus first 48,000 rows (the last 2,000
are held out elsewhere); a download from upstream is truncated the same way and must then
match the mirror's checksum, so both routes give byte-identical raw files."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reprolab.core.errors import DataError
from reprolab.core.fetch import RemoteFile, fetch_one
from reprolab.core.io import (
    atomic_write_json,
    atomic_write_text,
    file_digest,
    write_predictions_csv,
)
from reprolab.core.metrics import classification_by_group
from reprolab.core.split import Split
from reprolab.workloads.sentiment.params import NsmcDataset

PROBLEM = "classification"  # how the report and infer treat this dataset's predictions
UPSTREAM = "https://raw.githubusercontent.com/e9t/nsmc/master"
HEADER = ["id", "document", "label"]
TEXT = "text"  # the one input column every sentiment model and predictor takes
TEST_ROWS = 48_000
TRAIN = RemoteFile(
    "ratings_train.txt",
    f"{UPSTREAM}/ratings_train.txt",
    "e03b7d14e9e41be8d464a28057cd25d7396c53e67aa7fd5f7e552c59b0ee2940",
    "sentiment/ratings_train.txt",
)
TEST = RemoteFile(  # the first 48,000 rows: what the mirror holds and what we keep
    "ratings_test.txt",
    f"{UPSTREAM}/ratings_test.txt",
    "7a68bb70e8ebd143ecab7262c4cacc3230008ba051678df7270f7f25a84eff8e",
    "sentiment/ratings_test.txt",
)
TEST_UPSTREAM = RemoteFile(  # upstream's full 50,000 rows, truncated after download
    "ratings_test.full.txt",
    f"{UPSTREAM}/ratings_test.txt",
    "8ac9f64052f11dbf6ae0acb5e038f03d90a76f0eda7820cfb3a92d02edfcebda",
    "",
)
SPLITS = ("train", "valid", "test")
# length buckets (characters) for per-group metrics: short reviews are the hard ones
BUCKETS = ((20, "short"), (60, "medium"), (10**9, "long"))


def source_files(params: NsmcDataset, mirror: Path | None = None) -> list[RemoteFile]:
    """The pinned files prepare reads (the check stage verifies the mirror's copies)."""
    return [TRAIN, TEST]


@dataclass(frozen=True)
class TextSplit(Split):
    """Texts (`X`, a frame with one `text` column: the pyfunc input), labels 0/1 and length
    buckets; `score` takes labels or an (n, 2) / (n,) probability array. Every sentiment
    model's pyfunc returns (n, 2) probabilities [P(0), P(1)] for a frame with `text`."""

    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray

    def score(self, pred_or_probs: np.ndarray) -> dict:
        return classification_by_group(self.y, pred_or_probs, self.groups)

    def prediction_table(self, predicted: np.ndarray) -> pd.DataFrame:
        prob = positive_probability(predicted)
        return pd.DataFrame(
            {
                "actual": self.y,
                "predicted": (prob >= 0.5).astype(int),
                "probability": prob,
                "group": self.groups,
            }
        )


def positive_probability(predicted) -> np.ndarray:
    """P(label 1) from an (n, 2) probability array, a frame of it, or (n,) probabilities."""
    arr = np.asarray(predicted, dtype=float)
    return arr[:, 1] if arr.ndim == 2 else arr


def read_ratings(path: Path) -> pd.DataFrame:
    """Parse one NSMC file; DataError naming the file and line for any malformed row."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 ({err})") from err
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or lines[0].rstrip("\r").split("\t") != HEADER:
        got = lines[0][:80] if lines else "an empty file"
        raise DataError(f"{path}: line 1: expected the header 'id<TAB>document<TAB>label', {got!r}")
    ids, docs, labels = [], [], []
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        fields = line.rstrip("\r").split("\t")
        if len(fields) != 3:
            raise DataError(
                f"{path}: line {number}: expected 3 tab-separated fields (id, document, "
                f"label), got {len(fields)}"
            )
        row_id, doc, label = fields
        if label not in ("0", "1"):
            raise DataError(f"{path}: line {number}: label must be 0 or 1, got {label!r}")
        if not row_id.strip():
            raise DataError(f"{path}: line {number}: empty id")
        if row_id in first_line:
            raise DataError(
                f"{path}: line {number}: duplicate id {row_id!r} (first on line "
                f"{first_line[row_id]})"
            )
        first_line[row_id] = number
        ids.append(row_id)
        docs.append(doc)
        labels.append(int(label))
    if not ids:
        raise DataError(f"{path}: no data rows")
    return pd.DataFrame({"id": ids, "document": docs, "label": labels})


def fetch_test(raw_dir: Path, mirror: Path | None) -> Path:
    """The 48,000-row test file from the mirror, or upstream's truncated to the same bytes."""
    if mirror is not None:
        return fetch_one(TEST, raw_dir, mirror)
    full = fetch_one(TEST_UPSTREAM, raw_dir, None)
    with open(full, encoding="utf-8", newline="") as src:
        kept = "".join(line for _, line in zip(range(TEST_ROWS + 1), src, strict=False))
    target = raw_dir / TEST.name
    atomic_write_text(target, kept)
    full.unlink()
    if file_digest(target, "sha256") != TEST.sha256:
        target.unlink()
        raise DataError(f"{TEST_UPSTREAM.url}: first {TEST_ROWS} rows do not match the pin")
    return target


def prepare(
    params: NsmcDataset, seed: int, raw_dir: Path, out_dir: Path, mirror: Path | None
) -> dict:
    """Fetch → validate → drop empty train docs → sample → split valid → write TSVs."""
    from sklearn.model_selection import train_test_split

    train_path = fetch_one(TRAIN, raw_dir, mirror)
    test_path = fetch_test(raw_dir, mirror)
    train_all, test = read_ratings(train_path), read_ratings(test_path)
    overlap = set(train_all["id"]) & set(test["id"])
    if overlap:
        raise DataError(f"{test_path}: {len(overlap)} id(s) also in {train_path}")

    empty_train = train_all["document"].str.strip() == ""
    train_all = train_all[~empty_train].reset_index(drop=True)
    empty_test = int((test["document"].str.strip() == "").sum())
    if params.sampling_rate < 1:
        train_all = _sample(train_all, params.sampling_rate, seed)
        test = _sample(test, params.sampling_rate, seed)
    truncated = {}
    for name, frame in (("train", train_all), ("test", test)):
        too_long = frame["document"].str.len() > params.max_length
        truncated[name] = int(too_long.sum())
        frame["document"] = frame["document"].str.slice(0, params.max_length)
    train, valid = train_test_split(
        train_all, test_size=params.valid_size, random_state=seed, stratify=train_all["label"]
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    splits = dict(zip(SPLITS, (train, valid, test), strict=True))
    for name, frame in splits.items():
        atomic_write_text(out_dir / f"{name}.tsv", _to_tsv(frame))
    summary = {
        "rows": {n: len(f) for n, f in splits.items()},
        "labels": {n: f["label"].value_counts().sort_index().to_dict() for n, f in splits.items()},
        "empty_documents": {"train_dropped": int(empty_train.sum()), "test_kept": empty_test},
        "truncated_to_max_length": truncated,
        "sampling_rate": params.sampling_rate,
        "max_length": params.max_length,
        "text_column": TEXT,
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def _sample(frame: pd.DataFrame, rate: float, seed: int) -> pd.DataFrame:
    """A label-stratified fraction (at least one row of each label present)."""
    parts = [
        g.sample(n=max(1, round(len(g) * rate)), random_state=seed)
        for _, g in frame.groupby("label")
    ]
    return pd.concat(parts).sort_index().reset_index(drop=True)


def _to_tsv(frame: pd.DataFrame) -> str:
    """Written by hand: fields never hold tabs or newlines, and quotes must stay literal."""
    rows = zip(frame["id"], frame["document"], frame["label"].astype(str), strict=True)
    return "\t".join(HEADER) + "\n" + "".join(f"{i}\t{d}\t{y}\n" for i, d, y in rows)


def length_groups(texts: pd.Series) -> np.ndarray:
    lengths = texts.str.len().to_numpy()
    out = np.empty(len(lengths), dtype=object)
    lower = -1
    for upper, name in BUCKETS:
        out[(lengths > lower) & (lengths <= upper)] = name
        lower = upper
    return out


def features(frame: pd.DataFrame, source: str = "input") -> pd.DataFrame:
    """The model input (one `text` column) from a frame with `text` or NSMC's `document`;
    missing cells become empty strings. Other columns are ignored."""
    column = TEXT if TEXT in frame.columns else "document" if "document" in frame.columns else None
    if column is None:
        raise DataError(
            f"{source}: no '{TEXT}' (or 'document') column; found {list(frame.columns)}"
        )
    return pd.DataFrame({TEXT: frame[column].fillna("").astype(str).to_numpy()})


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or TSV of texts (by suffix: .tsv/.txt are tab-separated, read with quoting off)."""
    if not Path(path).is_file():
        raise DataError(f"{path}: input file not found")
    tab = Path(path).suffix.lower() in (".tsv", ".txt")
    try:
        return pd.read_csv(
            path,
            sep="\t" if tab else ",",
            quoting=csv.QUOTE_NONE if tab else csv.QUOTE_MINIMAL,
            dtype=str,
            keep_default_na=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot parse as {'TSV' if tab else 'CSV'}: {err}") from err


def prediction_columns(predicted, params: NsmcDataset) -> dict[str, np.ndarray]:
    """Columns infer@ appends (an input may carry its true `label`): the predicted label
    name (params.label_names) and P(label 1)."""
    prob = positive_probability(predicted)
    names = np.asarray(params.label_names, dtype=object)
    return {"predicted_label": names[(prob >= 0.5).astype(int)], "prob_positive": prob}


def load_split(out_dir: Path, split: str) -> TextSplit:
    path = Path(out_dir) / f"{split}.tsv"
    frame = read_ratings(path)
    X = features(frame, str(path))
    return TextSplit(X=X, y=frame["label"].to_numpy(dtype=int), groups=length_groups(X[TEXT]))


def profile(out_dir: Path) -> pd.DataFrame:
    """The train split as retrain's drift report compares it: label balance, review length."""
    frame = read_ratings(Path(out_dir) / "train.tsv")
    return pd.DataFrame(
        {"label": frame["label"].astype(str), "length": frame["document"].str.len()}
    )


def read_inputs(source: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """infer@: a CSV/TSV of texts and the model input from it (one line on a bad file)."""
    frame = read_table(source)
    return frame, features(frame, str(source))


def write_predictions(predictor, inputs: tuple, output: Path, params: NsmcDataset) -> Path:
    """The input rows with the predicted label name and P(label 1)."""
    frame, feats = inputs
    for column, values in prediction_columns(predictor.predict(feats), params).items():
        frame[column] = values
    return write_predictions_csv(frame, output)
