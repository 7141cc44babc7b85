"""Params of the sentiment workload: NSMC sentiment: TF-IDF + logistic regression, NB-LR over
character, word and morpheme n-grams, a BERT pretrained here and fine-tuned, ensembles. Each
kind is declared here once (its `kind` Literal, and `impl`: the module:class in this package
that implements it)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from reprolab.core.params import (
    MIN_SPLIT_ROWS,
    DatasetBase,
    Footprint,
    Fraction,
    ModelBase,
    PosInt,
    Width,
    range_problems,
    split_problems,
)
from reprolab.core.train.setup import Bf16, Device

# what this workload's evaluate stage writes per split: the choices of registry.<task>.metric
METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")
# the rows of the pinned files (reprolab.workloads.sentiment.data): what sampling_rate slices
TRAIN_ROWS, TEST_ROWS = 150_000, 48_000


class NsmcDataset(DatasetBase):
    """NSMC Korean movie reviews (binary sentiment); see reprolab.workloads.sentiment.data."""

    kind: Literal["nsmc"]
    sampling_rate: Fraction = 1.0  # fraction of train and test, for quick runs
    max_length: PosInt = 300  # characters; longer documents (and predictor inputs) are cut
    valid_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.1
    label_names: list[str] = Field(default=["negative", "positive"], min_length=2, max_length=2)

    @model_validator(mode="after")
    def _enough_rows(self) -> NsmcDataset:
        """A tiny sampling_rate would leave splits too small to stratify or score; found
        here from the pinned files' sizes (a data drop's size is not known in advance)."""
        if self.drop is not None:
            return self
        train_all = TRAIN_ROWS * self.sampling_rate
        rows = {
            "train": train_all * (1 - self.valid_size),
            "valid": train_all * self.valid_size,
            "test": TEST_ROWS * self.sampling_rate,
        }
        how = f"{TRAIN_ROWS:,} train and {TEST_ROWS:,} test reviews x {self.sampling_rate}"
        problems = split_problems("sampling_rate", rows, how, MIN_SPLIT_ROWS)
        if problems:
            raise ValueError("\n".join(problems))
        return self


class TfidfLogRegParams(ModelBase):
    """Character and word n-gram TF-IDF into logistic regression (text classification)."""

    kind: Literal["tfidf_logreg"]
    impl: ClassVar[str] = "tfidf_logreg:TfidfLogReg"
    char_ngrams: list[PosInt] = Field(default=[1, 4], min_length=2, max_length=2)
    word_ngrams: list[PosInt] = Field(default=[1, 2], min_length=2, max_length=2)
    hash_bits: Annotated[int, Field(ge=10, le=24)] = 20  # 2**bits hashed features per analyzer
    sublinear_tf: bool = True
    morphemes: bool = False  # also n-grams of Kiwi morphemes, with and without tags
    morph_ngrams: list[PosInt] = Field(default=[1, 3], min_length=2, max_length=2)
    C: Annotated[float, Field(gt=0)] = 4.0
    max_iter: PosInt = 1000

    @model_validator(mode="after")
    def _ranges(self) -> TfidfLogRegParams:
        problems = range_problems("char_ngrams", self.char_ngrams)
        problems += range_problems("word_ngrams", self.word_ngrams)
        problems += range_problems("morph_ngrams", self.morph_ngrams)
        if problems:
            raise ValueError("\n".join(problems))
        return self


class NbLogRegParams(ModelBase):
    """NB-LR: binary character, word and morpheme n-grams scaled by their naive-Bayes
    log-count ratio, into logistic regression (reprolab.workloads.sentiment.nb_logreg)."""

    kind: Literal["nb_logreg"]
    impl: ClassVar[str] = "nb_logreg:NbLogReg"
    char_ngrams: list[PosInt] = Field(default=[1, 4], min_length=2, max_length=2)
    word_ngrams: list[PosInt] = Field(default=[1, 2], min_length=2, max_length=2)
    morph_ngrams: list[PosInt] = Field(default=[1, 3], min_length=2, max_length=2)
    hash_bits: Annotated[int, Field(ge=10, le=24)] = 21  # 2**bits hashed features per view
    alpha: Annotated[float, Field(gt=0)] = 0.5  # smoothing of the n-gram counts in the ratio
    C: Annotated[float, Field(gt=0)] = 0.1
    max_iter: PosInt = 1000

    @model_validator(mode="after")
    def _ranges(self) -> NbLogRegParams:
        problems = range_problems("char_ngrams", self.char_ngrams)
        problems += range_problems("word_ngrams", self.word_ngrams)
        problems += range_problems("morph_ngrams", self.morph_ngrams)
        if problems:
            raise ValueError("\n".join(problems))
        return self


def _encoder(h: int, layers: int, inner: int, vocab: int, positions: int) -> int:
    """Weights of a BERT encoder (embeddings, layers), as transformers builds it."""
    embeddings = (vocab + positions + 2) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h * inner + inner + h + 4 * h
    return embeddings + layers * layer


def _encoder_activations(p: Any, h: int, layers: int, heads: int, inner: int, length: int) -> float:
    """float32 activations a training step keeps: per token and layer ~12 maps of the
    hidden size and 3 of the intermediate one, plus the attention matrices."""
    tokens = p.batch_size * length
    return (
        tokens * layers * (12 * h + 3 * inner) + p.batch_size * heads * length**2 * layers * 3
    ) * 4


class BertMLMParams(ModelBase):
    """A small BERT pretrained with masked-language modelling on a dataset's texts, with its
    own WordPiece tokenizer (models/bert_mlm.py); writes a standard HF model directory."""

    kind: Literal["bert_mlm"]
    impl: ClassVar[str] = "bert_mlm:BertMLM"
    vocab_size: Annotated[int, Field(ge=100)] = 8000
    min_frequency: PosInt = 2
    lowercase: bool = False
    max_length: Annotated[int, Field(ge=8, le=512)] = 64  # tokens, [CLS] and [SEP] included
    hidden_size: Width = 256
    num_layers: PosInt = 2
    num_heads: PosInt = 4
    intermediate_size: Width = 1024
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    mask_prob: Annotated[float, Field(gt=0, lt=1)] = 0.15
    batch_size: PosInt = 128
    lr: Annotated[float, Field(gt=0, le=1)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    warmup_steps: Annotated[int, Field(ge=0)] = 200
    max_steps: PosInt = 3000
    max_grad_norm: Annotated[float, Field(gt=0)] = 1.0
    eval_every: PosInt = 250  # steps between valid MLM losses (curves)
    eval_rows: PosInt = 2000  # valid texts the MLM loss is measured on
    checkpoint_every: PosInt = 250  # steps between resumable checkpoints
    bf16: Bf16 = False  # auto: where native (faster; weights then vary by CPU)
    threads: PosInt | None = 1  # torch intra-op threads (1: see docs/sentiment.md); null: all
    device: Device = "auto"  # auto: CUDA when usable; the saved model runs on the CPU
    deterministic: bool = True  # deterministic kernels, fixed threads, seeded RNGs
    max_seconds: Annotated[float, Field(gt=0)] | None = None  # guard: a run it stops is cut short

    def footprint(self, dataset: Any, base: Any) -> Footprint:
        h, n = self.hidden_size, self.num_layers
        weights = _encoder(h, n, self.intermediate_size, self.vocab_size, self.max_length)
        weights += h * h + 3 * h + self.vocab_size  # the MLM head (its decoder is tied)
        logits = self.batch_size * self.max_length * self.vocab_size * 2 * 4
        activations = _encoder_activations(
            self, h, n, self.num_heads, self.intermediate_size, self.max_length
        )
        return Footprint(
            weights,
            activations + logits,
            f"hidden_size {h}, num_layers {n}, intermediate_size {self.intermediate_size}, "
            f"vocab_size {self.vocab_size}, batch_size {self.batch_size} x max_length "
            f"{self.max_length}",
        )

    @model_validator(mode="after")
    def _heads(self) -> BertMLMParams:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size: must be a multiple of num_heads ({self.num_heads}), "
                f"got {self.hidden_size}"
            )
        return self


class HFClassifierParams(ModelBase):
    """A BERT-family encoder fine-tuned for sequence classification (models/hf_classifier.py)
    from `base`: a pretrain/imports entry (its models/<base> directory)."""

    kind: Literal["hf_classifier"]
    impl: ClassVar[str] = "hf_classifier:HFClassifier"
    max_length: Annotated[int, Field(ge=8, le=512)] = 64  # tokens
    unfrozen_layers: Annotated[int, Field(ge=0)] | None = None  # top N layers + head; null: all
    batch_size: PosInt = 32
    eval_batch_size: PosInt = 256
    lr: Annotated[float, Field(gt=0, le=1)] = 3e-4
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    epochs: PosInt = 2
    max_steps: PosInt | None = None  # a cap on epochs * batches
    warmup_ratio: Annotated[float, Field(ge=0, lt=1)] = 0.06
    max_grad_norm: Annotated[float, Field(gt=0)] = 1.0
    eval_every: PosInt = 500  # steps between valid accuracies (early stopping counts these)
    patience: PosInt = 3
    checkpoint_every: PosInt = 500
    classifier_dropout: Annotated[float, Field(ge=0, lt=1)] | None = None  # null: the base's
    bf16: Bf16 = False  # auto: where native (faster; weights then vary by CPU)
    threads: PosInt | None = 1
    device: Device = "auto"  # auto: CUDA when usable; the saved model predicts on the CPU
    deterministic: bool = True  # deterministic kernels, fixed threads, seeded RNGs
    max_seconds: Annotated[float, Field(gt=0)] | None = None  # guard: a run it stops is cut short

    def footprint(self, dataset: Any, base: Any) -> Footprint | None:
        """Known when the base is pretrained here (an imported one's size is not in params)."""
        if not isinstance(base, BertMLMParams):
            return None
        h, n, inner = base.hidden_size, base.num_layers, base.intermediate_size
        weights = _encoder(h, n, inner, base.vocab_size, base.max_length) + h * h + 3 * h
        return Footprint(
            weights,
            _encoder_activations(self, h, n, base.num_heads, inner, self.max_length),
            f"base {self.base}: hidden_size {h}, num_layers {n}; batch_size "
            f"{self.batch_size} x max_length {self.max_length}",
        )


class HFImportParams(ModelBase):
    """A base model brought in from the Hugging Face hub or a local path (models/hf_import.py):
    `from_pretrained(source)` then `save_pretrained`."""

    kind: Literal["hf"]
    impl: ClassVar[str] = "hf_import:HFImport"
    source: str  # e.g. beomi/kcbert-base, or a local directory
    revision: str | None = None  # a commit hash pins a hub model

    def outside_problems(self) -> list[str]:
        """A local directory must exist (a hub id is only fetched by the import)."""
        text = self.source.strip()
        local = text.startswith((".", "/", "~")) or text.count("/") != 1
        if local and not Path(text).expanduser().is_dir():
            return [
                f"source: {text!r}: no such directory (expected a model directory or a "
                "Hugging Face id owner/name)"
            ]
        return []


class ProbAverageParams(ModelBase):
    """Weighted average of two members' class probabilities (models/ensemble.py); the weight
    of the first member is chosen on the valid split unless given."""

    kind: Literal["prob_average"]
    impl: ClassVar[str] = "ensemble:ProbAverage"
    members: list[str] = Field(min_length=2, max_length=2)
    weight: Annotated[float, Field(ge=0, le=1)] | None = None  # null: best on valid
    grid_step: Annotated[float, Field(gt=0, le=0.5)] = 0.05


DATASETS = (NsmcDataset,)
MODELS = (
    TfidfLogRegParams,
    NbLogRegParams,
    BertMLMParams,
    HFClassifierParams,
    HFImportParams,
    ProbAverageParams,
)
