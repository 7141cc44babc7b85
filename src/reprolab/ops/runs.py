"""List a task's training runs (model, metrics, git commit, date) and pick one, as the
original wine and segmentation projects' `infer.py --interactive` did."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from reprolab.core.errors import LineageError
from reprolab.core.tracking import TAG, client


def list_runs(task: str, limit: int = 20) -> list[dict]:
    mlflow_client = client()
    experiment = mlflow_client.get_experiment_by_name(task)
    if experiment is None:
        raise LineageError(f"{task}: no MLflow experiment of that name (train a model first)")
    runs = mlflow_client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{TAG}stage` = 'train' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
        max_results=limit,
    )
    return [
        {
            "run_id": r.info.run_id,
            "model": r.data.tags.get(TAG + "model", "?"),
            "metrics": {
                k: v
                for k, v in r.data.metrics.items()
                if k.startswith("test_") and "/" not in k  # overall, not per group
            },
            "commit": r.data.tags.get(TAG + "git_commit", "?")[:10],
            "exp": r.data.tags.get(TAG + "dvc_exp", ""),
            "date": datetime.fromtimestamp(r.info.start_time / 1000, UTC).strftime(
                "%Y-%m-%d %H:%M"
            ),
        }
        for r in runs
    ]


def format_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k.removeprefix('test_')}={v:.4f}" for k, v in sorted(metrics.items()))


def choose_run(task: str) -> str:
    runs = list_runs(task)
    if not runs:
        raise LineageError(f"{task}: no finished training runs")
    for i, run in enumerate(runs, 1):
        click.echo(
            f"{i:>3}. {run['date']}  {run['model']:<14} {format_metrics(run['metrics']):<40} "
            f"commit {run['commit']} {run['exp']}  {run['run_id']}"
        )
    index = click.prompt("run number", type=click.IntRange(1, len(runs)), default=1)
    return runs[index - 1]["run_id"]
