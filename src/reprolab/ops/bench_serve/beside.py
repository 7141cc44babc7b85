"""A load beside the benchmark (`--beside CMD`): the service is measured while something
else uses the machine, a training run say, the way it runs in production next to batch work.
The command starts first and settles, runs in its own process group for the whole benchmark,
and is stopped with everything it started at the end; the report says whether it was still
running, since a load that ended early measured an idle machine."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class BesideError(RuntimeError):
    """The command meant to load the machine did not start or stopped too soon."""


@contextmanager
def beside(command: str | None, settle: float = 10.0) -> Iterator[dict[str, Any]]:
    """Run `command` (a shell line) around the block; yields what the report records."""
    record: dict[str, Any] = {"command": command}
    if not command:
        yield record
        return
    proc = subprocess.Popen(
        command,
        shell=True,
        start_new_session=True,  # its own group: a stop reaches what it starts (dvc, python)
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(settle)
    if proc.poll() is not None:
        raise BesideError(
            f"--beside: {command!r} exited with {proc.returncode} before the benchmark started"
        )
    try:
        yield record
    finally:
        record["ran_throughout"] = proc.poll() is None
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
