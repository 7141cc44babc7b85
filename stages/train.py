"""train@<model>, pretrain@<name>, import@<name> (and finetune@<name>, before evaluate.py):
fit one model, save it to models/<name>/, log to dvclive and MLflow."""

import click

from reprolab.cli_support import choice, load, params_option, user_errors


@click.command()
@click.argument("model")
@params_option
def main(model: str, params_path: str) -> None:
    """Train MODEL (a key of `models`, `pretrain`, `imports` or `finetune` in params.yaml)."""
    with user_errors():
        from reprolab.params import MODEL_SECTIONS
        from reprolab.pipeline.train import train

        params = load(params_path, only=model)
        choice("model", model, (n for s in MODEL_SECTIONS for n in getattr(params, s)))
        info = train(model, params)
        if not info:  # a torchrun rank other than 0
            return
        click.echo(f"{model}: trained in {info['fit_seconds']:.1f}s, MLflow run {info['run_id']}")


if __name__ == "__main__":
    main()
