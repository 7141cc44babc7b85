"""The retrain branch: retrain/<task>/<date> switched to once, and the commits on it."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

from reprolab.core.errors import ReprolabError


def switch(task: str) -> str:
    """Switch to a new branch retrain/<task>/<date> (with the time when that is taken by
    another branch), or stay on it when it is the current one."""
    day = dt.datetime.now(dt.UTC)
    branch = f"retrain/{task}/{day:%Y-%m-%d}"
    if git("branch", "--show-current").strip() == branch:
        return branch  # a second retrain the same day goes on the same branch
    exists = subprocess.run(["git", "rev-parse", "--verify", "-q", branch], capture_output=True)
    if exists.returncode == 0:
        branch += f"-{day:%H%M%S}"
    git("checkout", "-q", "-b", branch)
    return branch


def commit(message: str, paths: list) -> str:
    """Commit `paths` (what changed of them); the short sha, or '' when nothing changed."""
    git("add", "-A", "--", *[str(p) for p in paths if Path(p).exists()])
    staged = subprocess.run(["git", "diff", "--cached", "--quiet"])
    if staged.returncode == 0:
        return ""
    git("commit", "-q", "-m", message)
    return git("rev-parse", "--short", "HEAD").strip()


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise ReprolabError(f"git {' '.join(args)} failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout
