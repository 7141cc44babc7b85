"""A retrain's data: check a drop folder exactly as prepare would read it, then record it as
the dataset's new DVC-tracked version (`data/drops/<dataset>/`, `dvc add`, and its md5
pinned in params.yaml, which is what makes `dvc repro` rerun prepare)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from reprolab import workloads
from reprolab.core.errors import DataError
from reprolab.core.fetch import DropDir
from reprolab.core.io import atomic_dir, dvc_md5
from reprolab.core.paths import data_mirror

DROPS = Path("data/drops")


def dataset_of(task: str, params) -> str:
    """The one dataset the task's models learn from."""
    names = {params.model(m).dataset for m in params.models_of_task(task)}
    if len(names) != 1:
        raise DataError(
            f"registry.{task}: its models learn from {sorted(names) or 'no dataset'}; "
            "a retrain brings new data for exactly one dataset"
        )
    return names.pop()


def check(name: str, spec, seed: int, source: Path | None, work: Path) -> Path:
    """Run the dataset's prepare on `source` (a drop folder; None: the upstream source or
    the mirror) into `work`; returns the processed folder. Errors name the drop's file."""
    module = workloads.data_module(spec)
    raw, out = work / "raw", work / "processed"
    for folder in (raw, out):
        shutil.rmtree(folder, ignore_errors=True)
    if source is not None and not hasattr(module, "source_files"):
        raise DataError(
            f"--data: dataset {name!r} ({spec.kind}) is generated, not read from files: "
            "there is no data drop to bring in"
        )
    if source is not None and not Path(source).is_dir():
        raise DataError(f"--data: {source} is not a folder (expected one laid out like the mirror)")
    origin = DropDir(source) if source is not None else data_mirror()
    try:
        module.prepare(spec.model_copy(update={"drop": None}), seed, raw, out, origin)
    except DataError as err:
        raise DataError(_in_drop(str(err), raw, source)) from None
    return out


def _in_drop(text: str, raw: Path, source: Path | None) -> str:
    """Name the drop's own file in a message about the copy prepare read."""
    if source is None:
        return text
    for path in sorted(Path(source).rglob("*")):
        text = text.replace(str(raw / path.name), str(path))
    return text


def record(name: str, source: Path) -> dict:
    """Copy the drop to data/drops/<name>/, track it with DVC; {'path', 'md5'} to pin."""
    target = DROPS / name
    with atomic_dir(target) as staging:
        shutil.copytree(source, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))
    done = subprocess.run(["dvc", "add", str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        raise DataError(f"dvc add {target} failed: {(done.stderr or done.stdout).strip()}")
    return {"path": target.as_posix(), "md5": dvc_md5(target)}


def pin(params_path: Path, name: str, drop: dict | None) -> None:
    """Set (or, for the upstream source, remove) datasets.<name>.drop, keeping comments."""
    from dvc.utils.serialize import modify_yaml

    with modify_yaml(str(params_path)) as data:
        entry = data["datasets"][name]
        if drop is None:
            entry.pop("drop", None)
        else:
            entry["drop"] = dict(drop)
