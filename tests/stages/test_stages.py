"""The Click stage scripts, run as a user (and DVC) runs them, on a small slice of real data."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
STAGES = ["prepare", "hpo", "train", "evaluate", "register", "infer", "report"]
HEAVY = ("torch", "mlflow", "sklearn", "pandas", "dvc", "dvclive", "matplotlib", "pydantic")


def stage(name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, str(REPO / "stages" / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{name} {args} failed:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.mark.parametrize("name", STAGES)
def test_help_imports_no_heavy_library(name):
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['{name}', '--help']\n"
        "try:\n"
        f"    runpy.run_path({str(REPO / 'stages' / (name + '.py'))!r}, run_name='__main__')\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "Usage:" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture
def small_params(workspace, mirror) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"]["wine"]["sample_fraction"] = 0.2
    params["models"] = {
        "wine-ridge": params["models"]["wine-ridge"],
        "wine-rf": {**params["models"]["wine-rf"], "n_estimators": 20},
    }
    params["hpo"] = {}  # studies name models left out above (tests/hpo/test_hpo.py has its own)
    for section in ("pretrain", "imports", "finetune", "ensembles"):
        params[section] = {}  # the sentiment encoder and ensemble are left out too
    (workspace / "params.yaml").write_text(yaml.safe_dump(params))
    return params


def test_invalid_params_rejected_before_any_work(workspace, small_params):
    small_params["models"]["wine-rf"]["n_estimators"] = -5
    (workspace / "params.yaml").write_text(yaml.safe_dump(small_params))
    done = stage("prepare", "wine", check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: params.yaml: models.wine-rf.n_estimators: must be > 0, got -5"
    )
    assert not (workspace / "data").exists()


def test_stage_chain_trains_registers_predicts_and_reports(workspace, small_params):
    stage("prepare", "wine")
    assert (workspace / "data/processed/wine/train.csv").is_file()
    for model in ("wine-ridge", "wine-rf"):
        stage("train", model)
        stage("evaluate", model)
    run = json.loads((workspace / "reports/eval/wine-quality/wine-rf/run.json").read_text())
    assert run["model_path"] == "models/wine-rf" and run["test"]["rmse"] > 0

    done = stage("infer", "wine-quality", check=False)
    assert done.returncode == 1 and "wine-quality: no registered model" in done.stderr

    out = stage("register", "wine-quality").stdout  # params.yaml is not committed yet
    assert "v2: aliases not moved: uncommitted changes (" in out, out
    registry = json.loads((workspace / "reports/registry/wine-quality.json").read_text())
    assert registry["champion"] is None and len(registry["versions"]) == 2

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "add", "-A"], cwd=workspace, check=True)
    subprocess.run([*git, "commit", "-qm", "params"], cwd=workspace, check=True)
    out = stage("register", "wine-quality").stdout
    assert "promoted to champion (pipeline: committed workspace" in out
    registry = json.loads((workspace / "reports/registry/wine-quality.json").read_text())
    valid = {
        m: json.loads((workspace / f"reports/eval/wine-quality/{m}/valid.json").read_text())["rmse"]
        for m in ("wine-ridge", "wine-rf")
    }
    # chosen on valid: v1 stays unless v2's gain clears the paired bootstrap
    model = {v["version"]: v["model"] for v in registry["versions"]}
    clear = "v2: beats champion v1 by" in out
    assert clear or "v2: not clearly better than champion v1" in out, out
    assert registry["champion"]["model"] == model["2" if clear else "1"]
    assert not clear or valid[model["2"]] < valid[model["1"]]
    assert registry["compared"] == 2 and registry["champion"]["test"] > 0
    champion = json.loads((workspace / "reports/registry/wine-quality.champion.json").read_text())
    assert champion["champion"]["version"] == registry["champion"]["version"]

    out = stage("infer", "wine-quality").stdout
    assert "models:/wine-quality@champion" in out
    predictions = pd.read_csv(workspace / "reports/predictions/wine-quality.csv")
    test = pd.read_csv(workspace / "data/processed/wine/test.csv")
    assert len(predictions) == len(test) and predictions["prediction"].between(0, 10).all()

    stage("report")
    report = (workspace / "reports/report.md").read_text()
    assert "★" in report and "62.4%" in report
    assert all(
        (workspace / "reports" / line.split("](")[1].rstrip(")")).is_file()
        for line in report.splitlines()
        if line.startswith("![")
    )
    assert "data:image/png;base64," in (workspace / "reports/report.html").read_text()


def test_infer_rejects_bad_input_with_one_clear_line(workspace, small_params):
    bad = workspace / "bad.csv"
    bad.write_text("alcohol,color\n9.4,red\n")
    done = stage("infer", "wine-quality", "--input", str(bad), check=False)
    assert done.returncode == 1
    assert "missing column(s) ['fixed acidity'" in done.stderr
    assert "Traceback" not in done.stderr
    done = stage("infer", "wine-quality", "--run-id", "0" * 32, check=False)
    assert done.returncode == 1
    assert f"run {'0' * 32}: not found in the MLflow store" in done.stderr


def test_prepare_reports_a_corrupt_mirror_file(workspace, small_params, mirror, tmp_path):
    fake = tmp_path / "mirror" / "wine-quality"
    fake.mkdir(parents=True)
    for name in ("winequality-red.csv", "winequality-white.csv"):
        (fake / name).write_bytes((mirror / "wine-quality" / name).read_bytes()[:-100])
    done = subprocess.run(
        [sys.executable, str(REPO / "stages/prepare.py"), "wine"],
        capture_output=True,
        text=True,
        check=False,
        env={**__import__("os").environ, "REPROLAB_DATA_MIRROR": str(tmp_path / "mirror")},
    )
    assert done.returncode == 1
    assert "sha256 mismatch for winequality-red.csv" in done.stderr
    assert not (workspace / "data/processed/wine").exists()
