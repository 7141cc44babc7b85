"""OpenAI-compatible routes over every served causal LM: `GET /v1/models`,
`POST /v1/completions`, `POST /v1/chat/completions`, streamed as server-sent events (each
chunk a `data: {json}` line, then `data: [DONE]`), as vLLM and OpenAI shape them.

A request's size is checked against the server's `Limits` before any templating or
tokenizing, and templating and tokenizing run in a worker thread: a huge conversation is
refused at once, and one that is allowed but slow to encode never holds up the event loop
(/health and every other request keep answering)."""

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from reprolab.lm.generation import GenerationError
from reprolab.serve import openai_schemas as oa
from reprolab.serve.errors import ERROR_RESPONSES, ApiError
from reprolab.serve.lm_engine import Controls, Job, LanguageModel
from reprolab.serve.metrics import Metrics, TokenClock
from reprolab.serve.slots import Slot

# server-sent events: `data: {chunk JSON}` lines, then `data: [DONE]`
STREAM_DOC = {200: {"content": {"text/event-stream": {}}}}


@dataclass(frozen=True)
class Limits:
    """What one request may send: `chars`, the characters of its prompt or of all its
    messages together; `messages`, how many messages. Memory and time spent templating and
    tokenizing grow with both, so they are refused before either starts."""

    chars: int = 200_000
    messages: int = 256


@dataclass(frozen=True)
class ChatDefaults:
    """Repetition controls a chat request gets when it sets no repetition_penalty: greedy
    answers of a small model loop without them (docs/llm.md measures how often)."""

    repeat_penalty: float = 1.0
    dry: float = 0.0


def router(
    lms: Callable[[], dict[str, Slot]],
    metrics: Metrics,
    dependencies: list,
    cap: int,
    limits: Limits | None = None,
    features: frozenset[str] = frozenset(),
    chat: ChatDefaults | None = None,
) -> APIRouter:
    """`lms()`: the served language models by name, looked up per request; `cap`: the most
    tokens one request may ask for; `limits`: how much text one request may send;
    `features`: the parameters beyond plain sampling the LM backend implements (typed in
    the schema; the others are refused by name); `chat`: chat's repetition defaults. The
    schema lists the served names as examples of `model`, so /docs (and a schema fuzzer)
    can try a real one, and states the message count and text lengths the server takes."""
    limits = limits or Limits()
    chat = chat or ChatDefaults()
    allowed = features
    api = APIRouter(prefix="/v1", dependencies=dependencies, responses=ERROR_RESPONSES)
    names = sorted(lms())
    text = min(oa.MAX_TEXT, limits.chars)
    CompletionRequest = _with_models(
        oa.CompletionRequest,
        names,
        prompt=oa.prompt_field(text),
        max_tokens=oa.tokens_field(cap),
        **oa.typed_fields(False, features),
    )
    ChatCompletionRequest = _with_models(
        oa.ChatCompletionRequest,
        names,
        messages=oa.messages_field(limits.messages, text, limits.chars),
        max_tokens=oa.tokens_field(cap),
        max_completion_tokens=oa.tokens_field(cap),
        **oa.typed_fields(True, features),
    )

    def model_of(request: Request, name: str) -> LanguageModel:
        request.scope["reprolab.task"] = name
        slots = lms()
        if name not in slots:
            raise ApiError(
                404, f"model {name!r}: not served here; served: {sorted(slots)}", "model"
            )
        return slots[name].require().model

    def job_of(
        lm: LanguageModel, prompt: str, body: oa._Generation, limit, where: str, controls
    ) -> Job:
        """Tokenize and check; runs in a worker thread (see `prepare`)."""
        try:
            return lm.job(
                prompt,
                limit,
                body.temperature,
                body.top_p,
                body.seed,
                body.stops(),
                where,
                cap,
                controls,
            )
        except GenerationError as err:
            raise ApiError(400, str(err), where) from err

    def refuse_unsupported(body, lm: LanguageModel) -> None:
        """400 naming a parameter the client asked for and this server (or this model's
        backend) does not implement."""
        usable = set(allowed & lm.features)
        if "logprobs" in usable and isinstance(body, oa.ChatCompletionRequest):
            usable.add("top_logprobs")  # chat's; completions count alternatives in logprobs
        asked = body.unsupported(frozenset(usable))
        if asked is not None:
            name, value = asked
            shown = repr(value)[:60]
            backend = f" (the {lm.backend} backend)" if name in oa.BACKEND_PARAMS else ""
            raise ApiError(
                400,
                f"{name}: not supported by this server{backend} (got {shown}); leave it out",
                name,
            )

    def controls_of(body, chatting: bool) -> Controls:
        """The request's controls beyond plain sampling, and chat's repetition defaults."""
        logprobs = getattr(body, "logprobs", None)
        top = getattr(body, "top_logprobs", None)
        k = None
        if chatting:
            if logprobs is True:
                k = top or 0
            elif top not in (None, 0):
                raise ApiError(400, "top_logprobs: needs logprobs: true", "top_logprobs")
        elif isinstance(logprobs, int) and not isinstance(logprobs, bool) and "logprobs" in allowed:
            k = logprobs
        fmt = getattr(body, "response_format", None)
        schema = fmt.schema_or_none() if isinstance(fmt, oa.ResponseFormat) else None
        penalty = body.repetition_penalty
        return Controls(
            repeat_penalty=penalty or (chat.repeat_penalty if chatting else 1.0),
            dry=chat.dry if chatting and penalty is None else 0.0,
            presence=_number(getattr(body, "presence_penalty", None)),
            frequency=_number(getattr(body, "frequency_penalty", None)),
            json_schema=schema,
            logprobs=k,
            ignore_eos=body.ignore_eos,
        )

    def check_size(chars: int, count: int, where: str) -> None:
        """413 naming the limit, before any templating or tokenizing."""
        if count > limits.messages:
            raise ApiError(
                413,
                f"{where}: {count} messages; this server takes at most {limits.messages} "
                "(max_messages)",
                where,
            )
        if chars > limits.chars:
            raise ApiError(
                413,
                f"{where}: {chars} characters in all; this server takes at most "
                f"{limits.chars} (max_prompt_chars)",
                where,
            )

    async def prepare(lm: LanguageModel, body, messages: list[dict[str, str]] | None) -> Job:
        """The job of a completion (`messages` None) or a chat: templating and tokenizing
        off the event loop, whose other requests (/health included) keep being answered."""

        controls = controls_of(body, messages is not None)

        def build() -> Job:
            if messages is None:
                return job_of(lm, body.text(), body, body.max_tokens, "prompt", controls)
            return job_of(lm, lm.render_chat(messages), body, body.limit(), "messages", controls)

        return await run_in_threadpool(build)

    @api.get("/models", response_model=oa.ModelList, summary="The served language models")
    def list_models() -> oa.ModelList:
        cards = []
        for name, slot in sorted(lms().items()):
            loaded = slot.current
            created = int(time.time()) if loaded is None else _epoch(loaded.loaded_at)
            cards.append(oa.ModelCard(id=name, created=created, version=loaded and loaded.version))
        return oa.ModelList(data=cards)

    @api.post(
        "/completions",
        response_model=oa.Completion,
        responses=STREAM_DOC,
        summary="Complete a prompt (OpenAI-compatible; stream: true for SSE)",
    )
    async def completions(body: CompletionRequest, request: Request):  # type: ignore[valid-type]
        lm = model_of(request, body.model)
        refuse_unsupported(body, lm)
        check_size(len(body.text()), 1, "prompt")
        jobs = _choices(await prepare(lm, body, None), body.n)
        rid, created = f"cmpl-{uuid.uuid4().hex}", int(time.time())
        echo = body.text() if body.echo else ""
        if body.stream:
            return _sse(_completion_chunks(body, lm, jobs, request, echo, rid, created))
        texts = await _complete_all(lm, jobs, body.model)
        return oa.Completion(
            id=rid,
            created=created,
            model=body.model,
            choices=[
                oa.CompletionChoice(
                    index=i,
                    text=echo + text,
                    finish_reason=job.finish_reason,
                    logprobs=oa.text_logprobs(job.controls.logprobs, job.token_logprobs, len(echo)),
                )
                for i, (text, job) in enumerate(zip(texts, jobs, strict=True))
            ],
            usage=_usage(jobs),
        )

    @api.post(
        "/chat/completions",
        response_model=oa.ChatCompletion,
        responses=STREAM_DOC,
        summary="Answer a conversation (OpenAI-compatible; stream: true for SSE)",
    )
    async def chat_completions(body: ChatCompletionRequest, request: Request):  # type: ignore[valid-type]
        lm = model_of(request, body.model)
        refuse_unsupported(body, lm)
        check_size(sum(m.chars() for m in body.messages), len(body.messages), "messages")
        jobs = _choices(await prepare(lm, body, [m.plain() for m in body.messages]), body.n)
        rid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if body.stream:
            return _sse(_chat_chunks(body, lm, jobs, request, rid, created))
        texts = await _complete_all(lm, jobs, body.model)
        return oa.ChatCompletion(
            id=rid,
            created=created,
            model=body.model,
            choices=[
                oa.ChatChoice(
                    index=i,
                    message=oa.AssistantMessage(content=text),
                    finish_reason=job.finish_reason,
                    logprobs=oa.chat_logprobs(job.controls.logprobs, job.token_logprobs),
                )
                for i, (text, job) in enumerate(zip(texts, jobs, strict=True))
            ],
            usage=_usage(jobs),
        )

    async def _complete_all(lm: LanguageModel, jobs: list[Job], model: str) -> list[str]:
        """Every choice's text, generated side by side (each its own request in /metrics)."""
        return list(
            await asyncio.gather(*(_complete(lm, job, TokenClock(metrics, model)) for job in jobs))
        )

    async def _completion_chunks(body, lm, jobs, request, echo, rid, created):
        def choice(i: int, text: str, finish: str | None, logprobs=None) -> dict:
            return {"index": i, "text": text, "finish_reason": finish, "logprobs": logprobs}

        for i, job in enumerate(jobs):  # one choice after the other, each with its index
            if echo:
                yield oa.chunk("text", rid, created, body.model, choice(i, echo, None))
            clock = TokenClock(metrics, body.model)
            sent, offset = 0, len(echo)
            async for piece in _stream_pieces(lm, job, clock, request):
                entries, sent = job.token_logprobs[sent:], len(job.token_logprobs)
                logprobs = oa.text_logprobs(job.controls.logprobs, entries, offset)
                offset += sum(len(e["token"]) for e in entries)
                yield oa.chunk("text", rid, created, body.model, choice(i, piece, None, logprobs))
            yield oa.chunk("text", rid, created, body.model, choice(i, "", job.finish_reason))
            if await request.is_disconnected():  # no more choices for a client that left
                return
        if body.stream_options and body.stream_options.include_usage:
            yield oa.chunk("text", rid, created, body.model, None, _usage(jobs))

    async def _chat_chunks(body, lm, jobs, request, rid, created):
        def choice(i: int, delta: dict, finish: str | None, logprobs=None) -> dict:
            return {"index": i, "delta": delta, "finish_reason": finish, "logprobs": logprobs}

        for i, job in enumerate(jobs):
            opening = choice(i, {"role": "assistant", "content": ""}, None)
            yield oa.chunk("chat", rid, created, body.model, opening)
            clock = TokenClock(metrics, body.model)
            sent = 0
            async for piece in _stream_pieces(lm, job, clock, request):
                entries, sent = job.token_logprobs[sent:], len(job.token_logprobs)
                delta = choice(
                    i, {"content": piece}, None, oa.chat_logprobs(job.controls.logprobs, entries)
                )
                yield oa.chunk("chat", rid, created, body.model, delta)
            yield oa.chunk("chat", rid, created, body.model, choice(i, {}, job.finish_reason))
            if await request.is_disconnected():
                return
        if body.stream_options and body.stream_options.include_usage:
            yield oa.chunk("chat", rid, created, body.model, None, _usage(jobs))

    return api


def _with_models(base: type, names: list[str], **fields: tuple) -> type:
    """`base` with the served names as examples of `model`, and `fields` replaced."""
    from pydantic import Field, create_model

    field = Field(description="a served model: GET /v1/models", examples=names or None)
    return create_model(base.__name__, __base__=base, model=(str, field), **fields)


def _number(value) -> float:
    """A penalty as a float; a neutral or absent one is 0."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _usage(jobs: list[Job]) -> dict:
    """The prompt counted once, the tokens of every choice summed (as OpenAI counts them)."""
    prompt, generated = jobs[0].prompt_tokens, sum(job.generated for job in jobs)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": generated,
        "total_tokens": prompt + generated,
    }


def _choices(job: Job, n: int) -> list[Job]:
    """`job` and n - 1 copies of it; with a seed, copy i samples with seed + i, so the
    choices differ and each is reproducible (greedy choices are all alike)."""

    def copy(i: int) -> Job:
        seed = job.sampling.seed
        sampling = replace(job.sampling, seed=None if seed is None else seed + i)
        return Job(ids=job.ids, sampling=sampling, stops=job.stops, controls=job.controls)

    return [job, *(copy(i) for i in range(1, n))]


async def _complete(lm: LanguageModel, job: Job, clock: TokenClock) -> str:
    try:
        return await lm.acomplete(job, clock)
    finally:
        clock.close()  # counted as aborted unless it finished


async def _stream_pieces(
    lm: LanguageModel, job: Job, clock: TokenClock, request: Request
) -> AsyncIterator[str]:
    """The generated pieces; generation is cancelled when the client disconnects."""
    try:
        async with contextlib.aclosing(lm.astream(job, clock)) as pieces:
            async for piece in pieces:
                yield piece
                if await request.is_disconnected():
                    break
    finally:
        job.cancel.set()
        clock.close()  # counted as aborted unless it finished


def _sse(chunks: AsyncIterator[dict]) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        try:
            async for item in chunks:
                yield f"data: {json.dumps(item, ensure_ascii=False)}\n\n"
        except Exception as err:  # the status is sent already: the error goes in the stream
            error = {
                "message": str(err).splitlines()[0] if str(err) else type(err).__name__,
                "type": "server_error",
                "param": None,
                "code": 500,
            }
            yield f"data: {json.dumps({'error': error})}\n\n"
        yield "data: [DONE]\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _epoch(stamp: str) -> int:
    import calendar

    return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
