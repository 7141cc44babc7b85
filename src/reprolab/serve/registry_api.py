"""The registry over HTTP: what each task holds (versions with valid and test metric, aliases,
lineage, alias history) and a person's promote and rollback, through the same registry code
as `reprolab registry`, so under the same gate (a refused move is a one-line 409 unless
`force`). After a move the task's slot reloads at once, so the served model follows, and the
task's registry files are rewritten as the CLI does."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from reprolab.core.errors import RegistryError
from reprolab.serve.errors import ERROR_RESPONSES, ApiError, ErrorBody
from reprolab.serve.slots import Slot

LINEAGE = ("git_commit", "params_digest", "data_md5", "model_md5", "dvc_exp")
TaskName = Annotated[str, Path(max_length=200, description="a registry task of params.yaml")]


class VersionInfo(BaseModel):
    version: str
    model: str
    run_id: str
    experiment_id: str | None
    valid: float | None = Field(description="the gate's metric on the validation split")
    test: float | None = Field(description="reported only; never used to choose")
    aliases: list[str]
    status: str
    lineage: dict[str, str] = Field(description="git commit, params digest, DVC md5s")


class AliasEvent(BaseModel):
    time: str
    alias: str
    from_: str | None = Field(alias="from")
    to: str
    by: str
    reason: str
    forced: bool = Field(False, description="moved past the gate's refusal by a person")
    overrode: str | None = Field(None, description="what the gate said, when forced")
    seq: int | None = Field(None, description="place in the hash chain; None: legacy entry")
    legacy: bool = Field(False, description="from before the chain: shown, not verifiable")


class RegistryInfo(BaseModel):
    task: str
    metric: str
    direction: str
    threshold: float | None
    served_version: str | None
    mlflow_ui: str | None = Field(description="the MLflow UI the run links point at")
    versions: list[VersionInfo]
    history: list[AliasEvent]


class Promote(BaseModel):
    version: str = Field(pattern=r"^[0-9]{1,9}$", description="the version to make champion")
    reason: str = Field(min_length=1, max_length=2000, description="kept in the alias history")
    force: bool = Field(
        False, description="promote even where the gate refuses (threshold, cut short)"
    )
    by: str | None = Field(None, max_length=100, description="who asks (default: the service)")


class Rollback(BaseModel):
    to: str | None = Field(
        None, pattern=r"^[0-9]{1,9}$", description="default: the previous champion"
    )
    reason: str = Field(min_length=1, max_length=2000, description="kept in the alias history")
    force: bool = Field(
        False, description="roll back even where the gate refuses; recorded as forced"
    )
    by: str | None = Field(None, max_length=100)


class Moved(BaseModel):
    task: str
    events: list[str]
    served_version: str | None
    reload: str


RESPONSES = {**ERROR_RESPONSES, 409: {"model": ErrorBody}}


def router(slots: Callable[[], dict[str, Slot]], params: Any, mlflow_ui: str | None) -> APIRouter:
    """Routes for the registry tasks that `slots()` serves; `params` gives their gate rules."""
    api = APIRouter(responses=RESPONSES)

    def spec_of(task: str) -> Any:
        if task not in params.registry:
            raise ApiError(
                404, f"task {task!r}: not a registry task; tasks: {sorted(params.registry)}", "task"
            )
        return params.registry[task]

    @api.get(
        "/v1/registry/{task}",
        response_model=RegistryInfo,
        summary="A task's versions, aliases, lineage and alias history",
        tags=["registry"],
    )
    async def describe(task: TaskName) -> dict:
        spec = spec_of(task)
        info = await run_in_threadpool(_describe, task, spec)
        slot = slots().get(task)
        served = slot.current.version if slot is not None and slot.current else None
        return {**info, "served_version": served, "mlflow_ui": mlflow_ui}

    @api.post(
        "/admin/registry/{task}/promote",
        response_model=Moved,
        summary="Make a version champion (the threshold applies unless force)",
        tags=["admin"],
    )
    async def promote(task: TaskName, body: Promote) -> dict:
        from reprolab.core import registry as reg

        return await move(
            task, body, lambda s, who: reg.promote(task, s, body.version, who, body.force)
        )

    @api.post(
        "/admin/registry/{task}/rollback",
        response_model=Moved,
        summary="Restore the previous champion (or a given version) if the gate allows it",
        tags=["admin"],
    )
    async def rollback(task: TaskName, body: Rollback) -> dict:
        from reprolab.core import registry as reg

        return await move(
            task, body, lambda s, who: reg.rollback(task, s, who, to=body.to, force=body.force)
        )

    async def move(task: str, body: Promote | Rollback, call: Callable[..., list[str]]) -> dict:
        """A person's alias move: `call(spec, authority)` in a worker thread, then the
        registry files rewritten and the task's slot reloaded."""
        spec = spec_of(task)
        events = await _registry_call(call, spec, _authority(body.reason, body.by))
        return await _after_move(task, spec, events, slots().get(task))

    return api


def _authority(reason: str, by: str | None) -> Any:
    from reprolab.core import registry as reg

    try:
        authority = reg.Authority.person(reason)
    except RegistryError as err:
        raise ApiError(422, "reason: empty; say why the alias moves (kept)", "reason") from err
    return dataclasses.replace(authority, by=by.strip()) if by and by.strip() else authority


async def _registry_call(fn: Callable[..., list[str]], *args: Any, **kwargs: Any) -> list[str]:
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except RegistryError as err:
        message = str(err).splitlines()[0]
        message = message.replace(
            "(--force with a --reason to do it anyway)", "(force: true to do it anyway)"
        )
        status = 404 if ": no version " in message or "no registered model" in message else 409
        raise ApiError(status, message, "version") from err


async def _after_move(task: str, spec: Any, events: list[str], slot: Slot | None) -> dict:
    from reprolab.ops.registry_files import rewrite

    note = await run_in_threadpool(rewrite, task, spec)
    result = await slot.refresh() if slot is not None else "not served"
    served = slot.current.version if slot is not None and slot.current else None
    return {
        "task": task,
        "events": events + ([note] if note else []),
        "served_version": served,
        "reload": result,
    }


def _describe(task: str, spec: Any) -> dict:
    import math

    from mlflow.exceptions import MlflowException

    from reprolab.core import registry_report
    from reprolab.core.registry_history import history
    from reprolab.core.tracking import TAG
    from reprolab.core.tracking_store import client

    try:
        listed = registry_report.versions(task, spec)
    except RegistryError as err:
        raise ApiError(404, str(err).splitlines()[0], "task") from err
    mlflow_client = client()
    versions = []
    for v in reversed(listed):  # newest first
        try:
            run = mlflow_client.get_run(v.run_id)
            tags, experiment = run.data.tags, run.info.experiment_id
        except MlflowException:
            tags, experiment = {}, None
        lineage = {k: tags[TAG + k] for k in LINEAGE if tags.get(TAG + k)}
        for key, value in (("dvc_exp", v.dvc_exp), ("params_digest", v.params_digest)):
            if value:
                lineage.setdefault(key, value)
        versions.append(
            {
                "version": v.version,
                "model": v.model,
                "run_id": v.run_id,
                "experiment_id": experiment,
                "valid": v.value if math.isfinite(v.value) else None,
                "test": v.test if math.isfinite(v.test) else None,
                "aliases": list(v.aliases),
                "status": v.status,
                "lineage": lineage,
            }
        )
    return {
        "task": task,
        "metric": spec.metric,
        "direction": spec.direction,
        "threshold": spec.threshold,
        "versions": versions,
        "history": history(task),
    }
