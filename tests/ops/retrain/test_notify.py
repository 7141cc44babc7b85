"""The retrain message, and a webhook that is down: reported, never raised."""

from __future__ import annotations

import socket

from reprolab.ops.retrain import notify

STATE = {
    "task": "wine-quality",
    "metric": "rmse",
    "data": {"source": "drop", "from": "/drops/w", "path": "data/drops/wine", "md5": "ab" * 16},
    "before": {"version": "1", "model": "wine-ridge", "value": 0.78},
    "after": {
        "version": "1",
        "model": "wine-ridge",
        "value": 0.78,
        "new_versions": [
            {"version": "2", "model": "wine-ridge", "value": 0.79, "status": "passed"}
        ],
    },
    "decision": "kept",
    "why": ["v2: does not beat champion v1 (eval_valid_rmse=0.7900 vs 0.7800)"],
    "drift": {"note": "drift: not measured (the champion's data is not here)"},
}


def test_a_kept_champion_message_says_old_new_and_why():
    text = notify.message(STATE)
    assert text.splitlines()[0] == "*reprolab retrain wine-quality: champion kept*"
    assert "champion stays v1 (wine-ridge, valid rmse=0.7800)" in text
    assert "new v2 (wine-ridge): valid rmse=0.7900, gate: passed" in text
    assert "why: v2: does not beat champion v1" in text


def test_a_failure_message_names_the_step_the_stage_and_its_log():
    failed = {
        **STATE,
        "failure": {
            "step": "train",
            "stage": "train@wine-ridge",
            "error": "dvc repro failed",
            "log_tail": ["Traceback ...", "ValueError: boom"],
        },
    }
    text = notify.message(failed)
    assert text.splitlines()[0] == (
        "*reprolab retrain wine-quality: FAILED* in train (stage train@wine-ridge)"
    )
    assert "ValueError: boom" in text and "the champion is unchanged" in text


def test_a_webhook_that_is_down_is_reported_not_raised():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    problem = notify.post(f"http://127.0.0.1:{port}/hook", "hello")
    assert problem and "Connection refused" in problem


def test_a_refused_post_is_reported_with_its_status(httpserver):
    httpserver.expect_request("/hook").respond_with_data("invalid_payload", status=400)
    assert notify.post(httpserver.url_for("/hook"), "hello") == "HTTP 400: invalid_payload"
    httpserver.clear()
    httpserver.expect_request("/hook").respond_with_data("ok")
    assert notify.post(httpserver.url_for("/hook"), "hello") is None
