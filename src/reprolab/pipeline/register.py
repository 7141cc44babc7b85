"""register@<task>: register every evaluated model of the task (once per run) and apply the
promotion gate; write reports/registry/<task>.json."""

from __future__ import annotations

import json

from reprolab import registry
from reprolab.errors import DataError
from reprolab.io import atomic_write_json
from reprolab.layout import RUN_FILE, eval_dir, registry_file
from reprolab.params import Params


def register(task: str, params: Params) -> tuple[dict, list[str]]:
    spec = params.registry[task]
    events: list[str] = []
    if not params.models_of_task(task):  # every model of the task was left out of params
        empty = {"task": task, "metric": spec.metric, "direction": spec.direction}
        snapshot = {**empty, "threshold": spec.threshold, "champion": None}
        snapshot |= {"previous_champion": None, "versions": []}
        atomic_write_json(registry_file(task), snapshot)
        return snapshot, [f"{task}: no model in params.yaml, nothing to register"]
    for name in params.models_of_task(task):
        run_file = eval_dir(task, name) / RUN_FILE
        if not run_file.is_file():
            raise DataError(f"{run_file}: not found; run evaluate@{name} first")
        info = json.loads(run_file.read_text())
        events += registry.register_run(task, spec, info["run_id"], name)
    snapshot = registry.snapshot(task, spec)
    atomic_write_json(registry_file(task), snapshot)
    return snapshot, events
