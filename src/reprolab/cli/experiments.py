"""Commands over experiments and data: `review`, `reproduce`, `data pin`, `retrain`."""

from __future__ import annotations

from pathlib import Path

import click

from reprolab.cli_support import choice, load, params_option, user_errors


@click.command()
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


@click.command()
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


@click.group()
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


@click.command()
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
