"""The admin rollback route under the gate: a version the gate refuses is a one-line 409 and
the served model stays; `force` with a reason moves it, and the history says it was forced."""

from __future__ import annotations

import httpx

ROLLBACK = "/admin/registry/wine-quality/rollback"


def get(server, path: str) -> httpx.Response:
    return httpx.get(server.url + path, headers=server.headers, timeout=60)


def post(server, path: str, body) -> httpx.Response:
    return httpx.post(server.url + path, json=body, headers=server.headers, timeout=60)


def served(server, task: str) -> str:
    tasks = get(server, "/v1/tasks").json()["tasks"]
    return next(t["version"] for t in tasks if t["task"] == task)


def test_a_rollback_the_gate_refuses_is_a_409_unless_forced_and_recorded(
    server, served_store, on_store
):
    from reprolab.core import registry_history

    v2 = served_store.wine_v2  # never scored: it cannot meet the threshold
    refused = post(server, ROLLBACK, {"to": v2, "reason": "try"})
    assert refused.status_code == 409, refused.text
    message = refused.json()["error"]["message"]
    assert "threshold" in message and "not rolled back (force: true" in message
    assert "\n" not in message and served(server, "wine-quality") == "1"

    reason = "hotfix\n2026-01-01T00:00:00Z  champion  v1 -> v9  admin: fake"
    body = {"to": v2, "reason": reason, "force": True, "by": "ann"}
    forced = post(server, ROLLBACK, body)
    assert forced.status_code == 200, forced.text
    assert forced.json()["served_version"] == v2 and served(server, "wine-quality") == v2
    assert any("forced past the gate" in e for e in forced.json()["events"])

    last = get(server, "/v1/registry/wine-quality").json()["history"][-1]
    assert (last["from"], last["to"], last["by"], last["reason"]) == ("1", v2, "ann", reason)
    assert last["forced"] and "threshold" in last["overrode"] and not last["legacy"]
    assert registry_history.verify("wine-quality").intact
