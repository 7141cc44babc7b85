"""The MLflow model registry, one registered model per task. Versions of any model family
compete on the task's metric on the **validation** split (test is reported, never used to
choose):

- a version that passes the threshold gets alias `candidate`;
- it becomes `champion` only if it clearly beats the current champion: by a paired bootstrap
  over the validation examples both were scored on (core.paired), whose interval's lower
  bound must clear `min_improvement`; the old champion gets `archive`;
- a version that does not beat the task's declared baseline (Otsu, Ziegler-Nichols, the
  base model) is never candidate or champion, the first version of a task included;
- nothing is deleted; every alias move is appended to the task's hash-chained history
  (core.registry_history, checked by `reprolab registry verify`).

Who may move an alias: the pipeline only from a committed workspace that is not a DVC
experiment (`Authority.of_pipeline`), or a person (`promote`, `rollback`, with a reason).
A person's move meets the same checks as the gate (threshold, cut short over a complete
champion) whichever way it goes: a rollback must not install what a promote may not. `force`
overrides them, and the history records that it did and what it overrode.
Experiments register versions whose gate waits until a committed workspace meets them:
`dvc exp apply` -> commit -> `dvc repro` ships a sweep's winner.
"""

from __future__ import annotations

import getpass
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

from reprolab.core.errors import RegistryError
from reprolab.core.params import RegistryTask
from reprolab.core.registry_card import version_card
from reprolab.core.registry_compare import compare
from reprolab.core.registry_history import history, one_line, record
from reprolab.core.registry_store import (
    ARCHIVE,
    CANDIDATE,
    CHAMPION,
    alias_version,
    ensure_registered_model,
    get_version,
    metric_key,
    require_registered_model,
    version_value,
)
from reprolab.core.tracking import TAG, git_state, uncommitted_paths
from reprolab.core.tracking_store import client

# the champion's score on the data the new version was scored on, when that data differs from
# the champion's own (a retrain on a new data drop): None keeps the champion's recorded score
Rescore = Callable[[object], "float | None"]

GATE = TAG + "gate"  # version tag: "pending" until a committed workspace applies the gate
GATE_RULES = TAG + "gate_rules"  # version tag: the registry.<task> rules it was gated under
PENDING = "pending"


@dataclass(frozen=True)
class Authority:
    """Whether the caller may move aliases, and the sentence that says why (or why not)."""

    may_move: bool
    reason: str
    by: str  # "pipeline" or the person's name

    @classmethod
    def of_pipeline(cls) -> Authority:
        """Aliases move only from a committed workspace, never inside a DVC experiment."""
        exp = os.environ.get("DVC_EXP_NAME", "")
        if exp:
            return cls(
                False,
                f"DVC experiment {exp!r}: experiments register versions but move no alias "
                f"(ship one with `dvc exp apply {exp}`, commit, `dvc repro`)",
                "pipeline",
            )
        commit = git_state()["git_commit"]
        if commit == "unknown":
            return cls(False, "not a git commit: aliases move only from committed code", "pipeline")
        dirty = uncommitted_paths()
        if dirty:
            shown = ", ".join(dirty[:5]) + (", ..." if len(dirty) > 5 else "")
            return cls(
                False,
                f"uncommitted changes ({shown}): commit them and rerun `dvc repro` to apply "
                "the gate",
                "pipeline",
            )
        return cls(True, f"committed workspace {commit[:8]}", "pipeline")

    @classmethod
    def person(cls, reason: str) -> Authority:
        if not reason.strip():
            raise RegistryError("--reason: empty; say why the alias moves (it is kept)")
        return cls(True, reason.strip(), _who())


def register_run(
    task: str,
    spec: RegistryTask,
    run_id: str,
    model: str | None,
    authority: Authority,
    *,
    strict: bool = False,
    force: bool = False,
    rescore: Rescore | None = None,
) -> list[str]:
    """Register the model of a finished, evaluated run (once per run), then apply the gate
    when `authority` may move aliases and the version has not met the gate yet under the
    task's current rules with its current score (a re-evaluated run or committed new rules
    gate it again). Returns human-readable events.

    `strict` (register --manual): a run that misses the threshold is refused, unregistered;
    `force` registers it anyway and lets it become candidate. `rescore` scores the champion
    on this version's validation data when the two were trained on different data."""
    mlflow_client = client()
    run = _finished_run(mlflow_client, run_id)
    model = model or run.data.tags.get(TAG + "model", "manual")
    value = run.data.metrics.get(metric_key(spec))
    if value is None or not math.isfinite(value):
        raise RegistryError(
            f"run {run_id} ({model}) has no finite {metric_key(spec)} metric: evaluate it first"
        )
    run_task = run.data.tags.get(TAG + "task")
    if run_task and run_task != task:
        raise RegistryError(f"run {run_id} ({model}) belongs to task {run_task!r}, not {task!r}")
    if strict and not force and not spec.passes(value):
        raise RegistryError(
            f"run {run_id} ({model}): {_misses(spec, value)} of {task}; not registered "
            "(--force to register anyway)"
        )
    ensure_registered_model(mlflow_client, task)
    existing = mlflow_client.search_model_versions(f"name='{task}' and run_id='{run_id}'")
    if existing:
        mv = existing[0]
        events = [f"{model}: run {run_id[:8]} already registered as v{mv.version}"]
    else:
        mv = _create_version(mlflow_client, task, spec, run, model, value)
        events = [f"{model}: registered v{mv.version} ({metric_key(spec)}={value:.4f})"]
    if existing and version_value(mv, spec) != value:  # re-evaluated: the gate sees the new score
        mlflow_client.set_model_version_tag(task, mv.version, TAG + metric_key(spec), repr(value))
        mlflow_client.set_model_version_tag(task, mv.version, GATE, PENDING)
        events.append(f"v{mv.version}: re-evaluated, {metric_key(spec)}={value:.4f}")
    elif existing and mv.tags.get(GATE) != PENDING and mv.tags.get(GATE_RULES) == rules(spec):
        return events  # gated once under these rules; only a person (or new rules) moves it now
    if not authority.may_move:
        return [*events, f"v{mv.version}: aliases not moved: {authority.reason}"]
    return events + _gate(
        mlflow_client, task, spec, str(mv.version), value, authority, force, rescore
    )


def _create_version(mlflow_client, task: str, spec: RegistryTask, run, model: str, value: float):
    tags = run.data.tags
    test = run.data.metrics.get(metric_key(spec, "test"))
    version_tags = {
        TAG + "model": model,
        TAG + metric_key(spec): repr(value),
        GATE: PENDING,
        **{TAG + k: tags[TAG + k] for k in _COPIED if TAG + k in tags},
    }
    if test is not None:
        version_tags[TAG + metric_key(spec, "test")] = repr(test)
    model_id = tags.get(TAG + "model_id")
    source = f"models:/{model_id}" if model_id else f"{run.info.artifact_uri}/model"
    return mlflow_client.create_model_version(
        name=task,
        source=source,
        run_id=run.info.run_id,
        tags=version_tags,
        model_id=model_id,
        description=version_card(task, spec, model, run, value, test),
    )


_COPIED = (
    "dvc_exp",
    "params_digest",
    "git_commit",
    "git_dirty",
    "kind",
    "data_md5",
    "model_md5",
    "cut_short",
)


def rules(spec: RegistryTask) -> str:
    """The gate's rules as a version tag: committed new rules gate the versions again."""
    margin = f" by {spec.min_improvement!r}" if spec.min_improvement else ""
    base = f" over {spec.baseline.name} {spec.baseline.score!r}" if spec.baseline else ""
    paired = f"; paired {spec.bootstrap.samples} at {spec.bootstrap.confidence!r}"
    return f"{spec.metric} {spec.direction} {spec.threshold!r}{margin}{base}{paired}"


def _gate(
    mlflow_client,
    task: str,
    spec: RegistryTask,
    version: str,
    value: float,
    authority: Authority,
    force: bool = False,
    rescore: Rescore | None = None,
) -> list[str]:
    mlflow_client.set_model_version_tag(task, version, GATE_RULES, rules(spec))
    passes = spec.passes(value)
    if not passes and not force:
        mlflow_client.set_model_version_tag(task, version, TAG + "status", "rejected")
        mlflow_client.set_model_version_tag(task, version, GATE, "rejected")
        return [f"v{version}: {_misses(spec, value)}"]
    overrode = None if passes else _misses(spec, value)
    old_candidate = alias_version(mlflow_client, task, CANDIDATE)
    mlflow_client.set_registered_model_alias(task, CANDIDATE, version)  # the newest that passed
    mlflow_client.set_model_version_tag(task, version, TAG + "status", "passed")
    mlflow_client.set_model_version_tag(task, version, GATE, "passed")
    by, why = authority.by, authority.reason
    record(mlflow_client, task, CANDIDATE, old_candidate, version, by, why, overrode=overrode)
    events = [f"v{version}: passes threshold -> {CANDIDATE}"]
    champion = alias_version(mlflow_client, task, CHAMPION)
    if champion is not None and str(champion.version) == version:
        return [*events, f"v{version}: stays {CHAMPION}"]
    own = get_version(mlflow_client, task, version)
    if champion is not None and cut_short(own) and not cut_short(champion):
        return [
            *events,
            f"v{version}: cut short by its max_seconds guard (its length depended on the "
            f"machine's speed): not promoted over the complete {CHAMPION} v{champion.version}",
        ]
    champion_value = _gate_value(mlflow_client, champion, spec)
    if champion is not None and rescore is not None and _data(champion) != _data(own):
        again = rescore(champion)
        if again is not None and math.isfinite(again):
            events.append(
                f"{CHAMPION} v{champion.version} scored on v{version}'s data: "
                f"{metric_key(spec)}={again:.4f} ({champion_value:.4f} on its own data)"
            )
            champion_value = again
        else:
            events.append(
                f"{CHAMPION} v{champion.version} could not be scored on v{version}'s data: "
                "compared by its own score"
            )
    if champion is not None:
        pair = compare(mlflow_client, spec, own, champion)
        if pair.interval is not None:
            return events + _paired_verdict(
                mlflow_client, task, spec, version, champion, pair.interval, authority, overrode
            )
        events.append(f"v{version} not paired with {CHAMPION} ({pair.why_not}): point scores")
    if spec.better(value, champion_value):
        if champion_value is not None:
            gain = spec.improvement(value, champion_value)
            events.append(f"v{version}: beats {CHAMPION} v{champion.version} by {gain:.4f}")
        events += _move_champion(mlflow_client, task, version, authority, ARCHIVE, overrode)
    else:
        margin = f" by at least {spec.min_improvement}" if spec.min_improvement else ""
        events.append(
            f"v{version}: does not beat {CHAMPION} v{champion.version}{margin} "
            f"({metric_key(spec)}={value:.4f} vs {champion_value:.4f})"
        )
    return events


def _paired_verdict(
    mlflow_client, task, spec: RegistryTask, version, champion, interval, authority, overrode
) -> list[str]:
    """Promote when the improvement's lower bound clears the margin; noise does not."""
    old = f"{CHAMPION} v{champion.version}"
    if spec.clears(interval.low):
        events = [f"v{version}: beats {old} by {interval.line()}"]
        return events + _move_champion(mlflow_client, task, version, authority, ARCHIVE, overrode)
    need = f"above {spec.min_improvement}" if spec.min_improvement else "above 0"
    return [
        f"v{version}: not clearly better than {old}: {interval.line()}; the lower bound must "
        f"be {need}"
    ]


def cut_short(version) -> bool:
    """Whether a version's training was stopped by its max_seconds guard (core.train.budget)."""
    return version.tags.get(TAG + "cut_short") == "true"


def _data(version) -> str:
    """The md5 of the processed data a version was trained and scored on ('' unknown)."""
    return version.tags.get(TAG + "data_md5", "")


def _gate_value(mlflow_client, version, spec: RegistryTask) -> float | None:
    """A version's gate score: its version tag, else its run's metric (a version from
    before the tag existed); None when there is no version or it was never scored."""
    from mlflow.exceptions import MlflowException

    if version is None:
        return None
    value = version_value(version, spec)
    if not math.isfinite(value):
        try:
            metrics = mlflow_client.get_run(version.run_id).data.metrics
        except MlflowException:  # its run is not in this store (deleted, or another store's)
            metrics = {}
        value = metrics.get(metric_key(spec), float("nan"))
    return value if math.isfinite(value) else None


def promote(
    task: str, spec: RegistryTask, version: str, authority: Authority, force: bool = False
) -> list[str]:
    """A person makes `version` the champion; the gate's checks apply unless `force`."""
    mlflow_client = client()
    target = get_version(mlflow_client, task, version)
    return _person_move(mlflow_client, task, spec, target, authority, force, "promoted")


def rollback(
    task: str,
    spec: RegistryTask,
    authority: Authority,
    to: str | None = None,
    force: bool = False,
) -> list[str]:
    """Make the previous champion (or version `to`) champion again; the current one is
    archived as rolled back. Nothing is deleted, so a rollback can itself be rolled back.
    The target meets the same checks as a promote (rules may have changed since it was
    champion, and `to` may name a version the gate rejected) unless `force`."""
    mlflow_client = client()
    current = alias_version(mlflow_client, task, CHAMPION)
    if to is None:
        moves = [e for e in history(task) if e["alias"] == CHAMPION and e["from"]]
        if not moves or current is None:
            raise RegistryError(f"{task}: no previous {CHAMPION} to roll back to")
        to = moves[-1]["from"]
    target = get_version(mlflow_client, task, to)
    return _person_move(mlflow_client, task, spec, target, authority, force, "rolled back")


def _person_move(
    mlflow_client, task, spec: RegistryTask, target, authority: Authority, force: bool, verb: str
) -> list[str]:
    """Make `target` champion for a person, past the gate's refusal only with `force`."""
    version = str(target.version)
    current = alias_version(mlflow_client, task, CHAMPION)
    if current is not None and str(current.version) == version:
        return [f"v{version} is already {CHAMPION}"]
    refusal = refused(mlflow_client, spec, target, current)
    if refusal and not force:
        raise RegistryError(
            f"{task} v{version}: {refusal}; not {verb} (--force with a --reason to do it anyway)"
        )
    status = ARCHIVE if verb == "promoted" else "rolled_back"
    events = _move_champion(mlflow_client, task, version, authority, status, refusal)
    return events + ([f"v{version}: forced past the gate: {refusal}"] if refusal else [])


def refused(mlflow_client, spec: RegistryTask, target, champion) -> str | None:
    """Why the gate would not make `target` champion over `champion` (None: it would): the
    threshold under the current rules, and a cut-short version over a complete champion."""
    value = _gate_value(mlflow_client, target, spec)
    if value is None or not spec.passes(value):
        return _misses(spec, value)
    if champion is not None and cut_short(target) and not cut_short(champion):
        return (
            "cut short by its max_seconds guard (its length depended on the machine's speed): "
            f"not made {CHAMPION} over the complete v{champion.version}"
        )
    return None


def _move_champion(
    mlflow_client,
    task: str,
    version: str,
    authority: Authority,
    old_status: str,
    overrode: str | None = None,
) -> list[str]:
    old = alias_version(mlflow_client, task, CHAMPION)
    if old is not None and str(old.version) == version:
        return [f"v{version} is already {CHAMPION}"]
    mlflow_client.set_registered_model_alias(task, CHAMPION, version)
    mlflow_client.set_model_version_tag(task, version, TAG + "status", CHAMPION)
    mlflow_client.set_model_version_tag(task, version, TAG + "promoted_by", authority.by)
    mlflow_client.set_model_version_tag(task, version, TAG + "promoted_why", authority.reason)
    record(mlflow_client, task, CHAMPION, old, version, authority.by, authority.reason, overrode)
    who = f"{one_line(authority.by)}: {one_line(authority.reason)}"
    events = [f"v{version}: promoted to {CHAMPION} ({who})"]
    if old is not None:
        mlflow_client.set_registered_model_alias(task, ARCHIVE, str(old.version))
        mlflow_client.set_model_version_tag(task, str(old.version), TAG + "status", old_status)
        events.append(f"v{old.version}: {CHAMPION} -> {ARCHIVE}")
    return events


def champion(task: str) -> tuple[str, str]:
    """The champion's model URI and a description such as 'v2 (wine-rf)'."""
    mlflow_client = client()
    require_registered_model(mlflow_client, task)
    version = alias_version(mlflow_client, task, CHAMPION)
    if version is None:
        raise RegistryError(
            f"{task}: no version has the '{CHAMPION}' alias yet (run the register stage in a "
            f"committed workspace, or `reprolab registry promote {task} VERSION --reason ...`)"
        )
    model = version.tags.get(TAG + "model", "?")
    return f"models:/{task}@{CHAMPION}", f"v{version.version} ({model})"


def run_exists(run_id: str) -> bool:
    """Whether this MLflow store holds the run (a clone may pull outputs but not runs)."""
    from mlflow.exceptions import MlflowException

    try:
        client().get_run(run_id)
    except MlflowException:
        return False
    return True


# ---------------------------------------------------------------- helpers


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def _bound(spec: RegistryTask) -> str:
    return "<=" if spec.direction == "minimize" else ">="


def _misses(spec: RegistryTask, value: float | None) -> str:
    """What the gate says of a version below the threshold or the baseline (None: never
    scored)."""
    bound = f"{_bound(spec)} {spec.threshold}"
    if value is None:
        return f"no {metric_key(spec)} score, so it cannot meet the threshold {bound}"
    base = spec.baseline
    if base is not None and spec.improvement(value, base.score) <= 0:
        return (
            f"{metric_key(spec)}={value:.4f} does not beat the baseline {base.name} "
            f"({base.score:.4f})"
        )
    return f"{metric_key(spec)}={value:.4f} misses the threshold {bound}"


def _finished_run(mlflow_client, run_id: str):
    from mlflow.exceptions import MlflowException

    try:
        run = mlflow_client.get_run(run_id)
    except MlflowException as err:
        raise RegistryError(f"run {run_id}: not found in the MLflow store") from err
    if run.info.status != "FINISHED":
        raise RegistryError(f"run {run_id}: status {run.info.status}, only FINISHED runs register")
    return run
