"""Params of the minit workload: Mini-T: a small decoder-only LM on Tiny Shakespeare. Each kind is
declared here once (its `kind` Literal, and `impl`: the module:class in this package that
implements it)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from reprolab.core.params import DatasetBase, ModelBase, PosInt, Width
from reprolab.core.train.setup import Device


class ShakespeareDataset(DatasetBase):
    """Tiny Shakespeare (karpathy/char-rnn) for language modelling: a tokenizer (character
    level, or byte-level BPE trained on the train split) and a contiguous train/valid split."""

    kind: Literal["shakespeare"]
    tokenizer: Literal["char", "bpe"] = "char"
    vocab_size: Annotated[int, Field(ge=260, le=65_535)] = 1024  # bpe only (bytes + merges)
    valid_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.1  # the last 10 % of the text
    limit: Annotated[int, Field(ge=1000)] | None = None  # first N characters, for quick runs


class MiniTParams(ModelBase):
    """Mini-T: a small decoder-only transformer (Hugging Face Llama or GPT-2 architecture)
    trained from scratch nanoGPT-style (see models/minit.py and docs/minit.md)."""

    kind: Literal["minit"]
    impl: ClassVar[str] = "model:MiniT"
    arch: Literal["mistral", "llama", "gpt2"] = "mistral"  # mistral: llama + sliding window
    n_layer: PosInt = 4
    n_embd: Width = 128
    n_head: PosInt = 4
    mlp_ratio: Annotated[float, Field(gt=0, le=16)] = 4.0  # llama: 2/3 of it (SwiGLU)
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    block_size: Annotated[int, Field(ge=8)] = 128  # context length in tokens
    batch_size: PosInt = 16
    lr: Annotated[float, Field(gt=0, le=1)] = 2e-3
    min_lr_ratio: Annotated[float, Field(ge=0, le=1)] = 0.1  # cosine floor, fraction of lr
    weight_decay: Annotated[float, Field(ge=0)] = 0.1
    beta2: Annotated[float, Field(gt=0, lt=1)] = 0.99
    grad_clip: Annotated[float, Field(ge=0)] = 1.0  # 0: no clipping
    warmup_steps: Annotated[int, Field(ge=0)] = 100
    max_steps: PosInt = 1500
    max_seconds: Annotated[float, Field(gt=0)] | None = None  # guard: a run it stops is cut short
    eval_every: PosInt = 100
    eval_batches: PosInt = 10
    log_every: PosInt = 50
    checkpoint_every: PosInt = 500  # steps; an interrupted run resumes from the last one
    checkpoint_dir: str = ".reprolab/checkpoints"  # per params+data hash; gone after a full run
    threads: PosInt | None = 2  # torch intra-op threads (None: torch's default)
    device: Device = "auto"  # auto: CUDA when usable; sampling and saving on the CPU
    deterministic: bool = True  # deterministic kernels, fixed threads, seeded RNGs
    sample_tokens: PosInt = 200  # generated after training for the report
    temperature: Annotated[float, Field(gt=0)] = 0.8  # sampling defaults saved with the model
    top_k: Annotated[int, Field(ge=0)] = 50

    @model_validator(mode="after")
    def _shapes(self) -> MiniTParams:
        if self.n_embd % self.n_head:
            raise ValueError(
                f"n_embd: must be a multiple of n_head = {self.n_head}, got {self.n_embd}"
            )
        if self.warmup_steps >= self.max_steps:
            raise ValueError(
                f"warmup_steps: must be < max_steps = {self.max_steps}, got {self.warmup_steps}"
            )
        return self


DATASETS = (ShakespeareDataset,)
MODELS = (MiniTParams,)
