"""MLflow on a server: `make mlflow-server` on a throw-away PostgreSQL cluster, the pipeline
pointed at it by MLFLOW_TRACKING_URI alone; the run, its lineage tags, the registered version
and the champion alias checked over the REST API. Then the server goes away mid-run: the
stage exits non-zero with one clear line and the registry is unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from reprolab.ops import devservers, sandbox

REPO = Path(__file__).resolve().parents[2]
API = "/api/2.0/mlflow"

pytestmark = pytest.mark.slow


def _mirror() -> Path:
    from tests.conftest import _mirror as find

    found = find()
    if found is None:
        pytest.skip("no dataset mirror: set REPROLAB_DATA_MIRROR (CI uses ../shared/datasets)")
    return found


@pytest.fixture(scope="module")
def pg():
    if devservers.pg_bin() is None:
        pytest.skip(
            "PostgreSQL is not installed (initdb/pg_ctl not found): `apt-get install -y "
            "postgresql`, as .ci/run does where apt is available"
        )
    with devservers.postgres() as url:
        yield url


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    root = sandbox.create(
        tmp_path_factory.mktemp("mlflow") / "repo",
        {"datasets.wine.sample_fraction": 0.25},
        source=REPO,
        models=["wine-ridge"],
    )
    return root


def _add_slow_mlp(root: Path) -> None:
    """A torch MLP that would train for minutes, logging every epoch."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    source = yaml.safe_load((REPO / "params.yaml").read_text())["models"]["wine-mlp"]
    params["models"]["wine-mlp"] = {**source, "max_epochs": 5000, "patience": 5000}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _env(root: Path, tracking_uri: str) -> dict[str, str]:
    env = sandbox.env_for(root)
    env.pop("REPROLAB_MLFLOW_ARTIFACTS", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["REPROLAB_DATA_MIRROR"] = str(_mirror())
    env["MLFLOW_TRACKING_URI"] = tracking_uri  # the only change the pipeline needs
    return env


def _runs(url: str, experiment: str) -> list[dict]:
    exp = httpx.get(f"{url}{API}/experiments/get-by-name", params={"experiment_name": experiment})
    exp.raise_for_status()
    found = httpx.post(
        f"{url}{API}/runs/search",
        json={"experiment_ids": [exp.json()["experiment"]["experiment_id"]], "max_results": 100},
    )
    found.raise_for_status()
    return found.json().get("runs", [])


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def _versions(url: str, task: str) -> list[str]:
    found = httpx.get(
        f"{url}{API}/model-versions/search", params={"filter": f"name='{task}'"}
    ).json()
    return sorted(v["version"] for v in found.get("model_versions", []))


def test_pipeline_logs_and_registers_on_the_server(pg, repo, tmp_path):
    with devservers.mlflow_server(pg, str(tmp_path / "artifacts"), REPO) as (url, _):
        done = subprocess.run(
            ["dvc", "repro", "register@wine-quality"],
            cwd=repo,
            env=_env(repo, url),
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr

        runs = {r["info"]["run_name"]: r for r in _runs(url, "wine-quality")}
        run = runs["wine-ridge"]
        tags = _tags(run)
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True
        ).stdout.strip()
        assert run["info"]["status"] == "FINISHED"
        assert tags["reprolab.git_commit"] == head
        assert tags["reprolab.model_path"] == "models/wine-ridge"
        assert tags["reprolab.model_md5"].endswith(".dir")
        assert tags["reprolab.data_md5"].endswith(".dir")
        metrics = {m["key"] for m in run["data"]["metrics"]}
        assert "test_rmse" in metrics
        # artifacts went through the server to its store, not to the client's disk
        assert run["info"]["artifact_uri"].startswith("mlflow-artifacts:")
        assert not (repo / "mlartifacts").exists() and not (repo / "mlflow.db").exists()
        import mlflow  # the model is a Logged Model of the run, its files on the server

        logged = mlflow.MlflowClient(tracking_uri=url).get_logged_model(tags["reprolab.model_id"])
        assert logged.source_run_id == run["info"]["run_id"] and logged.status == "READY"
        assert logged.artifact_location.startswith("mlflow-artifacts:")
        assert any((tmp_path / "artifacts").rglob("MLmodel"))

        alias = httpx.get(
            f"{url}{API}/registered-models/alias",
            params={"name": "wine-quality", "alias": "champion"},
        )
        assert alias.status_code == 200, alias.text
        version = alias.json()["model_version"]
        assert version["run_id"] == run["info"]["run_id"]
        assert _versions(url, "wine-quality") == [version["version"]]


def test_server_going_away_mid_run_fails_the_stage(pg, repo, tmp_path):
    log = tmp_path / "server.log"
    with devservers.mlflow_server(pg, str(tmp_path / "artifacts"), REPO, log=log) as (url, proc):
        subprocess.run(["dvc", "repro", "prepare@wine"], cwd=repo, env=_env(repo, url), check=True)
        before = _versions(url, "wine-quality")
        _add_slow_mlp(repo)
        stage = subprocess.Popen(
            [sys.executable, "stages/train.py", "wine-mlp"],
            cwd=repo,
            env=_env(repo, url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def logging_steps() -> bool:
            runs = [r for r in _runs(url, "wine-quality") if r["info"]["run_name"] == "wine-mlp"]
            return bool(runs) and any(
                m["key"] == "valid_rmse" and m["step"] >= 2 for m in runs[0]["data"]["metrics"]
            )

        devservers.wait_for(logging_steps, "wine-mlp logging to the server", 120, stage)
        devservers.stop(proc)
        gone = time.monotonic()
        _, stderr = stage.communicate(timeout=120)
        seconds = time.monotonic() - gone
    assert stage.returncode == 1, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors and errors[0].startswith(f"error: MLflow tracking server {url} went away")
    assert "(wine-mlp)" in errors[0] and "Traceback" not in stderr
    assert seconds < 60
    assert not (repo / "models" / "wine-mlp").exists()
    with devservers.mlflow_server(pg, str(tmp_path / "artifacts"), REPO) as (url, _):
        assert _versions(url, "wine-quality") == before
        run = next(r for r in _runs(url, "wine-quality") if r["info"]["run_name"] == "wine-mlp")
        assert run["info"]["status"] in ("RUNNING", "FAILED")
