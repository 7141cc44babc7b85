"""A stage stopped from outside leaves nothing that looks finished: SIGTERM or Ctrl-C end its
MLflow run KILLED and remove the partial metrics; a SIGKILLed run is marked KILLED when the
next stage starts; a stage whose `dvc` parent is killed stops instead of running on."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def wine(workspace, mirror) -> Path:
    """Prepared wine data and a slow MLP (many epochs, no early stop) to interrupt."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"]["wine"]["sample_fraction"] = 0.2
    mlp = {**params["models"]["wine-mlp"], "max_epochs": 100000, "patience": 100000}
    params["models"] = {"wine-ridge": params["models"]["wine-ridge"], "wine-mlp": mlp}
    params["hpo"] = {}
    for section in ("pretrain", "imports", "finetune", "ensembles"):
        params[section] = {}
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    subprocess.run([sys.executable, str(REPO / "stages/prepare.py"), "wine"], check=True)
    return workspace


def start_training(cwd: Path, *prefix: str) -> subprocess.Popen:
    cmd = [*prefix, sys.executable, str(REPO / "stages/train.py"), "wine-mlp"]
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_steps(workspace: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Until the run has logged a few epochs (dvclive's step files exist)."""
    curve = workspace / "reports/train/wine-mlp/plots/metrics/valid_rmse.tsv"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        if curve.is_file() and len(curve.read_text().splitlines()) > 3:
            return
        time.sleep(0.2)
    raise AssertionError("training logged no steps in time")


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's exit status may wait for a reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def runs(status: str | None = None) -> list:
    from reprolab.core.tracking import client

    mlflow_client = client()
    exp = mlflow_client.get_experiment_by_name("wine-quality")
    found = mlflow_client.search_runs([exp.experiment_id], "tags.`reprolab.model` = 'wine-mlp'")
    return [r for r in found if status is None or r.info.status == status]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_stage_ends_its_run_killed_and_leaves_no_valid_looking_output(wine, sig):
    proc = start_training(wine)
    wait_for_steps(wine, proc)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=180)  # a loaded machine is slow to unwind
    assert proc.returncode == (143 if sig == signal.SIGTERM else 130)
    assert b"Traceback" not in err and b"stopped: " in err, err.decode()
    [run] = runs()
    assert run.info.status == "KILLED"
    out = wine / "reports/train/wine-mlp"
    assert not (out / "metrics.json").exists() and not (out / "run.json").exists()
    reason = (out / "INCOMPLETE").read_text()  # says why the curves stop where they do
    assert ("stopped by SIGTERM" if sig == signal.SIGTERM else "KeyboardInterrupt") in reason
    assert not (wine / "models/wine-mlp").exists()


def test_a_sigkilled_run_is_marked_killed_when_the_next_stage_starts(wine):
    proc = start_training(wine)
    wait_for_steps(wine, proc)
    proc.kill()
    proc.wait(timeout=30)
    assert [r.info.status for r in runs()] == ["RUNNING"]  # nobody could end it
    subprocess.run([sys.executable, str(REPO / "stages/train.py"), "wine-ridge"], check=True)
    [run] = runs()
    assert run.info.status == "KILLED"
    assert "ended without closing the run" in run.data.tags["reprolab.error"]


def test_a_stage_dies_with_its_parent(wine):
    """The parent (standing in for `dvc repro`) is SIGKILLed: the stage stops too."""
    shell = subprocess.Popen(
        ["sh", "-c", f"{sys.executable} {REPO / 'stages/train.py'} wine-mlp; echo done"],
        cwd=wine,
        env={**os.environ, "DVC_STAGE": "train@wine-mlp"},  # as `dvc repro` runs it
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for_steps(wine, shell)
    [stage_pid] = [
        int(p)
        for p in subprocess.run(
            ["pgrep", "-P", str(shell.pid)], capture_output=True, text=True
        ).stdout.split()
    ]
    os.kill(shell.pid, signal.SIGKILL)
    shell.wait()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and running(stage_pid):
        time.sleep(0.2)
    if running(stage_pid):
        os.kill(stage_pid, signal.SIGKILL)
        raise AssertionError("the stage ran on after its parent was killed")
    assert "KILLED" in {r.info.status for r in runs()}
