"""llm-sft: a prompt (or an instruction, rendered in the fine-tune's template) → text. The
same model answers the OpenAI-compatible routes under the task's name."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, model_validator

from reprolab.serve.lm_engine import LanguageModel
from reprolab.serve.lm_loader import load_lm
from reprolab.serve.openai_schemas import json_int
from reprolab.serve.tasks import Served, Strict

MAX_PROMPT = 100_000  # characters; the model's context decides the real limit
Text = Annotated[str, Field(max_length=MAX_PROMPT)]
# some character other than whitespace (as str.strip sees it: Python's regex engine)
NonBlank = Annotated[str, Field(min_length=1, max_length=MAX_PROMPT, pattern=r"\S")]


class Sampling(Strict):
    max_tokens: json_int(ge=1, le=32_768) | None = None
    temperature: float | None = Field(None, ge=0, le=2, allow_inf_nan=False)
    top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    seed: json_int(ge=0, le=2**53 - 1) | None = None  # JSON's exact integers
    stop: list[Annotated[str, Field(max_length=256)]] | None = Field(None, max_length=4)


class LlmRequest(Sampling):
    # the schema's form of `_one_prompt`; neither field takes null
    model_config = ConfigDict(
        regex_engine="python-re",
        json_schema_extra={"oneOf": [{"required": ["prompt"]}, {"required": ["instruction"]}]},
    )
    prompt: NonBlank = Field(None, description="raw text to continue")  # type: ignore[assignment]
    instruction: Text = Field(  # type: ignore[assignment]
        None, description="an instruction, in the model's template"
    )
    input: Text = Field("", description="context for the instruction")

    @model_validator(mode="after")
    def _one_prompt(self) -> LlmRequest:
        if (self.prompt is None) == (self.instruction is None):
            raise ValueError("give exactly one of prompt and instruction")
        return self


class Usage(Strict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class LlmResponse(Served):
    text: str
    finish_reason: str
    usage: Usage


class LlmAdapter:
    Request = LlmRequest
    Response = LlmResponse

    def __init__(self, task: str, settings: Any) -> None:
        from pydantic import create_model

        self.task, self.settings = task, settings
        self.cap = cap = settings.max_tokens
        limit = Field(None, description=f"at most {cap} on this server")
        self.Request = create_model(
            "LlmRequest", __base__=LlmRequest, max_tokens=(json_int(ge=1, le=cap) | None, limit)
        )

    def load(self, uri: str) -> LanguageModel:
        return load_lm(self.task, uri, self.settings)

    def predict(self, model: LanguageModel, request: LlmRequest) -> dict[str, Any]:
        if request.instruction is not None:
            prompt = model.render_instruction(request.instruction, request.input)
            where = "instruction"
        else:
            prompt, where = request.prompt or "", "prompt"
        job = model.job(
            prompt,
            request.max_tokens,
            request.temperature,
            request.top_p,
            request.seed,
            request.stop,
            where,
            self.cap,
        )
        text = model.complete(job)
        usage = {
            "prompt_tokens": job.prompt_tokens,
            "completion_tokens": job.generated,
            "total_tokens": job.prompt_tokens + job.generated,
        }
        return {"text": text, "finish_reason": job.finish_reason, "usage": usage}


def adapter(task: str, params: Any, settings: Any) -> LlmAdapter:
    return LlmAdapter(task, settings)
