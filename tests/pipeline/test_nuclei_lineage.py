"""The lineage round trip of the segmentation workload, with real DVC, git and MLflow in a
sandbox: train, change params and data, retrain, commit; then ask for the first run and get
the first model's predictions on the first run's data, in the workspace and in a fresh clone
that has only the DVC remote and the MLflow store. Also `register --manual` and `make tag`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from reprolab.ops import sandbox

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
TINY = {  # the smoke settings, but the real threshold (register --manual must refuse)
    k: v
    for k, v in sandbox.smoke_overrides().items()
    if k.startswith(("models.nuclei", "datasets.nuclei"))
}


def _mirror() -> Path:
    configured = os.environ.get("REPROLAB_DATA_MIRROR")
    found = Path(configured) if configured else REPO.parent / "shared" / "datasets"
    if not (found / "segmentation").is_dir():
        pytest.skip("no nuclei mirror: set REPROLAB_DATA_MIRROR")
    return found


def run(cmd: list[str], cwd: Path, env: dict, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if ok and done.returncode != 0:
        raise AssertionError(f"{cmd} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def set_params(root: Path, **changes) -> None:
    import yaml

    params = yaml.safe_load((root / "params.yaml").read_text())
    for key, value in changes.items():
        sandbox.set_dotted(params, key, value)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def commit(root: Path, env: dict, message: str) -> None:
    run(["git", "add", "-A"], root, env)
    run(["git", "commit", "-q", "-m", message], root, env)


def masks_by_id(csv: Path) -> dict[str, str]:
    frame = pd.read_csv(csv, dtype={"id": str}, keep_default_na=False)
    return dict(zip(frame["id"], frame["mask_rle"], strict=True))


def test_any_past_run_gives_back_its_model_and_data(tmp_path):
    root = sandbox.create(tmp_path / "repo", TINY, source=REPO)
    env = sandbox.env_for(root)
    env["REPROLAB_DATA_MIRROR"] = str(_mirror())
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    py = sys.executable

    run(["dvc", "repro", "evaluate@nuclei-unet"], root, env)
    first = json.loads((root / "reports/train/nuclei-unet/run.json").read_text())
    first_eval = masks_by_id(root / "reports/eval/nuclei-segmentation/nuclei-unet/predictions.csv")
    commit(root, env, "first run")
    run(["dvc", "push"], root, env)  # share it, as `git push` + `dvc push` would

    # another param and other data: the workspace moves on
    set_params(root, **{"models.nuclei-unet.lr": 0.01, "datasets.nuclei.limit": 10})
    run(["dvc", "repro", "evaluate@nuclei-unet"], root, env)
    second = json.loads((root / "reports/train/nuclei-unet/run.json").read_text())
    assert second["run_id"] != first["run_id"]
    assert second["data_md5"] != first["data_md5"] and second["model_md5"] != first["model_md5"]
    commit(root, env, "second run")
    run(["dvc", "push"], root, env)

    infer = [py, "stages/infer.py", "nuclei-segmentation", "--run-id", first["run_id"]]
    done = run([*infer, "--output", "first.csv"], root, env)
    assert f"run {first['run_id']} on its own data/processed/nuclei" in done.stdout
    assert masks_by_id(root / "first.csv") == first_eval  # the first model, the first data
    assert len(list((root / "first").glob("*.png"))) == len(first_eval)

    # a fresh clone: only git, the DVC remote and the MLflow store
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(root), str(clone)], tmp_path, env)
    clone_env = {**sandbox.env_for(clone), "MLFLOW_TRACKING_URI": env["MLFLOW_TRACKING_URI"]}
    clone_env["PATH"] = env["PATH"]
    remote = str(root / ".dvc-remote")
    run(["dvc", "remote", "modify", "--local", "local", "url", remote], clone, clone_env)
    assert not (clone / "models" / "nuclei-unet").exists()
    run([*infer, "--output", "first.csv"], clone, clone_env)
    assert masks_by_id(clone / "first.csv") == first_eval

    # clear errors for runs that cannot be traced
    bad = run([py, "stages/infer.py", "nuclei-segmentation", "--run-id", "nope"], root, env, False)
    assert bad.returncode == 1 and "run nope: not found in the MLflow store" in bad.stderr

    # register --manual: the threshold and the baseline apply unless --force; then a tag
    register = [py, "stages/register.py", "nuclei-segmentation", "--manual", "--run-id"]
    refused = run([*register, first["run_id"]], root, env, ok=False)
    assert refused.returncode == 1 and "does not beat the baseline Otsu" in refused.stderr
    forced = run([*register, first["run_id"], "--force"], root, env)
    assert "registered v1" in forced.stdout and "promoted to champion" in forced.stdout
    tagged = run(["reprolab", "tag", "nuclei-segmentation", "--version", "1.0"], root, env)
    name = tagged.stdout.split()[1]
    assert name.startswith("nuclei-v1.0-dice")
    message = run(["git", "tag", "-l", "--format=%(contents)", name], root, env).stdout
    assert first["run_id"] in message and "dvc_model: models/nuclei-unet md5" in message
    assert "dvc_data: data/processed/nuclei md5 " + first["data_md5"] in message
