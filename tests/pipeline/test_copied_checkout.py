"""A copied checkout is self-contained: a stage run in the copy logs its MLflow artifacts into
the copy's `mlartifacts/`, and the original's store and artifacts stay byte-identical."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from reprolab.ops import sandbox

pytestmark = pytest.mark.slow


def _digest(root: Path) -> dict[str, str]:
    files = [root / "mlflow.db", *sorted((root / "mlartifacts").rglob("*"))]
    return {str(p): hashlib.md5(p.read_bytes()).hexdigest() for p in files if p.is_file()}


def test_a_stage_run_in_a_copy_stays_in_the_copy(tmp_path):
    from tests.conftest import _mirror, sandbox_runner

    mirror = _mirror()
    if mirror is None:
        pytest.skip("no dataset mirror: set REPROLAB_DATA_MIRROR")
    original = sandbox.create(
        tmp_path / "original", overrides=sandbox.smoke_overrides(), models=["wine-ridge"]
    )
    sandbox_runner(original, mirror)("dvc", "repro", "train@wine-ridge")
    before = _digest(original)
    copy = Path(shutil.copytree(original, tmp_path / "copy", symlinks=True))

    sandbox_runner(copy, mirror)("dvc", "repro", "-f", "train@wine-ridge")

    assert _digest(original) == before
    with sqlite3.connect(copy / "mlflow.db") as conn:
        uris = [row[0] for row in conn.execute("SELECT artifact_uri FROM runs")]
    assert len(uris) >= 2 and all(u.startswith((copy / "mlartifacts").as_uri()) for u in uris)
    newest = max((copy / "mlartifacts").rglob("MLmodel"), key=lambda p: p.stat().st_mtime)
    assert newest.is_relative_to(copy)
