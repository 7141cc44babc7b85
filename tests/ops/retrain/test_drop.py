"""A data drop is checked as prepare reads it, with errors naming the drop's own file, and
a recorded drop is read back only while its content matches the pinned md5."""

from __future__ import annotations

import pytest

from reprolab.core.errors import DataError
from reprolab.core.fetch import open_drop
from reprolab.core.io import dvc_md5
from reprolab.ops.retrain import drop
from reprolab.workloads.wine.params import WineDataset

SPEC = WineDataset(kind="wine")
HEADER = (
    '"fixed acidity";"volatile acidity";"citric acid";"residual sugar";"chlorides";'
    '"free sulfur dioxide";"total sulfur dioxide";"density";"pH";"sulphates";"alcohol";'
    '"quality"'
)
ROW = "7.4;0.7;0;1.9;0.076;11;34;0.9978;3.51;0.56;{alcohol};{quality}"


def wine_drop(root, rows: int = 60, bad_row: int | None = None):
    for name in ("winequality-red.csv", "winequality-white.csv"):
        lines = [HEADER]
        for i in range(rows):
            alcohol = "n/a" if (bad_row == i + 1 and "red" in name) else 9 + i % 5
            lines.append(ROW.format(alcohol=alcohol, quality=3 + i % 6))
        path = root / "wine-quality" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    return root


def test_a_good_drop_passes_prepare_s_checks(tmp_path):
    processed = drop.check("wine", SPEC, 0, wine_drop(tmp_path / "d"), tmp_path / "work")
    assert {p.name for p in processed.iterdir()} >= {"train.csv", "valid.csv", "test.csv"}


def test_a_bad_cell_names_the_drop_s_file_and_row(tmp_path):
    bad = wine_drop(tmp_path / "d", bad_row=4)
    with pytest.raises(DataError) as err:
        drop.check("wine", SPEC, 0, bad, tmp_path / "work")
    assert str(err.value) == (
        f"{bad}/wine-quality/winequality-red.csv: row 4 (line 5), column 'alcohol': "
        "not a number: 'n/a'"
    )


def test_a_missing_file_or_folder_is_one_clear_line(tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        drop.check("wine", SPEC, 0, tmp_path / "nowhere", tmp_path / "work")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"winequality-red\.csv: missing from the data drop"):
        drop.check("wine", SPEC, 0, tmp_path / "empty", tmp_path / "work")


def test_a_drop_changed_after_it_was_pinned_is_refused(tmp_path):
    folder = wine_drop(tmp_path / "d")
    md5 = dvc_md5(folder)
    assert open_drop(folder, md5) == folder
    (folder / "wine-quality" / "winequality-red.csv").write_text(HEADER + "\n")
    with pytest.raises(DataError, match=r"differs from datasets.wine.drop.md5"):
        open_drop(folder, md5, "datasets.wine.drop")


def test_a_generated_dataset_takes_no_drop(tmp_path):
    from reprolab.workloads.control.params import ControlDataset

    with pytest.raises(DataError, match=r"--data: dataset 'control' \(\w+\) is generated"):
        drop.check("control", ControlDataset(kind="control"), 0, tmp_path, tmp_path / "work")
