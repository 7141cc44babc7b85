"""report: reports/report.md and a self-contained reports/report.html with figures."""

import click

from reprolab.cli_support import load, params_option, user_errors


@click.command()
@params_option
def main(params_path: str) -> None:
    """Write the experiment report from evaluation, training and registry outputs."""
    with user_errors():
        from reprolab.report.build import build_report

        click.echo(f"report -> {build_report(load(params_path))}")


if __name__ == "__main__":
    main()
