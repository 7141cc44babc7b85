"""The alias history of a task: every promotion and rollback on record, append-only and
tamper-evident, so a rollback knows where to go back to and `reprolab registry verify` can
tell whether anyone rewrote the record.

Each move is one JSON object (reasons are data, never raw lines) in a registered-model tag
`reprolab.history.<seq>`, and carries `prev`, the sha256 of the previous entry's canonical
JSON (entry 1: of the legacy entries, below), so editing, deleting, reordering or inserting
an entry breaks the chain. The chain's head is anchored in two more places, so that deleting
the last entry is seen too:

- the registered-model tag `reprolab.history_head`: the entry count and the last entry's hash;
- a model-version tag `reprolab.history.<seq>` on the version the entry moved an alias to,
  holding that entry's hash.

What this protects against: an MLflow client that edits, deletes or adds tags without
recomputing the hashes in all three places (a slip, a script, a hand edit in the MLflow UI),
and forged lines from reasons that hold newlines. What it does not: someone with write access
who deliberately rebuilds the entries, the head and every anchor (there is no secret key), or
who deletes whole model versions (their anchors go with them, which verify reports). The
copy of the history in the committed reports/registry/<task>.json, with each entry's seq and
prev, is the outside witness for that. MLflow has no compare-and-set, so two processes moving
aliases of one task at the same instant may race; within one process, moves are serialised.

Histories from before the chain (`reprolab.alias_event.<ns>` tags) are still read and shown
as legacy, unchained; the first chained entry's `prev` is the hash of them all, so they cannot
change unseen afterwards either."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from reprolab.core.registry_store import require_registered_model
from reprolab.core.tracking import TAG
from reprolab.core.tracking_store import client

ENTRY = TAG + "history."  # registered-model tag per entry; model-version tag per anchor
HEAD = TAG + "history_head"  # registered-model tag: {"count": n, "sha256": last entry's hash}
LEGACY = TAG + "alias_event."  # the unchained history of older stores: read, never written
REASON_CHARS = 2000
_WRITE = threading.Lock()  # one process appends one entry at a time (the service's threads)


def canonical(entry: dict[str, Any]) -> str:
    """The one serialisation an entry is stored and hashed as."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(entry).encode("utf-8")).hexdigest()


def one_line(text: str) -> str:
    """`text` for a terminal line: control characters (newlines too) shown escaped, so a
    reason can never print as a line of its own."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def line(entry: dict[str, Any]) -> str:
    """One entry as one terminal line: when, alias, from -> to, forced or legacy, who: why."""
    mark = "  legacy, unchained" if entry["legacy"] else "  forced" if entry["forced"] else ""
    moved = f"{entry['alias']:<9} v{entry['from'] or '-'} -> v{entry['to']}"
    return one_line(f"{entry['time']}  {moved}{mark}  {entry['by']}: {entry['reason']}")


def history(task: str) -> list[dict[str, Any]]:
    """Every alias move of `task`, oldest first: time, alias, from, to, by, reason, forced
    (and what the override overrode), seq; legacy entries first, with legacy True."""
    mlflow_client = client()
    require_registered_model(mlflow_client, task)
    tags = mlflow_client.get_registered_model(task).tags
    legacy = [_legacy_entry(raw) for _, raw in _legacy(tags)]
    return legacy + [_shown(seq, raw) for seq, raw in sorted(_chained(tags).items())]


def record(
    mlflow_client,
    task: str,
    alias: str,
    old,
    version: str,
    by: str,
    reason: str,
    overrode: str | None = None,
) -> None:
    """Append one alias move to the task's history: a new entry chained to the head, its
    hash anchored on `version`, then the head moved. `overrode`: what the gate said when a
    person forced the move past it."""
    with _WRITE:
        tags = mlflow_client.get_registered_model(task).tags
        seq, prev = _next(tags)
        entry = {
            "seq": seq,
            "prev": prev,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "alias": alias,
            "from": None if old is None else str(old.version),
            "to": str(version),
            "by": by,
            "reason": reason[:REASON_CHARS],
            "forced": overrode is not None,
            "overrode": overrode,
        }
        entry = _fitted(entry)
        key, sha = _key(seq), digest(entry)
        mlflow_client.set_registered_model_tag(task, key, canonical(entry))
        mlflow_client.set_model_version_tag(task, str(version), key, sha)
        mlflow_client.set_registered_model_tag(
            task, HEAD, json.dumps({"count": seq, "sha256": sha})
        )


@dataclass(frozen=True)
class Verdict:
    task: str
    intact: bool
    line: str  # one line naming the task and, when broken, the entry


def verify(task: str) -> Verdict:
    """Whether `task`'s chain is whole: every entry in place, linked, anchored, and the head
    matching the last one. The first problem (lowest entry) is named."""
    mlflow_client = client()
    require_registered_model(mlflow_client, task)
    tags = mlflow_client.get_registered_model(task).tags
    legacy = _legacy(tags)
    chained = _chained(tags)
    anchors = _anchors(mlflow_client, task)
    problems = _problems(chained, legacy, anchors, _head(tags))
    if problems:
        seq, what = min(problems)
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        return Verdict(task, False, f"{task}: history BROKEN at entry {seq}: {what}{more}")
    note = f"; {len(legacy)} legacy entries before it, unchained" if legacy else ""
    if not chained:
        return Verdict(task, True, f"{task}: history intact: no chained entries yet{note}")
    head = digest(json.loads(chained[max(chained)]))[:12]
    return Verdict(task, True, f"{task}: history intact: {len(chained)} entries, head {head}{note}")


def tasks() -> list[str]:
    """Every registered model of the store (each is a task with a history, maybe empty)."""
    mlflow_client = client()
    names: list[str] = []
    token = None
    while True:
        page = mlflow_client.search_registered_models(max_results=1000, page_token=token)
        names += [m.name for m in page]
        token = page.token
        if not token:
            return sorted(names)


# ---------------------------------------------------------------- reading the tags


def _key(seq: int) -> str:
    return f"{ENTRY}{seq:08d}"


def _chained(tags: dict[str, str]) -> dict[int, str]:
    """The chained entries' raw JSON by the seq their tag key names."""
    found = {}
    for key, raw in tags.items():
        number = key[len(ENTRY) :]
        if key.startswith(ENTRY) and number.isdigit():
            found[int(number)] = raw
    return found


def _legacy(tags: dict[str, str]) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in tags.items() if k.startswith(LEGACY))


def _legacy_digest(legacy: list[tuple[str, str]]) -> str:
    """What entry 1 chains to: the legacy tags as they stood (none: the hash of [])."""
    return hashlib.sha256(canonical([list(pair) for pair in legacy]).encode("utf-8")).hexdigest()


def _head(tags: dict[str, str]) -> dict[str, Any] | None:
    try:
        head = json.loads(tags[HEAD])
        return head if isinstance(head, dict) else {}
    except KeyError:
        return None
    except ValueError:
        return {}


def _anchors(mlflow_client, task: str) -> dict[int, tuple[str, str]]:
    """seq -> (version, hash) from the versions' anchor tags."""
    found = {}
    for mv in mlflow_client.search_model_versions(f"name='{task}'"):
        for seq, sha in _chained(mv.tags).items():
            found[seq] = (str(mv.version), sha)
    return found


def _parse(raw: str) -> dict[str, Any] | None:
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _legacy_entry(raw: str) -> dict[str, Any]:
    old = _parse(raw) or {}
    return {
        "time": str(old.get("time", "?")),
        "alias": str(old.get("alias", "?")),
        "from": None if old.get("from") is None else str(old["from"]),
        "to": str(old.get("to", "?")),
        "by": str(old.get("by", "?")),
        "reason": str(old.get("reason", "")),
        "forced": False,
        "overrode": None,
        "seq": None,
        "legacy": True,
    }


def _shown(seq: int, raw: str) -> dict[str, Any]:
    """A chained entry for reading; an unreadable one is shown as such, not skipped."""
    entry = _parse(raw)
    if entry is None:
        entry = {"alias": "?", "to": "?", "reason": "unreadable entry: run registry verify"}
    shown = {**_legacy_entry(canonical(entry)), "seq": seq, "legacy": False}
    shown["forced"] = bool(entry.get("forced", False))
    shown["overrode"] = entry.get("overrode")
    shown["prev"] = entry.get("prev")
    return shown


# ---------------------------------------------------------------- writing and checking


def _next(tags: dict[str, str]) -> tuple[int, str]:
    """The seq and prev of the next entry. The head, not the stored last entry, says what
    was last written: an entry edited since stays unlinked from the one that follows."""
    head = _head(tags)
    if head and isinstance(head.get("count"), int) and isinstance(head.get("sha256"), str):
        return head["count"] + 1, head["sha256"]
    chained = _chained(tags)
    if not chained:
        return 1, _legacy_digest(_legacy(tags))
    last = max(chained)
    entry = _parse(chained[last])
    return last + 1, digest(entry) if entry is not None else ""


def _fitted(entry: dict[str, Any]) -> dict[str, Any]:
    """The entry shortened (its reason) to fit MLflow's 5000-character registered-model tag
    column in every database backend."""
    while len(canonical(entry)) > 4800 and entry["reason"]:
        entry = {**entry, "reason": entry["reason"][: len(entry["reason"]) // 2]}
    return entry


def _problems(
    chained: dict[int, str],
    legacy: list[tuple[str, str]],
    anchors: dict[int, tuple[str, str]],
    head: dict[str, Any] | None,
) -> list[tuple[int, str]]:
    """(seq, what is wrong) for every defect of the chain."""
    problems: list[tuple[int, str]] = []
    last = max([*chained, *anchors, 0])
    previous: str | None = _legacy_digest(legacy)
    for seq in range(1, last + 1):
        problems += _entry_problems(seq, chained.get(seq), previous, anchors.get(seq))
        entry = _parse(chained[seq]) if seq in chained else None
        previous = digest(entry) if entry is not None else None
    return problems + _head_problems(chained, head)


def _entry_problems(
    seq: int, raw: str | None, previous: str | None, anchor: tuple[str, str] | None
) -> list[tuple[int, str]]:
    where = f" (anchored on v{anchor[0]})" if anchor else ""
    if raw is None:
        return [(seq, f"missing: deleted{where}")]
    entry = _parse(raw)
    if entry is None:
        return [(seq, "not a JSON object: edited")]
    problems = []
    if entry.get("seq") != seq:
        problems.append((seq, f"says it is entry {entry.get('seq')}: moved or edited"))
    if anchor is None:
        problems.append((seq, "no anchor on any version: inserted, or its anchor deleted"))
    elif anchor[1] != digest(entry):
        problems.append((seq, f"edited: its hash differs from the one anchored on v{anchor[0]}"))
    if previous is not None and entry.get("prev") != previous:
        before = "the legacy entries" if seq == 1 else f"entry {seq - 1}"
        problems.append((seq, f"does not chain to {before}: edited, inserted or reordered"))
    return problems


def _head_problems(chained: dict[int, str], head: dict[str, Any] | None) -> list[tuple[int, str]]:
    count = max(chained, default=0)
    if head is None:
        return [(count, f"the head tag {HEAD} is missing")] if chained else []
    said = head.get("count")
    if not isinstance(said, int):
        return [(count, f"the head tag {HEAD} is unreadable: edited")]
    if said > count:
        return [(count + 1, f"missing: the head counts {said} entries, {count} found (deleted)")]
    if said < count:
        return [(said + 1, f"not written through the registry: the head counts {said} entries")]
    entry = _parse(chained[count]) if count else None
    if count and (entry is None or head.get("sha256") != digest(entry)):
        return [(count, "edited: its hash differs from the head's")]
    return []
