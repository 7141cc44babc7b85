import hashlib

import pandas as pd
import pytest

from reprolab.core.errors import DataError
from reprolab.core.fetch import RemoteFile, fetch_one
from reprolab.workloads.wine import data as wine
from reprolab.workloads.wine.params import WineDataset

HEADER = ";".join(f'"{c}"' for c in [*wine.INPUTS, wine.TARGET])
ROW = "7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;9.4;5"


def write(tmp_path, lines, name="w.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reads_a_valid_file(tmp_path):
    frame = wine.read_raw(write(tmp_path, [HEADER, ROW, ROW.replace(";5", ";6")]))
    assert list(frame.columns) == [*wine.INPUTS, wine.TARGET]
    assert frame[wine.TARGET].tolist() == [5, 6]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([HEADER.replace(";", ","), ROW.replace(";", ",")], "wrong delimiter, expected ';'"),
        ([HEADER.replace(';"pH"', ""), ROW], "missing column(s) ['pH']"),
        (
            [HEADER, ROW, ROW.replace("3.51", "abc")],
            "row 2 (line 3), column 'pH': not a number: 'abc'",
        ),
        ([HEADER, ROW.replace("0.56", "")], "row 1 (line 2), column 'sulphates': missing value"),
        ([HEADER, ROW[:-1] + "11"], "column 'quality': must be an integer grade 0-10, got 11"),
        ([HEADER, ROW[:-1] + "5.5"], "column 'quality': expected an integer, got '5.5'"),
        ([HEADER], "no data rows"),
    ],
)
def test_bad_files_name_file_row_and_column(tmp_path, lines, message):
    path = write(tmp_path, lines)
    with pytest.raises(DataError) as caught:
        wine.read_raw(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_truncated_row_is_caught(tmp_path):
    with pytest.raises(DataError, match="missing value"):
        wine.read_raw(write(tmp_path, [HEADER, ROW, "7.4;0.7;0;1.9"]))


def remote_for(content: bytes, name="f.csv") -> RemoteFile:
    return RemoteFile(
        name, "http://invalid.example/f.csv", hashlib.sha256(content).hexdigest(), f"sub/{name}"
    )


def test_fetch_from_mirror_checks_sha256(tmp_path):
    (tmp_path / "mirror" / "sub").mkdir(parents=True)
    (tmp_path / "mirror" / "sub" / "f.csv").write_bytes(b"good")
    out = fetch_one(remote_for(b"good"), tmp_path / "raw", tmp_path / "mirror")
    assert out.read_bytes() == b"good"

    (tmp_path / "mirror" / "sub" / "f.csv").write_bytes(b"goo")  # truncated
    with pytest.raises(DataError, match=r"sha256 mismatch for f\.csv"):
        fetch_one(remote_for(b"good"), tmp_path / "raw2", tmp_path / "mirror")
    assert list((tmp_path / "raw2").iterdir()) == []  # nothing half-written left behind


def test_fetch_missing_mirror_file(tmp_path):
    (tmp_path / "mirror").mkdir()
    with pytest.raises(DataError, match="missing from the data mirror"):
        fetch_one(remote_for(b"x"), tmp_path / "raw", tmp_path / "mirror")


def test_features_accept_color_or_is_red_and_reject_missing_columns():
    frame = pd.DataFrame([dict(zip(wine.INPUTS, [1.0] * 11, strict=True))] * 2)
    frame["color"] = ["red", "White"]
    X = wine.features(frame)
    assert list(X.columns) == wine.FEATURES
    assert X["is_red"].tolist() == [1.0, 0.0]
    with pytest.raises(DataError, match=r"missing column\(s\) \['alcohol'\]"):
        wine.features(frame.drop(columns=["alcohol"]))
    frame["color"] = ["red", "rose"]
    with pytest.raises(DataError, match="row 2, column 'color'"):
        wine.features(frame)


def test_prepare_on_real_data_dedups_and_splits_deterministically(tmp_path, mirror):
    params = WineDataset(workload="wine", kind="wine")
    summary = wine.prepare(params, 42, tmp_path / "raw", tmp_path / "a", mirror)
    assert summary["rows_raw"] == 6497
    assert summary["duplicates_dropped"] > 1100
    splits = {s: pd.read_csv(tmp_path / "a" / f"{s}.csv") for s in wine.SPLITS}
    assert sum(len(f) for f in splits.values()) == 6497 - summary["duplicates_dropped"]
    keys = {s: set(map(tuple, f.round(6).to_numpy().tolist())) for s, f in splits.items()}
    assert not keys["train"] & keys["test"] and not keys["train"] & keys["valid"]
    wine.prepare(params, 42, tmp_path / "raw", tmp_path / "b", mirror)
    for split in wine.SPLITS:
        assert (tmp_path / "a" / f"{split}.csv").read_bytes() == (
            tmp_path / "b" / f"{split}.csv"
        ).read_bytes()
    test = wine.load_split(tmp_path / "a", "test")
    assert set(test.score(test.y)) >= {"rmse", "red", "white"}
    assert test.score(test.y)["rmse"] == 0
