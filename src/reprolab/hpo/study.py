"""Run (or resume) one model's Optuna study. Each trial builds the model through
`models.build` with the trial's params, trains it with a logger that reports the validation
curve to Optuna (so the median pruner can stop it) and to a nested MLflow run; the value is
the task's registry metric on the validation split. A trial that raises is recorded as
failed, with its error, and the study goes on."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from reprolab import workloads
from reprolab.core.errors import ParamsError
from reprolab.core.params import HpoStudy
from reprolab.core.tracking import TAG, base_tags, client, experiment_id
from reprolab.hpo import space
from reprolab.hpo.storage import open_storage, storage_url
from reprolab.params import Params

DONE_STATES = ("COMPLETE", "PRUNED", "FAIL")


class TrialLogger:
    """`log_step`-compatible: the curve goes to the trial's MLflow run, `valid_<metric>` to
    Optuna, and a trial the pruner gives up on stops right there (TrialPruned)."""

    def __init__(self, trial: Any, mlflow_client: Any, run_id: str, key: str) -> None:
        self.trial, self.client, self.run_id, self.key = trial, mlflow_client, run_id, key
        self.steps = 0

    def log_step(self, step: int, metrics: dict[str, float]) -> None:
        import optuna
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if math.isfinite(v)]
        self.client.log_batch(self.run_id, metrics=batch)
        value = metrics.get(self.key)
        if value is None:
            return
        if not math.isfinite(value):
            raise FloatingPointError(f"{self.key} is {value} at step {step}: training diverged")
        self.trial.report(float(value), step)
        self.steps += 1
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} ({self.key}={value:.4g})")


@dataclass
class StudyResult:
    study: Any
    name: str
    storage: str
    metric: str
    direction: str
    ran: int
    trials: list[dict] = field(default_factory=list)


def run_study(
    model: str,
    params: Params,
    train: Any,
    valid: Any,
    data_md5: str = "",
    parent_run_id: str | None = None,
    on_trial: Any = None,
) -> StudyResult:
    """Create or load the study, run the trials still missing, return every trial."""
    import optuna

    cfg: HpoStudy = params.hpo[model]
    base = params.models[model]
    task = params.registry[base.task]
    metric, direction = task.metric, task.direction
    fixed = base.model_dump(exclude={"workload", "use_hpo", *cfg.space})
    name = space.study_name(
        model, cfg, fixed, {"global_seed": params.seed, "data": data_md5, "metric": metric}
    )
    url = storage_url(cfg.storage)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=cfg.pruner.n_startup_trials,
            n_warmup_steps=cfg.pruner.n_warmup_steps,
        )
        if cfg.pruner.kind == "median"
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        study_name=name,
        storage=open_storage(url),
        sampler=optuna.samplers.TPESampler(seed=cfg.seed),
        pruner=pruner,
        direction=direction,
        load_if_exists=True,
    )
    if not study.get_trials(deepcopy=False):
        # trial 0: the model's own params, the baseline the search must beat
        start = {k: _clip(cfg.space[k], getattr(base, k)) for k in cfg.space}
        if None not in start.values():
            study.enqueue_trial(start, user_attrs={"baseline": True})
    done = sum(t.state.name in DONE_STATES for t in study.get_trials(deepcopy=False))
    remaining = max(0, cfg.n_trials - done)

    mlflow_client = client()
    exp_id = experiment_id(base.task)
    lineage = {TAG + k: v for k, v in base_tags().items()}

    def objective(trial: Any) -> float:
        values = space.sample(trial, cfg)
        spec = type(base).model_validate({**base.model_dump(), **values})
        tags = {
            **lineage,
            TAG + "stage": "hpo-trial",
            TAG + "model": model,
            TAG + "study": name,
            TAG + "trial": str(trial.number),
        }
        if parent_run_id:
            tags["mlflow.parentRunId"] = parent_run_id
        run = mlflow_client.create_run(exp_id, run_name=f"{model}-t{trial.number}", tags=tags)
        run_id = run.info.run_id
        trial.set_user_attr("mlflow_run_id", run_id)
        from mlflow.entities import Param

        mlflow_client.log_batch(run_id, params=[Param(k, str(v)) for k, v in values.items()])
        status = "FAILED"
        try:
            logger = TrialLogger(trial, mlflow_client, run_id, f"valid_{metric}")
            with _threads(cfg.threads):
                if folds:
                    value = cross_validate(spec, params.seed, folds, metric, logger)
                else:
                    fitted = workloads.build(spec, params.seed).fit(train, valid, logger)
                    value = float(fitted.evaluate(valid)[metric])
            if not math.isfinite(value):
                raise FloatingPointError(f"validation {metric} is {value}")
            mlflow_client.log_metric(run_id, f"objective_{metric}", value)
            status = "FINISHED"
            return value
        except optuna.TrialPruned as pruned:
            status = "KILLED"
            mlflow_client.set_tag(run_id, TAG + "state", "pruned")
            trial.set_user_attr("pruned", str(pruned))
            raise
        except Exception as err:
            message = f"{type(err).__name__}: {err}"[:2000]
            trial.set_user_attr("error", message)
            mlflow_client.set_tag(run_id, TAG + "error", message)
            raise
        finally:
            mlflow_client.set_terminated(run_id, status)

    folds = kfold(train, valid, cfg.cv_folds, cfg.seed, model) if cfg.cv_folds > 1 else []
    # several workers on one storage stop together once the study holds n_trials
    done_states = tuple(getattr(optuna.trial.TrialState, s) for s in DONE_STATES)
    callbacks = [optuna.study.MaxTrialsCallback(cfg.n_trials, states=done_states)]
    callbacks += [on_trial] if on_trial else []
    if remaining:
        study.optimize(
            objective,
            n_trials=remaining,
            timeout=cfg.timeout,
            catch=(Exception,),
            callbacks=callbacks,
            gc_after_trial=False,
        )
    result = StudyResult(study, name, url, metric, direction, remaining)
    result.trials = [trial_record(t) for t in study.get_trials(deepcopy=False)]
    return result


def trial_record(t: Any) -> dict:
    duration = (
        (t.datetime_complete - t.datetime_start).total_seconds()
        if t.datetime_complete and t.datetime_start
        else None
    )
    return {
        "number": t.number,
        "state": t.state.name,
        "value": t.value,
        "params": t.params,
        "duration_s": round(duration, 3) if duration is not None else None,
        "error": t.user_attrs.get("error") or t.system_attrs.get("fail_reason"),
        "pruned_at_step": t.last_step if t.state.name == "PRUNED" else None,
        "mlflow_run_id": t.user_attrs.get("mlflow_run_id"),
    }


def best_of(result: StudyResult) -> dict | None:
    complete = [t for t in result.trials if t["state"] == "COMPLETE"]
    if not complete:
        return None
    pick = min if result.direction == "minimize" else max
    best = pick(complete, key=lambda t: t["value"])
    return {"number": best["number"], "value": best["value"], "params": best["params"]}


def _clip(dim: Any, value: Any) -> Any:
    """The model's own value, moved into the space (None if it cannot be)."""
    if dim.type == "categorical":
        return value if value in dim.choices else None
    if value is None:
        return None
    clipped = min(max(value, dim.low), dim.high)
    return int(clipped) if dim.type == "int" else float(clipped)


def kfold(train: Any, valid: Any, k: int, seed: int, model: str) -> list[tuple[Any, Any]]:
    """k (train, valid) pairs over train+valid together: a steadier objective than one
    small validation split. Needs a tabular split (a dataclass with X, y, groups)."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import KFold

    names = {f.name for f in dataclasses.fields(train)} if dataclasses.is_dataclass(train) else ()
    if not {"X", "y", "groups"} <= set(names):
        raise ParamsError(f"hpo.{model}.cv_folds: needs a tabular dataset (X, y, groups)")
    whole = dataclasses.replace(
        train,
        X=pd.concat([train.X, valid.X], ignore_index=True),
        y=np.concatenate([train.y, valid.y]),
        groups=np.concatenate([train.groups, valid.groups]),
    )

    def part(idx):
        return dataclasses.replace(
            whole,
            X=whole.X.iloc[idx].reset_index(drop=True),
            y=whole.y[idx],
            groups=whole.groups[idx],
        )

    splitter = KFold(n_splits=k, shuffle=True, random_state=seed)
    return [(part(a), part(b)) for a, b in splitter.split(whole.X)]


def cross_validate(spec: Any, seed: int, folds: list, metric: str, logger: TrialLogger) -> float:
    """Mean validation metric over the folds; the running mean after each fold is the
    intermediate value the pruner judges (step = folds done)."""
    scores = []
    for i, (fold_train, fold_valid) in enumerate(folds, start=1):
        fitted = workloads.build(spec, seed).fit(fold_train, fold_valid, None)
        scores.append(float(fitted.evaluate(fold_valid)[metric]))
        logger.log_step(i, {f"valid_{metric}": sum(scores) / i, f"fold_{metric}": scores[-1]})
    return sum(scores) / len(scores)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Cap OpenMP/BLAS threads in a trial: small fits on a busy machine run far faster
    single-threaded; parallelism comes from several study workers."""
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n):
        yield
