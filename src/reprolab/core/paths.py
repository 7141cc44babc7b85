"""Where things live. The repository root is resolved from the *real* root, so that stages
run by `dvc exp run` in a temporary workspace still share one MLflow store and one study DB."""

from __future__ import annotations

import os
from pathlib import Path

_EXP_TMP = os.sep.join(("", ".dvc", "tmp", "exps", ""))


def workspace_root(start: Path | None = None) -> Path:
    """The DVC workspace the stage runs in (a temp copy under `dvc exp run --temp/--queue`)."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / ".dvc").is_dir() or (candidate / "dvc.yaml").is_file():
            return candidate
    return here


def repo_root(start: Path | None = None) -> Path:
    """The user's repository, even from inside a DVC experiment's temporary workspace.

    DVC exports DVC_ROOT; queued experiments point it at the parent repo. As a second guard,
    a path inside `<root>/.dvc/tmp/exps/` is cut back to `<root>`.
    """
    env_root = os.environ.get("REPROLAB_ROOT") or os.environ.get("DVC_ROOT")
    root = Path(env_root).resolve() if env_root else workspace_root(start)
    text = str(root) + os.sep
    if _EXP_TMP in text:
        root = Path(text.split(_EXP_TMP, 1)[0])
    return root


def mlflow_tracking_uri(root: Path | None = None) -> str:
    """MLFLOW_TRACKING_URI if set, else a SQLite file at the repository root."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    return f"sqlite:///{(root or repo_root()) / 'mlflow.db'}"


def mlflow_artifact_root(root: Path | None = None) -> str:
    """Artifact location for experiments we create (never cwd-relative `./mlruns`)."""
    env = os.environ.get("REPROLAB_MLFLOW_ARTIFACTS")
    if env:
        return env
    return ((root or repo_root()) / "mlartifacts").as_uri()


def data_mirror() -> Path | None:
    """A local directory laid out like shared/datasets, used instead of downloading."""
    value = os.environ.get("REPROLAB_DATA_MIRROR", "").strip()
    return Path(value).expanduser().resolve() if value else None
