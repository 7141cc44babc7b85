"""`reprolab registry` (list, promote, rollback, history, verify), `runs` and `tag`: the
MLflow registry and runs by hand."""

from __future__ import annotations

import click

from reprolab.cli._common import JSON_OPTION, json_out, spec_of
from reprolab.cli_support import params_option, registered_choice, task_choice, user_errors


@click.group()
def registry() -> None:
    """List, promote and roll back registered model versions; verify their history."""


@registry.command("list")
@click.argument("task")
@JSON_OPTION
@params_option
def registry_list(task: str, as_json: bool, params_path: str) -> None:
    """Versions of TASK: model, valid (gate) and test metric, status, aliases, experiment."""
    with user_errors():
        from dataclasses import asdict

        from reprolab.core import registry_report

        spec = spec_of(task, params_path)
        if as_json:
            rows = [asdict(v) for v in registry_report.versions(task, spec)]
            json_out([{("valid" if k == "value" else k): v for k, v in r.items()} for r in rows])
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
        if spec.baseline is not None:
            click.echo(
                f"baseline: {spec.baseline.name}, valid {spec.metric} {spec.baseline.score:.4f} "
                "(a version must beat it to become candidate or champion)"
            )


_REASON = click.option("--reason", required=True, help="Why the alias moves (kept in history).")
_FORCE = click.option(
    "--force",
    is_flag=True,
    help="Move it even where the gate refuses (below the threshold or the baseline, cut "
    "short); the history records the override.",
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

        spec = spec_of(task, params_path)
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

        spec = spec_of(task, params_path)
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


@click.command()
@click.argument("task")
@click.option("--limit", default=20, show_default=True)
@JSON_OPTION
@params_option
def runs(task: str, limit: int, as_json: bool, params_path: str) -> None:
    """Recent training runs of TASK: model, test metrics, git commit, DVC experiment."""
    with user_errors():
        from reprolab.core.tracking import client
        from reprolab.ops.runs import format_metrics, list_runs

        experiments = {e.name for e in client().search_experiments(max_results=1000)}
        task_choice(task, params_path, experiments - {"Default"})
        if as_json:
            json_out(list_runs(task, limit))
            return
        for r in list_runs(task, limit):
            shown = format_metrics(r["metrics"])
            click.echo(
                f"{r['date']}  {r['run_id']}  {r['model']:<14} {shown}  "
                f"commit {r['commit']} {r['exp']}"
            )


@click.command()
@click.argument("task")
@click.option("--run-id", help="The MLflow run to tag (default: the champion's).")
@click.option("--version", help="Like 1.0 (default: one minor above the last tag).")
@params_option
def tag(task: str, run_id: str | None, version: str | None, params_path: str) -> None:
    """Annotated git tag for a milestone of TASK, e.g. nuclei-v1.0-dice93."""
    with user_errors():
        from reprolab.ops.tagging import create_tag

        name, message = create_tag(task, spec_of(task, params_path), run_id, version)
        click.echo(f"tag {name}\n{message}", nl=False)
