"""`make sweep` machinery: a grid queued as DVC experiments and run by two parallel workers
in a throw-away repository; every run lands in the one MLflow store with its experiment
name, and a failing experiment is reported with its log instead of hanging."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from reprolab import sandbox

pytestmark = pytest.mark.slow


def minimal_params(root) -> None:
    """Only wine + ridge: the sweep machinery, not the workloads, is under test."""
    path = root / "params.yaml"
    params = sandbox.restrict(yaml.safe_load(path.read_text()), ["wine-ridge"])
    params["datasets"]["wine"]["sample_fraction"] = 0.2
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def test_queued_grid_runs_on_two_workers_and_tags_each_run(tmp_path):
    from tests.conftest import _mirror

    mirror = _mirror()
    if mirror is None:
        pytest.skip("no dataset mirror: set REPROLAB_DATA_MIRROR")
    root = sandbox.create(tmp_path / "repo")
    minimal_params(root)
    env = {**sandbox.env_for(root), "REPROLAB_DATA_MIRROR": str(mirror)}
    env.pop("REPROLAB_MLFLOW_ARTIFACTS", None)

    def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    run("dvc", "repro")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "baseline")
    sweep = [sys.executable, "-m", "reprolab.sweep", "--jobs", "2", "--timeout", "600"]
    done = run(*sweep, "--grid", "models.wine-ridge.alpha=0.5,4.0")
    assert "queued 2 experiment(s)" in done.stdout
    assert "2/2 finished" in done.stdout
    table = done.stdout[done.stdout.index("| Experiment") :]
    (tmp_path.parent / "sweep-table.md").write_text(done.stdout)
    queued = done.stdout.split("queued 2 experiment(s): ")[1].splitlines()[0].split(", ")
    assert all(name in table for name in queued)
    assert "models.wine-ridge.alpha" in table

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    exp = client.get_experiment_by_name("wine-quality")
    runs = client.search_runs([exp.experiment_id], "tags.`reprolab.stage` = 'train'")
    names = {r.data.tags["reprolab.dvc_exp"] for r in runs}
    assert names == {"", *queued}  # the baseline, then one run per queued experiment
    alphas = {r.data.params["alpha"] for r in runs}
    assert alphas == {"1.0", "0.5", "4.0"}

    # a failing experiment is reported with its log, and the sweep exits non-zero
    failed = run(*sweep, "--grid", "models.wine-ridge.alpha=-1", check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAILED" in failed.stdout
    assert "models.wine-ridge.alpha: must be >= 0" in failed.stdout
