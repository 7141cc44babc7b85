"""Two machines, one Optuna study: each worker is its own clone with its own MLflow store,
and they share only the study's PostgreSQL database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reprolab.ops import devservers, sandbox

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
N_TRIALS = 6
OVERRIDES = {
    "datasets.wine.sample_fraction": 0.3,
    "models.wine-hgb.max_iter": 40,
    "hpo.wine-hgb.n_trials": N_TRIALS,
    "hpo.wine-hgb.cv_folds": 0,
    "hpo.wine-hgb.study_name": "wine-hgb-shared",
}


def test_two_workers_share_one_study_without_duplicates(tmp_path):
    from tests.conftest import _mirror

    mirror = _mirror()
    if mirror is None:
        pytest.skip("no dataset mirror: set REPROLAB_DATA_MIRROR")
    if devservers.pg_bin() is None:
        pytest.skip("PostgreSQL is not installed: `apt-get install -y postgresql` (.ci/run)")
    machines = [
        sandbox.create(tmp_path / f"machine{i}", OVERRIDES, source=REPO, models=["wine-hgb"])
        for i in (1, 2)
    ]
    with devservers.postgres("optuna") as url:
        envs = [
            {
                **sandbox.env_for(root),
                "REPROLAB_DATA_MIRROR": str(mirror),
                "REPROLAB_OPTUNA_STORAGE": url,
            }
            for root in machines
        ]
        for root, env in zip(machines, envs, strict=True):
            subprocess.run(
                ["dvc", "repro", "prepare@wine"], cwd=root, env=env, check=True, capture_output=True
            )
        workers = [
            subprocess.Popen(
                [sys.executable, "stages/hpo.py", "wine-hgb"],
                cwd=root,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for root, env in zip(machines, envs, strict=True)
        ]
        outputs = [w.communicate(timeout=600)[0] for w in workers]
        assert [w.returncode for w in workers] == [0, 0], "\n".join(o[-1500:] for o in outputs)

        import optuna

        study = optuna.load_study(study_name="wine-hgb-shared", storage=url)
        finished = [t for t in study.trials if t.state.is_finished()]
        numbers = [t.number for t in study.trials]

    # the workers stop together once the study holds n_trials (one more may be in flight)
    assert N_TRIALS <= len(finished) <= N_TRIALS + 1
    assert len(numbers) == len(set(numbers))
    # every trial was run on exactly one machine: count each machine's MLflow trial runs
    import mlflow

    per_machine = []
    for root in machines:
        store = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
        experiment = store.get_experiment_by_name("wine-quality")
        runs = store.search_runs([experiment.experiment_id], "tags.`reprolab.stage` = 'hpo-trial'")
        per_machine.append({int(r.data.tags["reprolab.trial"]) for r in runs})
    assert not per_machine[0] & per_machine[1]
    assert per_machine[0] | per_machine[1] == set(numbers)
