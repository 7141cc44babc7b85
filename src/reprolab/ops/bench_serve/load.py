"""The load client: closed-loop connections over one httpx.AsyncClient, and the numbers
over the measured window (req/s, latency percentiles, time to first token)."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Sample:
    """One request as the client saw it: when it was sent (perf_counter), how long until the
    whole answer was in, and for streams the time to the first token and the tokens counted."""

    started: float
    latency: float
    error: str | None = None
    ttft: float | None = None
    tokens: int | None = None


@dataclass(frozen=True)
class LoadResult:
    """The requests answered within the measured window, and the window's length."""

    connections: int
    seconds: float
    samples: list[Sample] = field(default_factory=list)

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.error is None]

    @property
    def errors(self) -> int:
        return len(self.samples) - len(self.ok)

    @property
    def first_error(self) -> str | None:
        return next((s.error for s in self.samples if s.error is not None), None)


Send = Callable[[Any], Awaitable[Sample]]  # one request on the given httpx.AsyncClient


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between the closest ranks (numpy's
    default), without numpy so the client stays light; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _describe(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def post_json(url: str, body: dict[str, Any]) -> Send:
    """A plain JSON request; anything but a 200 (or no answer) is an error."""

    async def send(client: Any) -> Sample:
        started = time.perf_counter()
        try:
            response = await client.post(url, json=body)
        except Exception as err:  # refused, reset, timed out: all count as errors
            return Sample(started, time.perf_counter() - started, _describe(err))
        latency = time.perf_counter() - started
        if response.status_code != 200:
            return Sample(started, latency, f"HTTP {response.status_code}: {response.text[:200]}")
        return Sample(started, latency)

    return send


def stream_completion(url: str, body: dict[str, Any]) -> Send:
    """A streamed OpenAI completion: the time to the first chunk with text, and the tokens of
    the usage chunk at the end (the server's count, not the chunks', which may hold several)."""

    async def send(client: Any) -> Sample:
        started = time.perf_counter()
        ttft, tokens, error = None, None, None
        try:
            async with client.stream("POST", url, json=body) as response:
                if response.status_code != 200:
                    text = (await response.aread()).decode(errors="replace")
                    error = f"HTTP {response.status_code}: {text[:200]}"
                else:
                    async for line in response.aiter_lines():
                        if not line.startswith("data: ") or line == "data: [DONE]":
                            continue
                        chunk = json.loads(line.removeprefix("data: "))
                        if "error" in chunk:
                            error = f"stream error: {chunk['error'].get('message')}"
                        if ttft is None and any(c.get("text") for c in chunk.get("choices", ())):
                            ttft = time.perf_counter() - started
                        if chunk.get("usage"):
                            tokens = int(chunk["usage"]["completion_tokens"])
        except Exception as err:
            error = _describe(err)
        if error is None and tokens is None:
            error = "no usage chunk at the end of the stream"
        return Sample(started, time.perf_counter() - started, error, ttft, tokens)

    return send


async def _connection(
    client: Any, send: Send, start: float, stop: float, samples: list[Sample]
) -> None:
    """One closed-loop connection: the next request as soon as the previous one answered,
    until cancelled; adds to `samples` the requests answered between `start` and `stop`."""
    while True:
        sample = await send(client)
        if start <= sample.started + sample.latency < stop:
            samples.append(sample)
        if sample.error is not None:
            await asyncio.sleep(0)  # a refused connection fails at once: let the others run


async def load(
    send: Send,
    connections: int,
    seconds: float,
    warmup: float,
    headers: dict[str, str] | None = None,
    timeout: float = 120.0,
) -> LoadResult:
    """`connections` concurrent loops of `send` for `warmup` + `seconds`, then the requests
    still in flight are dropped; one client whose pool holds exactly `connections` keep-alive
    connections, so each loop keeps its own socket."""
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    samples: list[Sample] = []
    async with httpx.AsyncClient(
        headers=headers, limits=limits, timeout=timeout, trust_env=False
    ) as client:
        start = time.perf_counter() + warmup
        stop = start + seconds
        loops = [
            asyncio.create_task(_connection(client, send, start, stop, samples))
            for _ in range(connections)
        ]
        await asyncio.sleep(stop - time.perf_counter())
        for loop in loops:
            loop.cancel()
        for outcome in await asyncio.gather(*loops, return_exceptions=True):
            if isinstance(outcome, BaseException) and not isinstance(
                outcome, asyncio.CancelledError
            ):
                raise outcome  # a loop that ended by itself: a bug in `send`
    return LoadResult(connections, seconds, samples)


async def once(send: Send, headers: dict[str, str] | None = None) -> Sample:
    """One request on a client of its own (a warm-up that must succeed)."""
    import httpx

    async with httpx.AsyncClient(headers=headers, timeout=120.0, trust_env=False) as client:
        return await send(client)


def measure(
    send: Send,
    connections: int,
    seconds: float,
    warmup: float,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    return asyncio.run(load(send, connections, seconds, warmup, headers))


def summarize(result: LoadResult, items: int = 1) -> dict[str, Any]:
    """req/s (answered requests only), items/s, p50/p99 latency of the answered ones (ms)."""
    latencies = [s.latency * 1000 for s in result.ok]
    return {
        "connections": result.connections,
        "seconds": round(result.seconds, 3),
        "requests": len(result.samples),
        "errors": result.errors,
        "req_per_s": len(result.ok) / result.seconds,
        "items_per_s": len(result.ok) * items / result.seconds,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "first_error": result.first_error,
    }


def summarize_streams(result: LoadResult) -> dict[str, Any]:
    """TTFT p50/p99 (ms); tokens/s per stream, end to end (tokens over the request's whole
    time, TTFT included, so that total is about streams x per stream), and in total; tokens
    per request, which is below max_tokens when the model ends its answer first."""
    ok = [s for s in result.ok if s.tokens is not None]
    ttfts = [s.ttft * 1000 for s in ok if s.ttft is not None]
    rates = [s.tokens / s.latency for s in ok if s.latency > 0]
    tokens = sum(s.tokens or 0 for s in ok)
    return {
        **summarize(result),
        "ttft_p50_ms": percentile(ttfts, 50),
        "ttft_p99_ms": percentile(ttfts, 99),
        "tokens": tokens,
        "tokens_per_request": tokens / len(ok) if ok else None,
        "tokens_per_s_stream": sum(rates) / len(rates) if rates else None,
        "tokens_per_s_total": tokens / result.seconds,
    }
