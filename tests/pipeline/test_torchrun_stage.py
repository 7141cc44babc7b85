"""The real train stage under `torchrun --nproc_per_node 2` (gloo on CPU): one MLflow run,
one model, the same metrics files as a single-process run; rank 1 writes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reprolab.ops import sandbox

REPO = Path(__file__).resolve().parents[2]


def _mirror() -> Path:
    configured = os.environ.get("REPROLAB_DATA_MIRROR")
    for candidate in [Path(configured)] if configured else [REPO.parent / "shared" / "datasets"]:
        if (candidate / "wine-quality").is_dir():
            return candidate
    pytest.skip("no dataset mirror: set REPROLAB_DATA_MIRROR (CI uses ../shared/datasets)")


def _format(reports: Path) -> dict:
    """File names, metric keys and curve shapes: what `dvc metrics/plots` read."""
    metrics = json.loads((reports / "metrics.json").read_text())
    curves = {
        p.name: (p.read_text().splitlines()[0], len(p.read_text().splitlines()))
        for p in sorted((reports / "plots").rglob("*.tsv"))
    }
    keys = {k: sorted(v) if isinstance(v, dict) else "scalar" for k, v in metrics.items()}
    return {"metrics": keys, "curves": curves}


@pytest.mark.slow
def test_train_stage_under_torchrun_logs_once(tmp_path):
    overrides = {"datasets.wine.sample_fraction": 0.25, "models.wine-mlp.max_epochs": 3}
    root = sandbox.create(tmp_path / "repo", overrides, source=REPO)
    env = sandbox.env_for(root)
    env.pop("REPROLAB_MLFLOW_ARTIFACTS", None)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        REPROLAB_DATA_MIRROR=str(_mirror()),
        OMP_NUM_THREADS="1",
    )
    subprocess.run(["dvc", "repro", "prepare@wine"], cwd=root, env=env, check=True)
    reports = root / "reports/train/wine-mlp"
    subprocess.run([sys.executable, "stages/train.py", "wine-mlp"], cwd=root, env=env, check=True)
    single = _format(reports)
    (root / "mlflow.db").unlink()
    done = subprocess.run(
        ["torchrun", "--standalone", "--nproc_per_node", "2", "stages/train.py", "wine-mlp"],
        cwd=root, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wine-mlp: trained in") == 1  # rank 0 only
    info = json.loads((root / "reports/train/wine-mlp/run.json").read_text())
    assert info["world_size"] == 2
    assert _format(reports) == single  # same files, keys and number of curve rows
    curve = (reports / "plots/metrics/valid_rmse.tsv").read_text()
    assert len(curve.strip().splitlines()) == 1 + 3  # header + one row per epoch, logged once
    assert (root / "models/wine-mlp/MLmodel").is_file()

    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["wine-quality"])
    assert list(runs["tags.mlflow.runName"]) == ["wine-mlp"]
    assert runs["status"].iloc[0] == "FINISHED"
