"""Params of the minit workload: Mini-T: a small decoder-only LM on Tiny Shakespeare. Each kind is
declared here once (its `kind` Literal, and `impl`: the module:class in this package that
implements it)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from reprolab.core.params import DatasetBase, Footprint, ModelBase, PosInt, Width
from reprolab.core.train.setup import Device

CORPUS_CHARS = 1_115_394  # Tiny Shakespeare, the pinned input.txt
CHAR_VOCAB = 67  # its 65 distinct characters and 2 specials: the char tokenizer
# a byte-level BPE of at most 65,535 tokens averages well under 8 characters per token on
# English prose: a bound that refuses only a context no split can fill
BPE_MAX_CHARS_PER_TOKEN = 8


class ShakespeareDataset(DatasetBase):
    """Tiny Shakespeare (karpathy/char-rnn) for language modelling: a tokenizer (character
    level, or byte-level BPE trained on the train split) and a contiguous train/valid split."""

    kind: Literal["shakespeare"]
    tokenizer: Literal["char", "bpe"] = "char"
    vocab_size: Annotated[int, Field(ge=260, le=65_535)] = 1024  # bpe only (bytes + merges)
    valid_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.1  # the last 10 % of the text
    limit: Annotated[int, Field(ge=1000)] | None = None  # first N characters, for quick runs

    def valid_tokens(self) -> int:
        """At least this many tokens in the valid split (from the pinned corpus' size)."""
        chars = min(self.limit or CORPUS_CHARS, CORPUS_CHARS) * self.valid_size
        per_token = 1 if self.tokenizer == "char" else BPE_MAX_CHARS_PER_TOKEN
        return int(chars / per_token)

    def vocabulary(self) -> int:
        return CHAR_VOCAB if self.tokenizer == "char" else self.vocab_size


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

    def data_problems(self, dataset: Any) -> list[str]:
        """A window of block_size + 2 tokens must fit the valid split (training.Windows)."""
        if dataset.drop is not None or not hasattr(dataset, "valid_tokens"):
            return []
        tokens = dataset.valid_tokens()
        if self.block_size + 2 <= tokens:
            return []
        return [
            f"block_size: {self.block_size} tokens do not fit the valid split of dataset "
            f"{self.dataset!r} (about {tokens:,} {dataset.tokenizer} tokens: valid_size "
            f"{dataset.valid_size} of {dataset.limit or 'all'} characters), expected <= "
            f"{tokens - 2}"
        ]

    def footprint(self, dataset: Any, base: Any) -> Footprint:
        """architecture.config's model: tied embeddings, attention and a (SwiGLU) MLP."""
        e, n, vocab = self.n_embd, self.n_layer, CHAR_VOCAB
        if dataset is not None and hasattr(dataset, "vocabulary"):
            vocab = dataset.vocabulary()
        if self.arch == "gpt2":
            inner = int(self.mlp_ratio * e)
            layer = 4 * e * e + 2 * e * inner + 9 * e + inner
            weights = (vocab + self.block_size) * e + n * layer + 2 * e
        else:
            inner = max(8, round(self.mlp_ratio * e * 2 / 3 / 8) * 8)
            weights = vocab * e + n * (4 * e * e + 3 * e * inner + 2 * e) + e
        tokens = self.batch_size * self.block_size
        activations = tokens * n * (12 * e + 3 * inner) + tokens * vocab * 2
        activations += self.batch_size * self.n_head * self.block_size**2 * n * 3
        return Footprint(
            weights,
            activations * 4,
            f"n_layer {n}, n_embd {e}, vocabulary {vocab}, batch_size {self.batch_size} x "
            f"block_size {self.block_size}",
        )

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
