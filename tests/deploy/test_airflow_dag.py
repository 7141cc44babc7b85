"""The Airflow DAG deploy/airflow/dags/reprolab_retrain.py, run by Airflow in its own venv
(`make airflow-setup`): it parses, and `dag.test()` drives a fake `reprolab` CLI, so its
wiring (step order, flags, repository folder, Slack on failure) is checked in seconds without
the real pipeline. Airflow's pins conflict with the project's, hence the subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "deploy" / "airflow" / "dags"
STEPS = ("validate", "train", "gate", "notify")

# Run by Airflow's python: argv[1] = result file; argv[2] = run conf as JSON, or absent to
# only parse. Writes what the tests assert on as JSON (Airflow logs fill stdout).
PROBE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}}
dag = bag.dags.get("reprolab_retrain")
if dag is not None:
    out.update(
        tasks=[t.task_id for t in dag.topological_sort()],
        downstream={t.task_id: sorted(t.downstream_task_ids) for t in dag.tasks},
        max_active_runs=dag.max_active_runs,
        catchup=dag.catchup,
        schedule=str(dag.schedule),
        params={k: dag.params[k] for k in dag.params},
    )
    if len(sys.argv) > 3:
        out["state"] = str(dag.test(run_conf=json.loads(sys.argv[3])).state)
with open(sys.argv[2], "w") as f:
    json.dump(out, f)
"""


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    """Airflow's interpreter, installed once by `make airflow-setup` where it is missing."""
    python = REPO / ".venv-airflow" / "bin" / "python"
    if not python.exists():
        setup = subprocess.run(
            ["make", "airflow-setup"], cwd=REPO, capture_output=True, text=True, timeout=1200
        )
        if setup.returncode != 0 or not python.exists():
            pytest.skip(f"Airflow cannot be installed here: {setup.stderr.strip()[-500:]}")
    return python


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """A throw-away AIRFLOW_HOME with its own SQLite DB; no examples, no outside Variables,
    connections or REPROLAB_* settings leaking in from the caller."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "REPROLAB_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        **extra,
    )
    return env


@pytest.fixture(scope="module")
def migrated_home(airflow_python, tmp_path_factory) -> Path:
    """An AIRFLOW_HOME whose DB `dag.test()` can write runs into (a few seconds)."""
    home = tmp_path_factory.mktemp("airflow-home")
    migrate = subprocess.run(
        [str(airflow_python.parent / "airflow"), "db", "migrate"],
        env=airflow_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr[-2000:]
    return home


def run_probe(python: Path, env: dict[str, str], tmp: Path, conf: dict | None = None) -> dict:
    """PROBE in Airflow's venv: parse the DAG, and with `conf` also run it with dag.test()."""
    result = tmp / "probe.json"
    args = [str(python), "-c", PROBE, str(DAGS), str(result)]
    if conf is not None:
        args.append(json.dumps(conf))
    proc = subprocess.run(args, env=env, cwd=tmp, capture_output=True, text=True, timeout=300)
    assert result.exists(), f"probe failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(result.read_text())


def fake_repo(root: Path, fail_step: str | None = None) -> Path:
    """A repository folder whose .venv/bin/reprolab only records its folder, arguments and
    webhook env (one tab-separated line a call), and fails `fail_step` with exit status 1."""
    cli = root / ".venv" / "bin" / "reprolab"
    cli.parent.mkdir(parents=True)
    fail = f'[ "$4" = {fail_step} ] && {{ echo "{fail_step} broke" >&2; exit 1; }}'
    cli.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\t%s\\t%s\\n" "$PWD" "$*" "$REPROLAB_SLACK_WEBHOOK" >> {root}/calls.txt\n'
        f"{fail if fail_step else ''}\n"
        "exit 0\n"
    )
    cli.chmod(0o755)
    return root


def recorded_calls(repo: Path) -> list[list[str]]:
    """[folder, arguments, webhook] of each CLI call, in order."""
    calls = repo / "calls.txt"
    return [line.split("\t") for line in calls.read_text().splitlines()] if calls.exists() else []


def slack_connection(url: str) -> str:
    """AIRFLOW_CONN_REPROLAB_SLACK: a Slack incoming-webhook connection, the whole webhook URL
    in the password (the hook takes a password with :// as the URL itself)."""
    return json.dumps({"conn_type": "slackwebhook", "password": url})


def test_dag_parses_with_four_steps_in_order(airflow_python, tmp_path):
    """No Variables, no connection, no DB: the file still imports, with the defaults."""
    probe = run_probe(airflow_python, airflow_env(tmp_path / "home"), tmp_path)
    assert probe["import_errors"] == {}
    assert probe["tasks"] == list(STEPS)
    assert probe["downstream"] == {
        "validate": ["train"],
        "train": ["gate"],
        "gate": ["notify"],
        "notify": [],
    }
    assert probe["max_active_runs"] == 1
    assert probe["catchup"] is False
    assert probe["schedule"] == "@weekly"
    assert probe["params"] == {"task": "wine-quality", "data": "", "commit": True}


def test_dag_runs_the_four_steps_through_the_cli(
    airflow_python, migrated_home, tmp_path, httpserver
):
    """Each step is one CLI call from the repository folder with the same flags; the webhook
    env reaches the CLI; no failure is posted."""
    repo, drop = fake_repo(tmp_path / "repo"), tmp_path / "drop"
    env = airflow_env(
        migrated_home,
        REPROLAB_REPO=str(repo),
        REPROLAB_SLACK_WEBHOOK="http://127.0.0.1:9/summary",
        AIRFLOW_CONN_REPROLAB_SLACK=slack_connection(httpserver.url_for("/hook")),
    )
    probe = run_probe(airflow_python, env, tmp_path, conf={"data": str(drop)})

    assert probe["state"] == "success"
    assert recorded_calls(repo) == [
        [
            str(repo),
            f"retrain wine-quality --step {step} --data {drop} --commit",
            "http://127.0.0.1:9/summary",
        ]
        for step in STEPS
    ]
    assert httpserver.log == []


def test_failed_step_stops_the_run_and_posts_to_slack(
    airflow_python, migrated_home, tmp_path, httpserver
):
    """train fails: gate and notify never run, the DAG run fails, and the failure callback
    posts a message naming the task to the `reprolab_slack` webhook. The repository and the
    data default come from Airflow Variables here."""
    repo, drop = fake_repo(tmp_path / "repo", fail_step="train"), tmp_path / "drop"
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    env = airflow_env(
        migrated_home,
        AIRFLOW_VAR_REPROLAB_REPO=str(repo),
        AIRFLOW_VAR_REPROLAB_RETRAIN_DATA=str(drop),
        AIRFLOW_CONN_REPROLAB_SLACK=slack_connection(httpserver.url_for("/hook")),
    )
    probe = run_probe(airflow_python, env, tmp_path, conf={"task": "nuclei", "commit": False})

    assert probe["state"] == "failed"
    assert [args for _, args, _ in recorded_calls(repo)] == [
        f"retrain nuclei --step {step} --data {drop}" for step in ("validate", "train")
    ]
    assert len(httpserver.log) == 1, httpserver.log
    text = json.loads(httpserver.log[0][0].data)["text"]
    assert "reprolab_retrain" in text and "task train" in text and "try 1" in text
    assert "/dags/reprolab_retrain/runs/" in text  # the task's log URL


def test_dag_retrains_wine_on_a_data_drop_end_to_end(
    airflow_python, migrated_home, tmp_path, httpserver
):
    """The real CLI in a throw-away repository: a small wine drop goes through validate,
    train, gate and notify; the first version becomes champion from the retrain branch's
    commit, and the webhook receives the summary."""
    import shutil
    import sys

    from reprolab.ops import sandbox
    from tests.conftest import _mirror

    mirror = _mirror()
    if mirror is None:
        pytest.skip("no dataset mirror: set REPROLAB_DATA_MIRROR")
    root = sandbox.create(
        tmp_path / "repo", {"registry.wine-quality.threshold": 5.0}, models=["wine-ridge"]
    )
    project = sandbox.env_for(root)
    cli = root / ".venv" / "bin" / "reprolab"  # git-ignored, as a real venv would be
    cli.parent.mkdir(parents=True)
    cli.write_text(f'#!/bin/sh\nexec {Path(sys.executable).parent / "reprolab"} "$@"\n')
    cli.chmod(0o755)
    drop = tmp_path / "drop" / "wine-quality"
    drop.mkdir(parents=True)
    for name in ("winequality-red.csv", "winequality-white.csv"):
        lines = (mirror / "wine-quality" / name).read_text().splitlines()[:151]
        (drop / name).write_text("\n".join(lines) + "\n")
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    passed = {k: project[k] for k in project if k.startswith(("DVC_", "GIT_", "PATH"))}
    passed |= {k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}
    env = airflow_env(
        migrated_home,
        **passed,
        REPROLAB_REPO=str(root),
        REPROLAB_DATA_MIRROR=str(mirror),
        REPROLAB_SLACK_WEBHOOK=httpserver.url_for("/hook"),
    )
    probe = run_probe(airflow_python, env, tmp_path, conf={"data": str(drop.parent)})

    assert probe["state"] == "success"
    [(request, _)] = httpserver.log
    text = json.loads(request.get_data(as_text=True))["text"]
    assert "reprolab retrain wine-quality: new champion" in text
    assert "champion none -> v1 (wine-ridge, valid rmse=" in text
    branch = subprocess.run(
        ["git", "branch", "--show-current"], cwd=root, capture_output=True, text=True
    ).stdout
    assert branch.startswith("retrain/wine-quality/")
    assert (
        (root / "reports/retrain/wine-quality.md")
        .read_text()
        .startswith("*reprolab retrain wine-quality: new champion*")
    )
    shutil.rmtree(root / ".venv")
