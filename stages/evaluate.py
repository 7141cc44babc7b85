"""evaluate@<model>: test-split metrics of the saved model, to dvclive and the MLflow run."""

import click

from reprolab.cli_support import choice, load, params_option, user_errors


@click.command()
@click.argument("model")
@params_option
def main(model: str, params_path: str) -> None:
    """Evaluate MODEL on its dataset's test split."""
    with user_errors():
        from reprolab.params import MODEL_SECTIONS
        from reprolab.pipeline.evaluate import evaluate

        params = load(params_path, only=model)
        # only models of a task are scored (pretrain/imports bases have none)
        scored = [n for s in MODEL_SECTIONS for n, m in getattr(params, s).items() if m.task]
        choice("model", model, scored)
        metrics = evaluate(model, params)
        shown = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        click.echo(f"{model}: {shown}")


if __name__ == "__main__":
    main()
