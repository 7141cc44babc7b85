import math

import numpy as np
import pandas as pd
import pytest

from reprolab import models, registry
from reprolab.errors import RegistryError
from reprolab.params import RegistryTask, RidgeParams
from reprolab.tracking import TAG, Run, client

SPEC = RegistryTask(metric="rmse", direction="minimize", threshold=1.0)
TASK = "toy"


@pytest.fixture
def model_dir(tmp_path, regression_splits):
    train, valid, _ = regression_splits
    model = models.build(RidgeParams(kind="ridge", dataset="d", task=TASK), 0).fit(train, valid)
    model.save(tmp_path / "model", input_example=train.X.head(2))
    return tmp_path / "model"


def finished_run(model_dir, rmse: float) -> str:
    with Run(TASK, run_name="m") as run:
        run.log_artifact(model_dir, "model")
        if not math.isnan(rmse):
            run.log_metrics({"rmse": rmse}, mlflow_prefix="test")
    return run.run_id


def aliases() -> dict[str, str]:
    return {a: str(v) for a, v in client().get_registered_model(TASK).aliases.items()}


def test_promotion_gate(workspace, model_dir):
    events = registry.register_run(TASK, SPEC, finished_run(model_dir, 0.8), "first")
    assert "v1: promoted to champion" in events
    assert aliases() == {"candidate": "1", "champion": "1"}

    registry.register_run(TASK, SPEC, finished_run(model_dir, 0.9), "worse")
    assert aliases() == {"candidate": "2", "champion": "1"}

    events = registry.register_run(TASK, SPEC, finished_run(model_dir, 1.5), "bad")
    assert any("misses threshold" in e for e in events)
    assert aliases() == {"candidate": "2", "champion": "1"}

    registry.register_run(TASK, SPEC, finished_run(model_dir, 0.7), "better")
    assert aliases() == {"candidate": "4", "champion": "4", "archive": "1"}
    statuses = {v.version: v.status for v in registry.versions(TASK, SPEC)}
    assert statuses == {"1": "archive", "2": "passed", "3": "rejected", "4": "champion"}

    snap = registry.snapshot(TASK, SPEC)
    assert snap["champion"]["model"] == "better"
    assert snap["previous_champion"]["model"] == "first"


def test_registering_a_run_twice_is_a_no_op(workspace, model_dir):
    run_id = finished_run(model_dir, 0.8)
    registry.register_run(TASK, SPEC, run_id, "m")
    events = registry.register_run(TASK, SPEC, run_id, "m")
    assert events == [f"m: run {run_id[:8]} already registered as v1"]
    assert len(registry.versions(TASK, SPEC)) == 1


def test_rollback_and_manual_promotion_delete_nothing(workspace, model_dir):
    for value in (0.9, 0.8, 0.7):
        registry.register_run(TASK, SPEC, finished_run(model_dir, value), f"m{value}")
    assert aliases()["champion"] == "3"
    registry.rollback(TASK)
    assert aliases()["champion"] == "2" and aliases()["archive"] == "3"
    registry.rollback(TASK)
    assert aliases()["champion"] == "1"
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback(TASK)
    registry.promote(TASK, "3")
    assert aliases()["champion"] == "3"
    assert len(registry.versions(TASK, SPEC)) == 3


def test_failed_or_unevaluated_runs_never_enter_the_registry(workspace, model_dir):
    with pytest.raises(RegistryError, match="no finite test_rmse"):
        registry.register_run(TASK, SPEC, finished_run(model_dir, float("nan")), "m")
    with pytest.raises(RuntimeError), Run(TASK, run_name="m") as run:
        run.log_metrics({"rmse": 0.1}, mlflow_prefix="test")
        raise RuntimeError("training crashed")
    with pytest.raises(RegistryError, match="status FAILED"):
        registry.register_run(TASK, SPEC, run.run_id, "m")
    with pytest.raises(RegistryError, match="no registered model"):
        registry.champion(TASK)


def test_champion_loads_by_alias_and_predicts(workspace, model_dir, regression_splits):
    registry.register_run(TASK, SPEC, finished_run(model_dir, 0.5), "m")
    uri, which = registry.champion(TASK)
    assert (uri, which) == (f"models:/{TASK}@champion", "v1 (m)")
    pred = models.load_predictor(uri).predict(regression_splits[2].X)
    assert np.isfinite(pred).all() and len(pred) == len(regression_splits[2].y)
    assert client().get_model_version(TASK, "1").tags[TAG + "model"] == "m"
    assert isinstance(pd.Series(pred), pd.Series)
