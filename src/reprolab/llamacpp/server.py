"""One `llama-server` process serving one GGUF file on a loopback port: started, waited on
until healthy, stopped with its owner (and by the kernel if its owner dies first).

Concurrent requests share the model through the server's parallel slots, which it batches
into one forward pass per step (continuous batching). Each slot has a KV cache of its own:
in one buffer shared by all slots, a sequence's cells land at places that depend on the
other requests, the attention sums run in another order, and greedy answers changed under
load (measured); with a cache per slot they are the same alone or beside seven others."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolab.core.errors import ReprolabError
from reprolab.llamacpp import install

READY_TIMEOUT = 120.0  # seconds for the model to load
LOG_TAIL = 15


class LlamaServerError(ReprolabError):
    """The server did not start, died, or refused a request (its message is kept)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ServerOptions:
    """slots: requests generated side by side; context: the tokens (prompt and answer) of
    one request, each slot's KV cache (None: the model's own); threads: compute threads
    (None: every core);
    cache_mib: RAM for prompt prefixes kept between requests (0: none; the service does
    not reuse them, see serve.lm_llamacpp)."""

    slots: int = 4
    context: int | None = None
    threads: int | None = None
    cache_mib: int = 0

    def arguments(self) -> list[str]:
        threads = self.threads or os.cpu_count() or 1
        args = ["--parallel", str(self.slots), "--no-kv-unified", "--cont-batching"]
        args += ["--threads", str(threads), "--threads-batch", str(threads)]
        args += ["--cache-ram", str(self.cache_mib), "--no-webui", "--metrics"]
        if self.context:  # llama-server splits the context evenly between the slots
            args += ["--ctx-size", str(self.context * self.slots)]
        return args


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen, log: Path) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.unlink(missing_ok=True)


class LlamaServer:
    def __init__(self, gguf: Path, options: ServerOptions | None = None) -> None:
        import httpx

        install.require()
        self.gguf, self.options = Path(gguf), options or ServerOptions()
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        fd, name = tempfile.mkstemp(prefix="reprolab-llama-server-", suffix=".log")
        self.log = Path(name)
        command = [str(install.server_binary()), "--model", str(self.gguf)]
        command += ["--host", "127.0.0.1", "--port", str(port), *self.options.arguments()]
        # llama.cpp's OpenMP threads meet at a barrier after every op of every token; told to
        # sleep there (OMP_WAIT_POLICY=PASSIVE, which reprolab sets for torch), one stream
        # ran at 41 tokens/s instead of 94 (measured), so they keep OpenMP's default
        env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
        with os.fdopen(fd, "wb") as sink:
            self.proc = subprocess.Popen(
                command,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if os.name == "posix" else None,
            )
        self._finalizer = weakref.finalize(self, _stop, self.proc, self.log)
        self.http = httpx.Client(base_url=self.url, timeout=None, trust_env=False)
        # for an event loop's streams (its pool is made in the loop that first uses it)
        self.ahttp = httpx.AsyncClient(base_url=self.url, timeout=None, trust_env=False)
        try:
            self._wait()
        except BaseException:
            self.close()
            raise

    def _wait(self) -> None:
        import httpx

        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise LlamaServerError(
                    f"llama-server exited ({self.proc.returncode}) loading {self.gguf}: "
                    f"{self.tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get("/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise LlamaServerError(
            f"llama-server: not ready after {READY_TIMEOUT:.0f} s: {self.tail()}"
        )

    def tail(self) -> str:
        with contextlib.suppress(OSError), self.log.open(errors="replace") as text:
            lines = [ln.strip() for ln in deque(text, maxlen=LOG_TAIL) if ln.strip()]
            return " | ".join(lines[-3:]) or "no output"
        return "no output"

    def close(self) -> None:
        self.http.close()
        self._finalizer()

    # ------------------------------------------------------------ requests

    def _refused(self, response: Any) -> LlamaServerError:
        try:
            message = response.json().get("error", {}).get("message") or response.text
        except ValueError:
            message = response.text
        return LlamaServerError(str(message).splitlines()[0][:300], response.status_code)

    def tokenize(self, text: str, special: bool = False) -> list[int]:
        response = self.http.post("/tokenize", json={"content": text, "add_special": special})
        if response.status_code != 200:
            raise self._refused(response)
        return list(response.json()["tokens"])

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post("/completion", json={**body, "stream": False})
        if response.status_code != 200:
            raise self._refused(response)
        return response.json()

    async def astream(self, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """`stream` on an event loop, without a thread per request."""
        request = {**body, "stream": True}
        async with self.ahttp.stream("POST", "/completion", json=request) as response:
            if response.status_code != 200:
                await response.aread()
                raise self._refused(response)
            events = Events()
            async for data in response.aiter_bytes():
                for chunk in events.feed(data):
                    yield chunk
                    if chunk.get("stop"):
                        return

    def stream(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The server's chunks (one per token, the last with `stop: true`); closing the
        iterator early closes the connection, and the server drops the request."""
        with self.http.stream("POST", "/completion", json={**body, "stream": True}) as response:
            if response.status_code != 200:
                response.read()
                raise self._refused(response)
            events = Events()
            for data in response.iter_bytes():
                for chunk in events.feed(data):
                    yield chunk
                    if chunk.get("stop"):
                        return


class Events:
    """The chunks of a server-sent event stream as its bytes arrive. Only a newline ends a
    line: httpx's line reader also splits at U+2028, U+0085 and other characters that a
    generated text carries raw inside its JSON."""

    def __init__(self) -> None:
        self.rest = b""

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        *lines, self.rest = (self.rest + data).split(b"\n")
        return [chunk for chunk in map(_event, lines) if chunk is not None]


def _event(line: bytes) -> dict[str, Any] | None:
    """A `data: {json}` line's chunk (None for any other line); an error event raises."""
    if not line.startswith(b"data: "):
        return None
    chunk = json.loads(line[len(b"data: ") :])
    if "error" in chunk:
        raise LlamaServerError(str(chunk["error"].get("message", chunk["error"])))
    return chunk
