"""What one LLM request may send: an oversized conversation is refused at once, before any
templating or tokenizing, and the server's memory stays where it was; one that is allowed
but slow to encode is encoded in a worker thread, so /health keeps answering meanwhile.
The server is a real uvicorn process with its settings handed over as `--workers` does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest

from reprolab.ops import devservers
from reprolab.serve.app import SETTINGS_ENV
from reprolab.serve.settings import ServeSettings
from tests.serve.conftest import READY_TIMEOUT, Server

pytestmark = pytest.mark.slow

TOKEN = "test-token"
MAX_CHARS = 4_000_000  # large enough that an allowed request takes seconds to encode
WORDS = "a " * 30_000  # 60,000 characters, under the 100,000 of one message


def start(settings: ServeSettings, store, folder: Path) -> Server:
    """uvicorn on `reprolab.serve.app:factory` with `settings`, once /ready answers 200."""
    env = {**asdict(settings), "params_path": str(settings.params_path)}
    environ = {
        **os.environ,
        SETTINGS_ENV: json.dumps(env),
        "MLFLOW_TRACKING_URI": store.tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "reprolab.serve.app:factory",
        "--factory",
        "--host",
        settings.host,
        "--port",
        str(settings.port),
        "--log-level",
        "warning",
    ]
    log = folder / f"serve-{settings.port}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            command,
            cwd=folder,
            env=environ,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(proc=proc, url=f"http://127.0.0.1:{settings.port}", token=TOKEN, log=log)
    try:
        devservers.wait_for(
            lambda: httpx.get(f"{server.url}/ready", timeout=2).status_code == 200,
            "uvicorn reprolab.serve.app:factory",
            READY_TIMEOUT,
            proc,
        )
    except BaseException:
        tail = server.log_tail()
        server.stop()
        raise RuntimeError(f"the server did not start:\n{tail}") from None
    return server


@pytest.fixture(scope="module")
def server(served_store, params_file_module) -> Iterator[Server]:
    settings = ServeSettings(
        port=devservers.free_port(),
        tasks=("wine-quality",),
        lms={"minit": str(served_store.minit_dir)},
        params_path=params_file_module,
        token=TOKEN,
        reload_interval=0,
        max_prompt_chars=MAX_CHARS,
        ui=False,
    )
    with start(settings, served_store, params_file_module.parent) as running:
        yield running


def rss_mib(pid: int) -> float:
    """The process's resident memory, from /proc (VmRSS, in kB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def chat(server: Server, messages: list[dict], timeout: float = 120) -> httpx.Response:
    body = {"model": "minit", "messages": messages, "max_tokens": 2}
    return httpx.post(
        f"{server.url}/v1/chat/completions", json=body, headers=server.headers, timeout=timeout
    )


def test_a_burst_of_oversized_chats_is_refused_fast_and_leaves_memory_as_it_was(server):
    assert chat(server, [{"role": "user", "content": "the "}]).status_code == 200
    before = rss_mib(server.proc.pid)
    huge = [{"role": "user", "content": WORDS}] * 200  # 12 million characters

    def one(_: int) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        answer = chat(server, huge)
        return answer, time.monotonic() - started

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(one, range(8)))
    for answer, seconds in results:
        assert answer.status_code == 413, answer.text[:300]
        error = answer.json()["error"]
        assert error["code"] == 413 and error["param"] == "messages"
        assert f"at most {MAX_CHARS}" in error["message"] and "max_prompt_chars" in error["message"]
        assert seconds < 10, f"an oversized request took {seconds:.1f} s to refuse"
    too_many = chat(server, [{"role": "user", "content": "x"}] * 300)
    assert too_many.status_code == 422 and "256" in too_many.json()["error"]["message"]
    after = rss_mib(server.proc.pid)
    assert after - before < 400, f"RSS grew from {before:.0f} MiB to {after:.0f} MiB"


def test_health_answers_while_a_large_allowed_chat_is_encoded(server):
    big = [{"role": "user", "content": WORDS}] * 60  # 3.6 million characters: allowed
    result: dict[str, object] = {}

    def send() -> None:
        started = time.monotonic()
        result["answer"] = chat(server, big)
        result["seconds"] = time.monotonic() - started

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(0.3)  # the body is sent and being encoded
    waits = []
    while sender.is_alive():
        started = time.monotonic()
        assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
        waits.append(time.monotonic() - started)
        time.sleep(0.05)
    sender.join()
    answer = result["answer"]
    assert isinstance(answer, httpx.Response)
    assert answer.status_code == 400 and "context" in answer.json()["error"]["message"]
    assert result["seconds"] > 1.0, "the request was too quick to show anything"
    assert waits and max(waits) < 0.75, f"/health waited {max(waits):.2f} s"


def test_request_limits_are_settings_checked_at_start():
    from reprolab.serve.settings import ServeError

    assert ServeSettings().max_prompt_chars == 200_000 and ServeSettings().max_messages == 256
    with pytest.raises(ServeError, match="max_prompt_chars"):
        ServeSettings(max_prompt_chars=0).check()
    with pytest.raises(ServeError, match="max_messages"):
        ServeSettings(max_messages=0).check()
