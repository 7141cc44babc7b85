"""evaluate@<model>: score the saved MLflow model (the bytes that get registered) on the test
split; test metrics go to dvclive and to the training's MLflow run."""

from __future__ import annotations

import json
import time

import pandas as pd

from reprolab import data, models
from reprolab.errors import DataError
from reprolab.io import atomic_write_json, atomic_write_text
from reprolab.layout import RUN_FILE, eval_dir, model_dir, processed_dir, train_dir
from reprolab.params import Params
from reprolab.tracking import Run


def evaluate(name: str, params: Params) -> dict:
    spec = params.models[name]
    module = data.module_for(params.datasets[spec.dataset].kind)
    test = module.load_split(processed_dir(spec.dataset), "test")
    run_file = train_dir(name) / RUN_FILE
    if not run_file.is_file():
        raise DataError(f"{run_file}: not found; run train@{name} first")
    info = json.loads(run_file.read_text())

    predictor = models.load_predictor(model_dir(name))
    started = time.perf_counter()
    predicted = predictor.predict(test.X)
    seconds = time.perf_counter() - started
    metrics = test.score(predicted)
    out = eval_dir(spec.task, name)
    with Run(spec.task, run_name=name, live_dir=out, resume_run_id=info["run_id"]) as run:
        run.log_metrics(metrics, mlflow_prefix="test")
        run.log_metrics({"predict_rows_per_s": len(test.y) / max(seconds, 1e-9)})
        if hasattr(test, "prediction_table"):  # per-item scores (e.g. per-image Dice)
            frame = test.prediction_table(predicted)
        else:
            frame = pd.DataFrame({"actual": test.y, "predicted": predicted, "group": test.groups})
        atomic_write_text(out / "predictions.csv", frame.to_csv(index=False, float_format="%.5f"))
        run.log_artifact(out / "predictions.csv", "eval")
        atomic_write_json(out / RUN_FILE, {**info, "test": metrics})
    return metrics
