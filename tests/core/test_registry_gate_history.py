"""A person's rollback meets the same gate as a promote (past it only with force and a reason,
which the history records), and the alias history is a hash chain that `registry verify`
checks: a reason cannot forge an entry, and an edited, deleted, reordered or inserted entry,
the last one included, is reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from reprolab import workloads
from reprolab.cli import main
from reprolab.core import interrupts, registry, registry_history
from reprolab.core.errors import RegistryError
from reprolab.core.params import RegistryTask
from reprolab.core.tracking import TAG, Run, client
from reprolab.workloads.wine.params import RidgeParams

REPO = Path(__file__).resolve().parents[2]
TASK = "wine-quality"  # params.yaml's task: the CLI reads its gate from there
SPEC = RegistryTask(metric="rmse", direction="minimize", threshold=0.8)
PIPELINE = registry.Authority(True, "committed workspace (test)", "pipeline")
PERSON = registry.Authority.person("checked by hand")
FORGED = "2026-01-01T00:00:00Z  champion  v1 -> v9  admin: approved"


@pytest.fixture(autouse=True)
def _no_parent_death_signal(monkeypatch):
    monkeypatch.setattr(interrupts, "die_with_parent", lambda: None)


@pytest.fixture
def model_dir(tmp_path, regression_splits):
    train, valid, _ = regression_splits
    params = RidgeParams(workload="wine", kind="ridge", dataset="d", task=TASK)
    workloads.build(params, 0).fit(train, valid).save(tmp_path / "m", input_example=train.X[:2])
    return tmp_path / "m"


@pytest.fixture
def store(workspace, model_dir):
    """v1 champion (0.7), v2 below the threshold (0.9, rejected), v3 cut short (0.5, candidate);
    params.yaml in the workspace for the CLI."""
    shutil.copy2(REPO / "params.yaml", workspace / "params.yaml")
    for value, cut in ((0.7, False), (0.9, False), (0.5, True)):
        with Run(TASK, run_name="m") as run:
            run.log_model_dir(model_dir, kind="ridge")
            run.log_metrics({"rmse": value}, mlflow_prefix="eval_valid")
        if cut:
            client().set_tag(run.run_id, TAG + "cut_short", "true")
        registry.register_run(TASK, SPEC, run.run_id, f"m{value}", PIPELINE)
    assert champion() == "1"
    return workspace


def champion() -> str:
    return str(client().get_registered_model(TASK).aliases["champion"])


def cli(*args: str):
    return CliRunner().invoke(main, ["registry", *args])


def entries() -> dict[str, str]:
    tags = client().get_registered_model(TASK).tags
    return {k: v for k, v in tags.items() if k.startswith(registry_history.ENTRY)}


# ---------------------------------------------------------------- the gate on rollback


def test_a_rollback_to_a_version_the_gate_rejected_is_refused(store):
    with pytest.raises(RegistryError, match=r"v2: eval_valid_rmse=0\.9000 misses the threshold"):
        registry.rollback(TASK, SPEC, PERSON, to="2")
    with pytest.raises(RegistryError, match=r"cut short by its max_seconds guard.*not rolled back"):
        registry.rollback(TASK, SPEC, PERSON, to="3")
    assert champion() == "1"


def test_a_forced_rollback_is_recorded_with_who_why_and_what_it_overrode(store):
    events = registry.rollback(TASK, SPEC, registry.Authority.person("hotfix"), to="2", force=True)
    assert champion() == "2"
    assert "v2: forced past the gate: eval_valid_rmse=0.9000 misses the threshold <= 0.8" in events
    last = registry_history.history(TASK)[-1]
    assert (last["alias"], last["from"], last["to"], last["reason"]) == (
        "champion",
        "1",
        "2",
        "hotfix",
    )
    assert last["forced"] and "misses the threshold" in last["overrode"]
    assert last["by"] == PERSON.by and not last["legacy"]


def test_the_cli_rollback_is_refused_without_force_and_recorded_with_it(store):
    refused = cli("rollback", TASK, "--to", "2", "--reason", "try")
    assert refused.exit_code == 1 and "not rolled back (--force" in refused.output
    assert champion() == "1"
    forced = cli("rollback", TASK, "--to", "2", "--force", "--reason", "drift seen")
    assert forced.exit_code == 0, forced.output
    assert champion() == "2" and "forced past the gate" in forced.output
    shown = cli("history", TASK).output.splitlines()
    assert shown[-1].split()[1:6] == ["champion", "v1", "->", "v2", "forced"]
    assert shown[-1].endswith(": drift seen")
    assert cli("rollback", TASK, "--force", "--reason", "").exit_code == 1  # a reason is required


def test_a_passing_version_still_rolls_back_without_force(store):
    registry.promote(TASK, SPEC, "2", PERSON, force=True)
    registry.rollback(TASK, SPEC, PERSON)  # back to v1, which passes
    assert champion() == "1" and not registry_history.history(TASK)[-1]["forced"]


# ---------------------------------------------------------------- the history chain


def test_a_reason_with_newlines_cannot_forge_an_entry(store):
    before = len(registry_history.history(TASK))
    registry.promote(TASK, SPEC, "2", registry.Authority.person(f"ok\n{FORGED}"), force=True)
    moves = registry_history.history(TASK)
    assert len(moves) == before + 1 and moves[-1]["reason"] == f"ok\n{FORGED}"
    shown = cli("history", TASK).output.splitlines()
    assert len(shown) == len(moves)
    assert not any(line.startswith(FORGED[:20]) for line in shown)
    assert shown[-1].endswith(f"ok\\n{FORGED}")
    stored = [json.loads(raw) for raw in entries().values()]
    assert all(set(e) >= {"seq", "prev", "reason", "forced"} for e in stored)
    assert cli("verify", TASK).exit_code == 0


def test_verify_passes_an_intact_chain(store):
    registry.rollback(TASK, SPEC, PERSON, to="2", force=True)
    done = cli("verify", TASK)
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"{TASK}: history intact: {len(entries())} entries, head ")
    everything = cli("verify")
    assert everything.exit_code == 0 and everything.output.count("\n") == 1


def test_verify_reports_an_edited_entry(store):
    key = sorted(entries())[1]
    entry = json.loads(entries()[key])
    client().set_registered_model_tag(TASK, key, json.dumps({**entry, "by": "someone else"}))
    done = cli("verify", TASK)
    assert done.exit_code == 1
    assert done.output.startswith(f"{TASK}: history BROKEN at entry 2: edited")
    assert done.output.count("\n") == 1


def test_verify_reports_a_deleted_last_entry(store):
    registry.rollback(TASK, SPEC, PERSON, to="2", force=True)
    last = max(entries())
    client().delete_registered_model_tag(TASK, last)
    done = cli("verify")
    assert done.exit_code == 1
    assert done.output.startswith(f"{TASK}: history BROKEN at entry {int(last[-8:])}: missing")
    # the head rewritten to match is not enough: the version still holds the entry's anchor
    kept = entries()[max(entries())]
    head = {"count": int(last[-8:]) - 1, "sha256": registry_history.digest(json.loads(kept))}
    client().set_registered_model_tag(TASK, registry_history.HEAD, json.dumps(head))
    assert "missing: deleted (anchored on v2)" in cli("verify", TASK).output


def test_verify_reports_reordered_and_inserted_entries(store):
    first, second = sorted(entries())[:2]
    raw = entries()
    client().set_registered_model_tag(TASK, first, raw[second])
    client().set_registered_model_tag(TASK, second, raw[first])
    assert "BROKEN at entry 1" in cli("verify", TASK).output
    client().set_registered_model_tag(TASK, first, raw[first])
    client().set_registered_model_tag(TASK, second, raw[second])
    assert cli("verify", TASK).exit_code == 0
    after = len(raw) + 1
    key = f"{registry_history.ENTRY}{after:08d}"
    client().set_registered_model_tag(TASK, key, "{}")
    assert cli("verify", TASK).exit_code == 1
    prev = registry_history.digest(json.loads(raw[max(raw)]))
    fake = {**json.loads(raw[second]), "seq": after, "prev": prev, "reason": "inserted"}
    client().set_registered_model_tag(TASK, key, json.dumps(fake))  # linked, but not anchored
    assert f"BROKEN at entry {after}: no anchor" in cli("verify", TASK).output


def test_a_legacy_history_is_shown_unchained_and_then_anchored(workspace, model_dir):
    shutil.copy2(REPO / "params.yaml", workspace / "params.yaml")
    client().create_registered_model(TASK)
    old = {"time": "2025-01-01T00:00:00Z", "alias": "champion", "from": None, "to": "1"}
    legacy_key = f"{registry_history.LEGACY}{1:020d}"
    client().set_registered_model_tag(
        TASK, legacy_key, json.dumps({**old, "by": "p", "reason": "r"})
    )
    shown = cli("history", TASK)
    assert shown.exit_code == 0 and "legacy, unchained" in shown.output
    checked = cli("verify", TASK)
    assert checked.exit_code == 0 and "1 legacy entries before it, unchained" in checked.output
    with Run(TASK, run_name="m") as run:
        run.log_model_dir(model_dir, kind="ridge")
        run.log_metrics({"rmse": 0.7}, mlflow_prefix="eval_valid")
    registry.register_run(TASK, SPEC, run.run_id, "m", PIPELINE)
    assert [e["legacy"] for e in registry_history.history(TASK)] == [True, False, False]
    assert cli("verify", TASK).exit_code == 0
    client().set_registered_model_tag(
        TASK, legacy_key, json.dumps({**old, "by": "x", "reason": "r"})
    )
    broken = cli("verify", TASK).output
    assert "BROKEN at entry 1: does not chain to the legacy entries" in broken


def test_registry_list_and_runs_speak_json_for_scripts(store):
    table = cli("list", TASK).output
    assert "baseline: mean predictor, valid rmse 0.8797 (a version must beat it" in table
    listed = json.loads(cli("list", TASK, "--json").output)
    assert [v["version"] for v in listed] == ["1", "2", "3"]
    assert listed[0]["valid"] == pytest.approx(0.7) and listed[0]["test"] is None  # NaN: null
    assert "champion" in listed[0]["aliases"]
    for version in listed:  # what the train stage tags its runs with
        client().set_tag(version["run_id"], TAG + "stage", "train")
    runs = CliRunner().invoke(main, ["runs", TASK, "--json"])
    assert runs.exit_code == 0, runs.output
    assert sorted(r["run_id"] for r in json.loads(runs.output)) == sorted(
        v["run_id"] for v in listed
    )
