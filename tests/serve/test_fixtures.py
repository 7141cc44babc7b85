"""The serving fixtures themselves: every champion of the store loads by alias and predicts,
wine's second version waits without an alias, and a server that fails to start says why."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.serve.conftest import CHAMPION, start_server
from tests.tiny_models import WINE_FEATURES

TASKS = {"wine-quality", "nsmc-sentiment", "nuclei-segmentation", "pid-control", "llm-sft"}


def test_every_champion_loads_by_alias_and_predicts(served_store, on_store):
    import mlflow

    assert set(served_store.champions) == TASKS
    for task in sorted(TASKS):
        model = mlflow.pyfunc.load_model(f"models:/{task}@{CHAMPION}")
        example = model.input_example
        assert example is not None, task
        prediction = model.predict(example)
        assert len(prediction) == len(example), task

    client = mlflow.MlflowClient()
    for task in TASKS:
        champion = client.get_model_version_by_alias(task, CHAMPION)
        assert str(champion.version) == "1", task
        assert champion.tags["reprolab.model"] == served_store.champions[task].name


def test_wine_has_a_second_version_without_alias(served_store, on_store):
    import mlflow

    client = mlflow.MlflowClient()
    v2 = client.get_model_version("wine-quality", served_store.wine_v2)
    assert served_store.wine_v2 == "2" and not v2.aliases
    assert v2.tags["reprolab.model"] == "wine-rf"

    one, two = (mlflow.pyfunc.load_model(f"models:/wine-quality/{v}") for v in ("1", "2"))
    example = one.input_example
    assert isinstance(example, pd.DataFrame) and list(example.columns) == WINE_FEATURES
    assert (example.drop(columns="is_red") > 0).all().all()
    grades = one.predict(example)
    assert ((grades >= 3) & (grades <= 9)).all()
    assert list(two.predict(example)) != list(grades)  # a different forest


def test_the_store_leaves_the_tests_own_tracking_uri_alone(served_store, tmp_path):
    import os

    import mlflow

    # isolated_stores' URI is this test's; the served store's stays out of mlflow's state
    assert os.environ["MLFLOW_TRACKING_URI"] == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert mlflow.get_tracking_uri() != served_store.tracking_uri


def test_a_failed_start_raises_with_the_log(served_store, params_file):
    with pytest.raises(RuntimeError, match="last 40 lines of") as failed:
        start_server(served_store, params_file, "--no-such-option", token=None)
    assert "exited with" in str(failed.value)
    assert str(failed.value).strip().splitlines()[-1]  # the log's tail is in the message
