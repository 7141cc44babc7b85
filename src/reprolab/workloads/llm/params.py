"""Params of the llm workload: LoRA/QLoRA fine-tuning of an imported causal LM on instruction data.
Each kind is declared here once (its `kind` Literal, and `impl`: the module:class in this
package that implements it)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from reprolab.core.params import DatasetBase, Fraction, ModelBase, PosInt, Strict, split_problems

CODE_ALPACA_RECORDS = 2_015  # non-empty records of the pinned Code Alpaca 2k file

# what this workload's evaluate stage writes per split: the choices of registry.<task>.metric
METRICS = ("loss", "perplexity", "base_loss", "base_perplexity")


class AlpacaRecord(Strict):
    """A few-shot example in the Alpaca format."""

    instruction: str = Field(min_length=1)
    input: str = ""
    output: str = Field(min_length=1)


def _alpaca(key: str) -> str:
    from reprolab.workloads.llm.instructions import ALPACA

    return ALPACA[key]


class PromptTemplateParams(Strict):
    """The prompt a model continues: {instruction} and (with_input only) {input}."""

    with_input: str = Field(default_factory=lambda: _alpaca("with_input"))
    no_input: str = Field(default_factory=lambda: _alpaca("no_input"))

    @model_validator(mode="after")
    def _placeholders(self) -> PromptTemplateParams:
        from reprolab.workloads.llm.instructions import check_template

        problems = check_template(self.with_input, self.no_input)
        if problems:
            raise ValueError("\n".join(problems))
        return self


class InstructionsDataset(DatasetBase):
    """Instruction data for fine-tuning (reprolab.workloads.llm.data): Code Alpaca 2k and/or
    template-made synthetic MLOps/DevOps Q&A, rendered with `template` and `few_shot`."""

    kind: Literal["instructions"]
    code_alpaca: bool = True  # the Code Alpaca 2k records (CC BY-NC 4.0)
    sampling_rate: Fraction = 1.0  # share of Code Alpaca records kept, for quick runs
    synthetic: Annotated[int, Field(ge=0, le=100_000)] = 200  # synthetic MLOps Q&A records
    valid_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.1
    test_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.1
    template: PromptTemplateParams = PromptTemplateParams()
    few_shot: list[AlpacaRecord] = []  # examples rendered before every prompt

    @model_validator(mode="after")
    def _some_data(self) -> InstructionsDataset:
        if not self.code_alpaca and self.synthetic < 3:
            raise ValueError("synthetic: with code_alpaca false, need at least 3 records")
        if not self.code_alpaca or self.drop is not None:
            return self
        # the split as prepare makes it: one row at least in valid and test, the rest train
        alpaca = max(1, round(CODE_ALPACA_RECORDS * self.sampling_rate))
        total = alpaca + self.synthetic
        valid = max(1, round(total * self.valid_size))
        test = max(1, round(total * self.test_size))
        rows = {"train": total - valid - test, "valid": valid, "test": test}
        how = (
            f"{alpaca} of {CODE_ALPACA_RECORDS:,} Code Alpaca records at sampling_rate "
            f"{self.sampling_rate} + synthetic {self.synthetic}"
        )
        problems = split_problems("sampling_rate", rows, how, 1)
        if problems:
            raise ValueError("\n".join(problems))
        return self


class LlmImportParams(ModelBase):
    """A causal language model brought in from outside (imports section): `gguf` from a GGUF
    file, `hf_causal_lm` from a Hugging Face id or directory (models/llm_import.py)."""

    kind: Literal["gguf", "hf_causal_lm"]
    impl: ClassVar[str] = "importer:LlmImport"
    # package:<python package> | a .gguf file | a directory | a Hugging Face id
    source: str = Field(min_length=1)
    gguf_file: str | None = None  # which .gguf in the source directory, when several
    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"  # of the saved weights
    threads: PosInt | None = None  # torch threads (default: all cores up to 4)

    def outside_problems(self) -> list[str]:
        """The source must resolve here: an installed package (found, not imported), a
        .gguf file or a model directory, or a Hugging Face id (gguf_import.resolve)."""
        from reprolab.core.errors import DataError
        from reprolab.workloads.llm.gguf_import import resolve

        try:
            resolve(self.source, self.gguf_file)
        except DataError as err:
            return [f"source: {str(err).removeprefix('source ')}"]
        return []


DEFAULT_PROMPTS = [
    "Write a Python function that returns the largest of three numbers.",
    "How do I reproduce a DVC pipeline?",
    "Explain what a Docker image is in one sentence.",
]


class LoraParams(ModelBase):
    """LoRA / QLoRA supervised fine-tuning of a causal LM base (lora_model.py)."""

    kind: Literal["lora"]
    impl: ClassVar[str] = "lora_model:LoraFinetune"
    r: PosInt = 8
    alpha: Annotated[float, Field(gt=0)] = 16.0
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.05
    # module names, or {model_type: names} per architecture; null: the architecture's default
    target_modules: list[str] | dict[str, list[str]] | None = None
    # adapters in the top N blocks only (backward stops there: faster on CPU); null: all
    last_layers: PosInt | None = None
    quantization: Literal["none", "nf4"] = "none"  # nf4: QLoRA through bitsandbytes
    dtype: Literal["auto", "float32", "bfloat16"] = "auto"  # auto: bf16 on a bf16 GPU, else fp32
    lr: Annotated[float, Field(gt=0, le=1)] = 2e-4
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    warmup_steps: Annotated[int, Field(ge=0)] = 5
    batch_size: PosInt = 4
    grad_accum: PosInt = 1  # micro-batches per optimiser step
    max_steps: PosInt = 60
    max_length: Annotated[int, Field(ge=8, le=32_768)] = 256  # tokens of prompt + response
    eval_every: PosInt = 20
    eval_examples: PosInt = 64  # validation examples scored during training
    eval_batch_size: PosInt = 8
    merge: bool = True  # save the merged model (else the base copy + adapter)
    save_dtype: Literal["float32", "bfloat16"] = "bfloat16"  # of the merged weights
    prompts: list[str] = Field(default_factory=lambda: list(DEFAULT_PROMPTS))
    max_new_tokens: PosInt = 48
    threads: PosInt | None = None  # torch threads; None: 2 when deterministic
    deterministic: bool = True  # deterministic kernels, fixed threads, seeded RNGs

    @model_validator(mode="after")
    def _sane(self) -> LoraParams:
        problems = []
        if self.target_modules is not None and not self.target_modules:
            problems.append("target_modules: empty; null picks the architecture's default")
        if isinstance(self.target_modules, list) and any(not t for t in self.target_modules):
            problems.append("target_modules: empty module name")
        if any(not p.strip() for p in self.prompts):
            problems.append("prompts: empty prompt")
        if problems:
            raise ValueError("\n".join(problems))
        return self


DATASETS = (InstructionsDataset,)
MODELS = (
    LlmImportParams,
    LoraParams,
)
