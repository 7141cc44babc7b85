"""A throw-away copy of the repository (the files git tracks or would track: no outputs, no
stores, uncommitted edits included) with its own git history, DVC cache, MLflow store and
params overrides. `make smoke` and the
end-to-end tests run the real pipeline in one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from reprolab.core.paths import workspace_root
from reprolab.params import MODEL_SECTIONS

SMOKE_OVERLAY = "params.smoke.yaml"  # at the repository root


def smoke_overrides(source: Path | None = None) -> dict[str, Any]:
    """The smoke overlay as dotted keys (`models.wine-rf.n_estimators: 30`): each leaf of
    params.smoke.yaml replaces one key of params.yaml."""
    raw = yaml.safe_load((Path(source or workspace_root()) / SMOKE_OVERLAY).read_text())
    return dict(_leaves(raw or {}))


def _leaves(node: dict, prefix: str = ""):
    for key, value in node.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def set_dotted(params: dict, key: str, value: Any) -> None:
    node = params
    *parents, last = key.split(".")
    for part in parents:
        node = node[part]
    node[last] = value


def restrict(params: dict, models: list[str]) -> dict:
    """Only `models` (names from any model section) and what they need: the bases they start
    from, their datasets, tasks, inference and studies. A registry or infer entry without
    models would make DVC wait for outputs nothing writes."""
    sections = {s: dict(params.get(s) or {}) for s in MODEL_SECTIONS}
    wanted, todo = set(models), list(models)
    while todo:  # a fine-tuned model brings its base, an ensemble its members (and theirs)
        name = todo.pop()
        for section in sections.values():
            if name not in section:
                continue
            needs = [section[name].get("base"), *(section[name].get("members") or [])]
            for other in needs:
                if other and other not in wanted:
                    wanted.add(other)
                    todo.append(other)
    kept = {s: {k: v for k, v in entries.items() if k in wanted} for s, entries in sections.items()}
    unknown = wanted - {name for entries in kept.values() for name in entries}
    if unknown:
        raise KeyError(f"no such model(s): {sorted(unknown)}")
    every = [m for entries in kept.values() for m in entries.values()]
    tasks = {m.get("task") for m in every}
    return {
        **params,
        **kept,
        "datasets": {
            k: v for k, v in params["datasets"].items() if k in {m.get("dataset") for m in every}
        },
        "registry": {k: v for k, v in params["registry"].items() if k in tasks},
        "infer": {k: v for k, v in params.get("infer", {}).items() if k in tasks},
        "hpo": {k: v for k, v in params.get("hpo", {}).items() if k in kept["models"]},
    }


EXPORTS = "gguf.yaml"  # the causal LMs export@<name> writes as GGUF


def restrict_exports(path: Path, params: dict) -> None:
    """Only the exports of models the restricted params still have: DVC would wait for
    models/<name> of one they lost."""
    if not path.is_file():
        return
    kept = {n for s in MODEL_SECTIONS for n in (params.get(s) or {})}
    spec = yaml.safe_load(path.read_text()) or {}
    spec["gguf"] = {n: v for n, v in (spec.get("gguf") or {}).items() if n in kept}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))


def create(
    dest: Path,
    overrides: dict[str, Any] | None = None,
    source: Path | None = None,
    models: list[str] | None = None,
) -> Path:
    """Copy the tracked files of `source` into `dest`, keep only `models` (default: all),
    apply params overrides that still apply, commit."""
    source = source or workspace_root()
    listed = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=source,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    dest.mkdir(parents=True, exist_ok=True)
    for rel in filter(None, listed):
        src = source / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    if overrides or models:
        params_file = dest / "params.yaml"
        params = yaml.safe_load(params_file.read_text())
        if models:
            params = restrict(params, models)
        for key, value in (overrides or {}).items():
            try:
                set_dotted(params, key, value)
            except KeyError:  # an override for a section `restrict` removed
                continue
        params_file.write_text(yaml.safe_dump(params, sort_keys=False))
        if models:
            restrict_exports(dest / EXPORTS, params)
    git = ["git", "-c", "user.name=sandbox", "-c", "user.email=sandbox@localhost"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "sandbox"], cwd=dest, check=True)
    return dest


def env_for(root: Path) -> dict[str, str]:
    """Environment that keeps a sandbox's stores inside it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "DVC_ROOT", "REPROLAB_ROOT", "DVC_EXP_NAME")
    }
    env.update(
        DVC_NO_ANALYTICS="1",
        MLFLOW_DISABLE_TELEMETRY="true",
        DVC_SITE_CACHE_DIR=str(root / ".dvc" / "tmp" / "site-cache"),
        GIT_AUTHOR_NAME="sandbox",
        GIT_AUTHOR_EMAIL="sandbox@localhost",
        GIT_COMMITTER_NAME="sandbox",
        GIT_COMMITTER_EMAIL="sandbox@localhost",
    )
    return env


def smoke() -> int:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reprolab-smoke-") as tmp:
        overrides = smoke_overrides()
        root = create(Path(tmp) / "repo", overrides)
        print(f"smoke: sandbox {root} with {SMOKE_OVERLAY} ({len(overrides)} keys)", flush=True)
        done = subprocess.run(["dvc", "repro"], cwd=root, env=env_for(root), check=False)
        if done.returncode == 0:
            done = subprocess.run(["dvc", "status"], cwd=root, env=env_for(root), check=False)
    print(
        f"smoke: {'ok' if done.returncode == 0 else 'FAILED'} in "
        f"{time.perf_counter() - started:.0f}s",
        flush=True,
    )
    return done.returncode


if __name__ == "__main__":
    if sys.argv[1:] != ["--smoke"]:
        sys.exit("usage: python -m reprolab.ops.sandbox --smoke")
    sys.exit(smoke())
