"""evaluate@<model>: test-split metrics of the saved model, to dvclive and the MLflow run."""

import click

from reprolab.cli_support import load, params_option, user_errors


@click.command()
@click.argument("model")
@params_option
def main(model: str, params_path: str) -> None:
    """Evaluate MODEL on its dataset's test split."""
    with user_errors():
        from reprolab.pipeline.evaluate import evaluate

        metrics = evaluate(model, load(params_path))
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        click.echo(f"{model}: {shown}")


if __name__ == "__main__":
    main()
