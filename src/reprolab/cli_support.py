"""Shared by the Click entry points: one clear line and exit 1 for user-facing errors."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

import click


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    from reprolab.errors import ReprolabError

    try:
        yield
    except ReprolabError as err:
        for line in str(err).splitlines():
            click.secho(f"error: {line}", fg="red", err=True)
        sys.exit(1)


params_option = click.option(
    "--params",
    "params_path",
    default="params.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Parameters file, validated before any work.",
)


def load(params_path: str):
    from reprolab.params import load_params

    return load_params(params_path)
