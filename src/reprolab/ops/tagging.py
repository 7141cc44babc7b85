"""Milestone git tags (`make tag`), as the segmentation project's `v1.0-acc85`: an annotated
tag named after the task, a version and the test metric (`nuclei-v1.0-dice93`), placed on the
run's git commit, its message carrying the MLflow run id and the DVC paths and hashes that
bring that exact model and data back."""

from __future__ import annotations

import re
import subprocess

from reprolab.core.errors import LineageError, RegistryError
from reprolab.core.lineage import lineage_of
from reprolab.core.params import RegistryTask
from reprolab.core.tracking import client


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=False)


def next_version(prefix: str) -> str:
    """One minor version above the highest existing `<prefix>-v<major>.<minor>-*` tag."""
    found = []
    for name in _git("tag", "--list", f"{prefix}-v*").stdout.split():
        match = re.match(rf"{re.escape(prefix)}-v(\d+)\.(\d+)-", name)
        if match:
            found.append((int(match.group(1)), int(match.group(2))))
    if not found:
        return "1.0"
    major, minor = max(found)
    return f"{major}.{minor + 1}"


def tag_name(task: str, version: str, metric: str, value: float) -> str:
    prefix = task.split("-")[0]
    return f"{prefix}-v{version}-{re.sub(r'[^a-z0-9]', '', metric.lower())}{round(value * 100)}"


def create_tag(
    task: str, spec: RegistryTask, run_id: str | None = None, version: str | None = None
) -> tuple[str, str]:
    """Create the annotated tag for `run_id` (default: the task's champion); returns the tag
    name and message."""
    if run_id is None:
        run_id = _champion_run(task, spec)
    tags = lineage_of(run_id)
    run = client().get_run(run_id)
    key = f"test_{spec.metric}"
    value = run.data.metrics.get(key)
    if value is None:
        raise RegistryError(f"run {run_id}: no {key} metric to name the tag after")
    commit = tags["git_commit"]
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise LineageError(f"run {run_id}: its git commit {commit[:12]} is not in this repository")
    version = version or next_version(task.split("-")[0])
    name = tag_name(task, version, spec.metric, value)
    lines = [
        f"{task} v{version}: test {spec.metric} {value:.4f} ({tags.get('model', '?')})",
        "",
        f"mlflow_run_id: {run_id}",
        f"git_commit: {commit}" + (" (dirty workspace)" if tags.get("git_dirty") == "true" else ""),
    ]
    for what in ("model", "data"):
        if tags.get(f"{what}_path"):
            lines.append(f"dvc_{what}: {tags[f'{what}_path']} md5 {tags.get(f'{what}_md5', '?')}")
    lines += ["", f"reproduce: python stages/infer.py {task} --run-id {run_id}"]
    message = "\n".join(lines) + "\n"
    done = _git("tag", "-a", name, commit, "-m", message)
    if done.returncode != 0:
        raise RegistryError(f"git tag {name}: {done.stderr.strip()}")
    return name, message


def _champion_run(task: str, spec: RegistryTask) -> str:
    from reprolab.core.registry_report import versions

    champion = next((v for v in versions(task, spec) if "champion" in v.aliases), None)
    if champion is None:
        raise RegistryError(f"{task}: no champion to tag; pass --run-id")
    return champion.run_id
