"""The servers under test, one at a time: `reprolab serve` and `mlflow models serve` started,
waited on until ready, stopped; and which champion versions they serve."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reprolab.ops import devservers
from reprolab.ops.bench_serve.inputs import ALIAS, LLM, LOG_TAIL, READY_TIMEOUT


@dataclass(frozen=True)
class Plan:
    """What to measure and against which store: the options, resolved once in main."""

    seconds: float
    warmup: float
    connections: tuple[int, ...]
    parts: tuple[str, ...]
    skip_mlflow: bool
    params: Path
    tracking_uri: str
    token: str
    llm_model: str = LLM
    lms: dict[str, str] = field(default_factory=dict)
    max_tokens: int = 32
    loop_instructions: tuple[str, ...] = ()  # llm_backends: held-out chat instructions
    loop_tokens: int = 256

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def env(self) -> dict[str, str]:
        """The servers' environment: our store, our token, this interpreter's scripts first
        (`mlflow models serve` execs `uvicorn` from PATH)."""
        scripts = str(Path(sys.executable).parent)
        return {
            **os.environ,
            "PATH": os.pathsep.join([scripts, os.environ.get("PATH", "")]),
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
            "REPROLAB_API_TOKEN": self.token,
        }


@contextlib.contextmanager
def running(what: str, command: list[str], env: dict[str, str], ready_url: str) -> Iterator[None]:
    """`command` in a process group of its own, once `ready_url` answers 200; stopped (the
    whole group) on the way out. A server that dies or never gets ready raises with the tail
    of its log."""
    import httpx

    with tempfile.TemporaryDirectory(prefix="reprolab-bench-serve-") as folder:
        log = Path(folder) / "server.log"
        with log.open("wb") as sink:
            proc = subprocess.Popen(
                command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        try:
            devservers.wait_for(
                lambda: httpx.get(ready_url, timeout=2, trust_env=False).status_code == 200,
                what,
                READY_TIMEOUT,
                proc,
            )
        except (RuntimeError, TimeoutError) as err:
            devservers.stop(proc)
            raise RuntimeError(f"{err}\n$ {' '.join(command)}\n{_tail(log)}") from None
        try:
            yield
        finally:
            devservers.stop(proc)


def _tail(log: Path) -> str:
    with log.open(errors="replace") as text:
        return "".join(deque(text, maxlen=LOG_TAIL))


@contextlib.contextmanager
def reprolab_serve(plan: Plan, args: Sequence[str]) -> Iterator[str]:
    """`reprolab serve <args>` on a free loopback port; yields its base URL."""
    port = devservers.free_port()
    command = [sys.executable, "-m", "reprolab", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--params", str(plan.params), *args]
    url = f"http://127.0.0.1:{port}"
    with running("reprolab serve", command, plan.env(), f"{url}/ready"):
        yield url


@contextlib.contextmanager
def mlflow_serve(plan: Plan, task: str) -> Iterator[str]:
    """MLflow's scoring server for `task`'s champion, in this environment, one worker."""
    port = devservers.free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    command = [str(mlflow) if mlflow.exists() else "mlflow", "models", "serve"]
    command += ["-m", f"models:/{task}@{ALIAS}", "--env-manager", "local"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    url = f"http://127.0.0.1:{port}"
    with running("mlflow models serve", command, plan.env(), f"{url}/ping"):
        yield url


def champions(tracking_uri: str, tasks: Sequence[str]) -> dict[str, str | None]:
    """The version each task's champion alias names in the registry (None: no such alias);
    a SQLite store that does not exist is not created just to find that out."""
    from reprolab.core.tracking_store import sqlite_path

    db = sqlite_path(tracking_uri)
    if db is not None and not db.is_file():
        return dict.fromkeys(tasks)
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found: dict[str, str | None] = {}
    for task in tasks:
        try:
            found[task] = str(client.get_model_version_by_alias(task, ALIAS).version)
        except MlflowException:
            found[task] = None
    return found
