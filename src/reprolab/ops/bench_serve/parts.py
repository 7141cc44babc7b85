"""The three parts: wine against `mlflow models serve` (and the goal's ratios), NSMC texts/s,
LLM streaming."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from reprolab.ops.bench_serve.inputs import (
    ALIAS,
    BATCHING,
    GOAL,
    GOAL_P99,
    GOAL_RPS,
    LLM,
    LLM_PROMPT,
    LLM_STREAMS,
    MLFLOW,
    NSMC,
    NSMC_BATCH,
    NSMC_CONNECTIONS,
    NSMC_TEXTS,
    OURS,
    OURS_BATCHING,
    WINE,
    WINE_ROW,
)
from reprolab.ops.bench_serve.load import (
    measure,
    once,
    post_json,
    stream_completion,
    summarize,
    summarize_streams,
)
from reprolab.ops.bench_serve.servers import Plan, mlflow_serve, reprolab_serve


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
