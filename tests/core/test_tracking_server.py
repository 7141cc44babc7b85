"""tracking.Run against a tracking server that is gone: one TrackingError naming the server
and the run, the run marked FAILED whenever the store can still be reached."""

from __future__ import annotations

import time

import pytest
import requests

from reprolab.core import tracking
from reprolab.ops import devservers


@pytest.fixture
def sqlite_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("REPROLAB_MLFLOW_ARTIFACTS", (tmp_path / "mlartifacts").as_uri())
    monkeypatch.chdir(tmp_path)


def test_dead_server_fails_fast_with_one_clear_error(monkeypatch, tmp_path):
    uri = f"http://127.0.0.1:{devservers.free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the user's value wins
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    with pytest.raises(tracking.TrackingError) as err, tracking.Run("task", "m1"):
        pytest.fail("the block must not run without a tracking server")
    assert str(err.value) == f"MLflow tracking server {uri} unreachable: cannot start run m1"
    assert time.monotonic() - started < 15


def test_connection_lost_mid_run_marks_failed_when_possible(sqlite_store):
    lost = requests.exceptions.ConnectionError("Max retries exceeded (Connection refused)")
    with pytest.raises(tracking.TrackingError) as err, tracking.Run("task", "m1") as run:
        run.log_step(1, {"loss": 1.0})
        raise lost
    assert "went away during run" in str(err.value) and "(m1): marked FAILED" in str(err.value)
    assert err.value.__cause__ is lost
    stored = tracking.client().get_run(run.run_id)
    assert stored.info.status == "FAILED"
    assert "ConnectionError" in stored.data.tags["reprolab.error"]


def test_other_errors_still_propagate_unchanged(sqlite_store):
    with pytest.raises(ValueError, match="bad"), tracking.Run("task", "m1") as run:
        raise ValueError("bad")
    assert tracking.client().get_run(run.run_id).info.status == "FAILED"


def test_unreachable_recognises_connection_failures():
    assert tracking.unreachable(requests.exceptions.ConnectionError("x"))
    assert tracking.unreachable(RuntimeError("API request failed: Max retries exceeded with url"))
    assert not tracking.unreachable(ValueError("models.x: must be > 0"))
