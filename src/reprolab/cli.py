"""`reprolab`: the registry by hand (list, promote, rollback, history), past runs, milestone tags,
the DVC remote, review, retraining on new data, and `doctor` (what this machine can run)."""

from __future__ import annotations

from pathlib import Path

import click

from reprolab import __version__
from reprolab.cli_support import (
    choice,
    load,
    params_option,
    registered_choice,
    task_choice,
    user_errors,
)


@click.group()
@click.version_option(__version__, prog_name="reprolab")
def main() -> None:
    """reprolab: reproducible experiments on DVC, MLflow and dvclive."""


@main.group()
def registry() -> None:
    """List, promote and roll back registered model versions; verify their history."""


_JSON = click.option("--json", "as_json", is_flag=True, help="One JSON document, for scripts.")


def _json_out(rows: list[dict]) -> None:
    """Rows as a JSON list on stdout; NaN (a metric never scored) becomes null."""
    import json
    import math

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return None if isinstance(value, float) and not math.isfinite(value) else value

    click.echo(json.dumps(clean(rows), indent=1, allow_nan=False))


@registry.command("list")
@click.argument("task")
@_JSON
@params_option
def registry_list(task: str, as_json: bool, params_path: str) -> None:
    """Versions of TASK: model, valid (gate) and test metric, status, aliases, experiment."""
    with user_errors():
        from dataclasses import asdict

        from reprolab.core import registry_report

        spec = _spec(task, params_path)
        if as_json:
            rows = [asdict(v) for v in registry_report.versions(task, spec)]
            _json_out([{("valid" if k == "value" else k): v for k, v in r.items()} for r in rows])
            return
        click.echo(
            f"{'version':>7}  {'model':<14} {'valid':>8} {'test':>8}  {'status':<11} "
            f"{'aliases':<20} experiment"
        )
        for v in registry_report.versions(task, spec):
            click.echo(
                f"{v.version:>7}  {v.model:<14} {v.value:>8.4f} {v.test:>8.4f}  {v.status:<11} "
                f"{', '.join(v.aliases):<20} {v.dvc_exp or '-'}"
            )


_REASON = click.option("--reason", required=True, help="Why the alias moves (kept in history).")
_FORCE = click.option(
    "--force",
    is_flag=True,
    help="Move it even where the gate refuses (below the threshold, cut short); the history "
    "records the override.",
)


@registry.command()
@click.argument("task")
@click.argument("version")
@_REASON
@_FORCE
@params_option
def promote(task: str, version: str, reason: str, force: bool, params_path: str) -> None:
    """Make VERSION of TASK the champion (the old champion is archived)."""
    with user_errors():
        from reprolab.core import registry as reg

        spec = _spec(task, params_path)
        _moved(task, spec, reg.promote(task, spec, version, reg.Authority.person(reason), force))


@registry.command()
@click.argument("task")
@click.option("--to", "version", help="The version to restore (default: the previous champion).")
@_REASON
@_FORCE
@params_option
def rollback(task: str, version: str | None, reason: str, force: bool, params_path: str) -> None:
    """Restore the previous champion of TASK (or --to VERSION), if the gate would still let it
    be champion; a rollback can be undone by another rollback."""
    with user_errors():
        from reprolab.core import registry as reg

        spec = _spec(task, params_path)
        who = reg.Authority.person(reason)
        _moved(task, spec, reg.rollback(task, spec, who, to=version, force=force))


@registry.command()
@click.argument("task")
@params_option
def history(task: str, params_path: str) -> None:
    """Every alias move of TASK, oldest first: when, alias, from -> to, forced or legacy, by
    whom, why (control characters shown escaped, so each move is one line)."""
    with user_errors():
        from reprolab.core import registry_history

        registered_choice(task, None, params_path)  # a task left params.yaml keeps its history
        for entry in registry_history.history(task):
            click.echo(registry_history.line(entry))


@registry.command()
@click.argument("task", required=False)
@params_option
def verify(task: str | None, params_path: str) -> None:
    """Check that the alias history of TASK (default: every registered model) is whole: no
    entry edited, deleted, reordered or inserted. One line per task; exit 1 if any is broken."""
    with user_errors():
        from reprolab.core import registry_history

        if task is not None:
            registered_choice(task, None, params_path)
        names = [task] if task else registry_history.tasks()
        verdicts = [registry_history.verify(name) for name in names]
        if not verdicts:
            click.echo("no registered model in this MLflow store: no history to verify")
        for verdict in verdicts:
            click.echo(verdict.line)
        if not all(v.intact for v in verdicts):
            raise SystemExit(1)


def _moved(task: str, spec, events: list[str]) -> None:
    """Print the events and rewrite the task's registry files."""
    from reprolab.ops.registry_files import rewrite

    for event in events:
        click.echo(event)
    note = rewrite(task, spec)
    if note:
        click.echo(note)


@main.command()
@click.argument("task")
@click.option("--limit", default=20, show_default=True)
@_JSON
@params_option
def runs(task: str, limit: int, as_json: bool, params_path: str) -> None:
    """Recent training runs of TASK: model, test metrics, git commit, DVC experiment."""
    with user_errors():
        from reprolab.core.tracking import client
        from reprolab.ops.runs import format_metrics, list_runs

        experiments = {e.name for e in client().search_experiments(max_results=1000)}
        task_choice(task, params_path, experiments - {"Default"})
        if as_json:
            _json_out(list_runs(task, limit))
            return
        for r in list_runs(task, limit):
            shown = format_metrics(r["metrics"])
            click.echo(
                f"{r['date']}  {r['run_id']}  {r['model']:<14} {shown}  "
                f"commit {r['commit']} {r['exp']}"
            )


@main.command()
@click.option("--rev", default="main", show_default=True, help="Baseline git revision.")
@click.option(
    "--exp",
    "experiments",
    multiple=True,
    help="Experiment to review (repeatable); default: the workspace.",
)
def review(rev: str, experiments: tuple[str, ...]) -> None:
    """Experiments, metrics/params diffs and plots against REV, in reports/review.{md,html}."""
    with user_errors():
        from reprolab.ops.review import review as write_review

        click.echo(f"review -> {write_review(rev, list(experiments))}")


@main.command()
@click.option("--plant", "plant_file", type=click.Path(dir_okay=False), help="plant as YAML")
@click.option("--kind", type=click.Choice(["fopdt", "sopdt", "integrating"]))
@click.option("--gain", type=float)
@click.option("--delay", type=float, help="dead time (s)")
@click.option("--time-constant", type=float, default=1.0, show_default=True)
@click.option("--damping", type=float, default=0.5, show_default=True)
@click.option("--natural-frequency", type=float, default=1.0, show_default=True)
@click.option("--model", default="models:/pid-control@champion", show_default=True)
@click.option("--dataset", default="control", show_default=True, help="loop settings from")
@click.option("--out", type=click.Path(file_okay=False), default="reports/pid", show_default=True)
@params_option
def pid(
    plant_file,
    kind,
    gain,
    delay,
    time_constant,
    damping,
    natural_frequency,
    model,
    dataset,
    out,
    params_path,
) -> None:
    """PID gains for one plant from the champion PIDNet, its simulated response against
    Ziegler–Nichols and SIMC, and a plot (PLANT as YAML, or --kind/--gain/--delay...)."""
    with user_errors():
        from pathlib import Path

        from reprolab.core.errors import DataError
        from reprolab.core.io import atomic_write_json
        from reprolab.workloads.control import gains as pidlib
        from reprolab.workloads.control.data import loop_of
        from reprolab.workloads.control.plants import Plant

        params = load(params_path)
        controls = [n for n, d in params.datasets.items() if d.kind == "control"]
        loop = loop_of(params.datasets[choice("dataset", dataset, controls)])
        if plant_file:
            plant = pidlib.plant_from_yaml(Path(plant_file))
        elif kind and gain is not None and delay is not None:
            plant = Plant(kind, gain, delay, time_constant, damping, natural_frequency)
        else:
            raise DataError("give --plant FILE.yaml, or --kind, --gain and --delay")
        result = pidlib.tune(plant, loop, model)
        folder = Path(out)
        figure = pidlib.plot(result, loop, folder / f"{plant.kind}-response.png")
        summary = {k: result[k] for k in ("plant", "features", "gains", "metrics")}
        atomic_write_json(folder / f"{plant.kind}-response.json", summary)
        click.echo(f"{'controller':<16} {'Kp':>8} {'Ki':>8} {'Kd':>8} {'IAE':>8} {'overshoot':>10}")
        for name, g in result["gains"].items():
            m = result["metrics"][name]
            click.echo(
                f"{name:<16} {g['kp']:>8.3f} {g['ki']:>8.3f} {g['kd']:>8.3f} "
                f"{m['iae']:>8.2f} {m['overshoot']:>9.1f}%"
            )
        click.echo(f"plot: {figure}  summary: {folder / (plant.kind + '-response.json')}")


@main.command()
@click.argument("task")
@click.argument("texts", nargs=-1, required=True)
@click.option("--alias", default="champion", show_default=True, help="Registry alias to use.")
@click.option("--model", "model_dir", help="A model directory or URI instead of the alias.")
@params_option
def predict(
    task: str, texts: tuple[str, ...], alias: str, model_dir: str | None, params_path: str
) -> None:
    """Label each of TEXTS with TASK's model (e.g. nsmc-sentiment): one JSON line per text."""
    with user_errors():
        import json

        from reprolab.workloads.sentiment.api import SentimentPredictor

        if model_dir:  # the labels still come from the task's params
            task_choice(task, params_path)
        else:
            registered_choice(task, alias, params_path)
        predictor = SentimentPredictor(
            alias=alias, task=task, model=model_dir, params_path=params_path
        )
        for result in predictor.predict(list(texts), return_probs=True):
            click.echo(json.dumps(result, ensure_ascii=False))


@main.command()
@click.argument("task")
@click.option("--run-id", help="The MLflow run to tag (default: the champion's).")
@click.option("--version", help="Like 1.0 (default: one minor above the last tag).")
@params_option
def tag(task: str, run_id: str | None, version: str | None, params_path: str) -> None:
    """Annotated git tag for a milestone of TASK, e.g. nuclei-v1.0-dice93."""
    with user_errors():
        from reprolab.ops.tagging import create_tag

        name, message = create_tag(task, _spec(task, params_path), run_id, version)
        click.echo(f"tag {name}\n{message}", nl=False)


@main.command()
@click.argument("target", required=False)
@click.argument("version", required=False)
@click.option("--champions", is_flag=True, help="Reproduce every task's champion.")
@click.option("--tolerance", type=float, help="Largest metric difference that counts as equal.")
@click.option("--keep", is_flag=True, help="Keep the temporary worktree and print its path.")
@params_option
def reproduce(
    target: str | None,
    version: str | None,
    champions: bool,
    tolerance: float | None,
    keep: bool,
    params_path: str,
) -> None:
    """Rebuild a registered version (TASK VERSION, models:/TASK/VERSION, models:/TASK@ALIAS or
    TASK@ALIAS) from its lineage in a temporary git worktree and compare it with the registered
    one. Exit 0 identical or metrics equal within tolerance, 1 different, 2 not reproducible."""
    import sys

    with user_errors():
        from reprolab.ops import reproduce as rep

        err = lambda line: click.echo(line, err=True)  # noqa: E731
        if champions:
            tasks = list(load(params_path).registry) if Path(params_path).is_file() else []
            sys.exit(rep.champions(tasks, tolerance, keep, click.echo, err))
        if target is None:
            raise click.UsageError("give TASK VERSION, a models:/ URI or --champions")
        try:
            parsed = rep.parse_target(target, version)
        except rep.CannotReproduce as why:
            raise click.UsageError(str(why)) from None
        sys.exit(rep.reproduce(parsed, tolerance, keep, click.echo, err))


@main.group()
def data() -> None:
    """Data versions: move a dataset to new data on purpose."""


@data.command("pin")
@click.argument("dataset")
@click.option(
    "--data",
    "source",
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder laid out like the data mirror (default: back to the upstream source).",
)
@params_option
def data_pin(dataset: str, source: Path | None, params_path: str) -> None:
    """Check DIR as prepare would (one line naming file, row and column on a bad cell), track
    it with DVC as data/drops/DATASET and pin its md5 in params.yaml; the next `dvc repro`
    prepares from it. `reprolab retrain` does this and then retrains and gates."""
    with user_errors():
        import tempfile

        from reprolab.ops.retrain import drop

        params = load(params_path)
        choice("dataset", dataset, params.datasets)
        with tempfile.TemporaryDirectory() as work:
            drop.check(dataset, params.datasets[dataset], params.seed, source, Path(work))
        pinned = drop.record(dataset, source) if source is not None else None
        drop.pin(Path(params_path), dataset, pinned)
        if pinned is None:
            click.echo(f"datasets.{dataset}: the upstream source (pinned sha256) again")
        else:
            click.echo(
                f"datasets.{dataset}.drop: {pinned['path']} (md5 {pinned['md5']}); commit "
                f"params.yaml and {pinned['path']}.dvc, then `dvc repro`"
            )


@main.command()
@click.argument("task")
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    help="A new data drop: a folder laid out like the data mirror (default: the upstream "
    "source again).",
)
@click.option("--commit", is_flag=True, help="Commit data and results on retrain/TASK/DATE.")
@click.option("--notify", "notify_url", help="Slack-compatible webhook [REPROLAB_SLACK_WEBHOOK].")
@click.option("--mlflow-ui", envvar="REPROLAB_MLFLOW_UI", help="MLflow UI address for run links.")
@click.option(
    "--step",
    type=click.Choice(["validate", "train", "gate", "notify"]),
    help="Run one step (an orchestrator runs them in this order); failures are then left to "
    "the orchestrator to announce.",
)
@params_option
def retrain(
    task: str,
    data: Path | None,
    commit: bool,
    notify_url: str | None,
    mlflow_ui: str | None,
    step: str | None,
    params_path: str,
) -> None:
    """Retrain TASK on new data: check the drop as prepare does, record it as a DVC-tracked
    data version, rerun the task's stages, let the gate decide on validation (promote only
    by registry.TASK.min_improvement, from a committed workspace: --commit), report drift,
    notify. One retrain at a time per repository."""
    with user_errors():
        from reprolab.ops.retrain import steps

        choice("task", task, load(params_path).registry)
        opts = steps.Options(task, data, commit, notify_url, mlflow_ui, Path(params_path))
        state = steps.run(opts, (step,) if step else steps.STEPS)
        if state.get("branch") and (step in (None, "gate")):
            click.echo(
                f"retrain: committed on {state['branch']}; merge it to ship: git checkout main "
                f"&& git merge --ff-only {state['branch']}"
            )


@main.group()
def remote() -> None:
    """Configure and probe the DVC remote on S3 (`make remote-s3`, `make push/pull`)."""


@remote.command("s3")
@click.argument("bucket")
@click.option("--name", default="s3", show_default=True, help="DVC remote name.")
@click.option("--prefix", default="dvc", show_default=True, help="Path inside the bucket.")
@click.option("--endpoint", help="S3-compatible endpoint (MinIO, lakeFS gateway, ...).")
@click.option("--region", help="Bucket region.")
@click.option("--profile", help="AWS profile (written to .dvc/config.local).")
@click.option("--access-key-id", envvar="REPROLAB_S3_ACCESS_KEY_ID", help="To .dvc/config.local.")
def remote_s3(bucket: str, name: str, prefix: str, **options: str | None) -> None:
    """Make s3://BUCKET/PREFIX the default DVC remote; secrets only to .dvc/config.local
    (mode 0600). The secret key is never an option: it is read from
    REPROLAB_S3_SECRET_ACCESS_KEY (or AWS_SECRET_ACCESS_KEY), else asked for, hidden."""
    import os

    with user_errors():
        from reprolab.core.paths import workspace_root
        from reprolab.ops.remote import configure_s3

        secret = os.environ.get("REPROLAB_S3_SECRET_ACCESS_KEY") or (
            os.environ.get("AWS_SECRET_ACCESS_KEY") if options.get("access_key_id") else None
        )
        if options.get("access_key_id") and not secret and click.get_text_stream("stdin").isatty():
            secret = click.prompt("secret access key", hide_input=True)
        options["secret_access_key"] = secret or None
        for line in configure_s3(workspace_root(), bucket, name=name, prefix=prefix, **options):
            click.echo(line)


@remote.command("check")
@click.argument("name", required=False)
@click.option("--timeout", default=5.0, show_default=True, help="Seconds per request.")
def remote_check(name: str | None, timeout: float) -> None:
    """Probe the S3 remote NAME (default remote if omitted) with one request."""
    with user_errors():
        from reprolab.core.paths import workspace_root
        from reprolab.ops.remote import probe

        click.echo(probe(workspace_root(), name, timeout=timeout))


def _spec(task: str, params_path: str):
    params = load(params_path)
    return params.registry[choice("task", task, params.registry)]


@main.command()
@click.argument("prompt")
@click.option("--model-dir", type=click.Path(), help="A Hugging Face causal-LM directory.")
@click.option("--run-id", help="An MLflow run whose logged model to use.")
@click.option("--alias", default="champion", show_default=True, help="Registry alias.")
@click.option("--task", default="llm-sft", show_default=True, help="Registered model (task).")
@click.option("--max-new-tokens", default=200, show_default=True, type=int)
@click.option("--temperature", default=0.8, show_default=True, type=float, help="0: greedy.")
@click.option("--top-k", default=50, show_default=True, type=int, help="0: no top-k cut.")
@click.option("--top-p", default=1.0, show_default=True, type=float)
@click.option("--seed", default=None, type=int, help="Sampling seed (default: random).")
@params_option
def generate(
    prompt: str,
    model_dir: str | None,
    run_id: str | None,
    alias: str,
    task: str,
    max_new_tokens: int,
    temperature: float,
    top_k: int,
    top_p: float,
    seed: int | None,
    params_path: str,
) -> None:
    """Continue PROMPT with a causal LM, streaming tokens as they come: by default
    models:/<task>@<alias>; --model-dir or --run-id pick another model."""
    with user_errors():
        from reprolab.lm import generation

        sampling = generation.Sampling(max_new_tokens, temperature, top_k, top_p, seed)
        sampling.check()
        if not prompt.strip():
            raise generation.GenerationError("prompt: empty (give some text to continue)")
        if model_dir is None and run_id is None:  # the registry's model: task and alias count
            registered_choice(task, alias, params_path)
        directory = generation.locate(model_dir=model_dir, run_id=run_id, alias=alias, task=task)
        model, tokenizer = generation.load(directory)
        pieces = generation.stream(model, tokenizer, prompt, sampling)  # checks the prompt
        click.echo(prompt, nl=False)
        for piece in pieces:
            click.echo(piece, nl=False)
        click.echo()


@main.command()
def doctor() -> None:
    """What this machine can run: Python, torch (CPU/CUDA build), GPU and CPU bf16, bitsandbytes,
    disk, the DVC remote, the MLflow store, the data mirror. Exit 1 if a required check fails."""
    import sys

    from reprolab.core.paths import workspace_root
    from reprolab.ops.doctor import run

    sys.exit(run(workspace_root(), click.echo))


@main.command()
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
            ui=ui and workers == 1,
            ui_concurrency=ui_concurrency,
            mlflow_ui=mlflow_ui.strip() or None,
        )
        if ui and workers > 1:
            click.echo("serve: --workers > 1 serves the API only (the web page needs one worker)")
        settings.check()
        from reprolab.serve.app import run

        run(settings, workers=workers, access_log=access_log)
