"""From a validated search space (params.SearchParam) to Optuna suggestions, and the
study's identity: a hash of everything that changes the objective, so that rerunning the
same configuration resumes its study and any change starts a new one."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from reprolab.core.params import HpoStudy, SearchParam


def suggest(trial: Any, name: str, dim: SearchParam) -> Any:
    if dim.type == "categorical":
        return trial.suggest_categorical(name, dim.choices)
    if dim.type == "int":
        step = int(dim.step) if dim.step and not dim.log else 1
        return trial.suggest_int(name, int(dim.low), int(dim.high), step=step, log=dim.log)
    step = None if dim.log else dim.step
    return trial.suggest_float(name, dim.low, dim.high, step=step, log=dim.log)


def sample(trial: Any, study: HpoStudy) -> dict[str, Any]:
    return {name: suggest(trial, name, dim) for name, dim in study.space.items()}


def study_name(model: str, study: HpoStudy, fixed: dict[str, Any], extra: dict[str, Any]) -> str:
    """`<model>-<hash>` over the space, seeds, pruner, the model's other params and `extra`
    (data hash, metric). n_trials, timeout and storage are left out: raising n_trials
    continues the same study."""
    if study.study_name:
        return study.study_name
    identity = {
        "space": {k: v.model_dump() for k, v in study.space.items()},
        "seed": study.seed,
        "pruner": study.pruner.model_dump(),
        "cv_folds": study.cv_folds,
        "fixed": fixed,
        **extra,
    }
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return f"{model}-{hashlib.sha256(blob).hexdigest()[:10]}"
