"""evaluate@<model>: score the saved MLflow model (the bytes that get registered) on the
validation and test splits. The registry's gate decides on the validation metrics
(`valid_<metric>` in MLflow, `valid.json` here) and, when it compares a version with the
champion, on the per-example validation table (`valid_predictions.csv`, an artifact of the
run) that its paired bootstrap resamples; test metrics go to dvclive and MLflow and are
reported, never used to choose a model."""

from __future__ import annotations

import json
import time

from reprolab import workloads
from reprolab.core.errors import DataError
from reprolab.core.io import atomic_write_json, atomic_write_text
from reprolab.core.layout import RUN_FILE, eval_dir, model_dir, processed_dir, train_dir
from reprolab.core.paired import VALID_TABLE
from reprolab.core.split import Split
from reprolab.core.tracking import Run
from reprolab.params import Params

VALID_FILE = "valid.json"  # a DVC metrics file beside dvclive's test metrics.json


def evaluate(name: str, params: Params) -> dict:
    spec = params.model(name)
    module = workloads.data_module(params.datasets[spec.dataset])
    valid: Split = module.load_split(processed_dir(spec.dataset), "valid")
    test: Split = module.load_split(processed_dir(spec.dataset), "test")
    run_file = train_dir(name) / RUN_FILE
    if not run_file.is_file():
        raise DataError(f"{run_file}: not found; run train@{name} first")
    info = json.loads(run_file.read_text())

    valid_metrics, valid_table, _ = valid.score_model(model_dir(name))
    started = time.perf_counter()
    metrics, frame, files = test.score_model(model_dir(name))
    seconds = time.perf_counter() - started
    out = eval_dir(spec.task, name)
    with Run(spec.task, run_name=name, live_dir=out, resume_run_id=info["run_id"]) as run:
        run.log_metrics(metrics, mlflow_prefix="test")
        # the gate's metric; `valid_*` names are taken by training's per-step curves
        run.log_metrics(valid_metrics, mlflow_prefix="eval_valid", live=False)
        atomic_write_json(out / VALID_FILE, valid_metrics)
        run.log_metrics({"predict_rows_per_s": len(frame) / max(seconds, 1e-9)})
        for file_name, table in (("predictions.csv", frame), (VALID_TABLE, valid_table)):
            atomic_write_text(out / file_name, table.to_csv(index=False, float_format="%.5f"))
            run.log_artifact(out / file_name, "eval")
        for file_name, content in files.items():  # e.g. an LLM's generations, for the report
            atomic_write_json(out / file_name, content)
            run.log_artifact(out / file_name, "eval")
        atomic_write_json(out / RUN_FILE, {**info, "valid": valid_metrics, "test": metrics})
    return metrics
