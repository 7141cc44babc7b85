"""`make bench-llm-serve`: the LLM task served by each backend (transformers in process,
llama.cpp's server), one after the other on the same champion: time to first token and
tokens/s at 1 and 8 concurrent streams of max_tokens tokens each (vLLM's `ignore_eos`), and
how often greedy chat answers to held-out instructions (the validation split) run to the
token limit in a loop, with and without the chat route's repetition defaults. Ratios are
against the transformers backend measured in the same run.

    python -m reprolab.ops.bench_serve.llm_backends [--seconds S] [--streams 1,8]"""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

import click

from reprolab.ops.bench_serve.inputs import LLM, LLM_PROMPT
from reprolab.ops.bench_serve.load import measure, once, stream_completion, summarize_streams
from reprolab.ops.bench_serve.report import machine, render
from reprolab.ops.bench_serve.servers import Plan, champions, reprolab_serve

BACKENDS = ("transformers", "llama.cpp")
GOAL_SPEEDUP, GOAL_SCALING = 5.0, 1.4  # llama.cpp/transformers at 1 stream; 8 streams/1
LOOP_MIN_PERIOD, LOOP_MAX_PERIOD, LOOP_REPEATS = 1, 120, 3


def looped(text: str) -> bool:
    """The answer ends in a loop: its last characters are one stretch of 1 to 120
    characters said at least three times over."""
    text = text.rstrip()
    for period in range(LOOP_MIN_PERIOD, LOOP_MAX_PERIOD + 1):
        tail = text[-period * LOOP_REPEATS :]
        if len(tail) == period * LOOP_REPEATS and tail == tail[:period] * LOOP_REPEATS:
            return True
    return False


def held_out(split: Path, count: int) -> list[str]:
    """The first `count` instructions of the validation split, as a user would type them."""
    rows = [json.loads(line) for line in split.read_text().splitlines() if line.strip()]
    return [(r["instruction"] + (f"\n\n{r['input']}" if r.get("input") else "")) for r in rows][
        :count
    ]


def speed(plan: Plan, backend: str, streams: tuple[int, ...]) -> list[dict[str, Any]]:
    body = {
        "model": LLM,
        "prompt": LLM_PROMPT,
        "max_tokens": plan.max_tokens,
        "temperature": 0,
        "ignore_eos": True,  # every answer max_tokens long: decoding, not prompts, is measured
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    args = ["--task", LLM, "--lm-backend", backend, "--lm-slots", str(max(streams)), "--no-ui"]
    runs = []
    click.echo(f"starting reprolab serve --lm-backend {backend}...", err=True)
    with reprolab_serve(plan, args) as url:
        send = stream_completion(f"{url}/v1/completions", body)
        first = asyncio.run(once(send, plan.headers))
        if first.error is not None:
            raise click.ClickException(f"{backend}: the first completion failed: {first.error}")
        for n in streams:
            click.echo(f"measuring {backend}, {n} stream{'s' * (n > 1)}...", err=True)
            result = summarize_streams(measure(send, n, plan.seconds, plan.warmup, plan.headers))
            runs.append({"backend": backend, **result})
        if backend == "llama.cpp" and plan.loop_instructions:
            runs[-1]["loops"] = loop_share(url, plan)
    return runs


def loop_share(url: str, plan: Plan) -> dict[str, Any]:
    """Share of greedy chat answers that run to the token limit in a loop, with the chat
    route's repetition defaults and with repetition_penalty 1 (which also turns DRY off)."""
    import httpx

    out: dict[str, Any] = {"answers": len(plan.loop_instructions), "max_tokens": plan.loop_tokens}
    for setting, extra in (("defaults", {}), ("off", {"repetition_penalty": 1.0})):
        loops = lengths = 0
        for instruction in plan.loop_instructions:
            body = {
                "model": LLM,
                "messages": [{"role": "user", "content": instruction}],
                "max_tokens": plan.loop_tokens,
                "temperature": 0,
                **extra,
            }
            answer = httpx.post(
                f"{url}/v1/chat/completions", json=body, headers=plan.headers, timeout=600
            ).json()["choices"][0]
            at_limit = answer["finish_reason"] == "length"
            lengths += at_limit
            loops += at_limit and looped(answer["message"]["content"])
        out[setting] = {"at_limit": lengths, "looped": loops}
    return out


def text(report: dict[str, Any]) -> str:
    header = [
        f"{LLM} v{report['version']} (max {report['max_tokens']} tokens)",
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
            r["backend"],
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
    lines = [render(header, rows)]
    by = {(r["backend"], r["connections"]): r for r in report["runs"]}
    one, most = min(r["connections"] for r in report["runs"]), report["streams"][-1]
    fast, slow = by.get(("llama.cpp", one)), by.get(("transformers", one))
    if fast and slow and slow["tokens_per_s_total"]:
        ratio = fast["tokens_per_s_total"] / slow["tokens_per_s_total"]
        held = "holds" if ratio >= GOAL_SPEEDUP else "missed"
        lines.append(
            f"llama.cpp/transformers, {one} stream: tok/s x{ratio:.2f} "
            f"(goal: at least x{GOAL_SPEEDUP:g}) {held}"
        )
    many = by.get(("llama.cpp", most))
    if fast and many and most != one and fast["tokens_per_s_total"]:
        ratio = many["tokens_per_s_total"] / fast["tokens_per_s_total"]
        held = "holds" if ratio >= GOAL_SCALING else "missed"
        lines.append(
            f"llama.cpp, {most} streams/{one}: total tok/s x{ratio:.2f} "
            f"(goal: at least x{GOAL_SCALING:g}) {held}"
        )
    loops = next((r["loops"] for r in report["runs"] if "loops" in r), None)
    if loops:
        n = loops["answers"]
        for setting in ("off", "defaults"):
            got = loops[setting]
            lines.append(
                f"greedy chat, {n} held-out instructions, max {loops['max_tokens']} tokens, "
                f"repetition controls {setting}: {got['looped']} looped to the limit "
                f"({got['looped'] / n:.0%}), {got['at_limit']} at the limit"
            )
    return "\n".join(lines)


def _counts(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        counts = tuple(sorted({int(v) for v in value.split(",")}))
    except ValueError:
        raise click.BadParameter(f"expected numbers like 1,8, got {value!r}") from None
    if not counts or counts[0] < 1:
        raise click.BadParameter(f"expected counts >= 1, got {value!r}")
    return counts


@click.command()
@click.option(
    "--seconds",
    default=40.0,
    show_default=True,
    help="Measured time of each run (8 transformers streams need about 30 s a request).",
)
@click.option("--warmup", default=3.0, show_default=True, help="Unmeasured time before it.")
@click.option("--streams", default="1,8", show_default=True, callback=_counts)
@click.option("--max-tokens", default=64, show_default=True, help="Tokens per request.")
@click.option(
    "--backends", default=",".join(BACKENDS), show_default=True, help="Backends to measure."
)
@click.option(
    "--loops", default=40, show_default=True, help="Held-out instructions for the loop count."
)
@click.option("--loop-tokens", default=256, show_default=True, help="Their token limit.")
@click.option(
    "--split",
    default="data/processed/codealpaca/valid.jsonl",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Held-out instructions (the fine-tune's validation split).",
)
@click.option(
    "--params",
    "params_path",
    default="params.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, exists=True),
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Write all numbers.")
def main(
    seconds: float,
    warmup: float,
    streams: tuple[int, ...],
    max_tokens: int,
    backends: str,
    loops: int,
    loop_tokens: int,
    split: str,
    params_path: str,
    json_path: str | None,
) -> None:
    """Measure the LLM task's champion on each backend, one server at a time."""
    from reprolab.core.tracking_store import mlflow_tracking_uri

    chosen = [b.strip() for b in backends.split(",") if b.strip()]
    unknown = sorted(set(chosen) - set(BACKENDS))
    if unknown or not chosen:
        raise click.BadParameter(f"expected some of {list(BACKENDS)}, got {backends!r}")
    plan = Plan(
        seconds=seconds,
        warmup=warmup,
        connections=streams,
        parts=("llm",),
        skip_mlflow=True,
        params=Path(params_path).resolve(),
        tracking_uri=mlflow_tracking_uri(),
        token=secrets.token_urlsafe(16),
        max_tokens=max_tokens,
        loop_instructions=tuple(held_out(Path(split), loops))
        if loops and Path(split).is_file()
        else (),
        loop_tokens=loop_tokens,
    )
    version = champions(plan.tracking_uri, [LLM])[LLM]
    if version is None:
        raise click.ClickException(f"{LLM}: no champion in {plan.tracking_uri}; run `make` first")
    runs = [run for backend in chosen for run in speed(plan, backend, streams)]
    report = {
        "machine": machine(),
        "version": version,
        "max_tokens": max_tokens,
        "streams": list(streams),
        "runs": runs,
    }
    click.echo(text(report))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
