"""One retrain at a time per repository: two would train on, commit and gate the same
workspace at once. An OS file lock, so a crashed retrain never leaves it held."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from reprolab.core.errors import ReprolabError

LOCK_FILE = Path(".dvc/tmp/retrain.lock")


class RetrainBusy(ReprolabError):
    """Another retrain holds this repository."""


@contextlib.contextmanager
def one_at_a_time(task: str, path: Path = LOCK_FILE) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RetrainBusy(
                f"another retrain is running: {_holder(path)}; one at a time per repository"
            ) from None
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"task": task, "pid": os.getpid(), "started": started}).encode())
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        return f"{info['task']} (pid {info['pid']}, since {info['started']})"
    except (OSError, ValueError, KeyError, TypeError):
        return f"see {path}"
