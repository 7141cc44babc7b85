"""What a retrain tells people: one message, printed and posted to a Slack-compatible
incoming webhook (`--notify URL` or REPROLAB_SLACK_WEBHOOK). A webhook that is down or
refuses the post never fails the retrain: the problem is printed instead."""

from __future__ import annotations

import os

from reprolab.ops.retrain.drift import summary_lines

WEBHOOK_ENV = "REPROLAB_SLACK_WEBHOOK"


def webhook_url(option: str | None) -> str | None:
    return option or os.environ.get(WEBHOOK_ENV) or None


def message(state: dict) -> str:
    """The retrain's outcome in plain text (Slack renders it as is; *bold* is mrkdwn)."""
    task = state["task"]
    failure = state.get("failure")
    if failure:
        lines = [
            f"*reprolab retrain {task}: FAILED* in {failure['step']}"
            + (f" (stage {failure['stage']})" if failure.get("stage") else ""),
            failure["error"],
        ]
        if failure.get("log_tail"):
            lines += ["last lines of its log:", "```", *failure["log_tail"], "```"]
        lines.append(_data_line(state))
        lines.append("nothing was promoted; the champion is unchanged")
        return "\n".join(line for line in lines if line)
    before, after = state.get("before") or {}, state.get("after") or {}
    metric = state.get("metric", "metric")
    head = {
        "promoted": "new champion",
        "kept": "champion kept",
        "unchanged": "nothing new to train",
    }.get(state.get("decision", ""), state.get("decision", "done"))
    lines = [f"*reprolab retrain {task}: {head}*", _data_line(state)]
    old = _version(before, metric)
    new = _version(after, metric)
    if state.get("decision") == "promoted":
        lines.append(f"champion {old} -> {new}")
    else:
        lines.append(f"champion stays {new or old}")
    for version in after.get("new_versions", []):
        lines.append(
            f"new v{version['version']} ({version['model']}): valid {metric}="
            f"{_num(version.get('value'))}, gate: {version.get('status', '?')}"
        )
    why = state.get("why") or []
    if why:
        lines.append("why: " + "; ".join(why))
    lines += summary_lines(state.get("drift") or {})
    for link in state.get("links", []):
        lines.append(link)
    if state.get("branch"):
        lines.append(f"commits on branch {state['branch']}: {', '.join(state.get('commits', []))}")
    return "\n".join(line for line in lines if line)


def _data_line(state: dict) -> str:
    data = state.get("data") or {}
    if data.get("source") == "drop":
        return f"data: drop {data.get('from', '')} -> {data['path']} (md5 {data['md5'][:12]})"
    if data.get("source") == "upstream":
        return "data: the upstream source (pinned checksums)"
    return ""


def _version(info: dict, metric: str) -> str:
    if not info.get("version"):
        return "none"
    value = _num(info.get("value"))
    if "value_on_new_data" in info:  # the score the gate compared: on the same examples
        value = f"{_num(info['value_on_new_data'])} on the new data, {value} on its own"
    return f"v{info['version']} ({info.get('model', '?')}, valid {metric}={value})"


def _num(value) -> str:
    return f"{value:.4f}" if isinstance(value, int | float) else "?"


def post(url: str, text: str) -> str | None:
    """Post `text` to the webhook; None when it was accepted, else why not (never raises)."""
    from slack_sdk.webhook import WebhookClient

    try:
        response = WebhookClient(url, timeout=10).send(
            text=text, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]
        )
    except Exception as err:  # a notification never fails the retrain
        return f"{type(err).__name__}: {err}"
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {str(response.body)[:200]}"
    return None
