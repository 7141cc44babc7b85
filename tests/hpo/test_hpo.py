"""Optuna studies: validation before any trial, pruning, failures recorded, nested MLflow
runs, resume after an interruption, and the stub for models without a study."""

from __future__ import annotations

import json

import pytest

from reprolab.core.errors import ParamsError
from reprolab.core.tracking import TAG, Run, client
from reprolab.hpo import study as study_mod
from reprolab.params import parse_params


def raw_params(tmp_path, **hpo) -> dict:
    section = {
        "n_trials": 3,
        "seed": 0,
        "storage": f"sqlite:///{tmp_path / 'optuna.db'}",
        "pruner": {"kind": "median", "n_startup_trials": 1, "n_warmup_steps": 0},
        "space": {"alpha": {"type": "float", "low": 0.01, "high": 10.0, "log": True}},
    }
    section.update(hpo)
    return {
        "datasets": {"wine": {"workload": "wine", "kind": "wine"}},
        "models": {
            "m": {"dataset": "wine", "task": "t", "workload": "wine", "kind": "ridge", "alpha": 1.0}
        },
        "registry": {"t": {"metric": "rmse", "direction": "minimize", "threshold": 10.0}},
        "hpo": {"m": section},
    }


class Scripted:
    """Stands in for models.build: the n-th trial behaves as `script[n]` says."""

    def __init__(self, script):
        self.script, self.calls = script, 0

    def __call__(self, spec, seed):
        behaviour = self.script[self.calls]
        self.calls += 1
        return _Model(behaviour, spec)


class _Model:
    def __init__(self, behaviour, spec):
        self.behaviour, self.spec = behaviour, spec

    def fit(self, train, valid, run):
        if self.behaviour == "raise":
            raise RuntimeError("boom in fit")
        if self.behaviour == "interrupt":
            raise KeyboardInterrupt
        level = 1.0 if self.behaviour == "good" else 50.0
        for step in range(1, 6):
            run.log_step(step, {"train_rmse": level, "valid_rmse": level + 1.0 / step})
        return self

    def evaluate(self, split):
        return {"rmse": 1.0}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"space": {"alpha": {"type": "float", "low": 5.0, "high": 1.0}}},
            "hpo.m.space.alpha.low: 5.0 > high 1.0",
        ),
        (
            {"space": {"n_estimators": {"type": "int", "low": 1, "high": 5}}},
            "hpo.m.space.n_estimators: unknown param for kind 'ridge', expected one of ['alpha']",
        ),
        (
            {"space": {"alpha": {"type": "categorical", "choices": ["big"]}}},
            "hpo.m.space.alpha: 'big' is not valid for models.m.alpha",
        ),
        (
            {"space": {"alpha": {"type": "float", "low": -1.0, "high": 1.0}}},
            "hpo.m.space.alpha: -1.0 is not valid for models.m.alpha: must be >= 0",
        ),
    ],
)
def test_bad_search_spaces_are_rejected_with_the_key_path(tmp_path, change, message):
    with pytest.raises(ParamsError) as err:
        parse_params(raw_params(tmp_path, **change))
    assert message in str(err.value)


def test_int_param_refuses_a_float_space(tmp_path):
    raw = raw_params(tmp_path, space={"max_depth": {"type": "float", "low": 2, "high": 9}})
    raw["models"]["m"] = {
        "dataset": "wine",
        "task": "t",
        "workload": "wine",
        "kind": "random_forest",
    }
    with pytest.raises(ParamsError, match=r"hpo\.m\.space\.max_depth: 5\.5 is not valid"):
        parse_params(raw)


def test_three_trials_one_pruned_one_failed_recorded_as_nested_runs(
    tmp_path, workspace, monkeypatch, regression_splits
):
    params = parse_params(raw_params(tmp_path))
    monkeypatch.setattr(study_mod.workloads, "build", Scripted(["good", "raise", "bad"]))
    train, valid, _ = regression_splits
    with Run("t", run_name="hpo-m") as parent:
        result = study_mod.run_study("m", params, train, valid, "md5", parent.run_id)
    states = [t["state"] for t in result.trials]
    assert states == ["COMPLETE", "FAIL", "PRUNED"]
    assert result.trials[0]["params"] == {"alpha": 1.0}  # trial 0: the model's own params
    assert result.trials[1]["error"] == "RuntimeError: boom in fit"
    assert result.trials[2]["pruned_at_step"] == 1
    assert all(t["duration_s"] is not None for t in result.trials)
    assert study_mod.best_of(result)["number"] == 0

    runs = client().search_runs(
        [client().get_experiment_by_name("t").experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent.run_id}'",
        order_by=["attributes.start_time ASC"],
    )
    assert [r.info.status for r in runs] == ["FINISHED", "FAILED", "KILLED"]
    assert runs[1].data.tags[TAG + "error"] == "RuntimeError: boom in fit"
    assert runs[0].data.params == {"alpha": "1.0"}
    assert {r.data.tags[TAG + "study"] for r in runs} == {result.name}


def test_interrupted_study_resumes_with_only_the_missing_trials(
    tmp_path, workspace, monkeypatch, regression_splits
):
    params = parse_params(raw_params(tmp_path, n_trials=4, pruner={"kind": "none"}))
    train, valid, _ = regression_splits
    first = Scripted(["good", "good", "interrupt"])
    monkeypatch.setattr(study_mod.workloads, "build", first)
    with pytest.raises(KeyboardInterrupt):
        study_mod.run_study("m", params, train, valid, "md5")
    again = Scripted(["good", "good", "good"])
    monkeypatch.setattr(study_mod.workloads, "build", again)
    result = study_mod.run_study("m", params, train, valid, "md5")
    assert again.calls == 1  # 2 complete + 1 interrupted (failed) already count
    assert result.ran == 1
    assert [t["state"] for t in result.trials] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    # a different search space is a different study, not a continuation
    wider = parse_params(
        raw_params(
            tmp_path,
            n_trials=1,
            pruner={"kind": "none"},
            space={"alpha": {"type": "float", "low": 0.01, "high": 20.0}},
        )
    )
    monkeypatch.setattr(study_mod.workloads, "build", Scripted(["good"]))
    assert study_mod.run_study("m", wider, train, valid, "md5").name != result.name


def test_model_without_a_study_gets_the_empty_best_file(workspace):
    from reprolab.pipeline.hpo import hpo

    raw = raw_params(workspace)
    raw["hpo"] = {}
    report = hpo("m", parse_params(raw))
    assert report == {"model": "m", "study": None, "applied": {}}
    assert json.loads((workspace / "reports/hpo/m/best.json").read_text()) == {}


def test_train_applies_best_params_only_with_use_hpo(workspace, tmp_path):
    from reprolab.pipeline.train import with_best_params

    raw = raw_params(tmp_path)
    (workspace / "reports/hpo/m").mkdir(parents=True)
    (workspace / "reports/hpo/m/best.json").write_text('{"alpha": 3.5}')
    spec, tuned = with_best_params("m", parse_params(raw))
    assert (spec.alpha, tuned) == (1.0, {})
    raw["models"]["m"]["use_hpo"] = True
    spec, tuned = with_best_params("m", parse_params(raw))
    assert (spec.alpha, tuned) == (3.5, {"alpha": 3.5})
