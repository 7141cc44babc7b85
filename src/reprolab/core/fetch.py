"""Fetch raw files by URL with a pinned sha256, or copy them from a local mirror directory
(laid out like shared/datasets) when REPROLAB_DATA_MIRROR is set. Either way the checksum
is verified before the file is moved into place. A retrain data drop (`DropDir`) is read
like a mirror; its files are new data, pinned as a whole by the drop's DVC md5 instead."""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from reprolab.core.errors import DataError
from reprolab.core.io import dvc_md5, file_digest


class DropDir(type(Path())):  # type: ignore[misc]  # PosixPath: paths joined onto it stay drops
    """A data drop folder laid out like the mirror, already checked against its pinned md5."""


def open_drop(path: str | Path, md5: str, key: str = "drop") -> DropDir:
    """The drop at `path` once its content matches `md5` (DVC's md5 of the folder)."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(
            f"{key}.path: {root} not found; fetch it with `dvc pull {root}.dvc` "
            f"(or `dvc checkout {root}.dvc`)"
        )
    actual = dvc_md5(root)
    if actual != md5:
        raise DataError(
            f"{root}: content md5 {actual} differs from {key}.md5 {md5}: the folder was changed "
            f"after it was recorded; restore it with `dvc checkout {root}.dvc` or record it "
            "again with `reprolab retrain`"
        )
    return DropDir(root)


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name written under the raw directory
    url: str  # canonical upstream location
    sha256: str
    mirror_path: str  # path relative to the mirror root


def verify_mirror(files: list[RemoteFile], mirror: Path) -> int:
    """Check the mirror's copies of `files` against their pins; how many were checked. A file
    the mirror lacks is prepare's to report, when a dataset needs it; a file that differs is
    an error here, before any stage has deleted outputs: new data comes in on purpose, as a
    data drop pinned in params.yaml, not by replacing the mirror's file."""
    checked = 0
    for remote in files:
        source = mirror / remote.mirror_path
        if not remote.mirror_path or not source.is_file():
            continue
        actual = file_digest(source, "sha256")
        if actual != remote.sha256:
            raise DataError(
                f"{source}: sha256 {actual} differs from the pinned {remote.sha256}: the "
                "mirror's file changed; to train on new data, bring it in as a data drop "
                "(`reprolab retrain TASK --data DIR`)"
            )
        checked += 1
    return checked


def fetch(files: list[RemoteFile], dest: Path, mirror: Path | None) -> list[Path]:
    """`mirror`: a mirror folder, a `DropDir`, or None to download from upstream."""
    return [fetch_one(f, dest, mirror) for f in files]


def fetch_one(remote: RemoteFile, dest: Path, mirror: Path | None) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / remote.name
    fd, tmp_name = tempfile.mkstemp(dir=dest, prefix=f".{remote.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        if mirror is not None:
            source = mirror / remote.mirror_path
            if not source.is_file():
                where = (
                    "the data drop"
                    if isinstance(mirror, DropDir)
                    else "the data mirror (REPROLAB_DATA_MIRROR)"
                )
                raise DataError(f"{source}: missing from {where}")
            with open(fd, "wb") as out, open(source, "rb") as src:
                shutil.copyfileobj(src, out)
        else:
            source = remote.url
            try:
                with open(fd, "wb") as out, urllib.request.urlopen(remote.url, timeout=60) as r:
                    shutil.copyfileobj(r, out)
            except OSError as err:
                raise DataError(
                    f"{remote.url}: download failed ({err}); set REPROLAB_DATA_MIRROR to a "
                    "local copy to work offline"
                ) from err
        actual = file_digest(tmp, "sha256")
        if actual != remote.sha256 and not isinstance(mirror, DropDir):
            raise DataError(
                f"{source}: sha256 mismatch for {remote.name} (expected {remote.sha256}, "
                f"got {actual}): the file is corrupt, truncated or not the pinned version"
            )
        tmp.replace(target)
        return target
    finally:
        tmp.unlink(missing_ok=True)
