"""Get the exact model, or the exact input data, of any past MLflow run back from its lineage
tags (`<what>_path`, `<what>_md5`, `git_commit`): the DVC path at the recorded git commit first
(`dvc.api`), then the recorded DVC hash in the local cache or the remote (covers outputs made
but never committed). Every route is checked by md5."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from reprolab.core.errors import LineageError
from reprolab.core.io import dvc_md5
from reprolab.core.paths import workspace_root
from reprolab.core.tracking import TAG, client

FETCH_DIR = Path(".reprolab/fetched")  # git-ignored scratch space inside the workspace


def lineage_of(
    run_id: str, required: Iterable[str] = ("model_path", "model_md5", "git_commit")
) -> dict[str, str]:
    from mlflow.exceptions import MlflowException

    try:
        run = client().get_run(run_id)
    except MlflowException as err:
        raise LineageError(f"run {run_id}: not found in the MLflow store") from err
    tags = {k.removeprefix(TAG): v for k, v in run.data.tags.items() if k.startswith(TAG)}
    missing = [k for k in required if not tags.get(k)]
    if missing:
        raise LineageError(f"run {run_id}: no lineage tags {missing}; was it made by reprolab?")
    return tags


def fetch_model(run_id: str) -> Path:
    """A local directory holding the run's model, byte-identical to what it trained."""
    return fetch_output(run_id, "model")


def fetch_data(run_id: str) -> Path:
    """A local directory holding the prepared data the run trained and was evaluated on."""
    return fetch_output(run_id, "data")


def fetch_output(run_id: str, what: str) -> Path:
    """The DVC-tracked output recorded in tags `<what>_path` / `<what>_md5` of the run."""
    path_key, md5_key = f"{what}_path", f"{what}_md5"
    tags = lineage_of(run_id, (path_key, md5_key, "git_commit"))
    path, md5 = tags[path_key], tags[md5_key]
    root = workspace_root()
    dest = root / FETCH_DIR / run_id / what
    if dest.exists() and dvc_md5(dest) == md5:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    (dest.parent / f"{what}.dvc").unlink(missing_ok=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for route in (_from_revision, _from_hash):
        try:
            route(root, tags["git_commit"], path, md5, dest)
        except Exception as err:  # a route that fails hands over to the next
            errors.append(f"{route.__name__}: {err}")
            _remove(dest)
            continue
        if dvc_md5(dest) == md5:
            return dest
        errors.append(f"{route.__name__}: md5 {dvc_md5(dest)} != {md5}")
        _remove(dest)
    raise LineageError(
        f"run {run_id}: cannot fetch {path} (md5 {md5}) from git commit "
        f"{tags['git_commit'][:12]} or the DVC cache/remote: " + "; ".join(errors)
    )


def _remove(dest: Path) -> None:
    if dest.is_dir():
        shutil.rmtree(dest, ignore_errors=True)
    else:
        dest.unlink(missing_ok=True)


def _from_revision(root: Path, commit: str, path: str, md5: str, dest: Path) -> None:
    from dvc.api import DVCFileSystem

    fs = DVCFileSystem(str(root), rev=commit)
    fs.get(path, str(dest), recursive=fs.isdir(path))


def _from_hash(root: Path, commit: str, path: str, md5: str, dest: Path) -> None:
    """Pin the recorded hash in a throw-away .dvc file and let DVC check it out (from the
    cache) or pull it (from the remote). DVC refuses .dvc files in git-ignored folders, so
    the pin lives in a scratch folder at the root, removed afterwards."""
    scratch = Path(tempfile.mkdtemp(dir=root, prefix=".reprolab-fetch-"))
    try:
        (scratch / f"{dest.name}.dvc").write_text(
            f"outs:\n- md5: {md5}\n  path: {dest.name}\n  hash: md5\n"
        )
        target = str((scratch / f"{dest.name}.dvc").relative_to(root))
        for command in (["dvc", "checkout", target], ["dvc", "pull", target]):
            done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
            if done.returncode == 0 and (scratch / dest.name).exists():
                shutil.move(scratch / dest.name, dest)
                return
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise LineageError(lines[-1] if lines else "dvc failed")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
