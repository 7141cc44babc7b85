"""register@<task>: register evaluated models and apply the candidate/champion gate."""

import click

from reprolab.cli_support import choice, load, params_option, user_errors


@click.command()
@click.argument("task")
@click.option("--manual", is_flag=True, help="Register one chosen run instead of the pipeline's.")
@click.option("--run-id", help="With --manual: the MLflow run to register.")
@click.option("--model", "model_name", help="With --manual: the model name to record.")
@click.option("--force", is_flag=True, help="With --manual: register even below the threshold.")
@click.option("--reason", default="", help="With --manual: why (kept in the alias history).")
@params_option
def main(
    task: str,
    manual: bool,
    run_id: str | None,
    model_name: str | None,
    force: bool,
    reason: str,
    params_path: str,
) -> None:
    """Register the models of TASK (a key of `registry` in params.yaml)."""
    with user_errors():
        params = load(params_path, only=f"registry.{task}")
        choice("task", task, params.registry)
        if manual:
            from reprolab.core import registry

            if not run_id:
                raise click.UsageError("--manual needs --run-id")
            who = registry.Authority.person(reason or f"registered run {run_id} by hand")
            events = registry.register_run(
                task, params.registry[task], run_id, model_name, who, strict=True, force=force
            )
        else:
            from reprolab.pipeline.register import register

            _, events = register(task, params)
        for event in events:
            click.echo(event)


if __name__ == "__main__":
    main()
