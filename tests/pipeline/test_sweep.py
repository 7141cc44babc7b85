"""`make sweep` machinery, in a throw-away repository: a grid queued as DVC experiments and
run by two parallel workers; every run lands in the one MLflow store with its experiment
name, a failing experiment is reported with its log instead of hanging, and the winner
ships only through apply, commit and repro."""

from __future__ import annotations

import sys

import pytest
import yaml

from reprolab.ops import sandbox

pytestmark = pytest.mark.slow


def test_a_sweep_moves_no_alias_and_its_winner_ships_by_apply_commit_repro(tmp_path):
    """`make sweep` -> review -> `dvc exp apply` -> commit -> `dvc repro`: two queued
    experiments run on two workers and are tagged with their names; a failing one is
    reported with its log; they register versions but the champion stays; the applied one
    is gated once committed."""
    from tests.conftest import _mirror, sandbox_runner

    mirror = _mirror()
    if mirror is None:
        pytest.skip("no dataset mirror: set REPROLAB_DATA_MIRROR")
    root = sandbox.create(tmp_path / "repo")
    path = root / "params.yaml"
    params = sandbox.restrict(yaml.safe_load(path.read_text()), ["wine-rf"])
    params["datasets"]["wine"]["sample_fraction"] = 0.5  # ~400 valid wines: depth 12 clearly wins
    params["models"]["wine-rf"].update(n_estimators=10, max_depth=2, n_jobs=1)
    params["registry"]["wine-quality"]["threshold"] = 5.0
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    sandbox.restrict_exports(root / sandbox.EXPORTS, params)  # no export of a model it lost
    run = sandbox_runner(root, mirror)

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@localhost"]
    run(*git, "commit", "-qam", "small wine-rf")
    run("dvc", "repro")
    run(*git, "add", "-A")
    run(*git, "commit", "-qm", "baseline results")

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")

    def aliases() -> dict[str, str]:
        return {a: str(v) for a, v in client.get_registered_model("wine-quality").aliases.items()}

    assert aliases() == {"candidate": "1", "champion": "1"}
    before = (root / "reports/registry/wine-quality.json").read_text()
    first_predictions = (root / "reports/predictions/wine-quality.csv").read_text()

    sweep = [sys.executable, "-m", "reprolab.ops.sweep", "--jobs", "2", "--timeout", "600"]
    done = run(*sweep, "--grid", "models.wine-rf.max_depth=3,12")
    assert "queued 2 experiment(s)" in done.stdout and "2/2 finished" in done.stdout
    table = done.stdout[done.stdout.index("| Experiment") :]
    (tmp_path.parent / "sweep-table.md").write_text(done.stdout)
    queued = done.stdout.split("queued 2 experiment(s): ")[1].splitlines()[0].split(", ")
    assert all(name in table for name in queued) and "models.wine-rf.max_depth" in table
    exp = client.get_experiment_by_name("wine-quality")
    runs = client.search_runs([exp.experiment_id], "tags.`reprolab.stage` = 'train'")
    assert {r.data.tags["reprolab.dvc_exp"] for r in runs} == {"", *queued}  # one run each
    assert {r.data.params["max_depth"] for r in runs} == {"2", "3", "12"}

    # a failing experiment is reported with its log, and the sweep exits non-zero
    failed = run(*sweep, "--grid", "models.wine-rf.max_depth=0", check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "FAILED" in failed.stdout
    assert "models.wine-rf.max_depth: must be > 0" in failed.stdout

    versions = client.search_model_versions("name='wine-quality'")
    assert len(versions) == 3  # both experiments registered...
    assert aliases() == {"candidate": "1", "champion": "1"}  # ...and moved nothing
    assert (root / "reports/registry/wine-quality.json").read_text() == before
    deep = next(v for v in versions if client.get_run(v.run_id).data.params["max_depth"] == "12")
    exp_name, version = deep.tags["reprolab.dvc_exp"], str(deep.version)
    assert exp_name and deep.tags["reprolab.gate"] == "pending"

    run("dvc", "exp", "apply", exp_name)
    run(*git, "add", "-A")
    run(*git, "commit", "-qm", f"apply {exp_name}: max_depth 12")
    out = run("dvc", "repro").stdout
    gate = [line for line in out.splitlines() if line.startswith(f"v{version}")]
    assert f"v{version}: promoted to champion (pipeline: committed workspace" in out, gate
    assert aliases() == {"candidate": version, "champion": version, "archive": "1"}
    champion = (root / "reports/registry/wine-quality.champion.json").read_text()
    assert f'"version": "{version}"' in champion
    assert "Running stage 'infer@wine-quality'" in out  # the predictions follow the champion
    assert (root / "reports/predictions/wine-quality.csv").read_text() != first_predictions

    # a person rolls back: the registry files change, so `dvc repro` redoes the predictions
    out = run("reprolab", "registry", "rollback", "wine-quality", "--reason", "drift seen").stdout
    assert "v1: promoted to champion (" in out and "drift seen)" in out
    assert '"version": "1"' in (root / "reports/registry/wine-quality.champion.json").read_text()
    out = run("dvc", "repro").stdout
    assert "infer@wine-quality' is cached - skipping run, checking out outputs" in out, out
    assert (root / "reports/predictions/wine-quality.csv").read_text() == first_predictions
    history = run("reprolab", "registry", "history", "wine-quality").stdout.splitlines()
    assert history[-1].split()[1:5] == ["champion", f"v{version}", "->", "v1"]
    assert history[-1].endswith(": drift seen")
