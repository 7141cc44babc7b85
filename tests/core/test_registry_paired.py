"""The gate with per-example validation tables: noise does not move the champion, a clear
gain does, and nothing below the task's baseline is ever candidate or champion."""

import numpy as np
import pandas as pd
import pytest

from reprolab.core import registry, registry_report
from reprolab.core.paired import VALID_TABLE
from reprolab.core.params import Baseline, RegistryTask
from reprolab.core.tracking import Run, client
from tests.core.test_registry import PERSON, PIPELINE, TASK, model_dir  # noqa: F401

SPEC = RegistryTask(
    metric="rmse",
    direction="minimize",
    threshold=2.0,
    baseline=Baseline(name="mean predictor", score=1.0),
)
ACTUAL = np.random.default_rng(0).normal(6, 1, 300)


def evaluated_run(model_dir, tmp_path, errors: np.ndarray) -> str:  # noqa: F811
    """A run evaluated like evaluate@ does, with its per-example validation table."""
    frame = pd.DataFrame({"actual": ACTUAL, "predicted": ACTUAL + errors, "group": "white"})
    rmse = float(np.sqrt(np.mean(errors**2)))
    path = tmp_path / f"{rmse:.6f}" / VALID_TABLE
    path.parent.mkdir(parents=True)
    frame.to_csv(path, index=False, float_format="%.5f")
    with Run(TASK, run_name="m") as run:
        run.log_model_dir(model_dir, kind="ridge")
        run.log_metrics({"rmse": rmse}, mlflow_prefix="eval_valid")
        run.log_artifact(path, "eval")
    return run.run_id


def aliases() -> dict[str, str]:
    return {a: str(v) for a, v in client().get_registered_model(TASK).aliases.items()}


def test_noise_stays_a_clear_gain_moves(workspace, model_dir, tmp_path):  # noqa: F811
    rng = np.random.default_rng(1)
    errors = rng.normal(0, 0.6, 300)
    registry.register_run(TASK, SPEC, evaluated_run(model_dir, tmp_path, errors), "a", PIPELINE)
    assert aliases()["champion"] == "1"

    # each example 12 % better or 10 % worse at random: +0.010 on the point score, noise
    jitter = errors * np.where(rng.random(300) < 0.5, 0.88, 1.1)
    events = registry.register_run(
        TASK, SPEC, evaluated_run(model_dir, tmp_path, jitter), "b", PIPELINE
    )
    assert aliases()["champion"] == "1"
    assert any(
        e.startswith("v2: not clearly better than champion v1: +0.0104") and "lower bound" in e
        for e in events
    ), events

    events = registry.register_run(
        TASK, SPEC, evaluated_run(model_dir, tmp_path, errors * 0.5), "c", PIPELINE
    )
    assert aliases()["champion"] == "3"
    line = next(e for e in events if e.startswith("v3: beats champion v1 by"))
    assert "paired bootstrap over 300 validation examples" in line


def test_below_the_baseline_never_champion_even_first(workspace, model_dir, tmp_path):  # noqa: F811
    bad = np.random.default_rng(2).normal(0, 1.2, 300)  # rmse ~1.2: worse than the mean's 1.0
    events = registry.register_run(
        TASK, SPEC, evaluated_run(model_dir, tmp_path, bad), "bad", PIPELINE
    )
    assert "does not beat the baseline mean predictor (1.0000)" in events[-1]
    assert aliases() == {}
    with pytest.raises(registry.RegistryError, match="does not beat the baseline"):
        registry.promote(TASK, SPEC, "1", PERSON)
    snap = registry_report.snapshot(TASK, SPEC)
    assert snap["champion"] is None
    assert snap["baseline"] == {"name": "mean predictor", "score": 1.0}
