"""A misspelt model, task, dataset or alias is a usage error: exit 2 and one line naming the
valid choices, no traceback, for every stage script and every CLI command that takes a name."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]

# stage, the kind of name it takes, one valid name it must list
STAGES = [
    ("prepare", "dataset", "wine"),
    ("hpo", "model", "wine-rf"),
    ("train", "model", "smollm2"),  # pretrain/imports/finetune/ensembles entries too
    ("evaluate", "model", "wine-rf"),
    ("register", "task", "wine-quality"),
    ("infer", "task", "nuclei-segmentation"),
    ("export", "model", "smollm2-lora"),  # the models gguf.yaml lists
]


@pytest.fixture
def params_ws(workspace: Path) -> Path:
    shutil.copy(REPO / "params.yaml", workspace / "params.yaml")
    shutil.copy(REPO / "gguf.yaml", workspace / "gguf.yaml")
    return workspace


def _one_error_line(stderr: str, kind: str, name: str, listed: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"error: unknown {kind} '{name}' (choose from: "), stderr
    assert listed in lines[0] and "Traceback" not in stderr


@pytest.mark.parametrize(("stage", "kind", "listed"), STAGES, ids=[s[0] for s in STAGES])
def test_stage_rejects_an_unknown_name_with_exit_2(params_ws, stage, kind, listed):
    done = subprocess.run(
        [sys.executable, str(REPO / "stages" / f"{stage}.py"), "wine-rff"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    _one_error_line(done.stderr, kind, "wine-rff", listed)
    assert done.stdout == "" and not (params_ws / "data").exists()


def test_evaluate_lists_only_models_of_a_task(params_ws):
    done = subprocess.run(
        [sys.executable, str(REPO / "stages/evaluate.py"), "smollm2"],  # an imports base
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "smollm2-lora" in done.stderr and "smollm2," not in done.stderr


@pytest.fixture
def store(params_ws: Path):
    """The MLflow store made before the commands run, so that its creation log (and MLflow's
    log handler) stays out of the output captured below."""
    from reprolab.core.tracking import client

    return client()


def _cli(*args: str):
    from reprolab.cli import main

    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize(
    "args",
    [
        ("registry", "list", "wine-qualty"),
        ("registry", "promote", "wine-qualty", "1", "--reason", "r"),
        ("registry", "rollback", "wine-qualty", "--reason", "r"),
        ("registry", "history", "wine-qualty"),
        ("tag", "wine-qualty"),
        ("runs", "wine-qualty"),
        ("predict", "wine-qualty", "a text"),
        ("predict", "wine-qualty", "--model", "models/x", "a text"),
        ("generate", "--task", "wine-qualty", "a prompt"),
    ],
    ids=[
        "registry-list",
        "registry-promote",
        "registry-rollback",
        "registry-history",
        "tag",
        "runs",
        "predict",
        "predict-model-dir",
        "generate",
    ],
)
def test_cli_rejects_an_unknown_task_with_exit_2(store, args):
    result = _cli(*args)
    assert result.exit_code == 2, result.output
    tasks = "llm-sft, nsmc-sentiment, nuclei-segmentation, pid-control, wine-quality)"
    _one_error_line(result.stderr, "task", "wine-qualty", tasks)


def test_cli_rejects_an_unknown_control_dataset(store):
    result = _cli("pid", "--kind", "fopdt", "--gain", "1", "--delay", "1", "--dataset", "wine")
    assert result.exit_code == 2
    _one_error_line(result.stderr, "dataset", "wine", "(choose from: control)")


def test_cli_rejects_an_unknown_alias_of_a_registered_model(params_ws, store):
    mlflow_client = store
    mlflow_client.create_registered_model("wine-quality")
    version = mlflow_client.create_model_version("wine-quality", (params_ws / "m").as_uri())
    mlflow_client.set_registered_model_alias("wine-quality", "staging", version.version)
    for args in (
        ("generate", "--task", "wine-quality", "--alias", "champ", "a prompt"),
        ("predict", "wine-quality", "--alias", "champ", "a text"),
    ):
        result = _cli(*args)
        assert result.exit_code == 2, result.output
        _one_error_line(result.stderr, "alias", "champ", "archive, candidate, champion, staging")
    # a task registered in MLflow but not in params.yaml is known too
    mlflow_client.create_registered_model("tiny-lm")
    result = _cli("generate", "--task", "tiny-lm", "--alias", "champ", "a prompt")
    assert result.exit_code == 2 and "unknown alias 'champ'" in result.stderr
