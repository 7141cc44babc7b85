"""The registry over HTTP, against a live server: what a task holds, a person's promote and
rollback (the served model follows), and every refusal as a one-line 4xx."""

from __future__ import annotations

import httpx
import pytest


def get(server, path: str, **kwargs) -> httpx.Response:
    return httpx.get(server.url + path, headers=server.headers, timeout=60, **kwargs)


def post(server, path: str, body) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=server.headers, timeout=60)


def served(server, task: str) -> str:
    tasks = get(server, "/v1/tasks").json()["tasks"]
    return next(t["version"] for t in tasks if t["task"] == task)


def test_a_task_lists_versions_newest_first_with_aliases_and_lineage(server, served_store):
    body = get(server, "/v1/registry/wine-quality").json()
    assert body["metric"] == "rmse" and body["direction"] == "minimize"
    numbers = [v["version"] for v in body["versions"]]
    assert numbers == sorted(numbers, key=int, reverse=True) and "1" in numbers
    by_number = {v["version"]: v for v in body["versions"]}
    assert "champion" in by_number[body["served_version"]]["aliases"]
    assert by_number[served_store.wine_v2]["aliases"] == []
    assert by_number["1"]["experiment_id"] and by_number["1"]["model"] == "wine-rf"
    assert body["mlflow_ui"] == "http://127.0.0.1:5000"


def test_promote_and_rollback_move_the_served_model_and_the_history(server, served_store):
    v2 = served_store.wine_v2
    below = post(server, "/admin/registry/wine-quality/promote", {"version": v2, "reason": "try"})
    assert below.status_code == 409, below.text  # untagged versions miss the threshold
    assert "threshold" in below.json()["error"]["message"] and served(server, "wine-quality") == "1"

    moved = post(
        server,
        "/admin/registry/wine-quality/promote",
        {"version": v2, "reason": "hand-checked", "force": True, "by": "ann"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["served_version"] == v2 and served(server, "wine-quality") == v2
    assert any("promoted to champion" in e for e in moved.json()["events"])

    # the fixture's v1 was never scored, so the gate refuses it: only a forced rollback restores it
    rollback = {"reason": "regression", "force": True}
    back = post(server, "/admin/registry/wine-quality/rollback", rollback)
    assert back.status_code == 200, back.text
    assert back.json()["served_version"] == "1" and served(server, "wine-quality") == "1"

    history = get(server, "/v1/registry/wine-quality").json()["history"]
    assert [(e["from"], e["to"], e["by"]) for e in history[-2:]] == [
        ("1", v2, "ann"),
        (v2, "1", history[-1]["by"]),
    ]
    assert history[-1]["reason"] == "regression"


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        (
            "/admin/registry/wine-quality/promote",
            {"version": "999", "reason": "x"},
            404,
            "no version",
        ),
        ("/admin/registry/wine-quality/promote", {"version": "1", "reason": "  "}, 422, "reason"),
        ("/admin/registry/wine-quality/promote", {"version": "v1", "reason": "x"}, 422, "version"),
        ("/admin/registry/no-such-task/promote", {"version": "1", "reason": "x"}, 404, "tasks:"),
        ("/admin/registry/wine-quality/rollback", {"to": "999", "reason": "x"}, 404, "no version"),
    ],
)
def test_bad_registry_requests_are_4xx_naming_the_field(server, path, body, status, words):
    answer = post(server, path, body)
    assert answer.status_code == status, answer.text
    message = answer.json()["error"]["message"]
    assert words in message and "\n" not in message


def test_registry_routes_need_the_token(server):
    assert httpx.get(server.url + "/v1/registry/wine-quality").status_code == 401
    refused = httpx.post(
        server.url + "/admin/registry/wine-quality/rollback",
        json={"reason": "x"},
        headers={"Authorization": "Bearer wrong"},
    )
    assert refused.status_code == 403


def test_experiments_outside_a_dvc_repository_is_a_clear_404(server):
    answer = get(server, "/v1/experiments")
    assert answer.status_code == 404 and "not a DVC repository" in answer.json()["error"]["message"]
