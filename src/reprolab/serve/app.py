"""The FastAPI app: health, readiness, metrics, the task list, one typed predict route per
task, the OpenAI-compatible routes, and /admin/reload. `create_app(settings)` builds it;
`run(settings)` serves it with uvicorn."""

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from reprolab.serve import errors, experiments, invocations, openai_api, registry_api
from reprolab.serve.auth import bearer
from reprolab.serve.batching import MicroBatcher
from reprolab.serve.errors import ERROR_RESPONSES, ApiError, BodyLimit
from reprolab.serve.lm_engine import LanguageModel
from reprolab.serve.lm_loader import load_lm
from reprolab.serve.metrics import Metrics, RequestMetrics
from reprolab.serve.settings import ServeError, ServeSettings
from reprolab.serve.slots import Slot, watch
from reprolab.serve.tasks import ImageAdapter, RowAdapter, TaskAdapter, adapter_for

SETTINGS_ENV = "REPROLAB_SERVE_SETTINGS"  # how `--workers N` hands settings to each worker
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # where prometheus_client's workers meet


class Baseline(BaseModel):
    name: str
    score: float


class Metric(BaseModel):
    name: str
    valid: float | None
    test: float | None
    baseline: Baseline | None = Field(
        None, description="what the gate made it beat on validation (params' registry.<task>)"
    )


class ModelState(BaseModel):
    task: str
    alias: str | None
    version: str | None
    model: str | None = None
    run_id: str | None
    source: str | None
    loaded_at: str | None
    metric: Metric | None = None
    ready: bool
    error: str | None


class Ready(BaseModel):
    ready: bool
    models: list[ModelState]


class TaskList(BaseModel):
    tasks: list[ModelState]


class Reloaded(BaseModel):
    results: dict[str, str]
    models: list[ModelState]


def served_tasks(params: Any, wanted: tuple[str, ...]) -> dict[str, str]:
    """task -> workload, for the wanted tasks (all of params.yaml's registry by default)."""
    unknown = [t for t in wanted if t not in params.registry]
    if unknown:
        raise ServeError(
            f"--task {unknown[0]}: not a task of params.yaml's registry "
            f"(tasks: {', '.join(sorted(params.registry))})"
        )
    out = {}
    for task in wanted or tuple(params.registry):
        models = params.models_of_task(task)
        if models:
            out[task] = params.model(models[0]).workload
    return out


def lm_features(settings: ServeSettings) -> frozenset[str]:
    """The OpenAI parameters beyond plain sampling that the LM backend implements."""
    if settings.backend == "llama.cpp":
        from reprolab.serve.lm_llamacpp import LlamaCppModel

        return LlamaCppModel.features
    return LanguageModel.features


def create_app(settings: ServeSettings, params: Any = None) -> FastAPI:
    if params is None:
        from reprolab.params import load_params

        params = load_params(settings.params_path)
    metrics = Metrics(settings.metrics_dir)
    load = _one_at_a_time()
    slots: dict[str, Slot] = {}
    adapters: dict[str, TaskAdapter] = {}
    workloads: dict[str, str] = {}
    lm_names: set[str] = set()
    for task, workload in served_tasks(params, settings.tasks).items():
        adapter = adapter_for(workload, task, params, settings)
        if adapter is None:
            if task in settings.tasks:
                raise ServeError(f"--task {task}: workload {workload!r} has no predict route")
            continue
        adapters[task], workloads[task] = adapter, workload
        slots[task] = Slot(
            task,
            load(adapter.load),
            metrics,
            alias=settings.alias,
            gate=params.registry[task],
        )
        if workload == "llm":
            lm_names.add(task)
    for name, location in settings.lms.items():
        if name in slots:
            raise ServeError(f"--lm {name}: the name is a registry task's; choose another")

        def load_one(uri: str, name: str = name) -> LanguageModel:
            return load_lm(name, uri, settings)

        slots[name] = Slot(name, load(load_one), metrics, location=location)
        lm_names.add(name)

    batchers = {
        task: MicroBatcher(task, adapter, settings.max_batch, settings.max_wait_ms / 1000, metrics)
        for task, adapter in adapters.items()
        if settings.batching and isinstance(adapter, RowAdapter)
    }

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _quiet()
        _set_threads(settings.threads)
        loading = [asyncio.create_task(slot.refresh()) for slot in slots.values()]
        if settings.load_first:  # uvicorn's worker accepts only after this returns
            await asyncio.gather(*loading)
        watcher = None
        if settings.reload_interval > 0:
            watcher = asyncio.create_task(watch(list(slots.values()), settings.reload_interval))
        yield
        for job in [*loading, *([watcher] if watcher else [])]:
            job.cancel()
        for batcher in batchers.values():
            await batcher.close()
        metrics.leave()

    app = FastAPI(
        title="reprolab serve",
        version=_version(),
        summary="Every registry task's model by alias, and OpenAI-compatible language models",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.state.slots, app.state.metrics, app.state.settings = slots, metrics, settings

    guard = [Depends(bearer(settings.token))]

    def states(names=None) -> list[dict]:
        return [s.describe() for n, s in slots.items() if names is None or n in names]

    @app.get("/health", summary="Liveness: the process answers", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        response_model=Ready,
        responses={503: {"model": Ready, "description": "a model is not loaded yet"}},
        summary="Readiness: 200 once every model is loaded",
        tags=["health"],
    )
    def ready() -> JSONResponse:
        ok = all(slot.current is not None for slot in slots.values())
        return JSONResponse({"ready": ok, "models": states()}, status_code=200 if ok else 503)

    @app.get(
        "/metrics",
        dependencies=[] if settings.metrics_public else guard,
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
            **ERROR_RESPONSES,
        },
        response_class=Response,
        summary="Prometheus metrics",
        tags=["health"],
    )
    def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    api = APIRouter(dependencies=guard, responses=ERROR_RESPONSES)

    @api.get("/v1/tasks", response_model=TaskList, summary="What each task serves", tags=["tasks"])
    def tasks() -> dict:
        return {"tasks": states()}

    @api.post(
        "/admin/reload",
        response_model=Reloaded,
        summary="Check the aliases now and load what moved",
        tags=["admin"],
    )
    async def reload(task: str | None = Query(None, max_length=200)) -> dict:
        if task is not None and task not in slots:
            raise ApiError(404, f"task {task!r}: not served; served: {sorted(slots)}", "task")
        chosen = [slots[task]] if task else list(slots.values())
        results = await asyncio.gather(*(slot.refresh() for slot in chosen))
        return {
            "results": {s.name: r for s, r in zip(chosen, results, strict=True)},
            "models": states({s.name for s in chosen}),
        }

    for task, adapter in adapters.items():
        _predict_route(api, task, slots[task], adapter, batchers.get(task))

    @api.post("/v1/tasks/{task}/predict", include_in_schema=False)
    def unknown_task(task: str) -> None:
        raise ApiError(404, f"task {task!r}: not served; served: {sorted(adapters)}", "task")

    app.include_router(api)
    app.include_router(
        openai_api.router(
            lambda: {n: slots[n] for n in lm_names},
            metrics,
            guard,
            settings.max_tokens,
            openai_api.Limits(settings.max_prompt_chars, settings.max_messages),
            features=lm_features(settings),
            chat=openai_api.ChatDefaults(settings.chat_repeat_penalty, settings.chat_dry),
        ),
        tags=["openai"],
    )
    pyfuncs = sorted(t for t, w in workloads.items() if w != "llm")  # the OpenAI routes: LMs
    app.include_router(invocations.router(lambda: slots, pyfuncs), dependencies=guard)
    if len(pyfuncs) == 1:  # MLflow's root paths name no task: one pyfunc task is unambiguous
        app.include_router(invocations.ping_route(lambda: slots, pyfuncs[0]))
        app.include_router(invocations.root_route(lambda: slots, pyfuncs[0]), dependencies=guard)
    app.include_router(
        registry_api.router(lambda: slots, params, settings.mlflow_ui), dependencies=guard
    )
    app.include_router(
        experiments.router(settings.params_path.resolve().parent), dependencies=guard
    )
    if settings.ui:
        from reprolab.serve import ui

        ui.mount(app, settings, params, workloads, sorted(lm_names))
    return app


def _predict_route(
    api: APIRouter, task: str, slot: Slot, adapter: TaskAdapter, batcher: MicroBatcher | None
) -> None:
    Req, Resp = adapter.Request, adapter.Response
    # a model that answers in well under a millisecond runs on the event loop: handing it to
    # a worker thread would cost more than the prediction
    inline = getattr(adapter, "inline", False)

    async def predict(body: Req, request: Request) -> JSONResponse:  # type: ignore[valid-type]
        request.scope["reprolab.task"] = task
        loaded = slot.require()
        if batcher is not None:
            frame = adapter.to_frame(body)
            answer = adapter.respond(body, await batcher.run(loaded.model, frame))
        elif inline:
            answer = adapter.predict(loaded.model, body)
        else:
            answer = await run_in_threadpool(adapter.predict, loaded.model, body)
        return JSONResponse({"task": task, "version": loaded.version, **answer})

    api.add_api_route(
        f"/v1/tasks/{task}/predict",
        predict,
        methods=["POST"],
        response_model=Resp,
        summary=f"Predict with {task}'s model",
        tags=["tasks"],
        operation_id=f"predict_{task.replace('-', '_')}",
    )
    if isinstance(adapter, ImageAdapter):

        async def predict_image(
            request: Request,
            image: UploadFile = File(..., description="PNG, TIFF or JPEG"),  # noqa: B008
            overlay: bool = Form(False),
        ) -> JSONResponse:
            request.scope["reprolab.task"] = task
            loaded = slot.require()
            data = await image.read()
            answer = await run_in_threadpool(adapter.segment, loaded.model, data, overlay)
            return JSONResponse({"task": task, "version": loaded.version, **answer})

        api.add_api_route(
            f"/v1/tasks/{task}/predict/image",
            predict_image,
            methods=["POST"],
            response_model=Resp,
            summary=f"Predict with {task}'s model from an uploaded image file",
            tags=["tasks"],
            operation_id=f"predict_image_{task.replace('-', '_')}",
        )


def _one_at_a_time():
    """Loads run in background threads, one at a time: transformers builds a model under a
    process-wide meta-device context, so two loads side by side can leave one of them with
    weights that hold no data."""
    import threading

    lock = threading.Lock()

    def wrap(load):
        def locked(uri: str):
            with lock:
                return load(uri)

        return locked

    return wrap


def _quiet() -> None:
    """No per-load noise in the service log: MLflow's type-hint nag, HF's loading bars."""
    import warnings

    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore", message=".*type hints.*")
    hf_logging.disable_progress_bar()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def _set_threads(threads: int | None) -> None:
    import torch

    torch.set_num_threads(max(1, threads or os.cpu_count() or 1))


def _version() -> str:
    from reprolab import __version__

    return __version__


# ---------------------------------------------------------------- running


def factory() -> FastAPI:
    """For uvicorn's workers (`--workers N`): the settings come in one environment variable."""
    raw = json.loads(os.environ[SETTINGS_ENV])
    raw["params_path"] = Path(raw["params_path"])
    raw["tasks"] = tuple(raw["tasks"])
    return create_app(ServeSettings(**raw))


def run(settings: ServeSettings, workers: int = 1, access_log: bool = False) -> None:
    import uvicorn

    settings.check()
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "access_log": access_log,
        "log_level": "info",
        "timeout_graceful_shutdown": 10,
    }
    if workers > 1:
        import shutil
        import tempfile

        # prometheus_client reads its multiprocess directory when a worker imports it
        shared = tempfile.mkdtemp(prefix="reprolab-metrics-")
        os.environ[MULTIPROC_ENV] = shared
        settings = replace(settings, metrics_dir=shared, load_first=True)
        env = {**asdict(settings), "params_path": str(settings.params_path)}
        os.environ[SETTINGS_ENV] = json.dumps(env)
        try:
            uvicorn.run("reprolab.serve.app:factory", factory=True, workers=workers, **options)
        finally:
            shutil.rmtree(shared, ignore_errors=True)
    else:
        uvicorn.run(create_app(settings), **options)
