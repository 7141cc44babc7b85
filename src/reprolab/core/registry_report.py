"""What the registry holds for a task, read back for people and reports: its versions with
aliases, scores and status, and the snapshot that reports/registry/<task>.json records."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from reprolab.core.params import RegistryTask
from reprolab.core.registry_history import history
from reprolab.core.registry_store import CHAMPION, require_registered_model, version_value
from reprolab.core.tracking import TAG
from reprolab.core.tracking_store import client


@dataclass(frozen=True)
class Version:
    version: str
    model: str
    run_id: str
    value: float  # the gate metric: valid_<metric>
    test: float  # test_<metric>, reported only
    aliases: tuple[str, ...]
    status: str
    dvc_exp: str
    params_digest: str


def versions(task: str, spec: RegistryTask) -> list[Version]:
    mlflow_client = client()
    require_registered_model(mlflow_client, task)
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
                value=version_value(mv, spec),
                test=version_value(mv, spec, "test"),
                aliases=tuple(sorted(aliases.get(str(mv.version), []))),
                status=mv.tags.get(TAG + "status", ""),
                dvc_exp=mv.tags.get(TAG + "dvc_exp", ""),
                params_digest=mv.tags.get(TAG + "params_digest", ""),
            )
            for mv in found
        ),
        key=lambda v: int(v.version),
    )


def snapshot(task: str, spec: RegistryTask) -> dict[str, Any]:
    """What reports/registry/<task>.json records: versions, aliases, the champion (with its
    test metric), the one before it, how many versions were compared, the alias history."""
    listed = versions(task, spec)
    by_version = {v.version: v for v in listed}
    champion = next((v for v in listed if CHAMPION in v.aliases), None)
    moves = history(task)
    champion_moves = [e for e in moves if e["alias"] == CHAMPION and e["from"]]
    previous = by_version.get(champion_moves[-1]["from"]) if champion_moves else None
    return {
        "task": task,
        "metric": spec.metric,
        "gate_split": "valid",
        "direction": spec.direction,
        "threshold": spec.threshold,
        "baseline": spec.baseline.model_dump() if spec.baseline else None,
        "compared": sum(math.isfinite(v.value) for v in listed),
        "champion": _as_dict(champion),
        "previous_champion": _as_dict(previous),
        "versions": [_as_dict(v) for v in listed],
        "history": moves,
    }


def _as_dict(version: Version | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {**version.__dict__, "aliases": list(version.aliases)}
