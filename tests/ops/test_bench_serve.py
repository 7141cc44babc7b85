"""`make bench-serve`'s load client against a live tiny uvicorn app: it counts the requests it
sends, times them, leaves the warm-up out, reports errors and reads streamed completions."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from reprolab.ops import bench_serve
from reprolab.ops.devservers import free_port

DELAY = 0.02  # seconds the tiny app takes per answer
CHUNKS = 5  # tokens of each streamed completion


def tiny_app():
    """An answer after DELAY, a 500, and an OpenAI-style stream with a usage chunk; it counts
    the answers it gave, to check the client's count against."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse, StreamingResponse

    app = FastAPI()
    app.state.hits = 0

    @app.post("/ok")
    async def ok() -> dict:
        await asyncio.sleep(DELAY)
        app.state.hits += 1
        return {"grades": [5.0]}

    @app.post("/fail")
    async def fail() -> JSONResponse:
        return JSONResponse({"detail": "boom"}, status_code=500)

    @app.post("/v1/completions")
    async def completions() -> StreamingResponse:
        async def events():
            for _ in range(CHUNKS):
                await asyncio.sleep(DELAY / 4)
                yield f"data: {json.dumps({'choices': [{'text': 'x'}]})}\n\n"
            usage = {"prompt_tokens": 3, "completion_tokens": CHUNKS, "total_tokens": 3 + CHUNKS}
            yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@pytest.fixture(scope="module")
def live() -> Iterator[tuple[str, object]]:
    """The tiny app served by uvicorn in a thread of this process: (base URL, app)."""
    import uvicorn

    app = tiny_app()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the tiny app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(timeout=10)


def test_percentile_interpolates_like_numpy():
    import numpy as np

    assert bench_serve.percentile([], 50) is None
    assert bench_serve.percentile([7.0], 99) == 7.0
    assert bench_serve.percentile([1, 2, 3, 4], 50) == 2.5
    assert bench_serve.percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    values = np.random.default_rng(0).exponential(size=257).tolist()
    for q in (0, 1, 50, 90, 99, 100):
        assert bench_serve.percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_counts_and_times_the_requests_of_the_window(live):
    url, app = live
    before = app.state.hits
    result = bench_serve.measure(
        bench_serve.post_json(f"{url}/ok", {"rows": []}), connections=2, seconds=1.0, warmup=0.3
    )
    served = app.state.hits - before
    summary = bench_serve.summarize(result)
    # two closed loops of >= DELAY each: at most 2 / DELAY answers in one second
    assert 10 <= summary["requests"] <= 2 * 1.0 / DELAY
    assert summary["errors"] == 0 and summary["first_error"] is None
    assert served > summary["requests"]  # the warm-up's requests reached the app, uncounted
    assert result.seconds == 1.0  # answers within the window, over the window
    assert summary["req_per_s"] == pytest.approx(summary["requests"] / result.seconds)
    latencies = sorted(s.latency * 1000 for s in result.samples)
    assert summary["p50_ms"] >= DELAY * 1000
    assert summary["p99_ms"] == pytest.approx(bench_serve.percentile(latencies, 99))


def test_reports_the_errors_of_a_server_that_answers_500(live):
    url, _ = live
    result = bench_serve.measure(bench_serve.post_json(f"{url}/fail", {}), 2, 0.5, 0.1)
    summary = bench_serve.summarize(result)
    assert summary["requests"] > 0
    assert summary["errors"] == summary["requests"]
    assert summary["req_per_s"] == 0 and summary["p50_ms"] is None
    assert summary["first_error"].startswith("HTTP 500")


def test_a_refused_connection_is_an_error_not_a_crash():
    url = f"http://127.0.0.1:{free_port()}/ok"
    summary = bench_serve.summarize(bench_serve.measure(bench_serve.post_json(url, {}), 1, 0.3, 0))
    assert summary["requests"] > 0 and summary["errors"] == summary["requests"]
    assert "ConnectError" in summary["first_error"]


def test_streams_give_ttft_and_the_usage_tokens(live):
    url, _ = live
    send = bench_serve.stream_completion(f"{url}/v1/completions", {"stream": True})
    result = bench_serve.measure(send, 2, 0.6, 0.1)
    summary = bench_serve.summarize_streams(result)
    assert summary["errors"] == 0 and summary["requests"] > 0
    assert summary["tokens"] == CHUNKS * summary["requests"]
    assert DELAY / 4 * 1000 <= summary["ttft_p50_ms"] < summary["p50_ms"]
    assert summary["tokens_per_s_total"] == pytest.approx(summary["tokens"] / result.seconds)


def test_the_goal_needs_both_ratios():
    def server(label: str, rps: float, p99: float) -> dict:
        return {"server": label, "runs": [{"connections": 8, "req_per_s": rps, "p99_ms": p99}]}

    comparison = bench_serve.compare(
        [
            server(bench_serve.MLFLOW, 100.0, 90.0),
            server(bench_serve.OURS, 400.0, 20.0),
            server(bench_serve.OURS_BATCHING, 400.0, 40.0),
        ]
    )
    assert comparison["connections"] == 8
    ours = comparison["settings"][bench_serve.OURS]
    assert ours["req_per_s_ratio"] == pytest.approx(4.0) and ours["goal"] is True
    assert comparison["settings"][bench_serve.OURS_BATCHING]["goal"] is False
    assert bench_serve.compare([server(bench_serve.OURS, 1.0, 1.0)]) is None


def test_the_table_is_aligned():
    text = bench_serve.render(["server", "req/s"], [["a", 1.5], ["longer name", None]])
    lines = text.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert lines[2].endswith("-") and lines[1].endswith("1.5")


def test_the_wine_row_is_the_models_input_order():
    from reprolab.workloads.wine.data import FEATURES

    assert list(bench_serve.WINE_ROW) == FEATURES


def test_help_is_instant_and_imports_nothing_heavy():
    done = subprocess.run(
        [sys.executable, "-m", "reprolab.ops.bench_serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--seconds" in done.stdout and "--skip-mlflow" in done.stdout
    probe = "import sys, reprolab.ops.bench_serve; print(sorted(set(sys.modules) & %r))"
    heavy = {"httpx", "mlflow", "torch", "pandas", "numpy", "fastapi"}
    loaded = subprocess.run(
        [sys.executable, "-c", probe % heavy], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_a_load_beside_runs_throughout_and_is_stopped_with_its_children(tmp_path):
    import os
    import time

    from reprolab.ops.bench_serve.beside import BesideError, beside

    pid_file = tmp_path / "child.pid"
    with beside(f"sleep 60 & echo $! > {pid_file}; wait", settle=0.5) as load:
        child = int(pid_file.read_text())
        os.kill(child, 0)  # running while the block runs
    assert load["ran_throughout"] is True
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the load's child outlived the benchmark")
    refused = pytest.raises(BesideError, match="exited with 3 before the benchmark started")
    with refused, beside("exit 3", settle=0.5):
        pass
