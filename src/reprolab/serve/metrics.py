"""Prometheus metrics of one service instance, in its own registry (no global state). LLM
metrics carry vLLM's names, label (`model_name`) and meanings (`vllm:time_to_first_token_
seconds` → `reprolab_time_to_first_token_seconds`, `vllm:num_requests_running`,
`vllm:request_success_total{finished_reason}`, ...), so the panels of vLLM's Grafana
dashboard read them with the prefix changed; its KV-cache panels have no counterpart here."""

from __future__ import annotations

import os
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TOKEN_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
LENGTH_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


class Metrics:
    """`shared_dir`: with `--workers N`, prometheus_client's multiprocess directory (its
    PROMETHEUS_MULTIPROC_DIR, set before any worker starts); each worker writes its values
    there and every scrape sums them, so /metrics shows totals over workers, not one
    worker's share."""

    def __init__(self, shared_dir: str | None = None) -> None:
        self.shared_dir = shared_dir
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "reprolab_http_requests",
            "HTTP requests by task, route template and status code",
            ["task", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "reprolab_http_request_duration_seconds",
            "Time from request to the last byte of the answer",
            ["task", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "reprolab_model_info",
            "1 for the model version each task serves now",
            ["task", "alias", "version"],
            registry=r,
            multiprocess_mode="livemax",  # 1 while any live worker serves it
        )
        self.reloads = Counter(
            "reprolab_model_reloads",
            "Model loads after an alias moved (or on /admin/reload), by result",
            ["task", "result"],
            registry=r,
        )
        self.batch_size = Histogram(
            "reprolab_batch_size",
            "Requests per micro-batch",
            ["task"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        llm = ["model_name"]  # vLLM's label
        self.ttft = Histogram(
            "reprolab_time_to_first_token_seconds",
            "Time from request to the first generated token",
            llm,
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.itl = Histogram(
            "reprolab_inter_token_latency_seconds",
            "Time between two generated tokens of one request",
            llm,
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.tpot = Histogram(
            "reprolab_time_per_output_token_seconds",
            "Mean time per generated token after the first, per request",
            llm,
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.e2e = Histogram(
            "reprolab_e2e_request_latency_seconds",
            "Time from request to the last generated token",
            llm,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "reprolab_prompt_tokens", "Prompt tokens processed", llm, registry=r
        )
        self.generation_tokens = Counter(
            "reprolab_generation_tokens", "Tokens generated", llm, registry=r
        )
        self.request_prompt_tokens = Histogram(
            "reprolab_request_prompt_tokens",
            "Prompt tokens of each finished request",
            llm,
            buckets=LENGTH_BUCKETS,
            registry=r,
        )
        self.request_generation_tokens = Histogram(
            "reprolab_request_generation_tokens",
            "Generated tokens of each finished request",
            llm,
            buckets=LENGTH_BUCKETS,
            registry=r,
        )
        self.running = Gauge(
            "reprolab_num_requests_running",
            "Requests generating tokens now",
            llm,
            registry=r,
            multiprocess_mode="livesum",
        )
        self.waiting = Gauge(
            "reprolab_num_requests_waiting",
            "Requests admitted whose first token has not come yet",
            llm,
            registry=r,
            multiprocess_mode="livesum",
        )
        self.success = Counter(
            "reprolab_request_success",
            "Finished requests by why they ended: stop, length, or abort (client gone, error)",
            [*llm, "finished_reason"],
            registry=r,
        )

    def serving(self, task: str, alias: str, old: str | None, new: str) -> None:
        if old is not None:
            if self.shared_dir:  # a removed series stays in this worker's file: zero it
                self.model_info.labels(task, alias, old).set(0)
            else:
                self.model_info.remove(task, alias, old)
        self.model_info.labels(task, alias, new).set(1)

    def render(self) -> bytes:
        if not self.shared_dir:
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        summed = CollectorRegistry()
        multiprocess.MultiProcessCollector(summed, path=self.shared_dir)
        return generate_latest(summed)

    def leave(self) -> None:
        """This worker is stopping: its live gauges no longer count."""
        if self.shared_dir:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), self.shared_dir)


class TokenClock:
    """One generation request's metrics: waiting from admission to the first token, then
    running; TTFT, inter-token gaps and end to end; counted once as finished, by reason.
    `close` is safe to call more than once, and the routes call it whatever happened, so a
    client that leaves or a failure never leaves a request counted as running."""

    def __init__(self, metrics: Metrics, model: str, started: float | None = None) -> None:
        self.metrics, self.model = metrics, model
        self.started = started if started is not None else time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None
        self.state = "waiting"
        metrics.waiting.labels(model).inc()

    def token(self) -> None:
        now = time.perf_counter()
        if self.last is None:
            self.metrics.ttft.labels(self.model).observe(now - self.started)
            self.first = now
            self._leave()
            self.state = "running"
            self.metrics.running.labels(self.model).inc()
        else:
            self.metrics.itl.labels(self.model).observe(now - self.last)
        self.last = now

    def done(self, prompt_tokens: int, generated: int, reason: str = "stop") -> None:
        m, name = self.metrics, self.model
        m.e2e.labels(name).observe(time.perf_counter() - self.started)
        m.prompt_tokens.labels(name).inc(prompt_tokens)
        m.generation_tokens.labels(name).inc(generated)
        m.request_prompt_tokens.labels(name).observe(prompt_tokens)
        m.request_generation_tokens.labels(name).observe(generated)
        if generated > 1 and self.first is not None and self.last is not None:
            m.tpot.labels(name).observe((self.last - self.first) / (generated - 1))
        self.close(reason)

    def close(self, reason: str = "abort") -> None:
        """The request ended: out of the gauges, and counted by `reason` (once)."""
        if self.state == "closed":
            return
        self._leave()
        self.state = "closed"
        self.metrics.success.labels(self.model, reason).inc()

    def _leave(self) -> None:
        gauge = {"waiting": self.metrics.waiting, "running": self.metrics.running}[self.state]
        gauge.labels(self.model).dec()


class RequestMetrics:
    """ASGI middleware: count and time every request by task, route template and status,
    until the last byte of a streamed answer."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def tracked(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            task = scope.get("reprolab.task") or _task_of(template)
            self.metrics.requests.labels(task, template, str(status)).inc()
            self.metrics.latency.labels(task, template).observe(time.perf_counter() - started)


def _task_of(template: str) -> str:
    """`wine-quality` from the route template `/v1/tasks/wine-quality/predict`."""
    parts = template.split("/")
    literal = len(parts) > 4 and parts[1:3] == ["v1", "tasks"] and "{" not in parts[3]
    return parts[3] if literal else ""
