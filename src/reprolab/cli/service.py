"""`reprolab serve` (the HTTP service and page) and `doctor` (what this machine can run)."""

from __future__ import annotations

import click

from reprolab.cli_support import params_option, user_errors


@click.command()
def doctor() -> None:
    """What this machine can run: Python, torch (CPU/CUDA build), GPU and CPU bf16, bitsandbytes,
    disk, the DVC remote, the MLflow store, the data mirror. Exit 1 if a required check fails."""
    import sys

    from reprolab.core.paths import workspace_root
    from reprolab.ops.doctor import run

    sys.exit(run(workspace_root(), click.echo))


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--task", "tasks", multiple=True, help="A registry task (repeat; default: all).")
@click.option("--alias", default="champion", show_default=True, help="The alias each task serves.")
@click.option(
    "--lm",
    "lms",
    multiple=True,
    metavar="NAME=DIR",
    help="Also serve this causal LM (a model directory or models:/ URI) on the OpenAI routes.",
)
@click.option("--token-file", type=click.Path(dir_okay=False), help="File with the API token.")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback host without a token.")
@click.option("--metrics-public", is_flag=True, help="/metrics without the token.")
@click.option(
    "--reload-interval",
    default=30.0,
    show_default=True,
    type=float,
    help="Seconds between alias checks (0: only POST /admin/reload).",
)
@click.option(
    "--max-batch", default=1, show_default=True, type=int, help="Micro-batch size (1: off)."
)
@click.option("--max-wait-ms", default=2.0, show_default=True, type=float)
@click.option(
    "--max-tokens", default=1024, show_default=True, type=int, help="Cap on one LLM request."
)
@click.option(
    "--max-image-pixels",
    default=2048 * 2048,
    show_default=True,
    type=int,
    help="Largest image (width x height) the nuclei route segments; larger ones get 413.",
)
@click.option("--threads", type=int, help="torch threads (default: every core).")
@click.option(
    "--lm-backend",
    type=click.Choice(["auto", "llama.cpp", "transformers"]),
    default="auto",
    show_default=True,
    help="How causal LMs generate; auto: llama.cpp when `make setup` built it.",
)
@click.option(
    "--lm-slots",
    default=4,
    show_default=True,
    type=int,
    help="llama.cpp: requests generated side by side (batched) per model.",
)
@click.option(
    "--lm-context",
    default=4096,
    show_default=True,
    type=int,
    help="llama.cpp: tokens of one request, prompt and answer (at most the model's context).",
)
@click.option("--workers", default=1, show_default=True, type=int, help="Worker processes.")
@click.option("--access-log", is_flag=True, help="Log every request.")
@click.option(
    "--ui/--no-ui",
    default=True,
    show_default=True,
    help="The web page at /ui (one worker only: its sessions live in the process).",
)
@click.option(
    "--ui-concurrency",
    type=int,
    help="Page events of one kind (chats, predictions) run at once; the rest queue "
    "[default: 4 per core, at least 8].",
)
@click.option(
    "--mlflow-ui",
    default="http://127.0.0.1:5000",
    show_default=True,
    help="The MLflow UI the page's run links open (`make ui`); empty: no links.",
)
@params_option
def serve(
    host: str,
    port: int,
    tasks: tuple[str, ...],
    alias: str,
    lms: tuple[str, ...],
    token_file: str | None,
    insecure: bool,
    metrics_public: bool,
    reload_interval: float,
    max_batch: int,
    max_wait_ms: float,
    max_tokens: int,
    max_image_pixels: int,
    threads: int | None,
    lm_backend: str,
    lm_slots: int,
    lm_context: int,
    workers: int,
    access_log: bool,
    ui: bool,
    ui_concurrency: int | None,
    mlflow_ui: str,
    params_path: str,
) -> None:
    """Serve every task's model by alias over HTTP (typed predict routes, OpenAI-compatible
    LLM routes, /metrics) and a web page at /ui, swapping in a new version when the alias
    moves. The API token comes from REPROLAB_API_TOKEN or --token-file."""
    with user_errors():
        from pathlib import Path

        from reprolab.serve.settings import ServeSettings, parse_lms, read_token

        settings = ServeSettings(
            host=host,
            port=port,
            tasks=tasks,
            alias=alias,
            lms=parse_lms(lms),
            params_path=Path(params_path),
            token=read_token(Path(token_file) if token_file else None),
            insecure=insecure,
            metrics_public=metrics_public,
            reload_interval=reload_interval,
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            max_tokens=max_tokens,
            max_image_pixels=max_image_pixels,
            threads=threads,
            lm_backend=lm_backend,
            lm_slots=lm_slots,
            lm_context=lm_context,
            ui=ui and workers == 1,
            ui_concurrency=ui_concurrency,
            mlflow_ui=mlflow_ui.strip() or None,
        )
        if ui and workers > 1:
            click.echo("serve: --workers > 1 serves the API only (the web page needs one worker)")
        settings.check()
        from reprolab.serve.app import run

        run(settings, workers=workers, access_log=access_log)
