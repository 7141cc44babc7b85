import json
import subprocess

import mlflow
import pytest

from reprolab.core.tracking import TAG, Run, client


def test_run_logs_each_metric_once_to_each_backend(workspace):
    live = workspace / "live"
    with Run("exp", run_name="m", live_dir=live, tags={"stage": "train"}) as run:
        run.log_params({"lr": 0.1, "net": {"hidden": [4, 4]}})
        for step in (1, 2, 3):
            run.log_step(step, {"valid_rmse": 1.0 / step, "tokens_per_s": 100.0 * step})
        run.log_metrics({"valid": {"rmse": 0.3}, "fit_seconds": 2.0}, mlflow_prefix="final")
    data = client().get_run(run.run_id).data
    assert data.params == {"lr": "0.1", "net.hidden": "[4, 4]"}
    history = client().get_metric_history(run.run_id, "valid_rmse")
    assert [(m.step, round(m.value, 3)) for m in history] == [(1, 1.0), (2, 0.5), (3, 0.333)]
    assert data.metrics["final_valid/rmse"] == 0.3
    assert data.tags[TAG + "stage"] == "train"
    assert data.tags[TAG + "git_commit"]  # "unknown" in a repo without commits
    assert data.tags[TAG + "git_dirty"] in ("true", "false")

    summary = json.loads((live / "metrics.json").read_text())
    assert summary["valid"] == {"rmse": 0.3}
    assert "fit_seconds" not in summary  # a timing: not a DVC metric
    assert data.metrics["final_fit_seconds"] == 2.0
    timings = json.loads((live / "timings.json").read_text())
    assert timings["fit_seconds"] == 2.0 and 0 < timings["stage_seconds"] < 3600
    tsv = (live / "plots" / "metrics" / "valid_rmse.tsv").read_text().splitlines()
    assert len(tsv) == 4  # header + 3 steps
    assert not (live / "plots" / "metrics" / "tokens_per_s.tsv").exists()
    assert len(client().get_metric_history(run.run_id, "tokens_per_s")) == 3


def test_failure_marks_run_failed_with_the_error(workspace):
    with pytest.raises(ValueError), Run("exp", run_name="m") as run:
        raise ValueError("diverged")
    info = client().get_run(run.run_id)
    assert info.info.status == "FAILED"
    assert info.data.tags[TAG + "error"] == "ValueError: diverged"
    assert mlflow.active_run() is None


def test_resume_adds_to_the_same_run_without_relabelling_lineage(workspace, monkeypatch):
    with Run("exp", run_name="m") as first:
        pass
    monkeypatch.setenv("DVC_EXP_NAME", "later-exp")
    with Run("exp", run_name="m", resume_run_id=first.run_id) as again:
        again.log_metrics({"rmse": 0.5}, mlflow_prefix="test")
    data = client().get_run(first.run_id).data
    assert again.run_id == first.run_id
    assert data.metrics["test_rmse"] == 0.5
    assert data.tags[TAG + "dvc_exp"] == ""


def test_experiment_artifacts_never_land_in_cwd(workspace, tmp_path):
    with Run("exp", run_name="m") as run:
        (workspace / "f.txt").write_text("x")
        run.log_artifact(workspace / "f.txt")
    assert not (workspace / "mlruns").exists()
    assert (tmp_path / "mlartifacts").is_dir()


def test_only_what_builds_a_model_makes_a_workspace_dirty(workspace):
    from reprolab.core.tracking import uncommitted_paths

    for name in ("README.md", "params.yaml", "dvc.lock"):
        (workspace / name).write_text("a\n")
    (workspace / "src").mkdir()
    (workspace / "src" / "m.py").write_text("a\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "add", "-A"], cwd=workspace, check=True)
    subprocess.run([*git, "commit", "-qm", "files"], cwd=workspace, check=True)
    (workspace / "README.md").write_text("docs edited during a run\n")
    (workspace / "dvc.lock").write_text("rewritten by dvc repro\n")
    assert uncommitted_paths() == []
    (workspace / "src" / "m.py").write_text("b\n")
    (workspace / "params.yaml").write_text("b\n")
    assert sorted(uncommitted_paths()) == ["params.yaml", "src/m.py"]
    assert sorted(uncommitted_paths(workspace)) == ["params.yaml", "src/m.py"]
    subprocess.run([*git, "commit", "-qam", "edits"], cwd=workspace, check=True)
    (workspace / "src" / "new.py").write_text("a\n")  # not in any commit yet
    (workspace / "notes.txt").write_text("a\n")
    assert uncommitted_paths() == ["src/new.py"]
