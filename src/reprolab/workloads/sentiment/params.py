"""Params of the sentiment workload: NSMC sentiment: TF-IDF + logistic regression, a BERT
pretrained here and fine-tuned, their ensemble. Each kind is declared here once (its `kind`
Literal, and `impl`: the module:class in this package that implements it)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from reprolab.core.params import DatasetBase, Fraction, ModelBase, PosInt, Width
from reprolab.core.train.setup import Bf16, Device

# what this workload's evaluate stage writes per split: the choices of registry.<task>.metric
METRICS = ("accuracy", "f1", "precision", "recall", "roc_auc")


class NsmcDataset(DatasetBase):
    """NSMC Korean movie reviews (binary sentiment); see reprolab.workloads.sentiment.data."""

    kind: Literal["nsmc"]
    sampling_rate: Fraction = 1.0  # fraction of train and test, for quick runs
    max_length: PosInt = 300  # characters; longer documents (and predictor inputs) are cut
    valid_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.1
    label_names: list[str] = Field(default=["negative", "positive"], min_length=2, max_length=2)


class TfidfLogRegParams(ModelBase):
    """Character and word n-gram TF-IDF into logistic regression (text classification)."""

    kind: Literal["tfidf_logreg"]
    impl: ClassVar[str] = "tfidf_logreg:TfidfLogReg"
    char_ngrams: list[PosInt] = Field(default=[1, 4], min_length=2, max_length=2)
    word_ngrams: list[PosInt] = Field(default=[1, 2], min_length=2, max_length=2)
    hash_bits: Annotated[int, Field(ge=10, le=24)] = 20  # 2**bits hashed features per analyzer
    sublinear_tf: bool = True
    C: Annotated[float, Field(gt=0)] = 4.0
    max_iter: PosInt = 1000


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


class HFImportParams(ModelBase):
    """A base model brought in from the Hugging Face hub or a local path (models/hf_import.py):
    `from_pretrained(source)` then `save_pretrained`."""

    kind: Literal["hf"]
    impl: ClassVar[str] = "hf_import:HFImport"
    source: str  # e.g. beomi/kcbert-base, or a local directory
    revision: str | None = None  # a commit hash pins a hub model


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
    BertMLMParams,
    HFClassifierParams,
    HFImportParams,
    ProbAverageParams,
)
