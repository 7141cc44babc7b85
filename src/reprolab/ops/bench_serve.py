"""`make bench-serve`: python -m reprolab.ops.bench_serve [--seconds S] [--tasks wine,nsmc,llm]

Load-tests `reprolab serve` over HTTP, as its clients see it, and compares it with MLflow's own
`mlflow models serve` on the same wine champion, from the same client on the same machine, so
the ratio says what our service buys over the stock one even where the absolute numbers are
noisy (a shared CPU slows both alike only when they run close in time, hence one server at a
time, each started, warmed, measured and stopped in turn).

The client is one asyncio process: every connection is a loop that sends its next request as
soon as the previous one answered (a closed loop, the way a pool of synchronous callers
behaves), over keep-alive connections of one httpx.AsyncClient. The numbers cover the
requests answered in the `--seconds` after the warm-up, over exactly that window: counting
answers rather than starts leaves no idle stretch at the window's edges, which matters when
one request (an LLM stream) lasts a good part of the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from reprolab.ops import devservers

PARTS = ("wine", "nsmc", "llm")
WINE, NSMC, LLM = "wine-quality", "nsmc-sentiment", "llm-sft"
ALIAS = "champion"
READY_TIMEOUT = 180.0  # seconds for a server to load its model and answer its readiness check
LOG_TAIL = 30
BATCHING = ("--max-batch", "8", "--max-wait-ms", "1")
NSMC_CONNECTIONS = (1, 4)
LLM_STREAMS = (1, 4)
NSMC_BATCH = 32  # texts per request
GOAL_RPS, GOAL_P99 = 3.0, 1 / 3  # ours/mlflow at the most connections: req/s at least, p99 at most
MLFLOW = "mlflow models serve"
OURS = "reprolab serve"
OURS_BATCHING = "reprolab serve, batch 8/1ms"  # BATCHING
GOAL = "at least 3x mlflow's req/s at 8 connections with p99 at most a third of mlflow's"

# One red wine of the UCI set, in the order of the model's inputs (FEATURES of the workload).
WINE_ROW: dict[str, float] = {
    "fixed acidity": 7.4,
    "volatile acidity": 0.7,
    "citric acid": 0.0,
    "residual sugar": 1.9,
    "chlorides": 0.076,
    "free sulfur dioxide": 11.0,
    "total sulfur dioxide": 34.0,
    "density": 0.9978,
    "pH": 3.51,
    "sulphates": 0.56,
    "alcohol": 9.4,
    "is_red": 1.0,
}

# Short movie reviews in the style of NSMC (a request takes NSMC_BATCH of them, in turn).
NSMC_TEXTS = (
    "정말 재미있게 봤어요. 배우들 연기가 최고입니다",
    "시간 아까운 영화. 스토리가 너무 뻔하다",
    "음악이 좋아서 끝까지 몰입해서 봤습니다",
    "기대했는데 실망이 큽니다",
    "가족이랑 보기 딱 좋은 따뜻한 영화",
    "연출이 엉망이고 대사도 어색해요",
    "두 번 봐도 또 보고 싶은 인생 영화",
    "중간에 졸았다... 지루함 그 자체",
    "마지막 장면에서 눈물이 났어요",
    "별 하나도 아깝다",
    "배경 영상미가 정말 아름답다",
    "원작을 망쳐 놓았네요",
    "생각보다 괜찮았어요. 추천합니다",
    "러닝타임이 너무 길고 산만하다",
    "아이들이 정말 좋아했어요",
    "돈 주고 보기에는 아까운 수준",
)

LLM_PROMPT = (
    "### Instruction:\nExplain in two sentences what a DVC pipeline stage is.\n\n### Response:\n"
)


# ---------------------------------------------------------------- the load client


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


# ---------------------------------------------------------------- the servers


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


def _say(message: str) -> None:
    click.echo(message, err=True)


def _first_number(value: Any) -> float:
    """The first number in an answer, whatever nesting the server gives predictions."""
    while isinstance(value, list | dict):
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
    return float(value)


def _probe(url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    """One request before measuring, so that a server that rejects the body (or the token)
    stops the run with its answer instead of filling a table with errors; its JSON."""
    import httpx

    response = httpx.post(url, json=body, headers=headers, timeout=60, trust_env=False)
    if response.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {response.status_code}: {response.text[:300]}")
    return response.json()


# ---------------------------------------------------------------- the parts


@dataclass(frozen=True)
class Contender:
    """One server setting of the wine comparison."""

    label: str
    server: Callable[[], contextlib.AbstractContextManager[str]]
    path: str
    body: dict[str, Any]
    answer_key: str


def wine_contenders(plan: Plan) -> list[Contender]:
    """MLflow's server first (unless skipped), then ours by default and micro-batching; each
    sends the same row in its server's own request format."""
    ours = {"rows": [WINE_ROW]}
    theirs = {"dataframe_split": {"columns": list(WINE_ROW), "data": [list(WINE_ROW.values())]}}
    route = f"/v1/tasks/{WINE}/predict"
    contenders = [
        Contender(MLFLOW, lambda: mlflow_serve(plan, WINE), "/invocations", theirs, "predictions"),
        Contender(OURS, lambda: reprolab_serve(plan, ["--task", WINE]), route, ours, "grades"),
        Contender(
            OURS_BATCHING,
            lambda: reprolab_serve(plan, ["--task", WINE, *BATCHING]),
            route,
            ours,
            "grades",
        ),
    ]
    return contenders[1:] if plan.skip_mlflow else contenders


def bench_wine(plan: Plan, versions: dict[str, str | None]) -> dict[str, Any]:
    """Each contender in turn: started, probed, measured at every connection count, stopped."""
    if versions.get(WINE) is None:
        return {"skipped": f"{WINE} has no @{ALIAS} in {plan.tracking_uri}"}
    servers = []
    for contender in wine_contenders(plan):
        _say(f"starting {contender.label}...")
        with contender.server() as url:
            target = f"{url}{contender.path}"
            answer = _probe(target, contender.body, plan.headers)[contender.answer_key]
            runs = []
            for n in plan.connections:
                _say(f"measuring {contender.label}, {n} connection{'s' * (n > 1)}...")
                result = measure(
                    post_json(target, contender.body), n, plan.seconds, plan.warmup, plan.headers
                )
                runs.append(summarize(result))
        # the same number from every server: they serve the same model
        prediction = _first_number(answer)
        servers.append({"server": contender.label, "prediction": prediction, "runs": runs})
    return {"version": versions[WINE], "servers": servers, "comparison": compare(servers)}


def compare(servers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Ours/mlflow at the most connections measured, for each of our settings, and whether
    the goal holds; None without mlflow's numbers."""
    by_label = {s["server"]: s for s in servers}
    mlflow = by_label.get(MLFLOW)
    if mlflow is None:
        return None
    top = max(run["connections"] for run in mlflow["runs"])
    base = next(run for run in mlflow["runs"] if run["connections"] == top)
    settings = {}
    for server in servers:
        if server is mlflow:
            continue
        run = next(r for r in server["runs"] if r["connections"] == top)
        rps = _ratio(run["req_per_s"], base["req_per_s"])
        p99 = _ratio(run["p99_ms"], base["p99_ms"])
        holds = rps is not None and p99 is not None and rps >= GOAL_RPS and p99 <= GOAL_P99
        settings[server["server"]] = {"req_per_s_ratio": rps, "p99_ratio": p99, "goal": holds}
    return {"connections": top, "goal": GOAL, "settings": settings}


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    return None if not ours or not theirs else ours / theirs


def bench_nsmc(plan: Plan, versions: dict[str, str | None]) -> dict[str, Any]:
    """Texts/s of the sentiment champion, NSMC_BATCH texts a request."""
    if versions.get(NSMC) is None:
        return {"skipped": f"{NSMC} has no @{ALIAS} in {plan.tracking_uri}"}
    texts = [NSMC_TEXTS[i % len(NSMC_TEXTS)] for i in range(NSMC_BATCH)]
    body = {"texts": texts}
    runs = []
    _say("starting reprolab serve (nsmc)...")
    with reprolab_serve(plan, ["--task", NSMC]) as url:
        target = f"{url}/v1/tasks/{NSMC}/predict"
        _probe(target, body, plan.headers)
        for n in NSMC_CONNECTIONS:
            _say(f"measuring reprolab serve (nsmc), {n} connection{'s' * (n > 1)}...")
            result = measure(post_json(target, body), n, plan.seconds, plan.warmup, plan.headers)
            runs.append(summarize(result, items=NSMC_BATCH))
    return {"version": versions[NSMC], "texts_per_request": NSMC_BATCH, "runs": runs}


def llm_server_args(plan: Plan, versions: dict[str, str | None]) -> list[str] | None:
    """How to serve the LLM to measure, None when there is none: the registry task, or a
    --lm model beside the lightest task with a champion (the service serves every registry
    task when no --task is named, which would load them all)."""
    if plan.llm_model in plan.lms:
        lm = ["--lm", f"{plan.llm_model}={plan.lms[plan.llm_model]}"]
        companion = next((t for t in (WINE, "pid-control", NSMC) if versions.get(t)), None)
        return lm + (["--task", companion] if companion else [])
    if plan.llm_model == LLM and versions.get(LLM) is not None:
        return ["--task", LLM]
    return None


def bench_llm(plan: Plan, versions: dict[str, str | None]) -> dict[str, Any]:
    """TTFT and tokens/s of streamed completions at LLM_STREAMS concurrent streams."""
    args = llm_server_args(plan, versions)
    if args is None:
        where = (
            f"no @{ALIAS} in {plan.tracking_uri}"
            if plan.llm_model == LLM
            else f"not a registry task: pass --lm {plan.llm_model}=DIR"
        )
        return {"skipped": f"{plan.llm_model}: {where}"}
    body = {
        "model": plan.llm_model,
        "prompt": LLM_PROMPT,
        "max_tokens": plan.max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    runs = []
    _say(f"starting reprolab serve ({plan.llm_model})...")
    with reprolab_serve(plan, args) as url:
        send = stream_completion(f"{url}/v1/completions", body)
        first = asyncio.run(once(send, plan.headers))
        if first.error is not None:
            raise RuntimeError(f"{plan.llm_model}: the first completion failed: {first.error}")
        for n in LLM_STREAMS:
            _say(f"measuring reprolab serve ({plan.llm_model}), {n} stream{'s' * (n > 1)}...")
            runs.append(
                summarize_streams(measure(send, n, plan.seconds, plan.warmup, plan.headers))
            )
    return {"model": plan.llm_model, "max_tokens": plan.max_tokens, "runs": runs}


# ---------------------------------------------------------------- output


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned table: the first column left-aligned, the numbers right-aligned."""
    cells = [list(header), *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        first = row[0].ljust(widths[0])
        rest = [v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]).rstrip())
    return "\n".join(lines)


def _errors(run: dict[str, Any]) -> list[str]:
    if not run["errors"]:
        return []
    return [f"  {run['connections']} conn: {run['errors']} errors, first: {run['first_error']}"]


def wine_text(report: dict[str, Any]) -> str:
    if "skipped" in report:
        return f"wine: skipped ({report['skipped']})"
    header = ["wine-quality v" + report["version"], "conns", "req/s", "p50 ms", "p99 ms", "errors"]
    rows, notes = [], []
    for server in report["servers"]:
        for run in server["runs"]:
            rows.append(
                [
                    server["server"],
                    run["connections"],
                    run["req_per_s"],
                    run["p50_ms"],
                    run["p99_ms"],
                    run["errors"],
                ]
            )
            notes += _errors(run)
    predictions = {f"{s['prediction']:.4f}" for s in report["servers"]}
    lines = [render(header, rows), *notes]
    lines.append(f"prediction for the row: {', '.join(sorted(predictions))}")
    lines += comparison_text(report["comparison"])
    return "\n".join(lines)


def comparison_text(comparison: dict[str, Any] | None) -> list[str]:
    if comparison is None:
        return ["no comparison: mlflow models serve was skipped"]
    lines = [f"ours/mlflow at {comparison['connections']} connections (goal: {GOAL}):"]
    width = max(len(label) for label in comparison["settings"])
    for label, found in comparison["settings"].items():
        verdict = "goal holds" if found["goal"] else "goal does not hold"
        lines.append(
            f"  {label:<{width}}  req/s x{_cell(found['req_per_s_ratio'], 2)}  "
            f"p99 x{_cell(found['p99_ratio'], 2)}  {verdict}"
        )
    return lines


def nsmc_text(report: dict[str, Any]) -> str:
    if "skipped" in report:
        return f"nsmc: skipped ({report['skipped']})"
    header = [
        f"nsmc-sentiment v{report['version']}",
        "conns",
        "req/s",
        "texts/s",
        "p50 ms",
        "p99 ms",
        "errors",
    ]
    rows = [
        [
            "reprolab serve",
            r["connections"],
            r["req_per_s"],
            r["items_per_s"],
            r["p50_ms"],
            r["p99_ms"],
            r["errors"],
        ]
        for r in report["runs"]
    ]
    notes = [line for r in report["runs"] for line in _errors(r)]
    return "\n".join([render(header, rows), *notes])


def llm_text(report: dict[str, Any]) -> str:
    if "skipped" in report:
        return f"llm: skipped ({report['skipped']})"
    header = [
        f"{report['model']} (max {report['max_tokens']} tokens)",
        "streams",
        "TTFT p50 ms",
        "TTFT p99 ms",
        "tok/req",
        "tok/s/stream",
        "tok/s total",
        "errors",
    ]
    rows = [
        [
            "reprolab serve",
            r["connections"],
            r["ttft_p50_ms"],
            r["ttft_p99_ms"],
            r["tokens_per_request"],
            r["tokens_per_s_stream"],
            r["tokens_per_s_total"],
            r["errors"],
        ]
        for r in report["runs"]
    ]
    notes = [line for r in report["runs"] for line in _errors(r)]
    return "\n".join([render(header, rows), *notes])


def machine() -> dict[str, Any]:
    """What the numbers depend on besides the servers: cores and how busy they were."""
    try:
        load_average = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load_average = []
    return {"cpus": os.cpu_count(), "load_average": load_average, "python": sys.version.split()[0]}


# ---------------------------------------------------------------- command line


def _counts(ctx: click.Context, param: click.Parameter, text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise click.BadParameter(f"expected positive integers like 1,8, got {text!r}")
    return counts


def _parts(ctx: click.Context, param: click.Parameter, text: str) -> tuple[str, ...]:
    parts = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        raise click.BadParameter(f"choose from {','.join(PARTS)}, got {text!r}")
    return parts


def _lms(ctx: click.Context, param: click.Parameter, pairs: tuple[str, ...]) -> dict[str, str]:
    from reprolab.serve.settings import ServeError, parse_lms

    try:
        return parse_lms(pairs)
    except ServeError as err:
        raise click.BadParameter(str(err)) from None


@click.command()
@click.option("--seconds", default=20.0, show_default=True, help="Measured time of each run.")
@click.option("--warmup", default=3.0, show_default=True, help="Unmeasured time before it.")
@click.option(
    "--connections",
    default="1,8",
    show_default=True,
    callback=_counts,
    help="Concurrent connections of the wine comparison.",
)
@click.option(
    "--tasks",
    "parts",
    default=",".join(PARTS),
    show_default=True,
    callback=_parts,
    help="Which parts to run.",
)
@click.option("--skip-mlflow", is_flag=True, help="Measure only reprolab serve for wine.")
@click.option(
    "--params",
    "params_path",
    default="params.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, exists=True),
    help="The parameters file the service reads.",
)
@click.option("--llm-model", default=LLM, show_default=True, help="The LM to stream from.")
@click.option(
    "--lm", "lms", multiple=True, metavar="NAME=DIR", callback=_lms, help="Serve this LM too."
)
@click.option("--max-tokens", default=32, show_default=True, help="Tokens per LLM request.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write all numbers.")
def main(
    seconds: float,
    warmup: float,
    connections: tuple[int, ...],
    parts: tuple[str, ...],
    skip_mlflow: bool,
    params_path: str,
    llm_model: str,
    lms: dict[str, str],
    max_tokens: int,
    json_path: str | None,
) -> None:
    """Load-test `reprolab serve` (wine against `mlflow models serve`, NSMC texts/s, LLM
    streaming) with one closed-loop asyncio client, one server at a time, and print tables."""
    from reprolab.core.tracking_store import mlflow_tracking_uri

    plan = Plan(
        seconds=seconds,
        warmup=warmup,
        connections=connections,
        parts=parts,
        skip_mlflow=skip_mlflow,
        params=Path(params_path).resolve(),
        tracking_uri=mlflow_tracking_uri(),
        token=secrets.token_urlsafe(16),
        llm_model=llm_model,
        lms=lms,
        max_tokens=max_tokens,
    )
    report: dict[str, Any] = {"machine": machine(), "settings": _settings(plan)}
    versions = champions(plan.tracking_uri, [WINE, NSMC, LLM, "pid-control"])
    benches = {
        "wine": (bench_wine, wine_text),
        "nsmc": (bench_nsmc, nsmc_text),
        "llm": (bench_llm, llm_text),
    }
    try:
        for part in PARTS:
            if part in plan.parts:
                bench, text = benches[part]
                report[part] = bench(plan, versions)
                click.echo(text(report[part]) + "\n")
    except RuntimeError as err:
        raise click.ClickException(str(err)) from None
    finally:
        if json_path:
            Path(json_path).parent.mkdir(parents=True, exist_ok=True)
            Path(json_path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    click.echo(
        f"load average before: {report['machine']['load_average']}, after: "
        f"{machine()['load_average']} ({report['machine']['cpus']} cpus)"
    )


def _settings(plan: Plan) -> dict[str, Any]:
    return {
        "seconds": plan.seconds,
        "warmup": plan.warmup,
        "connections": list(plan.connections),
        "parts": list(plan.parts),
        "skip_mlflow": plan.skip_mlflow,
        "params": str(plan.params),
        "tracking_uri": plan.tracking_uri,
        "llm_model": plan.llm_model,
        "max_tokens": plan.max_tokens,
        "batching": " ".join(BATCHING),
    }


if __name__ == "__main__":
    main()
