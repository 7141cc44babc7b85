"""Throw-away local servers for the scale-out tests and for trying the team setup on one
machine: an S3 endpoint (moto), a PostgreSQL cluster (Debian's binaries) and an MLflow
tracking server. Each is a context manager that owns its process group and removes its files.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(ready: Callable[[], bool], what: str, timeout: float, proc=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: exited with {proc.returncode} before it was ready")
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.2)
    raise TimeoutError(f"{what}: not ready after {timeout:.0f}s")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop(proc: subprocess.Popen) -> None:
    """Terminate the process group we started (never anything else), then reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@contextlib.contextmanager
def moto_s3(auth: bool = False, log: Path | None = None) -> Iterator[str]:
    """An in-memory S3 endpoint on 127.0.0.1 (moto's server mode). With `auth`, every
    request is checked against moto's (empty) IAM: any key is rejected, as a wrong one is."""
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "0"} if auth else None
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        ["moto_server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        wait_for(lambda: port_open(port), "moto_server", 30, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)
        if log:
            out.close()


def pg_bin() -> Path | None:
    """Directory of initdb/pg_ctl, or None where PostgreSQL is not installed."""
    found = next((d for d in PG_BIN_DIRS if (d / "initdb").exists()), None)
    if found is None and shutil.which("initdb"):  # elsewhere: resolve links to the real dir
        found = Path(shutil.which("initdb")).resolve().parent
    return found


@contextlib.contextmanager
def postgres(database: str = "mlflow") -> Iterator[str]:
    """A private PostgreSQL cluster on a free port; yields a psycopg2 SQLAlchemy URL.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` user.
    """
    bindir = pg_bin()
    if bindir is None:
        raise FileNotFoundError("PostgreSQL binaries (initdb, pg_ctl) not found")
    as_user: list[str] = []
    root_dir = Path(tempfile.mkdtemp(prefix="reprolab-pg-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root_dir, "postgres")
    data, port = root_dir / "data", free_port()

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, cwd=root_dir)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name}: {done.stderr.strip() or done.stdout}")

    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8")
        options = f"-p {port} -k {root_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root_dir / "log"),
            "-w",
            "start",
        )
        try:
            run(
                str(bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                database,
            )
            yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/{database}"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(root_dir, ignore_errors=True)


@contextlib.contextmanager
def mlflow_server(
    backend: str, artifacts: str, cwd: Path, log: Path | None = None, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen]]:
    """`make mlflow-server` with the given stores; yields (URL, process)."""
    port = port or free_port()
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(
        [
            "make",
            "-s",
            "--no-print-directory",
            "mlflow-server",
            f"MLFLOW_BACKEND={backend}",
            f"MLFLOW_ARTIFACTS={artifacts}",
            f"MLFLOW_PORT={port}",
        ],
        cwd=cwd,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        import httpx

        wait_for(
            lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200,
            "mlflow server",
            90,
            proc,
        )
        yield url, proc
    finally:
        stop(proc)
        if log:
            out.close()
