"""The alias history of a task: one registered-model tag per alias move, append-only, so
every promotion and rollback stays on record (and a rollback knows where to go back to)."""

from __future__ import annotations

import json
import time
from typing import Any

from reprolab.core.registry_store import require_registered_model
from reprolab.core.tracking import TAG
from reprolab.core.tracking_store import client

EVENT = TAG + "alias_event."  # registered-model tags, one per alias move: append-only


def history(task: str) -> list[dict[str, Any]]:
    """Every alias move of `task`, oldest first: time, alias, from, to, by, reason."""
    mlflow_client = client()
    require_registered_model(mlflow_client, task)
    tags = mlflow_client.get_registered_model(task).tags
    return [json.loads(tags[key]) for key in sorted(k for k in tags if k.startswith(EVENT))]


def record(mlflow_client, task: str, alias: str, old, version: str, by: str, reason: str) -> None:
    """Append one alias move to the task's history (a new tag each time, never rewritten)."""
    stamp = time.time_ns()
    event = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(stamp / 1e9)),
        "alias": alias,
        "from": None if old is None else str(old.version),
        "to": version,
        "by": by,
        "reason": reason[:2000],
    }
    mlflow_client.set_registered_model_tag(task, f"{EVENT}{stamp:020d}", json.dumps(event))
