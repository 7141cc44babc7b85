"""train@<model>, pretrain@<name>, import@<name> and the first half of finetune@<name>: fit on
train (early stopping / curves on valid), save the MLflow model to models/<name>/, log params,
curves, the model and lineage tags to one MLflow run. An `imports` entry has no dataset: its
kind's `fit(None, None, run)` brings the weights in. Under torchrun every rank trains (torch
models share the work through DDP); only rank 0 logs and saves."""

from __future__ import annotations

import hashlib
import json
import os
import time

from reprolab import workloads
from reprolab.core.errors import DataError
from reprolab.core.io import atomic_dir, atomic_write_json, dvc_md5
from reprolab.core.layout import HPO_BEST, RUN_FILE, hpo_dir, model_dir, processed_dir, train_dir
from reprolab.core.split import Split
from reprolab.core.tracking import Run
from reprolab.params import Params


def train(name: str, params: Params) -> dict:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:  # no torch import for a plain run
        return _train(name, params)
    from reprolab.core import distributed

    dist = distributed.init()
    try:
        if dist.is_main:
            return _train(name, params, world_size=dist.world_size)
        return _train(name, params, log=False)
    finally:
        distributed.finish()


def _train(name: str, params: Params, log: bool = True, world_size: int = 1) -> dict:
    spec, tuned = with_best_params(name, params)
    section = params.section_of(name)
    data_path = train_split = valid_split = None
    if spec.dataset is not None:
        module = workloads.data_module(params.datasets[spec.dataset])
        data_path = processed_dir(spec.dataset)
        train_split = module.load_split(data_path, "train")
        valid_split = module.load_split(data_path, "valid")
    model = workloads.build(spec, params.seed)
    # pretrain/imports entries have no registry task: their runs go to an experiment per section
    experiment = spec.task or section
    tags = {"stage": _STAGE[section], "model": name, "task": experiment, "kind": spec.kind}
    tags["params_digest"] = params_digest(spec, params.seed)
    if spec.base is not None:
        if not model_dir(spec.base).is_dir():
            stage = "pretrain" if spec.base in params.pretrain else "import"
            raise DataError(f"{model_dir(spec.base)}: not found; run {stage}@{spec.base} first")
        tags.update(base=spec.base, base_md5=dvc_md5(model_dir(spec.base)))
    if tuned:
        tags["hpo_params"] = json.dumps(tuned, sort_keys=True)
    if world_size > 1:
        tags["world_size"] = str(world_size)
    if not log:  # a torchrun rank other than 0: train in step with rank 0, write nothing
        model.fit(train_split, valid_split, None)
        return {}

    with Run(experiment, run_name=name, live_dir=train_dir(name), tags=tags) as run:
        run.log_params(
            {"model": name, "seed": params.seed, "dataset": spec.dataset, **model.hyperparams()}
        )
        data_md5 = dvc_md5(data_path) if data_path is not None else ""
        for split in ("train", "valid", "test") if data_md5 else ():
            run.log_dataset(f"{spec.dataset}/{split}", data_path, data_md5, context=split)
        started = time.perf_counter()
        model.fit(train_split, valid_split, run)
        fit_seconds = time.perf_counter() - started
        final: dict = {"fit_seconds": fit_seconds}
        if valid_split is not None:
            final["valid"] = _overall(model.evaluate(valid_split))
        rows = train_split.labelled_rows() if train_split is not None else None
        if rows is not None:
            final["train_rows_per_s"] = rows / max(fit_seconds, 1e-9)
        run.log_metrics(final, mlflow_prefix="final")
        with atomic_dir(model_dir(name)) as staging:
            model.save(staging, input_example=_input_example(train_split))
        model_id = run.log_model_dir(model_dir(name), kind=spec.kind)
        lineage = {
            "model_path": model_dir(name).as_posix(),
            "model_md5": dvc_md5(model_dir(name)),
        }
        if data_path is not None:
            lineage.update(data_path=data_path.as_posix(), data_md5=data_md5)
        run.set_tags(lineage)
        info = {
            "run_id": run.run_id,
            "model": name,
            "task": experiment,
            "kind": spec.kind,
            "model_id": model_id,
            "fit_seconds": round(fit_seconds, 3),
            **lineage,
            **({"world_size": world_size} if world_size > 1 else {}),
        }
        atomic_write_json(train_dir(name) / RUN_FILE, info)
    return info


_STAGE = {
    "models": "train",
    "pretrain": "pretrain",
    "imports": "import",
    "finetune": "finetune",
    "ensembles": "ensemble",
}


def params_digest(spec, seed: int) -> str:
    """A short digest of everything in params.yaml that shaped the model (its section entry
    with any applied HPO params, and the seed): equal digests, equal recipes."""
    recipe = spec.model_dump(mode="json", exclude={"workload"})  # routing, not recipe
    text = json.dumps({"seed": seed, **recipe}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _input_example(split: Split | None):
    """A few inputs for the MLflow signature (None for an import: no data)."""
    return None if split is None else split.example()


def _overall(metrics: dict) -> dict:
    """Scalar metrics only (per-group breakdowns belong to the evaluation)."""
    return {k: v for k, v in metrics.items() if not isinstance(v, dict)}


def with_best_params(name: str, params: Params):
    """The model's params, with hpo@<model>'s best params applied when `use_hpo` is true."""
    spec = params.model(name)
    if not spec.use_hpo or name not in params.models:
        return spec, {}
    best_file = hpo_dir(name) / HPO_BEST
    if not best_file.is_file():
        raise DataError(f"{best_file}: not found; run hpo@{name} first (models.{name}.use_hpo)")
    tuned = json.loads(best_file.read_text())
    return type(spec).model_validate({**spec.model_dump(), **tuned}), tuned
