"""Queue tasks left behind by a dead worker. DVC's queue worker runs an experiment in a
subprocess, then collects its result into `dvc exp list`. A worker killed in between leaves a
task that `dvc queue status` shows as Running forever: its experiment may have finished (its
MLflow run is FINISHED), but it never appears among the experiments.

`repair` finds every Running task whose worker and experiment process are both gone. A task
whose experiment finished is collected as DVC's worker would have done it, so the experiment
is recorded. One that did not finish is marked failed, as `dvc queue kill` marks a task whose
process is gone, so it can be removed and queued again. Either way, one line per task says
which it was. It uses DVC's own queue objects (pinned in requirements), because the CLI has
no command that collects a finished task."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click


@dataclass(frozen=True)
class Repaired:
    name: str
    recorded: bool  # collected into `dvc exp list`; False: marked failed

    @property
    def line(self) -> str:
        if self.recorded:
            return (
                f"{self.name}: its queue worker died after the experiment finished; "
                "collected, it is now in `dvc exp list`"
            )
        return (
            f"{self.name}: its queue worker died before the experiment finished; marked "
            f"failed (`dvc queue logs {self.name}` has its output; queue it again to rerun it)"
        )


def repair(cwd: Path | None = None, live_workers: list[str] | None = None) -> list[Repaired]:
    """Collect or fail every Running task of the repository at `cwd` whose worker and
    experiment process are gone. Nothing happens while a worker lives (it owns its tasks)."""
    from dvc.repo import Repo
    from dvc.repo.experiments.executor.base import ExecutorInfo, TaskStatus
    from dvc.repo.experiments.executor.local import TempDirExecutor
    from dvc.repo.experiments.queue.base import BaseStashQueue

    from reprolab.ops.sweep import live_workers as alive

    if live_workers is None:
        live_workers = alive(cwd)
    if live_workers:
        return []
    repaired = []
    with Repo(str(cwd or Path.cwd())) as repo:
        queue = repo.experiments.celery_queue
        for result, entry in list(queue._iter_active_tasks()):
            if _running(queue.proc, entry.stash_rev):
                continue  # the experiment itself still runs: it may yet finish
            name = entry.name or entry.stash_rev[:7]
            infofile = queue.get_infofile_path(entry.stash_rev)
            try:
                info = ExecutorInfo.load_json(infofile)
            except FileNotFoundError:
                info = None
            backend = queue.celery.backend
            if info is not None and info.status == TaskStatus.SUCCESS and info.result:
                executor = TempDirExecutor.from_info(info)
                BaseStashQueue.collect_executor(repo.experiments, executor, info.result)
                backend.mark_as_done(result.id, None)
                executor.cleanup(infofile)
                repaired.append(Repaired(name, True))
            else:
                backend.mark_as_failure(result.id, None)
                queue.stash_failed(entry)
                repaired.append(Repaired(name, False))
    return repaired


def _running(proc, stash_rev: str) -> bool:
    """Whether the experiment's own process (`dvc exp exec-run`) is still alive."""
    info = proc.get(stash_rev)
    if info is None or info.returncode is not None:
        return False
    try:
        os.kill(int(info.pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    return True


@click.command()
def main() -> None:
    """Collect or fail the queue tasks that a dead worker left Running; exit 1 if any had to
    be failed."""
    done = repair()
    for item in done:
        click.echo(item.line)
    if not done:
        click.echo("no task was left behind by a dead worker")
    sys.exit(1 if any(not item.recorded for item in done) else 0)


if __name__ == "__main__":
    main()
