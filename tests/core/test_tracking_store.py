"""A checkout's own MLflow store follows the checkout: copied or moved, it reads and writes the
artifacts beside it, never the original's."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reprolab.core import tracking_store
from reprolab.core.tracking import Run


@pytest.fixture
def own_store(monkeypatch):
    """The default layout (no store or artifact overrides); each checkout opened afresh."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.delenv("REPROLAB_MLFLOW_ARTIFACTS")
    monkeypatch.setattr(tracking_store, "_READY", set())


def _log(root: Path, monkeypatch, text: str) -> str:
    """Log an artifact as a stage in `root` would (a new process: MLflow exports the URI)."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(root)
    (root / "f.txt").write_text(text)
    with Run("exp", run_name="m") as run:
        run.log_artifact(root / "f.txt")
    return tracking_store.client().get_run(run.run_id).info.artifact_uri


def test_a_copied_checkout_logs_into_its_own_artifacts(tmp_path, monkeypatch, own_store):
    original = tmp_path / "original"
    original.mkdir()
    (original / "dvc.yaml").write_text("stages: {}\n")
    first = _log(original, monkeypatch, "one")
    assert first.startswith((original / "mlartifacts").as_uri() + "/")

    copy = Path(shutil.copytree(original, tmp_path / "copy"))
    before = sorted(p.relative_to(original) for p in (original / "mlartifacts").rglob("*"))
    second = _log(copy, monkeypatch, "two")

    assert second.startswith((copy / "mlartifacts").as_uri() + "/")
    after = sorted(p.relative_to(original) for p in (original / "mlartifacts").rglob("*"))
    assert after == before  # nothing new in the original
    runs = tracking_store.client().search_runs(
        [tracking_store.client().get_experiment_by_name("exp").experiment_id]
    )
    assert len(runs) == 2
    assert all(r.info.artifact_uri.startswith((copy / "mlartifacts").as_uri()) for r in runs)
    old = next(r for r in runs if r.info.artifact_uri != second)
    assert Path(old.info.artifact_uri.removeprefix("file://"), "f.txt").read_text() == "one"


def test_relocation_rewrites_only_foreign_artifact_roots(tmp_path):
    import sqlite3

    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE experiments (name TEXT, artifact_location TEXT)")
        conn.execute("CREATE TABLE runs (artifact_uri TEXT)")
        rows = [
            ("a", "file:///old/mlartifacts/a"),
            ("b", "file:///new/mlartifacts/b"),
            ("Default", "/old/mlruns/0"),
        ]
        conn.executemany("INSERT INTO experiments VALUES (?, ?)", rows)
        conn.executemany(
            "INSERT INTO runs VALUES (?)",
            [("file:///old/mlartifacts/a/1/artifacts",), ("file:///old/mlartifacts2/x",)],
        )
    assert tracking_store.relocate(db, "file:///new/mlartifacts") == 2
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT artifact_location FROM experiments")] == [
            "file:///new/mlartifacts/a",
            "file:///new/mlartifacts/b",
            "/old/mlruns/0",
        ]
        assert [r[0] for r in conn.execute("SELECT artifact_uri FROM runs")] == [
            "file:///new/mlartifacts/a/1/artifacts",
            "file:///old/mlartifacts2/x",
        ]
    assert tracking_store.relocate(db, "file:///new/mlartifacts") == 0
