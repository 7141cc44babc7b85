import numpy as np
import pytest

from reprolab import workloads
from reprolab.core import saving
from reprolab.workloads.wine.params import (
    HistGradientBoostingParams,
    RandomForestParams,
    RidgeParams,
    TorchMLPParams,
)
from tests.tiny_models import cpu_run_tags

ROUTE = {"dataset": "d", "task": "t"}
FAMILIES = [
    RidgeParams(workload="wine", kind="ridge", **ROUTE),
    RandomForestParams(workload="wine", kind="random_forest", n_estimators=40, n_jobs=1, **ROUTE),
    HistGradientBoostingParams(
        workload="wine", kind="hist_gradient_boosting", max_iter=60, **ROUTE
    ),
    TorchMLPParams(
        workload="wine", kind="torch_mlp", hidden=[32], max_epochs=60, patience=10, lr=0.01, **ROUTE
    ),
]


class Steps:
    def __init__(self):
        self.points = []

    def log_step(self, step, metrics):
        self.points.append((step, metrics))


@pytest.mark.parametrize("params", FAMILIES, ids=lambda p: p.kind)
def test_family_fits_predicts_logs_curves_and_round_trips(params, regression_splits, tmp_path):
    train, valid, test = regression_splits
    steps = Steps()
    model = workloads.build(params, seed=0).fit(train, valid, steps)

    baseline = float(np.sqrt(np.mean((test.y - train.y.mean()) ** 2)))
    metrics = model.evaluate(test)
    assert metrics["rmse"] < 0.9 * baseline
    assert steps.points and all({"train_rmse", "valid_rmse"} <= set(m) for _, m in steps.points)
    assert [s for s, _ in steps.points] == sorted(s for s, _ in steps.points)

    model.save(tmp_path / "model", input_example=train.X.head(3))
    assert (tmp_path / "model" / "MLmodel").is_file()
    reloaded = saving.load_predictor(tmp_path / "model")
    np.testing.assert_allclose(reloaded.predict(test.X), model.predict(test.X), rtol=1e-6)


def test_same_seed_same_model(regression_splits):
    train, valid, test = regression_splits
    params = FAMILIES[3]
    a = workloads.build(params, seed=3).fit(train, valid).predict(test.X)
    b = workloads.build(params, seed=3).fit(train, valid).predict(test.X)
    np.testing.assert_array_equal(a, b)


def test_mlp_early_stopping_restores_the_best_epoch(regression_splits):
    train, valid, _ = regression_splits
    params = TorchMLPParams(
        workload="wine", kind="torch_mlp", hidden=[32], max_epochs=300, patience=5, lr=0.05, **ROUTE
    )
    steps = Steps()
    model = workloads.build(params, seed=0).fit(train, valid, steps)
    curve = {s: m["valid_rmse"] for s, m in steps.points}
    assert len(curve) < 300  # stopped early
    assert model.best_epoch == min(curve, key=curve.get)
    assert model.evaluate(valid)["rmse"] == pytest.approx(curve[model.best_epoch], rel=1e-5)


def test_saved_model_rejects_wrong_columns(regression_splits, tmp_path):
    train, valid, test = regression_splits
    model = workloads.build(FAMILIES[0], seed=0).fit(train, valid)
    model.save(tmp_path / "m", input_example=train.X.head(3))
    predictor = saving.load_predictor(tmp_path / "m")
    with pytest.raises(Exception, match=r"(?i)missing"):
        predictor.predict(test.X.drop(columns=["b"]))


class Tagged(Steps):
    """A run that also takes tags (what the MLflow run records: device, bf16)."""

    def __init__(self):
        super().__init__()
        self.tags = {}

    def set_tags(self, tags):
        self.tags.update(tags)


def test_mlp_trains_on_the_device_asked(regression_splits, monkeypatch):
    import torch

    from reprolab.core.errors import DataError

    train, valid, test = regression_splits
    params = TorchMLPParams(
        workload="wine", kind="torch_mlp", hidden=[8], max_epochs=3, device="cpu", **ROUTE
    )
    run = Tagged()
    model = workloads.build(params, seed=0).fit(train, valid, run)
    assert run.tags == cpu_run_tags(2)
    assert model.predict(test.X).shape == (len(test.y),)
    assert next(model.module.parameters()).device.type == "cpu"

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cuda = params.model_copy(update={"device": "cuda"})
    with pytest.raises(DataError, match=r"^device: cuda asked, but no CUDA device is usable"):
        workloads.build(cuda, seed=0).fit(train, valid, run)
