"""Fetch raw files by URL with a pinned sha256, or copy them from a local mirror directory
(laid out like shared/datasets) when REPROLAB_DATA_MIRROR is set. Either way the checksum
is verified before the file is moved into place."""

from __future__ import annotations

import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from reprolab.core.errors import DataError
from reprolab.core.io import file_digest


@dataclass(frozen=True)
class RemoteFile:
    name: str  # file name written under the raw directory
    url: str  # canonical upstream location
    sha256: str
    mirror_path: str  # path relative to the mirror root


def fetch(files: list[RemoteFile], dest: Path, mirror: Path | None) -> list[Path]:
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
                raise DataError(f"{source}: missing from the data mirror (REPROLAB_DATA_MIRROR)")
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
        if actual != remote.sha256:
            raise DataError(
                f"{source}: sha256 mismatch for {remote.name} (expected {remote.sha256}, "
                f"got {actual}): the file is corrupt, truncated or not the pinned version"
            )
        tmp.replace(target)
        return target
    finally:
        tmp.unlink(missing_ok=True)
