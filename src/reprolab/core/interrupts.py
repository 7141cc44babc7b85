"""What a stage does when it is stopped: SIGTERM and SIGHUP end it like Ctrl-C (the MLflow run
is ended KILLED, not left RUNNING), a stage dies with the `dvc` process that started it
instead of running on and writing outputs `dvc.lock` never records, and runs whose process
vanished (SIGKILL, a power cut) are marked KILLED the next time a stage starts."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

INCOMPLETE = "INCOMPLETE"  # marker left in a dvclive directory whose run did not finish
_PR_SET_PDEATHSIG = 1


class Stopped(BaseException):
    """The process received a stop signal; like KeyboardInterrupt, not an Exception, so
    `except Exception` blocks in the training code do not swallow it."""


def killed(exc: BaseException | None) -> bool:
    """Whether `exc` means the stage was stopped from outside (signal or Ctrl-C)."""
    return isinstance(exc, Stopped | KeyboardInterrupt)


class _Shield:
    """Stop signals that arrive inside `shielded()` blocks wait for the block to end."""

    depth = 0
    pending: BaseException | None = None


_SHIELD = _Shield()  # signal handlers are process-wide; so is what they defer


def _stop(signum: int) -> BaseException:
    if signum == signal.SIGINT:
        return KeyboardInterrupt()
    return Stopped(f"stopped by {signal.Signals(signum).name}")


def _raise(signum: int, frame) -> None:
    if _SHIELD.depth:
        _SHIELD.pending = _SHIELD.pending or _stop(signum)
        return
    raise _stop(signum)


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold a stop signal until the block ends. A write to the tracking store cut in the
    middle leaves SQLite's cursor half-closed and the run not ended KILLED."""
    _SHIELD.depth += 1
    try:
        yield
    finally:
        _SHIELD.depth -= 1
        if not _SHIELD.depth and _SHIELD.pending is not None:
            stop, _SHIELD.pending = _SHIELD.pending, None
            raise stop


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP raise `Stopped`, SIGINT KeyboardInterrupt, in the main thread for
    the duration of the block; inside `shielded()` blocks only once they end."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    saved = {sig: signal.signal(sig, _raise) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


def die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent `dvc` (repro, a queue worker)
    dies, so a killed `dvc` does not leave an orphan stage writing outputs `dvc.lock` never
    records. Only under DVC (it sets DVC_STAGE): a stage started by hand with `nohup` must
    outlive its shell."""
    if os.uname().sysname != "Linux" or not os.environ.get("DVC_STAGE"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() == 1:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)


def host() -> str:
    return socket.gethostname()


def process_tags() -> dict[str, str]:
    """Who runs this run: host, pid and the process's start time (a reused pid differs)."""
    return {"host": host(), "pid": str(os.getpid()), "pid_start": _start_time(os.getpid())}


def is_alive(pid: int, start: str) -> bool:
    """Whether the process that tagged a run still runs (same pid and start time)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not start or _start_time(pid) == start


def _start_time(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime, in clock ticks


def mark_incomplete(live_dir: Path | None, reason: str) -> None:
    """A run that did not finish leaves no valid-looking summary: dvclive rewrites
    metrics.json at every step, so remove it and leave a marker saying why."""
    if live_dir is None or not Path(live_dir).is_dir():
        return
    (Path(live_dir) / "metrics.json").unlink(missing_ok=True)
    (Path(live_dir) / INCOMPLETE).write_text(reason.strip() + "\n")


def clear_incomplete(live_dir: Path | None) -> None:
    if live_dir is not None:
        (Path(live_dir) / INCOMPLETE).unlink(missing_ok=True)
