"""Parallel experiment workers share one MLflow SQLite store: no run may be lost to
"database is locked", including the race to create a brand-new store."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from reprolab.core.tracking_store import client, with_lock_retry

WORKER = """
import sys
from reprolab.core.tracking import Run
who, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with Run("shared", run_name=f"{who}-{i}", tags={"worker": who}) as run:
        run.log_params({"i": i, "who": who})
        for step in range(5):
            run.log_step(step, {"loss": 1.0 / (step + 1)})
        run.log_metrics({"final": float(i)})
print("done", who)
"""


def test_two_processes_log_to_one_new_store_without_losing_a_run(tmp_path, workspace):
    n = 12
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, who, str(n)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("a", "b")
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (_out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-2000:]
    mlflow_client = client()
    exp = mlflow_client.get_experiment_by_name("shared")
    runs = mlflow_client.search_runs([exp.experiment_id], max_results=1000)
    names = sorted(r.info.run_name for r in runs)
    assert names == sorted(f"{w}-{i}" for w in "ab" for i in range(n))
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert all(len(mlflow_client.get_metric_history(r.info.run_id, "loss")) == 5 for r in runs)
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_lock_errors_are_retried_then_surface():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("(sqlite3.OperationalError) database is locked")
        return "ok"

    assert with_lock_retry(flaky) == "ok"
    assert len(calls) == 3

    def broken():
        raise ValueError("something else")

    with pytest.raises(ValueError):
        with_lock_retry(broken)
