"""infer@<task>: batch predictions from the champion, or from any past run's exact model."""

import click

from reprolab.cli_support import choice, load, params_option, user_errors


@click.command()
@click.argument("task")
@click.option("--run-id", help="Predict with the exact model of this MLflow run.")
@click.option("--interactive", is_flag=True, help="Choose the run from a list.")
@click.option(
    "--input",
    "input_csv",
    type=click.Path(),
    help="CSV of inputs; for image tasks an image or a folder of images.",
)
@click.option("--output", type=click.Path(dir_okay=False), help="Where to write predictions.")
@params_option
def main(
    task: str,
    run_id: str | None,
    interactive: bool,
    input_csv: str | None,
    output: str | None,
    params_path: str,
) -> None:
    """Predict for TASK (a key of `infer` in params.yaml)."""
    with user_errors():
        from reprolab.pipeline.infer import infer

        params = load(params_path, only=task)
        choice("task", task, params.infer)
        if interactive:
            from reprolab.ops.runs import choose_run

            run_id = choose_run(task)
        path, used = infer(task, params, run_id, input_csv, output)
        click.echo(f"{task}: predictions by {used} -> {path}")


if __name__ == "__main__":
    main()
