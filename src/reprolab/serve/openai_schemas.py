"""The subset of OpenAI's completions and chat completions API the service implements, as
pydantic models (what the official `openai` client sends and reads). Parameters that would
change the answer but are not implemented (tools, logit bias, echo on chat; and on the
transformers backend log probabilities, JSON mode and the presence and frequency penalties)
are refused with a 400 naming them unless they hold the value that changes nothing: an agent
or an evaluation harness must not get plain text as if they had been applied. A backend
that implements some of them gets typed fields for those (`typed_fields`). Other unknown
fields (`user`, `metadata`) are ignored, as OpenAI does. `repetition_penalty` is vLLM's
extra parameter."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_TEXT = 100_000
MAX_CHOICES = 8  # `n`: completions generated for one request


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def json_int(**bounds: int) -> Any:
    """An integer as JSON Schema counts one (1.0 is the integer 1) within `bounds` (ge, le),
    in a strict model where a string or a boolean is still refused."""
    return Annotated[int, Field(**bounds), BeforeValidator(_integral)]


Stop = (
    Annotated[str, Field(max_length=256)]
    | Annotated[list[Annotated[str, Field(max_length=256)]], Field(max_length=4)]
)


class StreamOptions(BaseModel):
    model_config = ConfigDict(strict=True)

    include_usage: bool = False


# parameter -> the values that change nothing, and so are accepted
UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "logprobs": (None, False, 0),
    "top_logprobs": (None, 0),
    "echo": (None, False),
    "tools": (None, []),
    "tool_choice": (None, "none"),
    "functions": (None, []),
    "function_call": (None, "none"),
    "response_format": (None, {"type": "text"}),
    "presence_penalty": (None, 0),
    "frequency_penalty": (None, 0),
    "logit_bias": (None, {}),
    "best_of": (None, 1),
    "suffix": (None, ""),
}


# the parameters of UNSUPPORTED that a backend may implement (`typed_fields`)
BACKEND_PARAMS = frozenset(
    {"logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "response_format"}
)


def _refused(name: str) -> Any:
    """Any value in the model (the route refuses it by name), the neutral ones in the schema."""
    neutral = " or ".join(repr(v) for v in UNSUPPORTED[name] if v is not None)
    return Field(
        None,
        description=f"not supported: 400 unless left out or {neutral}",
        json_schema_extra={"enum": list(UNSUPPORTED[name])},
    )


def _neutral(value: Any, allowed: tuple[Any, ...]) -> bool:
    """`value` is one of `allowed` as JSON Schema's enum compares them: a boolean is not a
    number, 0.0 is 0."""
    for one in allowed:
        if isinstance(value, bool) or isinstance(one, bool):
            if isinstance(value, bool) and isinstance(one, bool) and value == one:
                return True
        elif type(value) in (int, float) and type(one) in (int, float):
            if value == one:
                return True
        elif value == one and type(value) is type(one):
            return True
    return False


class _Generation(BaseModel):
    # strict: no coercion (`0` is not a boolean, `"5"` not a number), as the schema states;
    # Python's regex engine, so a prompt's "some non-whitespace" is str.strip's
    model_config = ConfigDict(extra="ignore", strict=True, regex_engine="python-re")

    model: str
    max_tokens: json_int(ge=1, le=32_768) | None = None
    temperature: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)
    top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    seed: json_int(ge=0, le=2**53 - 1) | None = None  # JSON's exact integers
    stop: Stop | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: json_int(ge=1, le=MAX_CHOICES) = Field(  # type: ignore[valid-type]
        1, description="choices to generate; with a seed, choice i samples with seed + i"
    )
    repetition_penalty: float | None = Field(
        None,
        ge=0.5,  # a vanishing penalty multiplies logits without bound (NaN probabilities)
        le=2,
        allow_inf_nan=False,
        description="vLLM's, 0.5 to 2: above 1 makes repeated tokens less likely (chat's "
        "default is the server's; 1: off)",
    )
    ignore_eos: bool = Field(
        False, description="vLLM's: generate max_tokens tokens even past the end of the text"
    )
    logprobs: Any = _refused("logprobs")
    top_logprobs: Any = _refused("top_logprobs")
    echo: Any = _refused("echo")
    tools: Any = _refused("tools")
    tool_choice: Any = _refused("tool_choice")
    functions: Any = _refused("functions")
    function_call: Any = _refused("function_call")
    response_format: Any = _refused("response_format")
    presence_penalty: Any = _refused("presence_penalty")
    frequency_penalty: Any = _refused("frequency_penalty")
    logit_bias: Any = _refused("logit_bias")
    best_of: Any = _refused("best_of")
    suffix: Any = _refused("suffix")

    # parameters of UNSUPPORTED that this request kind does implement
    implemented: ClassVar[frozenset[str]] = frozenset()

    def unsupported(self, also: frozenset[str] = frozenset()) -> tuple[str, Any] | None:
        """The first parameter asked for that neither this request kind nor (`also`) the
        backend implements."""
        for name, neutral in UNSUPPORTED.items():
            if name in self.implemented or name in also:
                continue
            value = getattr(self, name)
            if not _neutral(value, neutral):
                return name, value
        return None

    def stops(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


class CompletionRequest(_Generation):
    implemented: ClassVar[frozenset[str]] = frozenset({"echo"})
    echo: bool = Field(False, description="return the prompt before each choice's text")
    prompt: (
        Annotated[str, Field(max_length=MAX_TEXT)]
        | Annotated[
            list[Annotated[str, Field(max_length=MAX_TEXT)]], Field(min_length=1, max_length=1)
        ]
    )

    def text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]


class TextPart(BaseModel):
    model_config = ConfigDict(strict=True)

    type: Literal["text"]
    text: Annotated[str, Field(max_length=MAX_TEXT)]


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    role: Literal["system", "developer", "user", "assistant"]
    content: Annotated[str, Field(max_length=MAX_TEXT)] | list[TextPart]

    def chars(self) -> int:
        """Its text's length, for the server's size limit (nothing is joined or copied)."""
        if isinstance(self.content, str):
            return len(self.content)
        return sum(len(part.text) for part in self.content)

    def plain(self) -> dict[str, str]:
        text = (
            self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)
        )
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class ChatCompletionRequest(_Generation):
    messages: list[Message] = Field(min_length=1, max_length=256)
    max_completion_tokens: json_int(ge=1, le=32_768) | None = None

    def limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class JsonSchemaSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)

    name: str = "answer"
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None

    def schema_or_none(self) -> dict[str, Any] | None:
        """The JSON schema the answer must follow ({}: any JSON), None for plain text."""
        if self.type == "text":
            return None
        if self.type == "json_object":
            return {"type": "object"}
        return dict(self.json_schema.schema_) if self.json_schema else {}


def typed_fields(chat: bool, features: frozenset[str]) -> dict[str, tuple]:
    """The fields of the parameters in UNSUPPORTED that `features` implements, typed as
    OpenAI types them, for a request model of a server whose backend has them."""
    out: dict[str, tuple] = {}
    if "logprobs" in features:
        if chat:
            about = "return each token's log probability"
            out["logprobs"] = (bool | None, Field(None, description=about))
            about = "with logprobs: the most likely alternatives per token"
            out["top_logprobs"] = (json_int(ge=0, le=20) | None, Field(None, description=about))
        else:
            about = "each token's log probability and this many alternatives"
            out["logprobs"] = (json_int(ge=0, le=5) | None, Field(None, description=about))
    for name in ("presence_penalty", "frequency_penalty"):
        if name in features:
            out[name] = (float | None, Field(None, ge=-2, le=2, allow_inf_nan=False))
    if "response_format" in features:
        about = "json_object or json_schema: the answer is JSON, by a grammar"
        out["response_format"] = (ResponseFormat | None, Field(None, description=about))
    return out


def prompt_field(text: int) -> tuple:
    """CompletionRequest.prompt with the server's longest text, for its schema: some
    character other than whitespace (the server refuses a blank prompt)."""
    one = Annotated[str, Field(min_length=1, max_length=text, pattern=r"\S")]
    return (one | Annotated[list[one], Field(min_length=1, max_length=1)], ...)


def tokens_field(cap: int) -> tuple:
    """max_tokens (or max_completion_tokens) with the server's cap, for its schema."""
    return (json_int(ge=1, le=cap) | None, Field(None, description=f"at most {cap} on this server"))


def messages_field(count: int, text: int, total: int) -> tuple:
    """ChatCompletionRequest.messages with the server's limits, for its schema; the total
    length of all messages is checked by the route (JSON Schema cannot state it)."""
    part = _sized(TextPart, text=(Annotated[str, Field(max_length=text)], ...))
    message = _sized(Message, content=(Annotated[str, Field(max_length=text)] | list[part], ...))
    field = Field(
        min_length=1,
        max_length=count,
        description=f"at most {count} messages of at most {total} characters in all",
    )
    return (list[message], field)


def _sized(base: type, **fields: tuple) -> type:
    from pydantic import create_model

    return create_model(base.__name__, __base__=base, **fields)


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: str
    logprobs: dict[str, Any] | None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "reprolab"
    version: str | None = None


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def chat_logprobs(asked: int | None, entries: list[dict]) -> dict | None:
    """OpenAI's chat `logprobs` of these tokens; None unless the request asked for them."""
    return None if asked is None else {"content": entries}


def text_logprobs(asked: int | None, entries: list[dict], offset: int) -> dict | None:
    """OpenAI's completions `logprobs` (tokens, token_logprobs, top_logprobs, text_offset)
    of these tokens, the first at character `offset` of the choice's text."""
    if asked is None:
        return None
    offsets = []
    for entry in entries:
        offsets.append(offset)
        offset += len(entry["token"])
    return {
        "tokens": [e["token"] for e in entries],
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": [{t["token"]: t["logprob"] for t in e["top_logprobs"]} for e in entries],
        "text_offset": offsets,
    }


def chunk(kind: str, rid: str, created: int, model: str, choice: dict | None, usage=None) -> dict:
    """One SSE chunk of a streamed completion ('text_completion') or chat completion."""
    body: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion.chunk" if kind == "chat" else "text_completion",
        "created": created,
        "model": model,
        "choices": [] if choice is None else [choice],
    }
    if usage is not None:
        body["usage"] = usage
    return body
