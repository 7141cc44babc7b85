"""Every retrain failure, whatever raised it, reaches the webhook and the retrain report; a
data error ends as one line (StepFailed), a bug as itself after both."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprolab.ops.retrain import steps
from tests.ops.retrain.test_drop import wine_drop


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Path:
    """A throw-away working folder (state and reports are relative paths) and a webhook
    that records what it is sent."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def posts(monkeypatch) -> list[str]:
    from reprolab.ops.retrain import notify

    sent: list[str] = []
    monkeypatch.setattr(notify, "post", lambda url, text: sent.append(text))
    return sent


def options(data: Path | None) -> steps.Options:
    return steps.Options("wine-quality", data, False, "http://hook.invalid/x", None)


def report(root: Path) -> dict:
    return json.loads((root / "reports/retrain/wine-quality.json").read_text())


def test_an_empty_csv_is_reported_posted_and_one_line(workspace, posts, monkeypatch):
    from reprolab.ops.retrain import drop
    from reprolab.workloads.wine.params import WineDataset

    data = wine_drop(workspace / "drop")
    empty = data / "wine-quality" / "winequality-red.csv"
    empty.write_text("")

    def validate(state: dict, opts: steps.Options) -> None:  # prepare's read, nothing else
        drop.check("wine", WineDataset(kind="wine"), 0, opts.data, workspace / "work")

    monkeypatch.setitem(steps.STEP, "validate", validate)
    with pytest.raises(steps.StepFailed) as failed:
        steps.run(options(data), steps.STEPS)
    reason = str(failed.value)
    assert "\n" not in reason and str(empty) in reason and "empty" in reason
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
    saved = report(workspace)["failure"]
    assert saved["step"] == "validate" and saved["error"] == reason
    assert len(posts) == 1 and "FAILED* in validate" in posts[0] and str(empty) in posts[0]
    text = (workspace / "reports/retrain/wine-quality.md").read_text()
    assert "FAILED" in text and reason in text


def test_an_unexpected_exception_is_reported_posted_and_re_raised(workspace, posts, monkeypatch):
    def train(state: dict, opts: steps.Options) -> None:
        raise KeyError("no-such-column")

    monkeypatch.setitem(steps.STEP, "validate", lambda state, opts: None)
    monkeypatch.setitem(steps.STEP, "train", train)
    with pytest.raises(KeyError):
        steps.run(options(None), steps.STEPS)
    saved = report(workspace)["failure"]
    assert saved["step"] == "train"
    assert saved["error"] == "unexpected KeyError: 'no-such-column'"
    assert any("KeyError" in line for line in saved["log_tail"])
    assert len(posts) == 1 and "FAILED* in train" in posts[0]
    assert "unexpected KeyError" in posts[0]


def test_a_single_step_failure_writes_the_report_and_leaves_posting_to_the_orchestrator(
    workspace, posts, monkeypatch
):
    def validate(state: dict, opts: steps.Options) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(steps.STEP, "validate", validate)
    with pytest.raises(RuntimeError):
        steps.run(options(None), ("validate",))
    assert report(workspace)["failure"]["error"] == "unexpected RuntimeError: disk on fire"
    assert posts == []


def test_a_failing_webhook_does_not_hide_the_failure(workspace, monkeypatch):
    from reprolab.ops.retrain import notify

    def broken(url: str, text: str) -> None:
        raise ConnectionError("refused")

    def validate(state: dict, opts: steps.Options) -> None:
        raise steps.StepFailed("a bad drop")

    monkeypatch.setattr(notify, "post", broken)
    monkeypatch.setitem(steps.STEP, "validate", validate)
    with pytest.raises(steps.StepFailed, match="a bad drop"):
        steps.run(options(None), steps.STEPS)
    assert report(workspace)["failure"]["error"] == "a bad drop"
