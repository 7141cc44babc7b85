"""The llama.cpp backend: a causal LM served by a `llama-server` process of its own, from
the GGUF file the export stage logged with the model's run (gguf/model-q8_0.gguf), or, for a
model without one, a Q8_0 file converted when the model loads.

Prompts are templated and tokenized here with the model's own tokenizer (the GGUF carries the
same one) and sent as token ids, so the prompt checks, stop strings, token counts and
metrics are the transformers backend's. Concurrent requests run in the server's parallel
slots, batched into one forward pass per step; each request samples with its own seed, and
prompts are never served from another request's cache, so a seed (or greedy decoding) gives
the same text alone or under load.
The process stops when the last request on this version ends after a swap, and with the
service."""

from __future__ import annotations

import contextlib
import random
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from reprolab.lm.generation import GenerationError, context_length
from reprolab.serve.lm_engine import Job, LanguageModel, StopCutter

GGUF_ARTIFACT = "gguf/model-q8_0.gguf"  # pipeline.export's artifact in the model's run
REPEAT_LAST_N = 64  # tokens the repetition penalty looks back over


class LlamaCppModel(LanguageModel):
    backend = "llama.cpp"
    features = frozenset({"logprobs", "presence_penalty", "frequency_penalty", "response_format"})

    def __init__(
        self,
        name: str,
        server: Any,
        tokenizer: Any,
        defaults: dict,
        meta: dict,
        context: int | None,
        scratch: Any = None,
    ) -> None:
        super().__init__(name, None, tokenizer, defaults, meta)
        self.server, self._context, self._scratch = server, context, scratch

    @property
    def context(self) -> int | None:
        return self._context

    @classmethod
    def from_pyfunc(cls, name: str, pyfunc: Any, uri: str, options: Any) -> LlamaCppModel:
        """From a loaded causal-LM pyfunc: its run's GGUF file when it has one, else its
        weights converted to Q8_0 in a scratch folder kept while the model is served."""
        from dataclasses import replace

        from reprolab.llamacpp.server import LlamaServer

        inner = pyfunc.unwrap_python_model()
        meta = dict(getattr(inner, "meta", {}) or {})
        defaults = dict(inner.defaults)
        model, tokenizer = inner.model, inner.tokenizer
        context = context_length(model)
        scratch = None
        gguf = logged_gguf(uri)
        if gguf is None:
            scratch = tempfile.TemporaryDirectory(prefix=f"reprolab-gguf-{name}-")
            gguf = _convert(model, tokenizer, Path(scratch.name))
        del model, inner  # the weights live in the llama-server process from here on
        if options.context is None or (context is not None and context < options.context):
            options = replace(options, context=context)
        server = LlamaServer(gguf, options)
        return cls(name, server, tokenizer, defaults, meta, options.context, scratch)

    def close(self) -> None:
        self.server.close()
        if self._scratch is not None:
            self._scratch.cleanup()

    # ------------------------------------------------------------ generating

    def request_body(self, job: Job) -> dict[str, Any]:
        """The llama-server /completion body of a job: OpenAI's meaning of each setting
        (no top-k or min-p unless asked, greedy at temperature 0)."""
        s, c = job.sampling, job.controls
        body: dict[str, Any] = {
            "prompt": job.ids,
            "n_predict": s.max_new_tokens,
            "temperature": s.temperature,
            "top_k": s.top_k,
            "top_p": s.top_p,
            "min_p": 0.0,
            "typical_p": 1.0,
            "repeat_penalty": c.repeat_penalty,
            "repeat_last_n": REPEAT_LAST_N,
            "dry_multiplier": c.dry,
            "presence_penalty": c.presence,
            "frequency_penalty": c.frequency,
            "seed": s.seed if s.seed is not None else random.SystemRandom().randrange(2**31),
            "stop": job.stops,
            # a cached prefix is computed in another batch shape than a fresh prompt, which
            # changes the logits' last bits: measured, a reused prefix changed greedy answers
            # under concurrent load; without it a seed gives the same text under any load
            "cache_prompt": False,
            "return_tokens": True,
            "n_probs": 0 if c.logprobs is None else max(c.logprobs, 1),
            "ignore_eos": c.ignore_eos,
        }
        if c.json_schema is not None:
            body["json_schema"] = c.json_schema
        return body

    def _pieces(self, job: Job) -> Iterator[str]:
        from reprolab.llamacpp.server import LlamaServerError

        chunks = self.server.stream(self.request_body(job))
        try:
            for chunk in chunks:
                if job.cancel.is_set():
                    break
                piece = _take(job, chunk)
                if piece is not None:
                    yield piece
        except LlamaServerError as err:
            _refuse(err)
            raise
        finally:
            chunks.close()  # closes the connection: the server drops the request

    async def astream(self, job: Job, clock: Any = None) -> AsyncIterator[str]:
        """The stream on the event loop itself: no thread hop per token."""
        from reprolab.llamacpp.server import LlamaServerError

        cutter = StopCutter(job, clock)
        try:
            async with contextlib.aclosing(self.server.astream(self.request_body(job))) as chunks:
                async for chunk in chunks:
                    if job.cancel.is_set():
                        return
                    piece = _take(job, chunk)
                    if piece is None:
                        continue
                    out = cutter.feed(piece)
                    if out:
                        yield out
                    if cutter.stopped:
                        break
                else:
                    rest = cutter.finish()
                    if rest:
                        yield rest
        except LlamaServerError as err:
            _refuse(err)
            raise
        cutter.done()

    async def acomplete(self, job: Job, clock: Any = None) -> str:
        async with contextlib.aclosing(self.astream(job, clock)) as pieces:
            return "".join([piece async for piece in pieces])


def _take(job: Job, chunk: dict[str, Any]) -> str | None:
    """A chunk's text (None: it holds no token), its tokens counted on the job and, when
    asked for, its log probabilities kept (the end-of-text token has neither)."""
    tokens = chunk.get("tokens") or []
    # the server's running count: a token whose bytes end inside a character is sent with
    # the next one, and not every chunk lists every token
    job.generated = int(chunk.get("tokens_predicted", job.generated + len(tokens)))
    k = job.controls.logprobs
    if k is not None:
        probs = chunk.get("completion_probabilities") or ()
        job.token_logprobs.extend(_entry(p, k) for p in probs if p.get("bytes"))
    if tokens or chunk.get("content"):
        return chunk.get("content", "")
    return None


def _refuse(err: Any) -> None:
    """A 4xx of llama-server (a JSON schema it cannot compile, say) as the client's error
    (a 4xx of the service too); anything else is raised as it is."""
    if err.status is not None and 400 <= err.status < 500:
        raise GenerationError(f"llama.cpp refused the request: {err}") from err


def _entry(prob: dict[str, Any], k: int) -> dict[str, Any]:
    """A llama-server token probability in OpenAI's chat shape (token, logprob, bytes and
    the k most likely alternatives)."""

    def one(p: dict[str, Any]) -> dict[str, Any]:
        return {"token": p.get("token", ""), "logprob": p.get("logprob"), "bytes": p.get("bytes")}

    return {**one(prob), "top_logprobs": [one(t) for t in (prob.get("top_logprobs") or [])[:k]]}


def logged_gguf(uri: str) -> Path | None:
    """The GGUF file logged with a registered version's run (`models:/<task>/<version>`),
    or one in a model directory; None when there is none."""
    if not uri.startswith("models:/"):
        found = Path(uri) / Path(GGUF_ARTIFACT).name
        return found if found.is_file() else None
    import mlflow
    from mlflow.exceptions import MlflowException

    from reprolab.core.tracking import client

    task, _, version = uri.removeprefix("models:/").partition("/")
    try:
        registry = client()
        run_id = registry.get_model_version(task, version).run_id
        names = {a.path for a in registry.list_artifacts(run_id, str(Path(GGUF_ARTIFACT).parent))}
        if run_id is None or GGUF_ARTIFACT not in names:
            return None
        return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=GGUF_ARTIFACT))
    except (MlflowException, OSError):
        return None


def _convert(model: Any, tokenizer: Any, folder: Path) -> Path:
    import shutil

    from reprolab.llamacpp.convert import save_hf, to_gguf

    hf = save_hf(model, tokenizer, folder / "hf")
    gguf = to_gguf(hf, folder / "model-q8_0.gguf", "q8_0")
    shutil.rmtree(hf, ignore_errors=True)
    return gguf
