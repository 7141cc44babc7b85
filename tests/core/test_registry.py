import math
import subprocess

import numpy as np
import pandas as pd
import pytest

from reprolab import workloads
from reprolab.core import registry, registry_report, saving
from reprolab.core.errors import RegistryError
from reprolab.core.params import RegistryTask
from reprolab.core.tracking import TAG, Run, client
from reprolab.workloads.wine.params import RidgeParams

SPEC = RegistryTask(metric="rmse", direction="minimize", threshold=1.0)
TASK = "toy"
PIPELINE = registry.Authority(True, "committed workspace (test)", "pipeline")
EXPERIMENT = registry.Authority(False, "DVC experiment 'e1'", "pipeline")
PERSON = registry.Authority.person("checked by hand")


@pytest.fixture
def model_dir(tmp_path, regression_splits):
    train, valid, _ = regression_splits
    model = workloads.build(
        RidgeParams(workload="wine", kind="ridge", dataset="d", task=TASK), 0
    ).fit(train, valid)
    model.save(tmp_path / "model", input_example=train.X.head(2))
    return tmp_path / "model"


def finished_run(model_dir, rmse: float, test: float = 9.0) -> str:
    """A run evaluated like evaluate@ does: valid_rmse is the gate's, test_rmse reported."""
    with Run(TASK, run_name="m") as run:
        run.log_model_dir(model_dir, kind="ridge")
        run.log_step(50, {"valid_rmse": 9.9})  # a training curve's last step: never the gate's
        if not math.isnan(rmse):
            run.log_metrics({"rmse": rmse}, mlflow_prefix="eval_valid")
        run.log_metrics({"rmse": test}, mlflow_prefix="test")
    return run.run_id


def aliases() -> dict[str, str]:
    return {a: str(v) for a, v in client().get_registered_model(TASK).aliases.items()}


def test_promotion_gate(workspace, model_dir):
    events = registry.register_run(TASK, SPEC, finished_run(model_dir, 0.8), "first", PIPELINE)
    assert "v1: promoted to champion (pipeline: committed workspace (test))" in events
    assert aliases() == {"candidate": "1", "champion": "1"}

    registry.register_run(TASK, SPEC, finished_run(model_dir, 0.9), "worse", PIPELINE)
    assert aliases() == {"candidate": "2", "champion": "1"}

    events = registry.register_run(TASK, SPEC, finished_run(model_dir, 1.5), "bad", PIPELINE)
    assert any("misses the threshold" in e for e in events)
    assert aliases() == {"candidate": "2", "champion": "1"}

    registry.register_run(TASK, SPEC, finished_run(model_dir, 0.7), "better", PIPELINE)
    assert aliases() == {"candidate": "4", "champion": "4", "archive": "1"}
    statuses = {v.version: v.status for v in registry_report.versions(TASK, SPEC)}
    assert statuses == {"1": "archive", "2": "passed", "3": "rejected", "4": "champion"}

    snap = registry_report.snapshot(TASK, SPEC)
    assert snap["champion"]["model"] == "better"
    assert snap["previous_champion"]["model"] == "first"


def test_registering_a_run_twice_is_a_no_op(workspace, model_dir):
    run_id = finished_run(model_dir, 0.8)
    registry.register_run(TASK, SPEC, run_id, "m", PIPELINE)
    events = registry.register_run(TASK, SPEC, run_id, "m", PIPELINE)
    assert events == [f"m: run {run_id[:8]} already registered as v1"]
    assert len(registry_report.versions(TASK, SPEC)) == 1


def test_rollback_and_manual_promotion_delete_nothing(workspace, model_dir):
    for value in (0.9, 0.8, 0.7):
        registry.register_run(TASK, SPEC, finished_run(model_dir, value), f"m{value}", PIPELINE)
    assert aliases()["champion"] == "3"
    registry.rollback(TASK, SPEC, PERSON)
    assert aliases()["champion"] == "2" and aliases()["archive"] == "3"
    registry.rollback(TASK, SPEC, PERSON)  # a rollback of the rollback
    assert aliases()["champion"] == "3" and aliases()["archive"] == "2"
    registry.rollback(TASK, SPEC, PERSON, to="1")  # any archived version
    assert aliases()["champion"] == "1"
    registry.promote(TASK, SPEC, "3", PERSON)
    assert aliases()["champion"] == "3"
    assert len(registry_report.versions(TASK, SPEC)) == 3
    moves = [
        (e["from"], e["to"], e["by"]) for e in registry.history(TASK) if e["alias"] == "champion"
    ]
    me = PERSON.by
    assert moves == [
        (None, "1", "pipeline"),
        ("1", "2", "pipeline"),
        ("2", "3", "pipeline"),
        ("3", "2", me),
        ("2", "3", me),
        ("3", "1", me),
        ("1", "3", me),
    ]
    assert all(e["reason"] == "checked by hand" for e in registry.history(TASK)[-4:])


def test_a_person_promotes_below_the_threshold_only_with_force(workspace, model_dir):
    registry.register_run(TASK, SPEC, finished_run(model_dir, 0.8), "good", PIPELINE)
    registry.register_run(TASK, SPEC, finished_run(model_dir, 1.5), "bad", PIPELINE)
    with pytest.raises(RegistryError, match=r"misses the threshold <= 1\.0; not promoted"):
        registry.promote(TASK, SPEC, "2", PERSON)
    assert aliases()["champion"] == "1"
    registry.promote(TASK, SPEC, "2", PERSON, force=True)
    assert aliases()["champion"] == "2"
    with pytest.raises(RegistryError, match="--reason: empty"):
        registry.Authority.person("  ")


def test_experiments_register_but_move_no_alias_until_a_committed_workspace_gates(
    workspace, model_dir
):
    registry.register_run(TASK, SPEC, finished_run(model_dir, 0.8), "base", PIPELINE)
    run_id = finished_run(model_dir, 0.5, test=0.1)
    events = registry.register_run(TASK, SPEC, run_id, "exp", EXPERIMENT)
    assert events[-1] == "v2: aliases not moved: DVC experiment 'e1'"
    assert aliases() == {"candidate": "1", "champion": "1"}
    # the same run met again by a committed workspace (dvc exp apply, commit, dvc repro)
    events = registry.register_run(TASK, SPEC, run_id, "exp", PIPELINE)
    assert "v2: promoted to champion (pipeline: committed workspace (test))" in events
    assert aliases() == {"candidate": "2", "champion": "2", "archive": "1"}
    # once gated, the pipeline never moves it again: a person's rollback stands
    registry.rollback(TASK, SPEC, PERSON)
    registry.register_run(TASK, SPEC, run_id, "exp", PIPELINE)
    assert aliases()["champion"] == "1"


def test_the_gate_uses_valid_never_test(workspace, model_dir):
    registry.register_run(TASK, SPEC, finished_run(model_dir, 0.6, test=0.9), "a", PIPELINE)
    registry.register_run(TASK, SPEC, finished_run(model_dir, 0.7, test=0.1), "b", PIPELINE)
    assert aliases()["champion"] == "1"  # better on valid, though worse on test
    snap = registry_report.snapshot(TASK, SPEC)
    assert snap["champion"]["value"] == 0.6 and snap["champion"]["test"] == 0.9
    assert snap["compared"] == 2 and snap["gate_split"] == "valid"
    version = client().get_model_version(TASK, "1")
    assert "valid rmse = 0.6000" in version.description  # the version's model card
    assert "test rmse = 0.9000 (reported, never used to choose)" in version.description
    logged = client().get_logged_model(version.source.removeprefix("models:/"))
    assert logged.name == "model" and logged.model_type == "ridge"  # MLflow 3's Logged Models
    assert logged.source_run_id == version.run_id and logged.status == "READY"


def test_uncommitted_or_experiment_workspaces_may_not_move_aliases(workspace, monkeypatch):
    assert registry.Authority.of_pipeline().may_move  # the fixture's clean commit
    (workspace / "params.yaml").write_text("seed: 1\n")
    subprocess.run(["git", "add", "params.yaml"], cwd=workspace, check=True)
    denied = registry.Authority.of_pipeline()
    assert not denied.may_move and "uncommitted changes (params.yaml)" in denied.reason
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run([*git, "commit", "-qm", "params"], cwd=workspace, check=True)
    assert registry.Authority.of_pipeline().may_move
    monkeypatch.setenv("DVC_EXP_NAME", "sunny-day")
    denied = registry.Authority.of_pipeline()
    assert not denied.may_move and "dvc exp apply sunny-day" in denied.reason


def test_failed_or_unevaluated_runs_never_enter_the_registry(workspace, model_dir):
    with pytest.raises(RegistryError, match="no finite eval_valid_rmse"):
        registry.register_run(TASK, SPEC, finished_run(model_dir, float("nan")), "m", PIPELINE)
    with pytest.raises(RuntimeError), Run(TASK, run_name="m") as run:
        run.log_metrics({"rmse": 0.1}, mlflow_prefix="test")
        raise RuntimeError("training crashed")
    with pytest.raises(RegistryError, match="status FAILED"):
        registry.register_run(TASK, SPEC, run.run_id, "m", PIPELINE)
    with pytest.raises(RegistryError, match="no registered model"):
        registry.champion(TASK)


def test_champion_loads_by_alias_and_predicts(workspace, model_dir, regression_splits):
    registry.register_run(TASK, SPEC, finished_run(model_dir, 0.5), "m", PIPELINE)
    uri, which = registry.champion(TASK)
    assert (uri, which) == (f"models:/{TASK}@champion", "v1 (m)")
    pred = saving.load_predictor(uri).predict(regression_splits[2].X)
    assert np.isfinite(pred).all() and len(pred) == len(regression_splits[2].y)
    assert client().get_model_version(TASK, "1").tags[TAG + "model"] == "m"
    assert isinstance(pd.Series(pred), pd.Series)


def test_committed_new_gate_rules_gate_the_versions_again(workspace, model_dir):
    strict = RegistryTask(metric="rmse", direction="minimize", threshold=0.5)
    run_id = finished_run(model_dir, 0.8)
    events = registry.register_run(TASK, strict, run_id, "m", PIPELINE)
    assert events[-1] == "v1: eval_valid_rmse=0.8000 misses the threshold <= 0.5"
    again = registry.register_run(TASK, strict, run_id, "m", PIPELINE)  # same rules: decided
    assert again == [f"m: run {run_id[:8]} already registered as v1"]
    events = registry.register_run(TASK, SPEC, run_id, "m", PIPELINE)  # threshold now 1.0
    assert "v1: promoted to champion (pipeline: committed workspace (test))" in events


def test_uncommitted_paths_keep_their_first_letter(workspace):
    (workspace / "params.yaml").write_text("seed: 1\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    subprocess.run(["git", "add", "params.yaml"], cwd=workspace, check=True)
    subprocess.run([*git, "commit", "-qm", "params"], cwd=workspace, check=True)
    (workspace / "params.yaml").write_text("seed: 2\n")  # " M params.yaml": unstaged
    assert "uncommitted changes (params.yaml)" in registry.Authority.of_pipeline().reason


def test_a_champion_without_the_score_tag_is_compared_by_its_run(workspace, model_dir):
    """Versions from before the gate tagged its score keep their place against worse ones."""
    registry.register_run(TASK, SPEC, finished_run(model_dir, 0.6), "old", PIPELINE)
    client().delete_model_version_tag(TASK, "1", "reprolab.eval_valid_rmse")
    events = registry.register_run(TASK, SPEC, finished_run(model_dir, 0.7), "new", PIPELINE)
    assert events[-1] == "v2: does not beat champion v1 (eval_valid_rmse=0.7000 vs 0.6000)"
    assert aliases()["champion"] == "1"


def test_regating_the_champion_leaves_it_champion(workspace, model_dir):
    run_id = finished_run(model_dir, 0.6)
    registry.register_run(TASK, SPEC, run_id, "m", PIPELINE)
    looser = RegistryTask(metric="rmse", direction="minimize", threshold=0.9)  # new rules
    events = registry.register_run(TASK, looser, run_id, "m", PIPELINE)
    assert events[-1] == "v1: stays champion"
    assert [e["to"] for e in registry.history(TASK) if e["alias"] == "champion"] == ["1"]


def test_a_new_version_must_beat_the_champion_by_min_improvement(workspace, model_dir):
    margin = RegistryTask(metric="rmse", direction="minimize", threshold=1.0, min_improvement=0.05)
    registry.register_run(TASK, margin, finished_run(model_dir, 0.70), "first", PIPELINE)
    events = registry.register_run(TASK, margin, finished_run(model_dir, 0.68), "near", PIPELINE)
    assert events[-1] == (
        "v2: does not beat champion v1 by at least 0.05 (eval_valid_rmse=0.6800 vs 0.7000)"
    )
    assert aliases() == {"candidate": "2", "champion": "1"}
    events = registry.register_run(TASK, margin, finished_run(model_dir, 0.60), "far", PIPELINE)
    assert "v3: beats champion v1 by 0.1000" in events
    assert aliases()["champion"] == "3"


def test_a_champion_trained_on_other_data_is_scored_again_on_the_new_data(workspace, model_dir):
    """A retrain on a new data drop: the champion's recorded score is from its own validation
    split, so the gate compares both on the new one."""

    def on_data(md5: str, rmse: float) -> str:
        run_id = finished_run(model_dir, rmse)
        client().set_tag(run_id, TAG + "data_md5", md5)
        return run_id

    registry.register_run(TASK, SPEC, on_data("old", 0.60), "champ", PIPELINE)
    seen = []

    def rescore(version) -> float:
        seen.append(str(version.version))
        return 0.90  # the champion on the new data: worse than its 0.60 on its own

    new = on_data("new", 0.75)
    events = registry.register_run(TASK, SPEC, new, "new", PIPELINE, rescore=rescore)
    assert seen == ["1"]
    rescored = "champion v1 scored on v2's data: eval_valid_rmse=0.9000 (0.6000 on its own data)"
    assert rescored in events
    assert aliases()["champion"] == "2"
    # same data as the champion: its recorded score stands, nothing is scored again
    registry.register_run(TASK, SPEC, on_data("new", 0.80), "same", PIPELINE, rescore=rescore)
    assert seen == ["1"] and aliases()["champion"] == "2"
    # a champion that cannot be scored here is compared by its own score, and it is said
    events = registry.register_run(
        TASK, SPEC, on_data("newer", 0.70), "n", PIPELINE, rescore=lambda version: None
    )
    assert "champion v2 could not be scored on v4's data: compared by its own score" in events
    assert aliases()["champion"] == "4"  # 0.70 beats v2's own 0.75


def test_a_cut_short_version_never_replaces_a_complete_champion(workspace, model_dir):
    """A run its max_seconds guard stopped depends on the machine's speed: however good its
    score, it stays candidate while a complete champion exists; a complete one may win."""
    registry.register_run(TASK, SPEC, finished_run(model_dir, 0.8), "complete", PIPELINE)
    cut = finished_run(model_dir, 0.5)
    client().set_tag(cut, TAG + "cut_short", "true")
    events = registry.register_run(TASK, SPEC, cut, "cut", PIPELINE)
    assert any("cut short by its max_seconds guard" in e for e in events), events
    assert aliases() == {"candidate": "2", "champion": "1"}
    version = client().get_model_version(TASK, "2")
    assert version.tags[TAG + "cut_short"] == "true"
    assert "Cut short" in version.description
    registry.register_run(TASK, SPEC, finished_run(model_dir, 0.6), "complete2", PIPELINE)
    assert aliases()["champion"] == "3"
