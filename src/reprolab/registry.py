"""The MLflow model registry, one registered model per task. Versions from any model family
compete on the task's test metric:

- a version that passes the threshold gets alias `candidate`;
- it becomes `champion` only if it beats the current champion; the old one gets `archive`;
- nothing is deleted; `rollback` restores the previous champion from a recorded history.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from reprolab.errors import RegistryError
from reprolab.params import RegistryTask
from reprolab.tracking import TAG, client

CANDIDATE, CHAMPION, ARCHIVE = "candidate", "champion", "archive"
HISTORY = TAG + "champion_history"  # registered-model tag: JSON list of past champions


@dataclass(frozen=True)
class Version:
    version: str
    model: str
    run_id: str
    value: float
    aliases: tuple[str, ...]
    status: str


def metric_key(spec: RegistryTask) -> str:
    return f"test_{spec.metric}"


def register_run(
    task: str,
    spec: RegistryTask,
    run_id: str,
    model: str | None,
    *,
    strict: bool = False,
    force: bool = False,
) -> list[str]:
    """Register the `model` artifact of a finished run (once: a run already registered is
    left alone) and apply the promotion gate. Returns human-readable events.

    `strict` (register --manual): a run that misses the threshold is refused, unregistered;
    `force` registers it anyway and lets it become candidate."""
    mlflow_client = client()
    run = _finished_run(mlflow_client, run_id)
    model = model or run.data.tags.get(TAG + "model", "manual")
    value = run.data.metrics.get(metric_key(spec))
    if value is None or not math.isfinite(value):
        raise RegistryError(
            f"run {run_id} ({model}) has no finite {metric_key(spec)} metric: evaluate it first"
        )
    run_task = run.data.tags.get(TAG + "task")
    if run_task and run_task != task:
        raise RegistryError(f"run {run_id} ({model}) belongs to task {run_task!r}, not {task!r}")
    if strict and not force and not spec.passes(value):
        bound = "<=" if spec.direction == "minimize" else ">="
        raise RegistryError(
            f"run {run_id} ({model}): {spec.metric}={value:.4f} misses the threshold "
            f"{bound} {spec.threshold} of {task}; not registered (--force to register anyway)"
        )
    _ensure_registered_model(mlflow_client, task)
    existing = mlflow_client.search_model_versions(f"name='{task}' and run_id='{run_id}'")
    if existing:
        return [f"{model}: run {run_id[:8]} already registered as v{existing[0].version}"]
    mv = mlflow_client.create_model_version(
        name=task,
        source=f"{run.info.artifact_uri}/model",
        run_id=run_id,
        tags={TAG + "model": model, TAG + metric_key(spec): repr(value)},
    )
    return [
        f"{model}: registered v{mv.version} ({spec.metric}={value:.4f})",
        *_gate(mlflow_client, task, spec, mv.version, value, force),
    ]


def _gate(
    mlflow_client, task: str, spec: RegistryTask, version: str, value: float, force: bool = False
) -> list[str]:
    if not force and not spec.passes(value):
        mlflow_client.set_model_version_tag(task, version, TAG + "status", "rejected")
        bound = "<=" if spec.direction == "minimize" else ">="
        return [f"v{version}: {spec.metric}={value:.4f} misses threshold {bound} {spec.threshold}"]
    mlflow_client.set_registered_model_alias(task, CANDIDATE, version)  # the newest that passed
    mlflow_client.set_model_version_tag(task, version, TAG + "status", "passed")
    events = [f"v{version}: passes threshold -> {CANDIDATE}"]
    champion = _alias_version(mlflow_client, task, CHAMPION)
    champion_value = _value(champion, spec) if champion else None
    if spec.better(value, champion_value):
        events += promote(task, version, _client=mlflow_client)
    else:
        events.append(
            f"v{version}: does not beat {CHAMPION} v{champion.version} "
            f"({spec.metric}={champion_value:.4f})"
        )
    return events


def promote(task: str, version: str, _client=None) -> list[str]:
    """Make `version` the champion; the previous champion is archived and remembered."""
    mlflow_client = _client or client()
    target = _get_version(mlflow_client, task, version)
    old = _alias_version(mlflow_client, task, CHAMPION)
    if old is not None and old.version == target.version:
        return [f"v{version} is already {CHAMPION}"]
    mlflow_client.set_registered_model_alias(task, CHAMPION, target.version)
    mlflow_client.set_model_version_tag(task, target.version, TAG + "status", CHAMPION)
    events = [f"v{target.version}: promoted to {CHAMPION}"]
    if old is not None:
        mlflow_client.set_registered_model_alias(task, ARCHIVE, old.version)
        mlflow_client.set_model_version_tag(task, old.version, TAG + "status", ARCHIVE)
        history = [*_history(mlflow_client, task), str(old.version)]
        mlflow_client.set_registered_model_tag(task, HISTORY, json.dumps(history))
        events.append(f"v{old.version}: {CHAMPION} -> {ARCHIVE}")
    return events


def rollback(task: str) -> list[str]:
    """Restore the previous champion; the current one is archived, nothing is deleted."""
    mlflow_client = client()
    history = _history(mlflow_client, task)
    if not history:
        raise RegistryError(f"{task}: no previous {CHAMPION} to roll back to")
    previous = history.pop()
    current = _alias_version(mlflow_client, task, CHAMPION)
    mlflow_client.set_registered_model_alias(task, CHAMPION, previous)
    mlflow_client.set_model_version_tag(task, previous, TAG + "status", CHAMPION)
    mlflow_client.set_registered_model_tag(task, HISTORY, json.dumps(history))
    events = [f"v{previous}: restored as {CHAMPION}"]
    if current is not None:
        mlflow_client.set_registered_model_alias(task, ARCHIVE, current.version)
        mlflow_client.set_model_version_tag(task, current.version, TAG + "status", "rolled_back")
        events.append(f"v{current.version}: rolled back -> {ARCHIVE}")
    return events


def versions(task: str, spec: RegistryTask) -> list[Version]:
    mlflow_client = client()
    _require_registered_model(mlflow_client, task)
    found = mlflow_client.search_model_versions(f"name='{task}'")
    aliases: dict[str, list[str]] = {}
    for alias, version in mlflow_client.get_registered_model(task).aliases.items():
        aliases.setdefault(str(version), []).append(alias)
    return sorted(
        (
            Version(
                version=str(mv.version),
                model=mv.tags.get(TAG + "model", "?"),
                run_id=mv.run_id,
                value=_value(mv, spec),
                aliases=tuple(sorted(aliases.get(str(mv.version), []))),
                status=mv.tags.get(TAG + "status", ""),
            )
            for mv in found
        ),
        key=lambda v: int(v.version),
    )


def snapshot(task: str, spec: RegistryTask) -> dict[str, Any]:
    """What reports/registry/<task>.json records: versions, aliases, champion and the one
    before it (for the report's 'change against the previous champion')."""
    listed = versions(task, spec)
    by_version = {v.version: v for v in listed}
    champion = next((v for v in listed if CHAMPION in v.aliases), None)
    history = _history(client(), task)
    previous = by_version.get(history[-1]) if history else None
    return {
        "task": task,
        "metric": spec.metric,
        "direction": spec.direction,
        "threshold": spec.threshold,
        "champion": _as_dict(champion),
        "previous_champion": _as_dict(previous),
        "versions": [_as_dict(v) for v in listed],
    }


def champion(task: str) -> tuple[str, str]:
    """The champion's model URI and a description such as 'v2 (wine-rf)'."""
    mlflow_client = client()
    _require_registered_model(mlflow_client, task)
    version = _alias_version(mlflow_client, task, CHAMPION)
    if version is None:
        raise RegistryError(
            f"{task}: no version has the '{CHAMPION}' alias yet (run the register stage, or "
            f"`reprolab registry promote {task} VERSION`)"
        )
    model = version.tags.get(TAG + "model", "?")
    return f"models:/{task}@{CHAMPION}", f"v{version.version} ({model})"


# ---------------------------------------------------------------- helpers


def _as_dict(version: Version | None) -> dict[str, Any] | None:
    return None if version is None else {**version.__dict__, "aliases": list(version.aliases)}


def _value(mv, spec: RegistryTask) -> float:
    raw = mv.tags.get(TAG + metric_key(spec))
    return float(raw) if raw is not None else float("nan")


def _finished_run(mlflow_client, run_id: str):
    from mlflow.exceptions import MlflowException

    try:
        run = mlflow_client.get_run(run_id)
    except MlflowException as err:
        raise RegistryError(f"run {run_id}: not found in the MLflow store") from err
    if run.info.status != "FINISHED":
        raise RegistryError(f"run {run_id}: status {run.info.status}, only FINISHED runs register")
    return run


def _ensure_registered_model(mlflow_client, task: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(task)
    except MlflowException:
        mlflow_client.create_registered_model(task, description=f"reprolab task {task}")


def _require_registered_model(mlflow_client, task: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(task)
    except MlflowException as err:
        raise RegistryError(f"{task}: no registered model of that name") from err


def _alias_version(mlflow_client, task: str, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(task, alias)
    except MlflowException:
        return None


def _get_version(mlflow_client, task: str, version: str):
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version(task, str(version))
    except MlflowException as err:
        raise RegistryError(f"{task}: no version {version}") from err


def _history(mlflow_client, task: str) -> list[str]:
    raw = mlflow_client.get_registered_model(task).tags.get(HISTORY)
    return [str(v) for v in json.loads(raw)] if raw else []
