"""`reprolab data pin DATASET --data DIR`: a checked drop, tracked by DVC and pinned in
params.yaml; a bad one changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.ops.retrain.test_drop import wine_drop

REPO = Path(__file__).resolve().parents[3]


def pin(*args: str) -> subprocess.CompletedProcess:
    cli = [sys.executable, "-m", "reprolab", "data", "pin", "wine", *args]
    return subprocess.run(cli, capture_output=True, text=True)


def test_a_drop_is_pinned_and_unpinned_and_a_bad_one_changes_nothing(workspace, tmp_path):
    subprocess.run(["dvc", "init", "-q"], check=True)
    (workspace / "params.yaml").write_text((REPO / "params.yaml").read_text())
    done = pin("--data", str(wine_drop(tmp_path / "good")))
    assert done.returncode == 0, done.stderr
    drop = yaml.safe_load((workspace / "params.yaml").read_text())["datasets"]["wine"]["drop"]
    assert drop["path"] == "data/drops/wine" and drop["md5"] in done.stdout
    assert (workspace / "data/drops/wine.dvc").is_file()
    assert "# versions compete on valid_rmse" in (workspace / "params.yaml").read_text()

    pinned = (workspace / "params.yaml").read_text()
    bad = pin("--data", str(wine_drop(tmp_path / "bad", bad_row=3)))
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1
    assert "winequality-red.csv: row 3 (line 4), column 'alcohol'" in bad.stderr
    assert (workspace / "params.yaml").read_text() == pinned

    back = pin()
    assert back.returncode == 0 and "upstream source" in back.stdout
    wine = yaml.safe_load((workspace / "params.yaml").read_text())["datasets"]["wine"]
    assert "drop" not in wine
