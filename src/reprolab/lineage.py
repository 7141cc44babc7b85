"""Get the exact model of any past MLflow run back, from its lineage tags: the DVC path and
git commit first (`dvc.api` at that revision), then the recorded DVC hash in the local cache or
the remote (covers models trained but never committed). Every route is checked by md5."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from reprolab.errors import LineageError
from reprolab.io import dvc_md5
from reprolab.paths import workspace_root
from reprolab.tracking import TAG, client

FETCH_DIR = Path(".reprolab/fetched")  # git-ignored scratch space inside the workspace


def lineage_of(run_id: str) -> dict[str, str]:
    from mlflow.exceptions import MlflowException

    try:
        run = client().get_run(run_id)
    except MlflowException as err:
        raise LineageError(f"run {run_id}: not found in the MLflow store") from err
    tags = {k.removeprefix(TAG): v for k, v in run.data.tags.items() if k.startswith(TAG)}
    missing = [k for k in ("model_path", "model_md5", "git_commit") if not tags.get(k)]
    if missing:
        raise LineageError(f"run {run_id}: no lineage tags {missing}; was it made by reprolab?")
    return tags


def fetch_model(run_id: str) -> Path:
    """A local directory holding the run's model, byte-identical to what it trained."""
    tags = lineage_of(run_id)
    root = workspace_root()
    dest = root / FETCH_DIR / run_id / "model"
    if dest.is_dir() and dvc_md5(dest) == tags["model_md5"]:
        return dest
    shutil.rmtree(dest.parent, ignore_errors=True)
    dest.parent.mkdir(parents=True)
    errors = []
    for route in (_from_revision, _from_hash):
        try:
            route(root, tags, dest)
        except Exception as err:  # a route that fails hands over to the next
            errors.append(f"{route.__name__}: {err}")
            shutil.rmtree(dest, ignore_errors=True)
            continue
        if dvc_md5(dest) == tags["model_md5"]:
            return dest
        errors.append(f"{route.__name__}: md5 {dvc_md5(dest)} != {tags['model_md5']}")
        shutil.rmtree(dest, ignore_errors=True)
    raise LineageError(
        f"run {run_id}: cannot fetch {tags['model_path']} (md5 {tags['model_md5']}) from git "
        f"commit {tags['git_commit'][:12]} or the DVC cache/remote: " + "; ".join(errors)
    )


def _from_revision(root: Path, tags: dict[str, str], dest: Path) -> None:
    from dvc.api import DVCFileSystem

    fs = DVCFileSystem(str(root), rev=tags["git_commit"])
    fs.get(tags["model_path"], str(dest), recursive=True)


def _from_hash(root: Path, tags: dict[str, str], dest: Path) -> None:
    """Pin the recorded hash in a throw-away .dvc file and let DVC check it out (from the
    cache) or pull it (from the remote). DVC refuses .dvc files in git-ignored folders, so
    the pin lives in a temporary folder of its own at the workspace root."""
    pin_dir = Path(tempfile.mkdtemp(prefix=".reprolab-fetch-", dir=root))
    try:
        (pin_dir / "model.dvc").write_text(
            f"outs:\n- md5: {tags['model_md5']}\n  path: model\n  hash: md5\n"
        )
        target = str((pin_dir / "model.dvc").relative_to(root))
        for command in (["dvc", "checkout", target], ["dvc", "pull", target]):
            done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
            if done.returncode == 0 and (pin_dir / "model").exists():
                shutil.copytree(pin_dir / "model", dest)
                return
        message = (done.stderr or done.stdout).strip().splitlines()
        raise LineageError(message[-1] if message else "dvc could not check out the model")
    finally:
        shutil.rmtree(pin_dir, ignore_errors=True)
