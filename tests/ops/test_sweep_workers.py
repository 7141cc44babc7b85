"""The sweep waits for an earlier sweep's queue workers to exit, and tells a task lost by a
stopping worker from one still running, from the process files DVC keeps."""

from __future__ import annotations

import json
import os
import subprocess

import click
import pytest

from reprolab.ops.sweep import live_workers, wait_for_workers_to_exit


def worker(root, name: str, pid: int, returncode: int | None) -> None:
    folder = root / ".dvc/tmp/exps/celery"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"pid": pid, "returncode": returncode}))


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_only_workers_without_a_return_code_and_with_a_live_process_count(tmp_path):
    worker(tmp_path, "dvc-exp-worker-1", os.getpid(), None)
    worker(tmp_path, "dvc-exp-worker-2", os.getpid(), 0)  # exited cleanly
    worker(tmp_path, "dvc-exp-worker-3", dead_pid(), None)  # killed before writing its code
    (tmp_path / ".dvc/tmp/exps/celery/dvc-exp-worker-4.json").write_text("{")  # half-written
    assert live_workers(tmp_path) == ["dvc-exp-worker-1"]


def test_a_new_sweep_does_not_queue_while_an_old_worker_lives(tmp_path):
    assert live_workers(tmp_path) == []
    wait_for_workers_to_exit(tmp_path, timeout=0)  # no queue yet: nothing to wait for
    worker(tmp_path, "dvc-exp-worker-1", os.getpid(), None)
    with pytest.raises(click.ClickException, match=r"dvc-exp-worker-1.*dvc queue stop"):
        wait_for_workers_to_exit(tmp_path, timeout=0)
