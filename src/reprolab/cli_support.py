"""Shared by the Click entry points: one clear line for user-facing errors (exit 1), and for
names that params.yaml or the registry does not know (exit 2, like any other usage error)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    from reprolab.core import interrupts
    from reprolab.core.errors import ReprolabError

    interrupts.die_with_parent()
    try:
        yield
    except ReprolabError as err:
        for line in str(err).splitlines():
            click.secho(f"error: {line}", fg="red", err=True)
        sys.exit(1)
    except (interrupts.Stopped, KeyboardInterrupt) as err:
        # the run was ended KILLED and partial outputs removed on the way out
        why = str(err) or "interrupted (Ctrl-C)"  # a bare KeyboardInterrupt says nothing
        click.secho(f"stopped: {why}", fg="red", err=True)
        sys.exit(130 if isinstance(err, KeyboardInterrupt) else 143)


class UnknownName(click.ClickException):
    """A misspelt model, task, dataset or alias: a usage error, so exit 2, in one line that
    lists the valid names (Click's own form would add a usage block around it)."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.secho(f"error: {self.message}", fg="red", err=True)


def choice(kind: str, name: str, valid: Iterable[str]) -> str:
    """`name` if it is one of `valid`, else UnknownName naming every valid choice."""
    options = sorted(set(valid))
    if name not in options:
        listed = ", ".join(options) if options else "none defined"
        raise UnknownName(f"unknown {kind} {name!r} (choose from: {listed})")
    return name


def task_choice(task: str, params_path: str | Path, known: Iterable[str] = ()) -> None:
    """TASK among params.yaml's registry (when the file exists) and `known` (what the MLflow
    store holds). Skipped when there is nothing to choose from: the command's own error then
    says what is missing (a fresh store, no params)."""
    tasks = set(load(str(params_path)).registry) if Path(params_path).is_file() else set()
    tasks |= set(known)
    if tasks:
        choice("task", task, tasks)


def registered_choice(task: str, alias: str | None, params_path: str | Path) -> None:
    """A registered model's task (and alias, when one is used): params.yaml's tasks and the
    models the MLflow registry holds; the registry's own aliases and any the model carries.
    The alias of a model not registered yet is left to the load, which says so."""
    from reprolab.core.registry import ARCHIVE, CANDIDATE, CHAMPION
    from reprolab.core.tracking import client

    found = client().search_registered_models(max_results=1000)
    registered = {m.name: set(m.aliases or {}) for m in found}
    task_choice(task, params_path, registered)
    if alias is not None and task in registered:
        choice("alias", alias, {CANDIDATE, CHAMPION, ARCHIVE} | registered[task])


params_option = click.option(
    "--params",
    "params_path",
    default="params.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Parameters file, validated before any work.",
)


def load(params_path: str, only: str | None = None):
    """params.yaml, validated; with `only` (the stage's model, dataset or task), entries of
    other workloads are read for their routing keys alone (see reprolab.params)."""
    from reprolab.params import load_params

    return load_params(params_path, only=only)
