"""hpo@<model>: run or resume the model's Optuna study (a stub for models without one)."""

import click

from reprolab.cli_support import choice, load, params_option, user_errors


@click.command()
@click.argument("model")
@params_option
def main(model: str, params_path: str) -> None:
    """Tune MODEL with its `hpo.<model>` section of params.yaml (if any)."""
    with user_errors():
        from reprolab.pipeline.hpo import hpo

        params = load(params_path, only=model)
        choice("model", model, params.models)
        report = hpo(model, params)
        if report["study"] is None:
            click.echo(f"{model}: no hpo.{model} section, nothing to tune")
            return
        best, counts = report["best"], report["counts"]
        click.echo(
            f"{model}: study {report['study']}: best {report['metric']} {best['value']:.4f} "
            f"(trial {best['number']}); {counts}; ran {report['ran_now']} now"
        )
        click.echo(f"{model}: applied to train: {report['applied'] or 'nothing (use_hpo false)'}")


if __name__ == "__main__":
    main()
