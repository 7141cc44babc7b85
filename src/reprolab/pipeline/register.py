"""register@<task>: register every evaluated model of the task (once per run), apply the
promotion gate where the workspace may move aliases (committed, not a DVC experiment), and
write reports/registry/<task>.json (the registry's state) and <task>.champion.json (who the
champion is, what infer@<task> depends on). The stage always runs: after `dvc exp apply` and
a commit, nothing upstream changed, yet the experiment's version now meets the gate."""

from __future__ import annotations

import json

from reprolab.core import registry, registry_report
from reprolab.core.errors import DataError
from reprolab.core.io import atomic_write_json
from reprolab.core.layout import RUN_FILE, champion_file, eval_dir, registry_file
from reprolab.core.params import RegistryTask
from reprolab.core.paths import mlflow_tracking_uri
from reprolab.params import Params


def register(task: str, params: Params) -> tuple[dict, list[str]]:
    spec = params.registry[task]
    if not params.models_of_task(task):  # every model of the task was left out of params
        empty = {"task": task, "metric": spec.metric, "gate_split": "valid"}
        snapshot = {**empty, "direction": spec.direction, "threshold": spec.threshold}
        snapshot |= {"compared": 0, "champion": None, "previous_champion": None, "versions": []}
        write_files(task, {**snapshot, "history": []})
        return snapshot, [f"{task}: no model in params.yaml, nothing to register"]
    runs = {}
    for name in params.models_of_task(task):
        run_file = eval_dir(task, name) / RUN_FILE
        if not run_file.is_file():
            raise DataError(f"{run_file}: not found; run evaluate@{name} first")
        runs[name] = json.loads(run_file.read_text())["run_id"]
    known = {name: run_id for name, run_id in runs.items() if registry.run_exists(run_id)}
    if not known and registry_file(task).is_file():
        # outputs pulled from a DVC remote, runs in another MLflow store: the registry that
        # holds their versions is that store's; keep the files that describe it
        return json.loads(registry_file(task).read_text()), [
            f"{task}: runs {', '.join(r[:8] for r in runs.values())} are not in this MLflow "
            f"store ({mlflow_tracking_uri()}); registry files kept as they are"
        ]
    authority = registry.Authority.of_pipeline()
    events: list[str] = []
    for name, run_id in runs.items():
        events += registry.register_run(task, spec, run_id, name, authority)
    return refresh(task, spec), events


def refresh(task: str, spec: RegistryTask) -> dict:
    """Rewrite the task's registry files from the registry (after any alias move)."""
    snapshot = registry_report.snapshot(task, spec)
    write_files(task, snapshot)
    return snapshot


def write_files(task: str, snapshot: dict) -> None:
    champion = snapshot.get("champion") or {}
    who = {k: champion.get(k) for k in ("version", "model", "run_id")}
    atomic_write_json(registry_file(task), snapshot)
    atomic_write_json(champion_file(task), {"task": task, "champion": who if champion else None})
