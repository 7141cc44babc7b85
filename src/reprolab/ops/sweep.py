"""`make sweep`: queue a params grid as DVC experiments, run them with N parallel workers,
wait, report failed workers with their logs, print `dvc exp show --md`. A worker that dies
leaves its tasks Running: the sweep collects the ones whose experiment finished and fails the
rest, one line each (ops/queue_repair.py; `make sweep-repair` does it by hand).

Queued experiments run in temporary workspaces that see only what git or DVC track, so
the sweep refuses to start when `.dvc/config` is uncommitted and warns about untracked
source files. Every worker logs to the one MLflow store at the real repository root
(tracking_store.py: WAL + busy timeout + retries) with its DVC experiment name as a lineage tag."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

FINAL = {"Success", "Failed"}
ORPHAN_GRACE_S = 30  # Running tasks with no live worker this long were left by a dead one


def dvc(*args: str, check: bool = True, cwd: Path | None = None) -> str:
    """Run dvc; output through a file, not a pipe: `dvc queue start` leaves workers behind
    that inherit its stdout, and a pipe would keep us waiting until they all exit."""
    with tempfile.TemporaryFile("w+") as out:
        done = subprocess.run(["dvc", *args], stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        out.seek(0)
        text = out.read()
    if check and done.returncode != 0:
        raise click.ClickException(f"dvc {' '.join(args)} failed:\n{text}")
    return text


def preflight(cwd: Path | None = None) -> list[str]:
    """Problems that would make queued experiments differ from the workspace."""
    git = ["git", "status", "--porcelain", "--"]
    config = subprocess.run([*git, ".dvc/config"], capture_output=True, text=True, cwd=cwd)
    if config.stdout.strip():
        raise click.ClickException(
            ".dvc/config has uncommitted changes: commit it before queueing experiments "
            "(queued workspaces only see committed config)"
        )
    untracked = subprocess.run(
        [*git, "src", "stages", "dvc.yaml", "params.yaml"], capture_output=True, text=True, cwd=cwd
    ).stdout.splitlines()
    return [line[3:] for line in untracked if line.startswith("??")]


def queue_status(cwd: Path | None = None) -> dict[str, str]:
    """name -> status from `dvc queue status`."""
    status = {}
    for line in dvc("queue", "status", cwd=cwd).splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[-1] in {"Queued", "Running", "Success", "Failed"}:
            status[parts[1]] = parts[-1]
    return status


def live_workers(cwd: Path | None = None) -> list[str]:
    """Queue workers of this repository still alive, from the process files DVC keeps."""
    alive = []
    for info in sorted((Path(cwd or ".") / ".dvc/tmp/exps/celery").glob("dvc-exp-worker-*.json")):
        try:
            proc = json.loads(info.read_text())
            if proc.get("returncode") is None:
                os.kill(int(proc["pid"]), 0)
                alive.append(info.stem)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # half-written or gone: not a live worker
    return alive


def wait_for_workers_to_exit(cwd: Path | None = None, timeout: float = 90.0) -> None:
    """A worker from an earlier sweep stops about ten seconds after its queue empties, and
    DVC does not put back a task taken by a stopping worker: such a task would show as
    Running forever. So a new sweep queues only once the old workers are gone."""
    deadline = time.monotonic() + timeout
    while (alive := live_workers(cwd)) and time.monotonic() < deadline:
        time.sleep(1)
    if alive:
        raise click.ClickException(
            f"queue workers from an earlier run are still busy: {', '.join(alive)} "
            "(wait for them or stop them with `dvc queue stop`)"
        )


def run_sweep(grid: list[str], jobs: int, timeout: float, cwd: Path | None = None) -> int:
    for path in preflight(cwd):
        click.secho(
            f"warning: {path} is untracked: queued experiments will not see it", fg="yellow"
        )
    wait_for_workers_to_exit(cwd)
    args = ["exp", "run", "--queue"]
    for spec in grid:
        args += ["-S", spec]
    out = dvc(*args, cwd=cwd)
    names = re.findall(r"Queued experiment '([^']+)'", out)
    if not names:
        raise click.ClickException(f"nothing was queued:\n{out}")
    click.echo(f"queued {len(names)} experiment(s): {', '.join(names)}")
    dvc("queue", "start", "-j", str(jobs), cwd=cwd)
    started, idle_since, orphaned_since = time.monotonic(), None, None
    bar_done = -1
    while True:
        status = queue_status(cwd)
        ours = {n: status.get(n, "Queued") for n in names}
        finished = sum(s in FINAL for s in ours.values())
        if finished != bar_done:
            click.echo(f"  {finished}/{len(names)} finished  {ours}")
            bar_done = finished
        if finished == len(names):
            break
        running = any(s == "Running" for s in status.values())
        idle_since = None if running else (idle_since or time.monotonic())
        if idle_since and time.monotonic() - idle_since > 120:
            raise click.ClickException("experiments are queued but no worker runs them")
        orphaned = running and not live_workers(cwd)
        orphaned_since = (orphaned_since or time.monotonic()) if orphaned else None
        if orphaned_since and time.monotonic() - orphaned_since > ORPHAN_GRACE_S:
            # a dead worker's tasks stay Running: collect the finished, fail the rest
            from reprolab.ops.queue_repair import repair

            for item in repair(cwd, live_workers=[]):
                click.secho(item.line, fg="yellow" if item.recorded else "red")
            orphaned_since = None
        if time.monotonic() - started > timeout:
            raise click.ClickException(f"sweep still running after {timeout:.0f}s: {ours}")
        time.sleep(3)
    failed = [n for n, s in ours.items() if s == "Failed"]
    for name in failed:
        click.secho(
            f"--- experiment {name} FAILED; last lines of `dvc queue logs {name}`:", fg="red"
        )
        click.echo("\n".join(dvc("queue", "logs", name, check=False, cwd=cwd).splitlines()[-30:]))
    click.echo(dvc("exp", "show", "--md", "--only-changed", cwd=cwd))
    return 1 if failed else 0


@click.command()
@click.option("--grid", required=True, help="dvc -S specs, space-separated: 'a.b=1,2 c=3,4'")
@click.option("--jobs", default=2, show_default=True, help="parallel queue workers")
@click.option("--timeout", default=3600.0, show_default=True, help="seconds to wait at most")
def main(grid: str, jobs: int, timeout: float) -> None:
    """Queue GRID as DVC experiments, run them with JOBS workers, show the table."""
    sys.exit(run_sweep(grid.split(), jobs, timeout))


if __name__ == "__main__":
    main()
