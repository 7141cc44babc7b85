"""prepare@<dataset>: fetch (URL + sha256, or REPROLAB_DATA_MIRROR), validate, split."""

import click

from reprolab.cli_support import choice, load, params_option, user_errors


@click.command()
@click.argument("dataset")
@params_option
def main(dataset: str, params_path: str) -> None:
    """Prepare DATASET (a key of `datasets` in params.yaml) into data/processed/DATASET."""
    with user_errors():
        from reprolab.pipeline.prepare import prepare

        params = load(params_path, only=dataset)
        choice("dataset", dataset, params.datasets)
        summary = prepare(dataset, params)
        click.echo(f"{dataset}: {summary['rows']} rows per split")


if __name__ == "__main__":
    main()
