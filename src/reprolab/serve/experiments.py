"""The DVC experiments of the service's repository as one table: `dvc exp show --json`
flattened to a row per commit or experiment, with the params and metrics that differ between
rows (timings left out: they always differ). The full exp show has hundreds of columns.

Every commit at once (`dvc exp show -A`) took 106 s over 228 commits on two cores, so history
comes a page at a time: `commits` first-parent commits of HEAD from `skip` on."""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from reprolab.serve.errors import ERROR_RESPONSES, ApiError

TIMEOUT_S = 120.0
TIMINGS = ("_seconds", "_per_s")  # differ on every run; not a result
FALLBACK_METRICS = 12  # columns shown when no two rows differ
PAGE, MAX_PAGE = 20, 100  # commits of history per page: by default, at most


class Page(BaseModel):
    skip: int = Field(description="commits of HEAD's history skipped before this page")
    commits: int = Field(description="commits asked for")
    total_commits: int = Field(description="first-parent commits of HEAD")
    next_skip: int | None = Field(description="`skip` of the next page; None: this is the last")


@dataclass(frozen=True)
class Window:
    """A page of HEAD's first-parent history: `commits` commits after the first `skip`."""

    skip: int = 0
    commits: int = PAGE


class ExperimentTable(BaseModel):
    columns: list[str] = Field(description="name, rev, then changed params, then metrics")
    params: list[str]
    metrics: list[str]
    rows: list[dict[str, Any]]
    page: Page | None = Field(None, description="with all_commits: where this page lies")


def router(repo: Path) -> APIRouter:
    api = APIRouter(responses=ERROR_RESPONSES)

    @api.get(
        "/v1/experiments",
        response_model=ExperimentTable,
        summary="`dvc exp show`: the changed params and metrics of each experiment",
        tags=["experiments"],
    )
    async def experiments(
        all_commits: bool = Query(
            False, description="HEAD's history a page at a time, not only HEAD"
        ),
        commits: int = Query(PAGE, ge=1, le=MAX_PAGE, description="commits per page"),
        skip: int = Query(0, ge=0, le=1_000_000, description="commits of history to skip"),
    ) -> dict:
        if not all_commits:
            return await run_in_threadpool(table, repo)
        return await run_in_threadpool(table, repo, Window(skip, commits))

    return api


def table(repo: Path, window: Window | None = None) -> dict[str, Any]:
    """The table of HEAD's experiments, or of a page of history (`window`)."""
    page = None
    if window is None:
        rows = flatten(exp_show(repo))
    else:
        total = int(_git(repo, "rev-list", "--first-parent", "--count", "HEAD") or 0)
        start = _git(repo, "rev-list", "--first-parent", f"--skip={window.skip}", "-1", "HEAD")
        rows = flatten(exp_show(repo, start, window.commits)) if start else []
        after = window.skip + window.commits
        page = {
            "skip": window.skip,
            "commits": window.commits,
            "total_commits": total,
            "next_skip": after if after < total else None,
        }
    return {**_columns(rows), "page": page}


def _columns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    params = _changed(rows, "params.")
    metrics = _changed(rows, "metrics.")
    if len(rows) < 2 or not metrics:
        metrics = sorted({k for r in rows for k in r if k.startswith("metrics.")})
        metrics = [m for m in metrics if not _timing(m)][:FALLBACK_METRICS]
    columns = ["name", "rev", *params, *metrics]
    return {
        "columns": columns,
        "params": params,
        "metrics": metrics,
        "rows": [{c: r.get(c) for c in columns} for r in rows],
    }


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else ""


def exp_show(repo: Path, rev: str | None = None, commits: int = 1) -> list[dict]:
    """`dvc exp show --json` of HEAD, or of `commits` first-parent commits from `rev`."""
    if not (repo / ".dvc").is_dir():
        raise ApiError(404, f"{repo}: not a DVC repository (no .dvc folder), so no experiments")
    command = ["dvc", "exp", "show", "--json"]
    if rev is not None:
        command += ["--rev", rev, "-n", str(commits)]
    try:
        done = subprocess.run(
            command, cwd=repo, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as err:
        raise ApiError(503, f"dvc exp show: no answer within {TIMEOUT_S:.0f} s") from err
    except FileNotFoundError as err:
        raise ApiError(503, "dvc exp show: the dvc command is not installed here") from err
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise ApiError(503, f"dvc exp show failed: {last}")
    return json.loads(done.stdout or "[]")


def flatten(shown: list[dict]) -> list[dict[str, Any]]:
    """One row per commit and per experiment under it: name, rev, params.*, metrics.*."""
    rows = []
    for commit in shown:
        rev = str(commit["rev"])
        rows.append(_row(commit, commit.get("name") or (rev if rev == "workspace" else rev[:7])))
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                rows.append(_row(rev, exp.get("name") or rev.get("name") or rev["rev"][:7]))
    return [r for r in rows if r is not None]


def _row(entry: dict, name: str) -> dict[str, Any] | None:
    data = entry.get("data")
    if not data:
        return None
    rev = str(entry.get("rev", ""))
    row: dict[str, Any] = {"name": name, "rev": rev if rev == "workspace" else rev[:7]}
    for group in ("params", "metrics"):
        for path, content in (data.get(group) or {}).items():
            prefix = f"{group}." if group == "params" else f"metrics.{path}:"
            _leaves((content or {}).get("data") or {}, prefix, row)
    return row


def _leaves(tree: dict, prefix: str, out: dict[str, Any]) -> None:
    for key, value in tree.items():
        name = f"{prefix}{key}" if prefix.endswith((":", "params.")) else f"{prefix}.{key}"
        if isinstance(value, dict):
            _leaves(value, name, out)
        elif isinstance(value, list):
            out[name] = json.dumps(value)
        elif isinstance(value, float) and not math.isfinite(value):
            out[name] = None
        else:
            out[name] = value


def _changed(rows: list[dict], prefix: str) -> list[str]:
    keys = sorted({k for r in rows for k in r if k.startswith(prefix)})
    return [
        k
        for k in keys
        if not _timing(k) and len({json.dumps(r.get(k), sort_keys=True) for r in rows}) > 1
    ]


def _timing(key: str) -> bool:
    leaf = key.rsplit(".", 1)[-1].rsplit(":", 1)[-1]
    return leaf.endswith(TIMINGS)
