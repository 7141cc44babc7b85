"""Generation for the service: one loaded causal LM (a registry champion or a fixed
directory) that streams tokens, honours stop strings and seeds, counts tokens, and can be
cancelled when the client goes away.

Generation runs in its own thread (`model.generate` feeding a streamer), and requests run side
by side. A seeded sampling request draws its tokens with a torch.Generator of its own (a
logits processor that samples, then greedy decoding that takes the drawn token), so no other
request can move its random stream and the same seed gives the same text under any load."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from reprolab.lm.generation import GREEDY_BELOW, GenerationError, Sampling, context_length
from reprolab.serve.metrics import TokenClock


def own_draws(sampling: Sampling, repeat_penalty: float = 1.0) -> dict[str, Any]:
    """`generate` kwargs for a seeded sampling request: the repetition penalty, temperature,
    top-k and top-p as HF applies them, then a draw from this request's own generator;
    greedy decoding then takes the one token left."""
    import torch
    from transformers import (
        LogitsProcessor,
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    class Draw(LogitsProcessor):
        def __init__(self, seed: int) -> None:
            self.generator = torch.Generator(device="cpu").manual_seed(seed)

        def __call__(self, input_ids, scores):
            probs = torch.softmax(scores.float(), dim=-1).cpu()
            drawn = torch.multinomial(probs, 1, generator=self.generator).to(scores.device)
            only = torch.full_like(scores, float("-inf"))
            return only.scatter_(1, drawn, 0.0)

    steps: list[LogitsProcessor] = []
    if repeat_penalty != 1.0:
        steps.append(RepetitionPenaltyLogitsProcessor(repeat_penalty))
    if sampling.temperature != 1.0:
        steps.append(TemperatureLogitsWarper(sampling.temperature))
    if sampling.top_k:
        steps.append(TopKLogitsWarper(sampling.top_k))
    if sampling.top_p < 1.0:
        steps.append(TopPLogitsWarper(sampling.top_p))
    steps.append(Draw(int(sampling.seed or 0)))
    return {
        "max_new_tokens": sampling.max_new_tokens,
        "do_sample": False,
        "logits_processor": LogitsProcessorList(steps),
    }


@dataclass(frozen=True)
class Controls:
    """What a request may add to the sampling beyond `Sampling`. repeat_penalty: HF's and
    llama.cpp's repetition penalty (1: off); dry: llama.cpp's DRY multiplier (0: off);
    presence/frequency: OpenAI's penalties; json_schema: constrain the answer to JSON ({}:
    any JSON); logprobs: the number of alternatives to return with each token's log
    probability (None: no log probabilities); ignore_eos: generate all max_tokens (vLLM's
    extra parameter, for benchmarks)."""

    repeat_penalty: float = 1.0
    dry: float = 0.0
    presence: float = 0.0
    frequency: float = 0.0
    json_schema: dict | None = None
    logprobs: int | None = None
    ignore_eos: bool = False


@dataclass
class Job:
    """One generation: its token ids and settings in; text, counts, log probabilities (when
    asked for) and why it ended out."""

    ids: list[int]
    sampling: Sampling
    stops: list[str]
    controls: Controls = field(default_factory=Controls)
    generated: int = 0
    finish_reason: str = "stop"
    cancel: threading.Event = field(default_factory=threading.Event)
    token_logprobs: list[dict] = field(default_factory=list)

    @property
    def prompt_tokens(self) -> int:
        return len(self.ids)


def _end_tokens(model: Any, tokenizer: Any) -> list[int]:
    """The ids that end a generation (the generation config's and the tokenizer's EOS)."""
    found = getattr(model.generation_config, "eos_token_id", None)
    ids = set(found if isinstance(found, list) else [found])
    ids.add(tokenizer.eos_token_id)
    return sorted(i for i in ids if i is not None)


class StopCutter:
    """A job's text as its pieces arrive, cut before the first stop string: each piece is
    held back only as far as a stop string could still begin in it. Counts tokens on the
    clock, sets the job's finish reason, and stops the job at a stop string."""

    def __init__(self, job: Job, clock: TokenClock | None) -> None:
        self.job, self.clock = job, clock
        self.hold = max((len(s) for s in job.stops), default=1) - 1
        self.text, self.sent, self.stopped = "", 0, False

    def feed(self, piece: str) -> str:
        """The text that may go out now, after this piece."""
        job = self.job
        if self.clock is not None:
            self.clock.token()
        self.text += piece
        start = max(0, self.sent - self.hold)
        hits = [i for i in (self.text.find(s, start) for s in job.stops) if i >= 0]
        if hits:
            cut = min(hits)
            out = self.text[self.sent : cut] if cut > self.sent else ""
            job.finish_reason, self.stopped = "stop", True
            job.cancel.set()
            return out
        safe = len(self.text) - self.hold
        if safe > self.sent:
            out, self.sent = self.text[self.sent : safe], safe
            return out
        return ""

    def finish(self) -> str:
        """What was held back, once generation ended without a stop string."""
        job = self.job
        job.finish_reason = "length" if job.generated >= job.sampling.max_new_tokens else "stop"
        rest, self.sent = self.text[self.sent :], len(self.text)
        return rest

    def done(self) -> None:
        if self.clock is not None:
            self.clock.done(self.job.prompt_tokens, self.job.generated, self.job.finish_reason)


class LanguageModel:
    """A causal LM generated by transformers in this process."""

    backend = "transformers"
    # OpenAI parameters beyond plain sampling this backend implements (the routes refuse
    # the others by name)
    features: frozenset[str] = frozenset()

    def __init__(self, name: str, model: Any, tokenizer: Any, defaults: dict, meta: dict) -> None:
        self.name, self.model, self.tokenizer = name, model, tokenizer
        self.defaults, self.meta = defaults, meta

    @classmethod
    def from_pyfunc(cls, name: str, pyfunc: Any) -> LanguageModel:
        """From a loaded causal-LM pyfunc (lm.pyfunc or the LoRA fine-tune's wrapper)."""
        from reprolab.core.train.setup import device

        inner = pyfunc.unwrap_python_model()
        meta = dict(getattr(inner, "meta", {}) or {})
        model = inner.model.to(device())  # a GPU when torch finds one
        return cls(name, model, inner.tokenizer, dict(inner.defaults), meta)

    # ------------------------------------------------------------ prompts

    @property
    def context(self) -> int | None:
        return context_length(self.model)

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        """The conversation in the tokenizer's chat template, ready for the assistant's turn;
        a model without a template gets `role: content` lines."""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        lines = [f"{m['role']}: {m['content']}" for m in messages]
        return "\n".join([*lines, "assistant:"])

    def render_instruction(self, instruction: str, input: str = "") -> str:
        """An instruction in the prompt template the model was fine-tuned with."""
        from reprolab.workloads.llm.instructions import PromptTemplate

        if "template" not in self.meta:
            raise GenerationError("instruction: this model has no prompt template; give a prompt")
        return PromptTemplate.from_dict(self.meta["template"]).render(instruction, input)

    def job(
        self,
        prompt: str,
        max_tokens: int | None,
        temperature: float | None,
        top_p: float | None,
        seed: int | None,
        stop: list[str] | None,
        where: str = "prompt",
        cap: int | None = None,
        controls: Controls | None = None,
    ) -> Job:
        """Check the prompt and settings now (GenerationError: a 4xx), before any streaming.
        `cap`: the most new tokens this server generates for one request."""
        if cap is not None and max_tokens is not None and max_tokens > cap:
            raise GenerationError(f"max_tokens: at most {cap} on this server, got {max_tokens}")
        if not prompt or not prompt.strip():
            raise GenerationError(f"{where}: empty (give some text to continue)")
        ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        if not ids:
            raise GenerationError(f"{where}: encodes to no tokens")
        limit = self.context
        room = None if limit is None else limit - len(ids)
        if room is not None and room < 1:
            raise GenerationError(
                f"{where}: too long, {len(ids)} tokens; the model's context is {limit} tokens"
            )
        if max_tokens is None:
            max_tokens = int(self.defaults.get("max_new_tokens", 64))
            if cap is not None:
                max_tokens = min(max_tokens, cap)
            if room is not None:
                max_tokens = min(max_tokens, room)
        elif room is not None and max_tokens > room:
            raise GenerationError(
                f"max_tokens: {len(ids)} prompt tokens + {max_tokens} exceed the model's context "
                f"of {limit} tokens (use at most {room})"
            )
        if temperature is None:
            temperature = float(self.defaults.get("temperature", 1.0))
        if temperature < GREEDY_BELOW:  # greedy, as vLLM does; the seed path needs it spelled 0
            temperature = 0.0
        sampling = Sampling(
            max_new_tokens=max_tokens,
            temperature=temperature,
            top_k=0,
            top_p=1.0 if top_p is None else top_p,
            seed=seed,
        )
        sampling.check()
        stops = [s for s in (stop or []) if s]
        return Job(ids=ids, sampling=sampling, stops=stops, controls=controls or Controls())

    # ------------------------------------------------------------ generating

    def stream(self, job: Job, clock: TokenClock | None = None) -> Iterator[str]:
        """Text pieces as they are generated, cut before the first stop string."""
        cutter = StopCutter(job, clock)
        pieces = self._pieces(job)
        for piece in pieces:
            out = cutter.feed(piece)
            if out:
                yield out
            if cutter.stopped:
                break
        else:
            rest = cutter.finish()
            if rest:
                yield rest
        pieces.close()  # stops the generating thread when a stop string ended early
        cutter.done()

    async def astream(self, job: Job, clock: TokenClock | None = None) -> AsyncIterator[str]:
        """`stream` for the event loop: generation runs in a worker thread."""
        from starlette.concurrency import iterate_in_threadpool

        async for piece in iterate_in_threadpool(self.stream(job, clock)):
            yield piece

    def _pieces(self, job: Job) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        from reprolab.lm.generation import _token_streamer

        streamer = _token_streamer(self.tokenizer)
        put = streamer.put
        calls = [0]

        def counted(value) -> None:  # the first call is the prompt, each later one a token
            calls[0] += 1
            if calls[0] > 1:
                job.generated += 1
            put(value)

        streamer.put = counted

        class Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                done = job.cancel.is_set()
                return torch.full((input_ids.shape[0],), done, dtype=torch.bool)

        sampling, penalty = job.sampling, job.controls.repeat_penalty
        seeded = sampling.temperature > 0 and sampling.seed is not None
        how = own_draws(sampling, penalty) if seeded else sampling.generate_kwargs()
        if penalty != 1.0 and not seeded:
            how["repetition_penalty"] = penalty
        if job.controls.ignore_eos:  # applied before this request's own draw
            how["suppress_tokens"] = _end_tokens(self.model, self.tokenizer)
        failure: list[BaseException] = []

        def work() -> None:
            try:
                input_ids = torch.tensor([job.ids], device=self.model.device)
                with torch.no_grad():
                    self.model.generate(
                        input_ids=input_ids,
                        attention_mask=torch.ones_like(input_ids),
                        streamer=streamer,
                        pad_token_id=self.tokenizer.pad_token_id,
                        stopping_criteria=StoppingCriteriaList([Cancelled()]),
                        **how,
                    )
            except BaseException as err:  # surfaced in the caller's thread below
                failure.append(err)
                streamer.end()

        thread = threading.Thread(target=work, daemon=True, name=f"generate-{self.name}")
        thread.start()
        try:
            yield from streamer
        finally:
            job.cancel.set()  # a consumer that stops early (stop string, client gone)
        thread.join()
        if failure:
            raise failure[0]

    def complete(self, job: Job, clock: TokenClock | None = None) -> str:
        return "".join(self.stream(job, clock))

    async def acomplete(self, job: Job, clock: TokenClock | None = None) -> str:
        """`complete` for the event loop: the whole generation in one worker thread."""
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(self.complete, job, clock)

    def close(self) -> None:
        """Nothing to stop: the model is freed with the last reference to it."""
