"""The MLflow-compatible routes against `mlflow models serve` itself: the same client code,
on the same wine model, gets the same answers (predictions, the 400 of a bad body, the 415
of an unread content type) from both, at the task's path and at the root."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest

from reprolab.ops import devservers
from reprolab.ops.bench_serve import WINE_ROW, running
from tests.serve.conftest import start_server

pytestmark = pytest.mark.slow

ROW = WINE_ROW  # one red wine of the UCI set
OTHER = {**ROW, "alcohol": 12.8, "volatile acidity": 0.3, "is_red": 0.0}


def bodies() -> list[tuple[str, bytes, str]]:
    """(what, body, content type): every input form MLflow's scoring protocol takes."""
    import json

    columns = list(ROW)
    forms = {
        "dataframe_split": {
            "dataframe_split": {
                "columns": columns,
                "data": [list(ROW.values()), list(OTHER.values())],
            }
        },
        "dataframe_records": {"dataframe_records": [ROW, OTHER]},
        "instances": {"instances": [ROW, OTHER]},
        "inputs": {"inputs": {c: [ROW[c], OTHER[c]] for c in columns}},
    }
    out = [(name, json.dumps(body).encode(), "application/json") for name, body in forms.items()]
    csv = ",".join(columns) + "\n" + ",".join(str(v) for v in ROW.values()) + "\n"
    return [*out, ("csv", csv.encode(), "text/csv")]


BAD = [
    ("not json", b"{rows", "application/json"),
    ("no known key", b'{"rows": [1, 2]}', "application/json"),
    ("a missing column", b'{"dataframe_records": [{"alcohol": 9.4}]}', "application/json"),
    ("an unread content type", b"<rows/>", "application/xml"),
]


def client(url: str, headers: dict[str, str], body: bytes, content_type: str) -> httpx.Response:
    """What an MLflow scoring client does: POST the body, read the JSON."""
    sent = {**headers, "Content-Type": content_type}
    return httpx.post(url, content=body, headers=sent, timeout=60, trust_env=False)


@pytest.fixture(scope="module")
def mlflow_url(served_store) -> str:
    """`mlflow models serve` on the served store's wine champion."""
    port = devservers.free_port()
    scripts = Path(sys.executable).parent
    command = [str(scripts / "mlflow"), "models", "serve", "-m", "models:/wine-quality@champion"]
    command += ["--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", "1"]
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(scripts), os.environ.get("PATH", "")]),
        "MLFLOW_TRACKING_URI": served_store.tracking_uri,
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    url = f"http://127.0.0.1:{port}"
    with running("mlflow models serve", command, env, f"{url}/ping"):
        yield url


@pytest.fixture(scope="module")
def one_task(served_store, params_file_module):
    """The service with the wine task alone (and the static LM, which has no pyfunc route)."""
    with start_server(served_store, params_file_module, "--task", "wine-quality") as running_:
        yield running_


def test_every_input_form_is_answered_as_mlflow_answers_it(one_task, mlflow_url):
    ours = one_task.url
    for what, body, kind in bodies():
        theirs = client(f"{mlflow_url}/invocations", {}, body, kind)
        assert theirs.status_code == 200, (what, theirs.text)
        for path in ("/v1/tasks/wine-quality/invocations", "/invocations"):
            answer = client(ours + path, one_task.headers, body, kind)
            assert answer.status_code == 200, (what, path, answer.text)
            assert answer.json() == theirs.json(), (what, path)
            assert set(answer.json()) == {"predictions"}


def test_bad_bodies_get_mlflows_status_and_error_shape(one_task, mlflow_url):
    for what, body, kind in BAD:
        theirs = client(f"{mlflow_url}/invocations", {}, body, kind)
        ours = client(one_task.url + "/invocations", one_task.headers, body, kind)
        assert ours.status_code == theirs.status_code, (what, ours.text, theirs.text)
        assert 400 <= ours.status_code < 500, (what, ours.text)
        if theirs.headers.get("content-type", "").startswith("application/json"):
            assert ours.json()["error_code"] == theirs.json()["error_code"], what


def test_ping_answers_like_mlflow_and_the_token_still_guards_predictions(one_task, mlflow_url):
    theirs = httpx.get(f"{mlflow_url}/ping", trust_env=False)
    ours = httpx.get(f"{one_task.url}/ping", trust_env=False)  # public, as /health is
    assert ours.status_code == theirs.status_code == 200
    body, kind = bodies()[0][1:]
    assert client(f"{one_task.url}/invocations", {}, body, kind).status_code == 401


def test_with_several_tasks_each_has_its_route_and_the_root_has_none(server):
    body, kind = bodies()[1][1:]
    answer = client(f"{server.url}/v1/tasks/wine-quality/invocations", server.headers, body, kind)
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2
    assert client(f"{server.url}/invocations", server.headers, body, kind).status_code == 404
    assert httpx.get(f"{server.url}/ping", trust_env=False).status_code == 404
