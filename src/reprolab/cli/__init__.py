"""`reprolab`: the registry by hand (list, promote, rollback, history, verify), past runs,
milestone tags, the DVC remote, review, reproduce, retraining on new data, serving, and
`doctor` (what this machine can run). One module per command group; each imports its heavy
parts inside the command, so `--help` stays instant."""

from __future__ import annotations

import click

from reprolab import __version__
from reprolab.cli import experiments, models, registry, remote, service


@click.group()
@click.version_option(__version__, prog_name="reprolab")
def main() -> None:
    """reprolab: reproducible experiments on DVC, MLflow and dvclive."""


for command in (
    registry.registry,
    registry.runs,
    registry.tag,
    experiments.review,
    experiments.reproduce,
    experiments.data,
    experiments.retrain,
    models.pid,
    models.predict,
    models.generate,
    remote.remote,
    service.serve,
    service.doctor,
):
    main.add_command(command)
