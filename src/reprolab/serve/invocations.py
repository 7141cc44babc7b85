"""MLflow's scoring protocol, so code written for `mlflow models serve` (or SageMaker) works
against this service unchanged: `POST /v1/tasks/{task}/invocations` with the
`dataframe_split`, `dataframe_records`, `instances` or `inputs` JSON bodies (or CSV), answered
`{"predictions": ...}` by MLflow's own parser, schema check and serializer on the task's
served pyfunc; and, when exactly one such task is served, `/ping` and `/invocations` at the
root as MLflow's server has them. Errors keep MLflow's shape (`error_code`, `message`), with
its 400 for a bad body and 415 for a content type it does not read. A language model has no
pyfunc route here: the OpenAI routes serve it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from reprolab.serve.errors import ERROR_RESPONSES
from reprolab.serve.slots import Slot
from reprolab.serve.tasks import pyfunc_of

MESSAGE_CHARS = 2000  # MLflow quotes the whole input in some messages
BODY = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "MLflow's scoring body: one of dataframe_split, "
                "dataframe_records, instances or inputs, and optionally params",
            }
        },
        "text/csv": {"schema": {"type": "string", "minLength": 1}},
    },
    "required": True,
}
ANSWERS: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,  # the service's own: no token, a wrong one, a body over the limit
    200: {"description": '`{"predictions": ...}` as MLflow serializes them'},
    400: {"description": "MLflow's error body: the input did not parse or fit the schema"},
    415: {"description": "a content type other than JSON, CSV or Parquet"},
    503: {"description": "the model is still loading"},
}


def router(slots: Callable[[], dict[str, Slot]], tasks: list[str]) -> APIRouter:
    """The invocations route of each of `tasks` (the ones whose models are pyfuncs)."""
    api = APIRouter(tags=["mlflow"])
    for task in tasks:
        _route(api, f"/v1/tasks/{task}/invocations", slots, task)
    return api


def root_route(slots: Callable[[], dict[str, Slot]], task: str) -> APIRouter:
    """`/invocations` at the root, for the one task served: the path an MLflow or SageMaker
    client posts to without knowing task names."""
    api = APIRouter(tags=["mlflow"])
    _route(api, "/invocations", slots, task)
    return api


def ping_route(slots: Callable[[], dict[str, Slot]], task: str) -> APIRouter:
    """`/ping`, MLflow's health check: 200 once the model is loaded, 404 before; public, as
    /health is (a load balancer calls it without a token)."""
    api = APIRouter(tags=["mlflow"])

    @api.get(
        "/ping",
        summary=f"MLflow's health check: 200 once {task}'s model is loaded",
        responses={200: {"description": "loaded"}, 404: {"description": "not loaded yet"}},
        response_class=Response,
    )
    def ping() -> Response:
        loaded = slots()[task].current is not None
        return Response("\n", status_code=200 if loaded else 404, media_type="application/json")

    return api


def _route(api: APIRouter, path: str, slots: Callable[[], dict[str, Slot]], task: str) -> None:
    async def invocations(request: Request) -> Response:
        request.scope["reprolab.task"] = task
        slot = slots()[task]
        if slot.current is None:
            return _error(503, "SERVICE_UNAVAILABLE", f"{task}: the model is still loading")
        pyfunc = pyfunc_of(slot.current.model)
        if pyfunc is None:  # the task list only names pyfunc tasks; a reload could change it
            return _error(400, "BAD_REQUEST", f"{task}: this model takes no pyfunc input")
        body = await request.body()
        content_type = request.headers.get("content-type", "application/json")
        return await run_in_threadpool(score, pyfunc, body, content_type)

    api.add_api_route(
        path,
        invocations,
        methods=["POST"],
        summary=f"Predict with {task}'s model, as `mlflow models serve` does",
        responses=ANSWERS,
        openapi_extra={"requestBody": BODY},
        operation_id=f"invocations_{task.replace('-', '_')}" if path.startswith("/v1") else None,
    )


def score(pyfunc: Any, body: bytes, content_type: str) -> Response:
    """MLflow's scoring server's own `invocations` on `pyfunc`: the same parsing, schema
    enforcement and serialization, so the answer is byte for byte MLflow's."""
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    schema = pyfunc.metadata.get_input_schema()
    try:
        answer = scoring_server.invocations(body, content_type, pyfunc, schema)
    except MlflowException as err:  # MLflow's own error body and status, without its trace
        body = json.loads(err.serialize_as_json())
        body.pop("stack_trace", None)
        body["message"] = str(body.get("message", ""))[:MESSAGE_CHARS]
        status = err.get_http_status_code()
        status = status if 400 <= status < 500 else 400  # bad input is never a 5xx
        return Response(json.dumps(body), status_code=status, media_type="application/json")
    except (ValueError, TypeError, KeyError) as err:  # a body MLflow's parser let through
        return _error(400, "BAD_REQUEST", f"{type(err).__name__}: {err}"[:MESSAGE_CHARS])
    return Response(answer.response, status_code=answer.status, media_type=answer.mimetype)


def _error(status: int, code: str, message: str) -> Response:
    text = json.dumps({"error_code": code, "message": message})
    return Response(text, status_code=status, media_type="application/json")
