"""The retrain, step by step: validate -> train -> gate -> notify. Each step reads and
extends one state file (.dvc/tmp/retrain/<task>.json), so `reprolab retrain` can run them
all at once or an orchestrator one per task, and the notification can say what each found.

The champion moves only through the register stage's rules: a committed workspace (`--commit`
commits the data version on a branch first) and a win on validation by min_improvement."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import click

from reprolab.core.errors import ReprolabError
from reprolab.core.io import atomic_write_json, atomic_write_text
from reprolab.ops.retrain import branches

STATE_DIR = Path(".dvc/tmp/retrain")
REPORTS = Path("reports/retrain")
STEPS = ("validate", "train", "gate", "notify")
STAGE_OF_SECTION = {"models": "evaluate", "finetune": "finetune", "ensembles": "ensemble"}


class StepFailed(ReprolabError):
    """A step failed; `stage` and `log_tail` say where, when a DVC stage did."""

    def __init__(self, message: str, stage: str = "", log_tail: list[str] | None = None):
        super().__init__(message)
        self.stage, self.log_tail = stage, log_tail or []


@dataclass(frozen=True)
class Options:
    task: str
    data: Path | None
    commit: bool
    notify: str | None
    mlflow_ui: str | None
    params_path: Path = Path("params.yaml")


# ------------------------------------------------------------------------------ steps


def validate(state: dict, opts: Options) -> None:
    """Check the drop as prepare would, record it (DVC + params.yaml), measure drift against
    the champion's data and, with --commit, commit the new data version on a branch."""
    from reprolab import workloads
    from reprolab.ops.retrain import drift, drop
    from reprolab.params import load_params

    params = load_params(opts.params_path)
    name = drop.dataset_of(opts.task, params)
    spec = params.datasets[name]
    state.update(dataset=name, metric=params.registry[opts.task].metric)
    state["before"] = _champion(opts.task, params)
    work = STATE_DIR / opts.task
    new = drop.check(name, spec, params.seed, opts.data, work / "new")
    click.echo(f"validate: {opts.data or 'the upstream source'} passes prepare's checks")
    if opts.data is not None:
        pinned = drop.record(name, opts.data)
        state["data"] = {"source": "drop", "from": str(opts.data), **pinned}
    else:
        pinned = None
        state["data"] = {"source": "upstream"}
    drop.pin(opts.params_path, name, pinned)
    module = workloads.data_module(spec)
    why, old = "", None
    if not state["before"]:
        why = "no champion yet"
    elif not hasattr(module, "profile"):
        why = "no profile for this workload"
    else:
        old, why = _champion_data(state["before"]["run_id"])
    if old is None:
        state["drift"] = {"note": f"drift: not measured ({why})"}
    else:
        state["drift"] = drift.compare(module.profile(old), module.profile(new))
    for line in drift.summary_lines(state["drift"]):
        click.echo(line)
    if opts.commit:
        state["branch"] = branches.switch(opts.task)
        what = f"data drop {pinned['md5'][:8]}" if pinned else "the upstream source"
        sha = branches.commit(f"Retrain {opts.task}: {what}", [opts.params_path, "data/drops"])
        state.setdefault("commits", []).extend([sha] if sha else [])


def train(state: dict, opts: Options) -> None:
    """`dvc repro` of every model of the task, up to its evaluation."""
    from reprolab.params import load_params

    params = load_params(opts.params_path)
    stages = [
        f"{STAGE_OF_SECTION[params.section_of(m)]}@{m}" for m in params.models_of_task(opts.task)
    ]
    state["trained"] = _repro(stages)


def gate(state: dict, opts: Options) -> None:
    """`dvc repro` of register (the gate) and infer; then who is champion, and why."""
    from reprolab.params import load_params

    params = load_params(opts.params_path)
    target = f"infer@{opts.task}" if opts.task in params.infer else f"register@{opts.task}"
    output = _repro([target])
    events = _register_events(output, opts.task)
    after = _champion(opts.task, params)
    registered = set(re.findall(r": registered v(\d+) ", "\n".join(events)))
    after["new_versions"] = [
        v for v in _new_versions(opts.task, params) if v["version"] in registered
    ]
    state["after"] = after
    state["why"] = [e for e in events if not re.search(r"already registered as v\d+$", e)]
    for event in events:  # the old champion scored again on the new data, when it was
        again = re.match(r"champion v(\d+) scored on v\d+'s data: \S+=(\S+) ", event)
        if again and again[1] == (state.get("before") or {}).get("version"):
            state["before"]["value_on_new_data"] = float(again[2])
    before = (state.get("before") or {}).get("version")
    if after.get("version") != before:
        state["decision"] = "promoted"
    elif not any("registered v" in e for e in events):
        state["decision"] = "unchanged"
    else:
        state["decision"] = "kept"
    state["links"] = [_run_link(v["run_id"], opts.mlflow_ui) for v in after["new_versions"]]
    write_report(state)
    if opts.commit:
        sha = branches.commit(
            f"Retrain {opts.task}: results ({state['decision']}, champion v{after.get('version')})",
            ["dvc.lock", "reports", "data/drops"],
        )
        state.setdefault("commits", []).extend([sha] if sha else [])


def notify(state: dict, opts: Options) -> None:
    """Print the outcome and post it to the webhook; a failed post is reported, not raised."""
    from reprolab.ops.retrain import notify as notifying

    text = notifying.message(state)
    click.echo(text)
    url = notifying.webhook_url(opts.notify)
    if url:
        problem = notifying.post(url, text)
        state["notified"] = problem or "posted"
        if problem:
            click.secho(f"notify: the webhook did not take the message: {problem}", fg="yellow")
        else:
            click.echo("notify: posted to the webhook")


STEP = {"validate": validate, "train": train, "gate": gate, "notify": notify}


def run(opts: Options, steps: tuple[str, ...]) -> dict:
    """Run `steps` in order under the repository's retrain lock. Any failure, whatever its
    exception, is recorded in the state and the retrain report; a full run (all steps)
    then still notifies. A data or step error raises StepFailed (one line, no traceback);
    anything else is a bug and is re-raised as itself after the report and the message."""
    from reprolab.ops.retrain.lock import one_at_a_time

    with one_at_a_time(opts.task):
        if steps[0] == "validate":
            state = {"task": opts.task, "started": _now(), "steps": []}
        else:
            state = load_state(opts.task)
        for step in steps:
            try:
                STEP[step](state, opts)
            except Exception as err:
                expected = _expected_reason(err, step, opts)
                if expected is None:
                    reason = f"unexpected {type(err).__name__}: {_first_line(err)}"
                    tail = _traceback_tail(err)
                else:
                    reason, tail = expected, getattr(err, "log_tail", [])
                state["failure"] = {
                    "step": step,
                    "stage": getattr(err, "stage", ""),
                    "error": reason,
                    "log_tail": tail,
                }
                _announce_failure(state, opts, steps == STEPS)
                if expected is None:
                    raise
                message = str(err) if isinstance(err, ReprolabError) else reason
                raise StepFailed(message, state["failure"]["stage"], tail) from None
            state["steps"].append(step)
            save_state(state)
        return state


# errors in a drop's files that pandas or the OS raise before prepare can name them
_DATA_ERRORS: tuple[type[BaseException], ...] = (UnicodeDecodeError, OSError)


def _expected_reason(err: Exception, step: str, opts: Options) -> str | None:
    """The one-line reason for a failure the user can fix (bad data, a failed stage);
    None for anything else, which is a bug."""
    import pandas as pd

    if isinstance(err, ReprolabError):
        return _first_line(err)
    if isinstance(err, pd.errors.EmptyDataError):
        where = ", ".join(str(p) for p in _empty_files(opts.data)) or (
            opts.data or "the upstream source"
        )
        return f"{where}: empty data file, no columns to parse (a CSV needs a header and rows)"
    if isinstance(err, (pd.errors.ParserError, *_DATA_ERRORS)) and step == "validate":
        return f"{opts.data or 'the upstream source'}: cannot read the data: {_first_line(err)}"
    return None


def _empty_files(folder: Path | None) -> list[Path]:
    """The drop's files with no text in them, which is what pandas cannot parse."""
    if folder is None or not Path(folder).is_dir():
        return []
    found = []
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            try:
                if not path.read_bytes().strip():
                    found.append(path)
            except OSError:
                continue
    return found


def _announce_failure(state: dict, opts: Options, full_run: bool) -> None:
    """Save the state, write the report and (a full run) post the message. A failure here
    is printed, never raised: it must not hide the failure being announced."""
    for what, action in (
        ("state", lambda: save_state(state)),
        ("report", lambda: write_report(state)),
        ("notify", lambda: notify(state, opts) if full_run else None),
    ):
        try:
            action()
        except Exception as err:
            click.secho(
                f"retrain: could not write the failure's {what}: {type(err).__name__}: "
                f"{_first_line(err)}",
                fg="yellow",
                err=True,
            )


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _traceback_tail(err: BaseException, lines: int = 15) -> list[str]:
    import traceback

    text = "".join(traceback.format_exception(type(err), err, err.__traceback__))
    return [line for line in text.splitlines() if line.strip()][-lines:]


# ----------------------------------------------------------------------------- state


def save_state(state: dict) -> None:
    atomic_write_json(STATE_DIR / f"{state['task']}.json", state)


def load_state(task: str) -> dict:
    path = STATE_DIR / f"{task}.json"
    if not path.is_file():
        raise ReprolabError(
            f"{path}: not found; run `reprolab retrain {task} --step validate` first"
        )
    return json.loads(path.read_text())


def write_report(state: dict) -> None:
    """reports/retrain/<task>.json (everything) and .md (the message) of the last retrain."""
    from reprolab.ops.retrain.notify import message

    atomic_write_json(REPORTS / f"{state['task']}.json", state)
    atomic_write_text(REPORTS / f"{state['task']}.md", message(state) + "\n")


# --------------------------------------------------------------------------- helpers


def _champion(task: str, params) -> dict:
    from reprolab.core.registry import CHAMPION
    from reprolab.core.registry_store import alias_version, version_value
    from reprolab.core.tracking import TAG
    from reprolab.core.tracking_store import client

    version = alias_version(client(), task, CHAMPION)
    if version is None:
        return {}
    return {
        "version": str(version.version),
        "model": version.tags.get(TAG + "model", "?"),
        "value": version_value(version, params.registry[task]),
        "data_md5": version.tags.get(TAG + "data_md5", ""),
        "run_id": version.run_id,
    }


def _champion_data(run_id: str) -> tuple[Path | None, str]:
    """The processed data the champion's run trained on (lineage: git, DVC cache or
    remote, checked by md5), or None and why not."""
    from reprolab.core.errors import LineageError
    from reprolab.core.lineage import fetch_data

    try:
        return fetch_data(run_id), ""
    except LineageError as err:
        return None, f"the champion's data cannot be fetched: {err}"


def _new_versions(task: str, params) -> list[dict]:
    """The versions of the runs the task's evaluations just wrote, with their gate status."""
    from reprolab.core.layout import RUN_FILE, eval_dir
    from reprolab.core.registry_store import version_value
    from reprolab.core.tracking import TAG
    from reprolab.core.tracking_store import client

    found = []
    for model in params.models_of_task(task):
        run_file = eval_dir(task, model) / RUN_FILE
        if not run_file.is_file():
            continue
        run_id = json.loads(run_file.read_text())["run_id"]
        for mv in client().search_model_versions(f"name='{task}' and run_id='{run_id}'"):
            found.append(
                {
                    "version": str(mv.version),
                    "model": model,
                    "value": version_value(mv, params.registry[task]),
                    "status": mv.tags.get(TAG + "status", mv.tags.get(TAG + "gate", "?")),
                    "run_id": run_id,
                }
            )
    return found


def _run_link(run_id: str, ui: str | None) -> str:
    from reprolab.core.tracking_store import client

    experiment = client().get_run(run_id).info.experiment_id
    if ui:
        return f"MLflow run: {ui.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"
    return f"MLflow run: {run_id} (experiment {experiment}; `mlflow ui` to browse)"


def _repro(targets: list[str]) -> list[str]:
    """`dvc repro TARGETS`, shown as it runs; a failure names the stage and its last lines."""
    # unbuffered: DVC's own lines and its stages' output then reach the pipe in order
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        ["dvc", "repro", *targets],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        click.echo(line, nl=False)
        lines.append(line.rstrip("\n"))
    if process.wait() != 0:
        failed = re.findall(r"failed to reproduce '([^']+)'", "\n".join(lines))
        stage = failed[0] if failed else ""
        raise StepFailed(
            f"dvc repro {' '.join(targets)} failed" + (f" in stage {stage}" if stage else ""),
            stage,
            [line for line in lines if line.strip()][-15:],
        )
    return lines


def _register_events(lines: list[str], task: str) -> list[str]:
    """What the register stage printed: its gate decisions."""
    events, inside = [], False
    for line in lines:
        if line.startswith("> ") and f"stages/register.py {task}" in line:
            inside = True
        elif inside and line.startswith(
            ("Running stage", "Updating lock file", "Use `dvc push`", "> ", "Stage '")
        ):
            inside = False
        elif inside and re.match(r"v\d+: |champion v\d+ |[\w.-]+: ", line.strip()):
            events.append(line.strip())
    return events


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
