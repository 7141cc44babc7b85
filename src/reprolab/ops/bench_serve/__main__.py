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

import json
import secrets
from pathlib import Path
from typing import Any

import click

from reprolab.ops.bench_serve.inputs import BATCHING, LLM, NSMC, PARTS, WINE
from reprolab.ops.bench_serve.parts import bench_llm, bench_nsmc, bench_wine
from reprolab.ops.bench_serve.report import llm_text, machine, nsmc_text, wine_text
from reprolab.ops.bench_serve.servers import Plan, champions


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
@click.option(
    "--beside",
    metavar="CMD",
    help="A shell command that loads the machine for the whole benchmark (a training run, "
    "say); it starts first and is stopped at the end.",
)
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
    beside: str | None,
) -> None:
    """Load-test `reprolab serve` (wine against `mlflow models serve`, NSMC texts/s, LLM
    streaming) with one closed-loop asyncio client, one server at a time, and print tables."""
    from reprolab.core.tracking_store import mlflow_tracking_uri
    from reprolab.ops.bench_serve.beside import BesideError
    from reprolab.ops.bench_serve.beside import beside as loading

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
        with loading(beside) as load:
            report["beside"] = load
            if beside:
                click.echo(f"beside: {beside}\n")
            for part in PARTS:
                if part in plan.parts:
                    bench, text = benches[part]
                    report[part] = bench(plan, versions)
                    click.echo(text(report[part]) + "\n")
        if beside and not load["ran_throughout"]:
            click.echo("beside: the command ended before the benchmark did (partly idle)")
    except (RuntimeError, BesideError) as err:
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
