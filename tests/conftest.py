"""Shared fixtures: an isolated MLflow store per test, the dataset mirror, synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def _mirror() -> Path | None:
    configured = os.environ.get("REPROLAB_DATA_MIRROR")
    candidates = [Path(configured)] if configured else [REPO.parent / "shared" / "datasets"]
    return next((c for c in candidates if (c / "wine-quality").is_dir()), None)


@pytest.fixture
def mirror(monkeypatch) -> Path:
    found = _mirror()
    if found is None:
        pytest.skip("no dataset mirror: set REPROLAB_DATA_MIRROR (CI uses ../shared/datasets)")
    monkeypatch.setenv("REPROLAB_DATA_MIRROR", str(found))
    return found


@pytest.fixture(autouse=True)
def isolated_stores(tmp_path, monkeypatch):
    """Every test gets its own MLflow store and artifact root; nothing leaks into the repo."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("REPROLAB_MLFLOW_ARTIFACTS", (tmp_path / "mlartifacts").as_uri())
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("DVC_NO_ANALYTICS", "1")
    for var in ("DVC_ROOT", "DVC_EXP_NAME", "REPROLAB_ROOT"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A git workspace with one empty commit, as cwd (stages use relative paths)."""
    import subprocess

    root = tmp_path / "ws"
    root.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "init"], cwd=root, check=True)
    monkeypatch.chdir(root)
    return root


class Split:
    """A regression split with the interface models expect (X, y, groups, score)."""

    def __init__(self, X: pd.DataFrame, y: np.ndarray) -> None:
        self.X, self.y, self.groups = X, y, np.array(["a"] * len(y))

    def score(self, pred):
        from reprolab.core.metrics import regression_by_group

        return regression_by_group(self.y, pred, self.groups)


@pytest.fixture
def regression_splits() -> tuple[Split, Split, Split]:
    """y = nonlinear function of 4 features + noise: trees and MLPs beat the mean easily."""
    rng = np.random.default_rng(0)

    def make(n):
        X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
        y = 5 + 2 * X["a"] - X["b"] ** 2 + np.sin(3 * X["c"]) + rng.normal(0, 0.1, n)
        return Split(X, y.to_numpy())

    return make(400), make(150), make(150)


ALWAYS_RUN = ("check", "register@")  # check verifies the data sources; register gates


def up_to_date(status: str) -> bool:
    """`dvc status` output of a workspace where nothing needs rerunning: either DVC's own
    sentence, or only the stages that always run (check, and register, which gates committed
    versions)."""
    if "up to date" in status:
        return True
    lines = [line.strip() for line in status.splitlines() if line.strip()]
    pairs = list(zip(lines[::2], lines[1::2], strict=False))
    return bool(pairs) and all(
        name.rstrip(":").startswith(ALWAYS_RUN) and what == "always changed" for name, what in pairs
    )


def only_register_ran(repro: str) -> bool:
    """`dvc repro` output where every stage but those that always run was skipped."""
    ran = [line for line in repro.splitlines() if line.startswith("Running stage")]
    return all(line.startswith(tuple(f"Running stage '{s}" for s in ALWAYS_RUN)) for line in ran)


def sandbox_runner(root: Path, mirror: Path):
    """`run(*cmd, check=True)` in sandbox `root`, its stores kept inside it and the dataset
    mirror set; a failed command raises with the ends of its output."""
    import subprocess

    from reprolab.ops import sandbox

    env = {**sandbox.env_for(root), "REPROLAB_DATA_MIRROR": str(mirror)}
    env.pop("REPROLAB_MLFLOW_ARTIFACTS", None)

    def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    return run
