"""A queue worker killed mid-experiment, for real: `dvc queue start`, SIGKILL to the worker.
An experiment that still finishes is collected into `dvc exp list`; one killed with its
worker is marked failed with a line naming it. Before the repair, both stayed Running."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from reprolab.ops.queue_repair import Repaired, repair

pytestmark = pytest.mark.slow

STAGE = """stages:
  score:
    cmd: python score.py
    params: [seed]
    metrics: [{metrics.json: {cache: false}}]
"""
# the stage says when it started and waits for the test's go-ahead: the test kills the worker
# while the experiment is surely inside it
SCORE = """import json, os, time, yaml
seed = yaml.safe_load(open("params.yaml"))["seed"]
marks = {marks!r}
open(os.path.join(marks, f"started-{{seed}}"), "w").close()
while not os.path.exists(os.path.join(marks, f"go-{{seed}}")):
    time.sleep(0.1)
json.dump({{"score": 1 / (1 + seed)}}, open("metrics.json", "w"))
"""
WAIT_S = 180


@pytest.fixture
def repo(tmp_path) -> tuple[Path, Path, dict[str, str]]:
    root, marks = tmp_path / "repo", tmp_path / "marks"
    root.mkdir()
    marks.mkdir()
    (marks / "go-0").touch()
    scripts = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")]),
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    (root / "dvc.yaml").write_text(STAGE)
    (root / "score.py").write_text(SCORE.format(marks=str(marks)))
    (root / "params.yaml").write_text("seed: 0\n")
    for command in (
        ["git", "init", "-q"],
        ["dvc", "init", "-q"],
        ["dvc", "repro", "-q"],
        ["git", "add", "-A"],
        ["git", "commit", "-qm", "score stage"],
    ):
        subprocess.run(command, cwd=root, env=env, check=True, capture_output=True)
    yield root, marks, env
    for seed in (1, 2):
        (marks / f"go-{seed}").touch()  # anything still waiting ends
    for pid in _worker_pids(root):
        _kill_group(pid)


def _dvc(root: Path, env: dict[str, str], *args: str) -> str:
    """Output through a file: `dvc queue start` leaves a worker holding its stdout, and a
    pipe would never reach its end."""
    with tempfile.TemporaryFile("w+") as out:
        done = subprocess.run(
            ["dvc", *args],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=WAIT_S,
        )
        out.seek(0)
        text = out.read()
    assert done.returncode == 0, text
    return text


def _worker_pids(root: Path) -> list[int]:
    pids = []
    for info in (root / ".dvc/tmp/exps/celery").glob("dvc-exp-worker-*.json"):
        proc = json.loads(info.read_text())
        if proc.get("returncode") is None:
            pids.append(int(proc["pid"]))
    return pids


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def _status(root: Path, env: dict[str, str]) -> dict[str, str]:
    rows = [line.split() for line in _dvc(root, env, "queue", "status").splitlines()]
    return {row[1]: row[-1] for row in rows if len(row) >= 3}


def _repaired(root: Path) -> list[Repaired]:
    found: list[Repaired] = []

    def done() -> bool:
        found.extend(repair(root))
        return bool(found)

    _wait(done, "the orphaned task to be repaired")
    return found


def test_a_killed_workers_experiments_are_collected_or_failed(repo):
    root, marks, env = repo

    # the worker dies while the experiment runs; the experiment itself goes on and finishes
    _dvc(root, env, "exp", "run", "--queue", "-S", "seed=1", "--name", "finished")
    _dvc(root, env, "queue", "start", "-j", "1")
    _wait(lambda: (marks / "started-1").exists(), "the first experiment to start")
    (worker,) = _worker_pids(root)
    os.kill(worker, signal.SIGKILL)
    (marks / "go-1").touch()
    assert _status(root, env)["finished"] == "Running"  # what the user saw before
    assert _repaired(root) == [Repaired("finished", True)]
    assert _status(root, env)["finished"] == "Success"
    assert "finished" in _dvc(root, env, "exp", "list", "--name-only")
    shown = json.loads(_dvc(root, env, "exp", "show", "--json"))
    scores = [
        rev["data"]["metrics"]["metrics.json"]["data"]["score"]
        for exp in shown[-1].get("experiments") or []
        for rev in exp.get("revs") or []
        if rev.get("name") == "finished"
    ]
    assert scores == [0.5]

    # the worker and the experiment die together: the task is failed, with its line
    _dvc(root, env, "exp", "run", "--queue", "-S", "seed=2", "--name", "cut")
    _dvc(root, env, "queue", "start", "-j", "1")
    _wait(lambda: (marks / "started-2").exists(), "the second experiment to start")
    for pid in _worker_pids(root):
        _kill_group(pid)  # the worker, its `dvc exp exec-run` and the stage's python
    (cut,) = _repaired(root)
    assert cut == Repaired("cut", False)
    assert "cut: its queue worker died before the experiment finished; marked failed" in cut.line
    assert _status(root, env)["cut"] == "Failed"
    assert repair(root) == []  # nothing left behind
