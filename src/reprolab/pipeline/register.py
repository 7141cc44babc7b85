"""register@<task>: register every evaluated model of the task (once per run), apply the
promotion gate where the workspace may move aliases (committed, not a DVC experiment), and
write reports/registry/<task>.json (the registry's state) and <task>.champion.json (who the
champion is, what infer@<task> depends on). The stage always runs: after `dvc exp apply` and
a commit, nothing upstream changed, yet the experiment's version now meets the gate.

When the champion was trained on other data than the new versions (a retrain on a data
drop), its recorded validation score is from another split: the gate scores it again on
the current validation split, so both sides are compared on the same examples."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from reprolab.core import registry, registry_report
from reprolab.core.errors import DataError
from reprolab.core.io import atomic_write_json
from reprolab.core.layout import RUN_FILE, champion_file, eval_dir, processed_dir, registry_file
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
    rescore = on_current_data(task, params)
    events: list[str] = []
    for name, run_id in runs.items():
        events += registry.register_run(task, spec, run_id, name, authority, rescore=rescore)
    return refresh(task, spec), events


def on_current_data(task: str, params: Params) -> registry.Rescore:
    """Score a registered version on the task's current validation split (None when it
    cannot be loaded here: its recorded score then stands, and the stage says so)."""

    scores: dict[str, float | None] = {}  # one download and scoring per champion version

    def rescore(version) -> float | None:
        key = str(version.version)
        if key not in scores:
            scores[key] = _score(version)
        return scores[key]

    def _score(version) -> float | None:
        import mlflow

        from reprolab import workloads

        dataset = params.model(params.models_of_task(task)[0]).dataset
        module = workloads.data_module(params.datasets[dataset])
        valid = module.load_split(processed_dir(dataset), "valid")
        uri = f"models:/{task}/{version.version}"
        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # a bar per file in the log
        try:
            with tempfile.TemporaryDirectory() as tmp:
                local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
                return valid.score_model(Path(local)).metrics.get(params.registry[task].metric)
        except Exception as err:  # a champion that cannot load here must not block the gate
            print(f"{uri}: not scored on the current data ({err})", file=sys.stderr)
            return None

    return rescore


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
