"""check: validate the whole params.yaml before any other stage runs.

DVC deletes a stage's outputs before it runs the stage's command, so a bad value found by
the stage itself has already cost its outputs. Every prepare@ and import@ stage (and so
every stage) depends on this stage's output: a bad value stops `dvc repro` and `dvc exp run`
here, with one line naming the key, and nothing else is touched. The output never changes
(its hash must not rerun the pipeline); only the check's verdict matters."""

from pathlib import Path

import click

from reprolab.cli_support import load, params_option, user_errors

STAMP = Path("reports/params-check.txt")
TEXT = "params.yaml passed stages/check.py: every section, key, reference and bound\n"


@click.command()
@params_option
def main(params_path: str) -> None:
    """Validate every key of params.yaml; write the stamp the root stages depend on."""
    with user_errors():
        load(params_path)
        STAMP.parent.mkdir(parents=True, exist_ok=True)
        STAMP.write_text(TEXT)
        click.echo(f"check: {params_path} is valid")


if __name__ == "__main__":
    main()
