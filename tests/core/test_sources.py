"""The check stage's data-source checks: a mirror file that differs from its pin, or a data
drop that differs from its md5, is one line naming the file; a missing one is prepare's."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reprolab.core.errors import DataError
from reprolab.core.fetch import RemoteFile, verify_mirror

REPO = Path(__file__).resolve().parents[2]


def pinned(tmp_path, text: str) -> tuple[RemoteFile, Path]:
    mirror = tmp_path / "mirror"
    (mirror / "d").mkdir(parents=True)
    (mirror / "d" / "f.csv").write_text(text)
    sha = hashlib.sha256(text.encode()).hexdigest()
    return RemoteFile("f.csv", "", sha, "d/f.csv"), mirror


def test_matching_files_are_counted_and_missing_ones_left_to_prepare(tmp_path):
    remote, mirror = pinned(tmp_path, "a;b\n1;2\n")
    absent = RemoteFile("g.csv", "", "0" * 64, "d/g.csv")
    assert verify_mirror([remote, absent], mirror) == 1


def test_a_changed_file_is_one_line_naming_it(tmp_path):
    remote, mirror = pinned(tmp_path, "a;b\n1;2\n")
    (mirror / "d" / "f.csv").write_text("a;b\n1;3\n")
    with pytest.raises(DataError) as err:
        verify_mirror([remote], mirror)
    assert str(err.value).startswith(f"{mirror / 'd' / 'f.csv'}: sha256 ")
    assert "differs from the pinned" in str(err.value) and "\n" not in str(err.value)


def test_the_check_stage_refuses_a_drop_changed_after_it_was_pinned(workspace, mirror):
    from reprolab.core.io import dvc_md5

    drop = workspace / "data" / "drops" / "wine" / "wine-quality"
    drop.mkdir(parents=True)
    for name in ("winequality-red.csv", "winequality-white.csv"):
        (drop / name).write_bytes((mirror / "wine-quality" / name).read_bytes())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"]["wine"]["drop"] = {"path": "data/drops/wine", "md5": dvc_md5(drop.parent)}
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    check = [sys.executable, str(REPO / "stages/check.py")]
    ok = subprocess.run(check, cwd=workspace, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "check: wine: data drop data/drops/wine matches its md5" in ok.stdout
    assert "check: nsmc: 2 mirror file(s) match their pins" in ok.stdout
    (drop / "winequality-red.csv").write_text("changed\n")
    bad = subprocess.run(check, cwd=workspace, capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: data/drops/wine: content md5 "), bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
