"""Sentences and table cells the report builds from a task's registry file
(reports/registry/<task>.json): who is champion and why, each model's latest version."""

from __future__ import annotations


def champion_sentence(registry: dict, metric: str, previous: dict | None) -> str:
    """Who is champion, chosen on valid among how many versions, and its test score."""
    champion = registry.get("champion")
    if not champion:
        return "No version is champion yet: none passed the threshold in a committed workspace."
    compared = registry.get("compared")
    among = f" among {compared} registered versions" if compared else ""
    test = champion.get("test")
    shown_test = f"; test {metric} {test:.4f}" if test is not None and test == test else ""
    text = (
        f"Champion: **{champion['model']}** (v{champion['version']}), chosen on validation "
        f"{metric} {champion['value']:.4f}{among}{shown_test}."
    )
    if previous:
        delta = champion["value"] - previous["value"]
        text += (
            f" Previous champion: {previous['model']} v{previous['version']} "
            f"(validation {previous['value']:.4f}); change {delta:+.4f}."
        )
    else:
        text += " It is the first champion of this task."
    return text


def versions_by_model(registry: dict) -> dict[str, str]:
    """Latest registered version of each model, with its aliases."""
    latest: dict[str, dict] = {}
    for v in registry.get("versions", []):
        if v["model"] not in latest or int(v["version"]) > int(latest[v["model"]]["version"]):
            latest[v["model"]] = v
    return {
        m: f"v{v['version']}" + (f" ({', '.join(v['aliases'])})" if v["aliases"] else "")
        for m, v in latest.items()
    }
