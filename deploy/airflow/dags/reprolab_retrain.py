"""Retrain a reprolab task on a schedule, through the project's CLI (docs/airflow.md).

Four tasks, validate >> train >> gate >> notify, each one `reprolab retrain TASK --step STEP`
run by the repository's own venv (`<repo>/.venv/bin/reprolab`) in the repository folder, so
Airflow (in its own venv, `make airflow-setup`) never imports the project. Exit status 0 is
success, also when the gate keeps the current model; anything else fails the task, and the
failure is posted to Slack through the connection `reprolab_slack`.

Airflow Variables (all optional):
  reprolab_repo              the repository folder (default: env REPROLAB_REPO, else the
                             folder three levels above this file: the repo, used in place)
  reprolab_retrain_schedule  cron or preset (default "@weekly"), read when the file is parsed
  reprolab_retrain_data      the default of the `data` param: a folder laid out like the
                             data mirror (default empty: the upstream source again)
Connection `reprolab_slack` (a Slack incoming webhook), e.g. as an environment variable:
  AIRFLOW_CONN_REPROLAB_SLACK='{"conn_type": "slackwebhook",
                                "password": "https://hooks.slack.com/services/T0/B0/XXX"}'
The `notify` step posts its summary itself to env REPROLAB_SLACK_WEBHOOK: the tasks inherit
the worker's environment, so set it there.

Try it: `airflow dags test reprolab_retrain`, or trigger it with params in the UI.
"""

from __future__ import annotations

import os
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
from airflow.sdk import Param, Variable, dag, task

DEFAULT_REPO = os.environ.get("REPROLAB_REPO") or str(Path(__file__).resolve().parents[3])

# Any failed task, named with its log; rendered with the failing task's context.
ON_FAILURE = SlackWebhookNotifier(
    slack_webhook_conn_id="reprolab_slack",
    text=(
        ":x: reprolab retrain of {{ params.task }} failed: DAG {{ dag.dag_id }}, "
        "task {{ ti.task_id }}, try {{ ti.try_number }}, run {{ run_id }}. Log: {{ ti.log_url }}"
    ),
)


def retrain_command(step: str, params: dict[str, Any]) -> str:
    """The shell line for one step; every step gets the same flags, as `retrain` without
    --step would, and runs from the repository folder (dvc and git work relative to it)."""
    repo = Variable.get("reprolab_repo", default=DEFAULT_REPO)
    args = [f"{repo}/.venv/bin/reprolab", "retrain", params["task"], "--step", step]
    if params["data"]:
        args += ["--data", params["data"]]
    if params["commit"]:
        args.append("--commit")
    return f"cd {shlex.quote(repo)} && " + shlex.join(args)


def cli_step(step: str) -> Any:
    """One step as a bash task; skip_on_exit_code=None: every non-zero exit of the CLI is a
    failure (by default 99 would mark the task skipped)."""

    @task.bash(task_id=step, skip_on_exit_code=None)
    def run(params: dict[str, Any]) -> str:
        return retrain_command(step, params)

    return run()


@dag(
    dag_id="reprolab_retrain",
    schedule=Variable.get("reprolab_retrain_schedule", default="@weekly"),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # the CLI also refuses a second retrain in the same repository
    default_args={"retries": 0, "on_failure_callback": ON_FAILURE},
    params={
        "task": Param("wine-quality", type="string", minLength=1, description="reprolab task"),
        "data": Param(
            Variable.get("reprolab_retrain_data", default=""),
            type="string",
            description="new data drop folder; empty: the upstream source again",
        ),
        "commit": Param(True, type="boolean", description="commit on retrain/TASK/DATE"),
    },
    tags=["reprolab"],
    doc_md=__doc__,
)
def reprolab_retrain() -> None:
    """validate >> train >> gate >> notify."""
    validate, train, gate, notify = (cli_step(s) for s in ("validate", "train", "gate", "notify"))
    validate >> train >> gate >> notify


reprolab_retrain()
