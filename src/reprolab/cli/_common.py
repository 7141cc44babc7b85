"""What several command groups share: the --json flag and the registry spec of a task."""

from __future__ import annotations

import click

from reprolab.cli_support import choice, load

JSON_OPTION = click.option(
    "--json", "as_json", is_flag=True, help="One JSON document, for scripts."
)


def json_out(rows: list[dict]) -> None:
    """Rows as a JSON list on stdout; NaN (a metric never scored) becomes null."""
    import json
    import math

    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return None if isinstance(value, float) and not math.isfinite(value) else value

    click.echo(json.dumps(clean(rows), indent=1, allow_nan=False))


def spec_of(task: str, params_path: str):
    """The registry entry of TASK in params.yaml (one line naming the choices if unknown)."""
    params = load(params_path)
    return params.registry[choice("task", task, params.registry)]
