"""The processed data a champion was trained on, found by the md5 its version records:
the workspace's folder when it still holds that version, else DVC's cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from reprolab.core.io import dvc_md5

CACHE = Path(".dvc/cache/files/md5")


def processed_version(md5: str, workspace: Path, into: Path) -> Path | None:
    """A folder holding data version `md5`: `workspace` if it matches, else a copy from the
    DVC cache under `into`; None when neither has it."""
    if not md5:
        return None
    if workspace.is_dir() and dvc_md5(workspace) == md5:
        return workspace
    manifest = CACHE / md5[:2] / md5[2:]
    if not manifest.is_file():
        return None
    shutil.rmtree(into, ignore_errors=True)
    for entry in json.loads(manifest.read_text()):
        blob = CACHE / entry["md5"][:2] / entry["md5"][2:]
        if not blob.is_file():
            return None
        target = into / entry["relpath"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(blob, target)
    return into
