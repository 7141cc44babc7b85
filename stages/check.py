"""check: validate the whole params.yaml, and the data files the datasets will read, before
any other stage runs.

DVC deletes a stage's outputs before it runs the stage's command, so a bad value found by
the stage itself has already cost its outputs. Beyond the schema (strict types, bounds,
ranges, splits large enough, each torch model's estimated size under `limits`), it checks
what the file names on this machine: packages and model sources, and each infer input's
first rows. Every prepare@ and import@ stage (and so every stage) depends on this stage's
output: a bad value, or a mirror file or data drop that no longer matches its pin, stops
`dvc repro` and `dvc exp run` here, with one line naming the key or file, and nothing else
is touched. The stage always runs (a mirror lies outside the repository, where DVC cannot
see it change); its output never changes (its hash must not rerun the pipeline): only the
check's verdict matters."""

from pathlib import Path

import click

from reprolab.cli_support import load, params_option, user_errors

STAMP = Path("reports/params-check.txt")
TEXT = "params.yaml passed stages/check.py: every section, key, reference and bound\n"
# the stamp's text stays as it was: a new text would rerun every stage after this one


@click.command()
@params_option
def main(params_path: str) -> None:
    """Validate every key of params.yaml and the data sources; write the stamp the root
    stages depend on."""
    with user_errors():
        params = load(params_path)
        from reprolab.pipeline.check import check_machine, check_sources

        check_machine(params, params_path)
        sources = check_sources(params)
        STAMP.parent.mkdir(parents=True, exist_ok=True)
        if not STAMP.is_file() or STAMP.read_text() != TEXT:
            STAMP.write_text(TEXT)
        click.echo(f"check: {params_path} is valid")
        for line in sources:
            click.echo(f"check: {line}")


if __name__ == "__main__":
    main()
