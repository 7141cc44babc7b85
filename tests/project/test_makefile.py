"""The Makefile: torch installed first from PyTorch's index for TORCH_VARIANT (CPU by default,
the pin read from requirements.lock), and `clean` keeping what cannot be rebuilt."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
INDEX = "https://download.pytorch.org/whl"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="GNU make is not installed")


def _make(cwd: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "TORCH_", "FORCE"))}
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


@pytest.fixture
def copy(tmp_path) -> Path:
    """The Makefile and the files its setup reads, without the repository's .venv."""
    names = ("Makefile", "requirements.lock", "requirements-nodeps.txt", "pyproject.toml")
    for name in (*names, "deploy/airflow/airflow.mk"):  # the Makefile includes the last
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def _torch_pin(lock: Path) -> str:
    return next(line for line in lock.read_text().splitlines() if line.startswith("torch=="))


def test_setup_dry_run_installs_the_pinned_torch_from_the_variant_index():
    pin = _torch_pin(REPO / "requirements.lock")
    plan = _make(REPO, "-n", "-B", "setup", "TORCH_VARIANT=cu126").stdout
    torch_step = plan.index(f"--index-url {INDEX}/cu126")
    assert f"'{pin}+cu126'" in plan  # the exact build, the version from the lock
    assert "--timeout 10 --retries 0" in plan[: torch_step + 200]
    assert f"install --quiet '{pin}'" in plan  # the fallback: the pin from the configured index
    assert torch_step < plan.index("install --quiet -r requirements.lock")


def test_cpu_is_the_default_and_a_venv_keeps_its_variant(copy):
    assert f"--index-url {INDEX}/cpu " in _make(copy, "-n", "setup").stdout
    (copy / ".venv").mkdir()
    (copy / ".venv" / ".torch-variant").write_text("cu128\n")
    assert f"--index-url {INDEX}/cu128 " in _make(copy, "-n", "setup").stdout
    assert f"--index-url {INDEX}/cu126 " in _make(copy, "-n", "setup-gpu").stdout


def test_the_torch_version_comes_from_requirements_lock(copy):
    lock = copy / "requirements.lock"
    lock.write_text(lock.read_text().replace(_torch_pin(lock), "torch==9.8.7"))
    plan = _make(copy, "-n", "setup").stdout
    assert "'torch==9.8.7+cpu'" in plan and "'torch==9.8.7'" in plan
    lock.write_text("numpy==2.4.6\n")
    done = _make(copy, "setup")
    assert done.returncode != 0 and "requirements.lock pins no torch" in done.stderr


OUTPUTS = [
    "data/raw/wine/a.csv",
    "data/processed/wine/train.csv",
    "models/wine-rf/MLmodel",
    "reports/eval/wine-quality/m.json",
    "reports/report.md",
    ".dvc/tmp/site-cache/x",
    ".reprolab/checkpoints/x",
    "src/pkg/__pycache__/m.pyc",
    "src/reprolab.egg-info/PKG-INFO",
]
KEPT = [
    "data/raw/.gitignore",
    "models/.gitignore",
    ".dvc/cache/files/md5/ab/cd",
    ".dvc/config",
    ".venv/lib/__pycache__/keep.pyc",
    "params.yaml",
    "reports/bench/llm.json",
]
STORES = ["mlflow.db", "mlartifacts/1/a/model.pkl", "optuna.db", "mlartifacts-server/x"]


@pytest.fixture
def outputs(copy) -> Path:
    for name in OUTPUTS + KEPT + STORES:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_text("x")
    return copy


def _present(root: Path, names: list[str]) -> list[str]:
    return [n for n in names if (root / n).exists()]


def test_clean_keeps_mlflow_optuna_and_the_dvc_cache(outputs):
    done = _make(outputs, "clean")
    assert done.returncode == 0, done.stderr
    assert _present(outputs, OUTPUTS) == []
    assert _present(outputs, KEPT + STORES) == KEPT + STORES


def test_clean_all_refuses_without_a_terminal_or_force(outputs):
    done = _make(outputs, "clean-all", stdin=subprocess.DEVNULL)
    assert done.returncode != 0
    assert "no terminal to confirm on" in done.stderr and "FORCE=1" in done.stderr
    assert _present(outputs, OUTPUTS + STORES) == OUTPUTS + STORES  # nothing touched
    done = _make(outputs, "clean-all", "FORCE=1", stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert _present(outputs, OUTPUTS + STORES) == []
    assert _present(outputs, KEPT) == KEPT


@pytest.mark.parametrize(("answer", "deleted"), [(b"n\n", False), (b"y\n", True)])
def test_clean_all_asks_on_a_terminal(outputs, answer, deleted):
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer)
        done = _make(outputs, "clean-all", stdin=terminal)
    finally:
        os.close(terminal)
        os.close(controller)
    assert (done.returncode == 0) == deleted, done.stderr
    assert _present(outputs, STORES) == ([] if deleted else STORES)
