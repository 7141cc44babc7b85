"""The schema of params.yaml. `load_params()` validates the whole file before any compute and
turns pydantic's errors into one line per bad key: `models.wine-rf.n_estimators: must be > 0,
got -5`. Unknown keys are errors, never silently ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reprolab.errors import ParamsError

PosInt = Annotated[int, Field(gt=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- datasets


class WineDataset(Strict):
    """UCI Wine Quality, red and white, as one regression set with a `color` feature."""

    kind: Literal["wine"]
    colors: list[Literal["red", "white"]] = Field(default=["red", "white"], min_length=1)
    drop_duplicates: bool = True
    valid_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.15
    test_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.2
    sample_fraction: Fraction = 1.0


class NsmcDataset(Strict):
    """NSMC Korean movie reviews (binary sentiment); see reprolab.data.nsmc."""

    kind: Literal["nsmc"]
    sampling_rate: Fraction = 1.0  # fraction of train and test, for quick runs
    max_length: PosInt = 300  # characters; longer documents (and predictor inputs) are cut
    valid_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.1
    label_names: list[str] = Field(default=["negative", "positive"], min_length=2, max_length=2)


Range = tuple[float, float]


class ControlDataset(Strict):
    """Simulated plants for PID tuning: a mix of first order plus dead time (fopdt), second
    order under-damped with dead time (sopdt) and integrating (integrator + lag) plants,
    drawn from the ranges below by seed and split into train/valid/test plants."""

    kind: Literal["control"]
    n_plants: Annotated[int, Field(ge=10)] = 200
    mix: dict[Literal["fopdt", "sopdt", "integrating"], Annotated[float, Field(ge=0)]] = {
        "fopdt": 0.4,
        "sopdt": 0.3,
        "integrating": 0.3,
    }
    gain: Range = (0.5, 3.0)
    time_constant: Range = (1.0, 6.0)
    delay: Range = (0.2, 2.0)
    damping: Range = (0.3, 0.8)
    natural_frequency: Range = (0.4, 1.5)
    noise_std: Annotated[float, Field(ge=0)] = 0.01
    disturbance: float = 0.5  # load step added to the plant input ...
    disturbance_time: Annotated[float, Field(gt=0)] = 30.0  # ... at this time (s)
    dt: Annotated[float, Field(gt=0)] = 0.2
    horizon: Annotated[float, Field(gt=0)] = 60.0
    u_limit: Annotated[float, Field(gt=0)] = 10.0  # actuator saturation at ±u_limit
    valid_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.15
    test_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.25

    @model_validator(mode="after")
    def _sane(self) -> ControlDataset:
        problems = []
        for key in ("gain", "time_constant", "delay", "damping", "natural_frequency"):
            low, high = getattr(self, key)
            if low <= 0:
                problems.append(f"{key}: must be > 0, got {low}")
            if low > high:
                problems.append(f"{key}: low {low} > high {high}")
        if self.damping[1] >= 1:
            problems.append(f"damping: must be < 1 (under-damped), got {self.damping[1]}")
        if self.delay[1] >= self.disturbance_time:
            problems.append(
                f"delay: {self.delay[1]} is not shorter than the setpoint phase "
                f"(disturbance_time {self.disturbance_time})"
            )
        if self.disturbance_time >= self.horizon:
            problems.append(
                f"disturbance_time: {self.disturbance_time} must be < horizon {self.horizon}"
            )
        if self.horizon / self.dt > 5000:
            problems.append(f"horizon: {self.horizon / self.dt:.0f} steps, at most 5000")
        if not sum(self.mix.values()) > 0:
            problems.append("mix: at least one plant type needs a positive weight")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class NucleiDataset(Strict):
    """BBBC038 nuclei: image/mask pairs, split by seed into train/valid/test."""

    kind: Literal["nuclei"]
    valid_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.15
    test_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.2
    limit: Annotated[int, Field(ge=6)] | None = None  # a random subset, for quick runs


class ShakespeareDataset(Strict):
    """Tiny Shakespeare (karpathy/char-rnn) for language modelling: a tokenizer (character
    level, or byte-level BPE trained on the train split) and a contiguous train/valid split."""

    kind: Literal["shakespeare"]
    tokenizer: Literal["char", "bpe"] = "char"
    vocab_size: Annotated[int, Field(ge=260, le=65_535)] = 1024  # bpe only (bytes + merges)
    valid_size: Annotated[float, Field(gt=0, lt=0.5)] = 0.1  # the last 10 % of the text
    limit: Annotated[int, Field(ge=1000)] | None = None  # first N characters, for quick runs


class AlpacaRecord(Strict):
    """A few-shot example in the Alpaca format."""

    instruction: str = Field(min_length=1)
    input: str = ""
    output: str = Field(min_length=1)


def _alpaca(key: str) -> str:
    from reprolab.llm.instructions import ALPACA

    return ALPACA[key]


class PromptTemplateParams(Strict):
    """The prompt a model continues: {instruction} and (with_input only) {input}."""

    with_input: str = Field(default_factory=lambda: _alpaca("with_input"))
    no_input: str = Field(default_factory=lambda: _alpaca("no_input"))

    @model_validator(mode="after")
    def _placeholders(self) -> PromptTemplateParams:
        from reprolab.llm.instructions import check_template

        problems = check_template(self.with_input, self.no_input)
        if problems:
            raise ValueError("\n".join(problems))
        return self


class InstructionsDataset(Strict):
    """Instruction data for fine-tuning (reprolab.data.instructions): Code Alpaca 2k and/or
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
        return self


DatasetParams = Annotated[
    WineDataset
    | NsmcDataset
    | NucleiDataset
    | ControlDataset
    | ShakespeareDataset
    | InstructionsDataset,
    Field(discriminator="kind"),
]


# ---------------------------------------------------------------- models


class ModelBase(Strict):
    """Routing keys every model has. Which are required depends on the section the model sits
    in (see MODEL_SECTIONS): `models` and `finetune` need a dataset and a task, `pretrain` a
    dataset, `imports` neither; only `finetune` models start from a `base`."""

    dataset: str | None = None
    task: str | None = None
    base: str | None = (
        None  # finetune: the pretrain/imports entry whose models/<base> it starts from
    )
    use_hpo: bool = False  # train with the best params of hpo@<model> (reports/hpo/)


class RidgeParams(ModelBase):
    kind: Literal["ridge"]
    alpha: Annotated[float, Field(ge=0)] = 1.0


class RandomForestParams(ModelBase):
    kind: Literal["random_forest"]
    n_estimators: PosInt = 300
    max_depth: PosInt | None = None
    min_samples_leaf: PosInt = 1
    max_features: Fraction | Literal["sqrt", "log2"] | None = 1.0
    n_jobs: int = -1


class HistGradientBoostingParams(ModelBase):
    kind: Literal["hist_gradient_boosting"]
    learning_rate: Annotated[float, Field(gt=0, le=1)] = 0.05
    max_iter: PosInt = 500
    max_leaf_nodes: Annotated[int, Field(ge=2)] = 31
    min_samples_leaf: PosInt = 20
    l2_regularization: Annotated[float, Field(ge=0)] = 0.0
    max_features: Fraction = 1.0  # share of features tried at each split (1: all)
    early_stopping: bool = True


class TorchMLPParams(ModelBase):
    kind: Literal["torch_mlp"]
    hidden: list[PosInt] = Field(default=[64, 64], min_length=1)
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.1
    lr: Annotated[float, Field(gt=0, le=1)] = 1e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    batch_size: PosInt = 64
    max_epochs: PosInt = 200
    patience: PosInt = 20


class TfidfLogRegParams(ModelBase):
    """Character and word n-gram TF-IDF into logistic regression (text classification)."""

    kind: Literal["tfidf_logreg"]
    char_ngrams: list[PosInt] = Field(default=[1, 4], min_length=2, max_length=2)
    word_ngrams: list[PosInt] = Field(default=[1, 2], min_length=2, max_length=2)
    hash_bits: Annotated[int, Field(ge=10, le=24)] = 20  # 2**bits hashed features per analyzer
    sublinear_tf: bool = True
    C: Annotated[float, Field(gt=0)] = 4.0
    max_iter: PosInt = 1000


class PIDNetParams(ModelBase):
    """A small network: step-test features -> PID gains, trained through the simulation."""

    kind: Literal["pidnet"]
    hidden: list[PosInt] = Field(default=[32, 32], min_length=1)
    lr: Annotated[float, Field(gt=0, le=1)] = 0.01
    epochs: PosInt = 150
    batch_size: PosInt = 32
    overshoot_weight: Annotated[float, Field(ge=0)] = 2.0
    effort_weight: Annotated[float, Field(ge=0)] = 0.002
    patience: PosInt = 40


class UNetParams(ModelBase):
    """U-Net for binary segmentation, trained on random crops (see models/unet.py)."""

    kind: Literal["unet"]
    depth: Annotated[int, Field(ge=1, le=6)] = 4
    base_width: PosInt = 16
    norm: Literal["batch", "group", "none"] = "batch"
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0
    crop_size: Annotated[int, Field(ge=16)] = 128
    batch_size: PosInt = 8
    lr: Annotated[float, Field(gt=0, le=1)] = 2e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-4
    schedule: Literal["cosine", "constant"] = "cosine"
    warmup_steps: Annotated[int, Field(ge=0)] = 100
    max_steps: PosInt = 3000
    eval_every: PosInt = 150
    patience: PosInt = 6  # evaluations without a better valid Dice before stopping
    bce_weight: Annotated[float, Field(ge=0, le=1)] = 0.5  # loss = w*BCE + (1-w)*Dice
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    standardize: bool = True  # per-image standardisation of the input
    color_jitter: Annotated[float, Field(ge=0, lt=1)] = 0.0  # random per-channel gain/offset
    stain: bool = False  # light-background images -> hematoxylin optical density (H&E-aware)
    stain_channels: Literal["h", "hed"] = "h"  # stain densities fed: H x3, or H, E and DAB
    sample_balance: Annotated[float, Field(ge=0, le=1)] = 0.0  # draw rare modalities more often
    ema: Annotated[float, Field(ge=0, lt=1)] = 0.0  # weight averaging decay (0: off)
    scale_jitter: Annotated[float, Field(ge=0, le=1)] = 0.0  # crops rescaled by up to 1 + s
    bf16: bool = True  # bf16 autocast (oneDNN AVX512-BF16 on CPU)
    channels_last: bool = True
    tile_size: Annotated[int, Field(ge=32)] = 512  # larger images are predicted in tiles
    tile_overlap: Annotated[int, Field(ge=0)] = 64
    tta: bool = False  # predict as the mean over the 8 flips/rotations (8x prediction time)

    @model_validator(mode="after")
    def _shapes(self) -> UNetParams:
        step = 2**self.depth
        problems = [
            f"{key}: must be a multiple of 2**depth = {step}, got {value}"
            for key, value in (("crop_size", self.crop_size), ("tile_size", self.tile_size))
            if value % step
        ]
        if self.tile_overlap * 2 >= self.tile_size:
            problems.append(f"tile_overlap: must be < tile_size / 2, got {self.tile_overlap}")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class BertMLMParams(ModelBase):
    """A small BERT pretrained with masked-language modelling on a dataset's texts, with its
    own WordPiece tokenizer (models/bert_mlm.py); writes a standard HF model directory."""

    kind: Literal["bert_mlm"]
    vocab_size: Annotated[int, Field(ge=100)] = 8000
    min_frequency: PosInt = 2
    lowercase: bool = False
    max_length: Annotated[int, Field(ge=8, le=512)] = 64  # tokens, [CLS] and [SEP] included
    hidden_size: PosInt = 256
    num_layers: PosInt = 2
    num_heads: PosInt = 4
    intermediate_size: PosInt = 1024
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
    bf16: bool = True  # bf16 autocast (AMX / AVX512-BF16 CPUs: ~1.3-1.4x here)
    num_threads: PosInt | None = 1  # torch intra-op threads (1: see docs/sentiment.md); null: all

    @model_validator(mode="after")
    def _heads(self) -> BertMLMParams:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size: must be a multiple of num_heads ({self.num_heads}), "
                f"got {self.hidden_size}"
            )
        return self


class MiniTParams(ModelBase):
    """Mini-T: a small decoder-only transformer (Hugging Face Llama or GPT-2 architecture)
    trained from scratch nanoGPT-style (see models/minit.py and docs/minit.md)."""

    kind: Literal["minit"]
    arch: Literal["mistral", "llama", "gpt2"] = "mistral"  # mistral: llama + sliding window
    n_layer: PosInt = 4
    n_embd: PosInt = 128
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
    max_seconds: Annotated[float, Field(gt=0)] | None = 300  # time budget (cosine decays over it)
    eval_every: PosInt = 100
    eval_batches: PosInt = 10
    log_every: PosInt = 50
    checkpoint_every: PosInt = 500  # steps; an interrupted run resumes from the last one
    checkpoint_dir: str = ".reprolab/checkpoints"  # per params+data hash; gone after a full run
    threads: PosInt | None = 2  # torch intra-op threads (None: torch's default)
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


class HFClassifierParams(ModelBase):
    """A BERT-family encoder fine-tuned for sequence classification (models/hf_classifier.py)
    from `base`: a pretrain/imports entry (its models/<base> directory)."""

    kind: Literal["hf_classifier"]
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
    bf16: bool = True  # bf16 autocast in training and prediction
    num_threads: PosInt | None = 1


class HFImportParams(ModelBase):
    """A base model brought in from the Hugging Face hub or a local path (models/hf_import.py):
    `from_pretrained(source)` then `save_pretrained`."""

    kind: Literal["hf"]
    source: str  # e.g. beomi/kcbert-base, or a local directory
    revision: str | None = None  # a commit hash pins a hub model


class ProbAverageParams(ModelBase):
    """Weighted average of two members' class probabilities (models/ensemble.py); the weight
    of the first member is chosen on the valid split unless given."""

    kind: Literal["prob_average"]
    members: list[str] = Field(min_length=2, max_length=2)
    weight: Annotated[float, Field(ge=0, le=1)] | None = None  # null: best on valid
    grid_step: Annotated[float, Field(gt=0, le=0.5)] = 0.05


class LlmImportParams(ModelBase):
    """A causal language model brought in from outside (imports section): `gguf` from a GGUF
    file, `hf_causal_lm` from a Hugging Face id or directory (models/llm_import.py)."""

    kind: Literal["gguf", "hf_causal_lm"]
    # package:<python package> | a .gguf file | a directory | a Hugging Face id
    source: str = Field(min_length=1)
    gguf_file: str | None = None  # which .gguf in the source directory, when several
    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"  # of the saved weights
    threads: PosInt | None = None  # torch threads (default: all cores up to 4)


DEFAULT_PROMPTS = [
    "Write a Python function that returns the largest of three numbers.",
    "How do I reproduce a DVC pipeline?",
    "Explain what a Docker image is in one sentence.",
]


class LoraParams(ModelBase):
    """LoRA / QLoRA supervised fine-tuning of a causal LM base (models/lora.py)."""

    kind: Literal["lora"]
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
    max_length: Annotated[int, Field(ge=8)] = 256  # tokens of prompt + response
    eval_every: PosInt = 20
    eval_examples: PosInt = 64  # validation examples scored during training
    eval_batch_size: PosInt = 8
    merge: bool = True  # save the merged model (else the base copy + adapter)
    save_dtype: Literal["float32", "bfloat16"] = "bfloat16"  # of the merged weights
    prompts: list[str] = Field(default_factory=lambda: list(DEFAULT_PROMPTS))
    max_new_tokens: PosInt = 48
    threads: PosInt | None = None

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


ModelParams = Annotated[
    RidgeParams
    | RandomForestParams
    | HistGradientBoostingParams
    | TorchMLPParams
    | TfidfLogRegParams
    | UNetParams
    | PIDNetParams
    | BertMLMParams
    | HFClassifierParams
    | HFImportParams
    | ProbAverageParams
    | MiniTParams
    | LlmImportParams
    | LoraParams,
    Field(discriminator="kind"),
]

# routing keys of a model: never tuned
_NOT_TUNABLE = {"dataset", "task", "base", "kind", "use_hpo"}

# params.yaml sections that hold models, each its own dvc.yaml stage family writing
# models/<name>: (section, needs a dataset, needs a task, needs a base)
MODEL_SECTIONS = {
    "models": (True, True, False),  # train@<name> + evaluate@<name>
    "pretrain": (True, False, False),  # pretrain@<name>: a base model learned from a dataset
    "imports": (False, False, False),  # import@<name>: a base model brought in from outside
    "finetune": (True, True, True),  # finetune@<name>: train from models/<base>, then evaluate
    "ensembles": (True, True, False),  # ensemble@<name>: combine trained members, then evaluate
}
BASE_SECTIONS = ("pretrain", "imports")


# ---------------------------------------------------------------- hpo


class SearchParam(Strict):
    """One dimension of a search space: int or float in [low, high] (optionally log-scaled),
    or a categorical choice."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: Annotated[float, Field(gt=0)] | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> SearchParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("choices: a categorical needs a non-empty list")
            if self.low is not None or self.high is not None:
                raise ValueError("type: a categorical takes `choices`, not low/high")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"type: {self.type} needs both `low` and `high`")
        if self.low > self.high:
            raise ValueError(f"low: {self.low} > high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"low: a log scale needs low > 0, got {self.low}")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError(f"type: int needs integer low and high, got {self.low}, {self.high}")
        if self.choices is not None:
            raise ValueError(f"choices: only for categorical, not {self.type}")
        return self

    def corners(self) -> list[Any]:
        """Values that must all be valid for the model (bounds, or every choice)."""
        if self.type == "categorical":
            return list(self.choices or [])
        if self.type == "int":
            return [int(self.low), int(self.high)]
        probes = [float(self.low), float(self.high)]
        if self.high > self.low:  # a fractional value: an int-only param must refuse it
            mid = self.low + (self.high - self.low) / 2
            probes.append(mid if mid != int(mid) else mid + (self.high - self.low) / 100)
        return probes


class PrunerParams(Strict):
    kind: Literal["median", "none"] = "median"
    n_startup_trials: Annotated[int, Field(ge=0)] = 5
    n_warmup_steps: Annotated[int, Field(ge=0)] = 5


class HpoStudy(Strict):
    """An Optuna study over one model's params. The objective is the task's registry metric
    on the validation split; intermediate values are `valid_<metric>` from the training loop.
    """

    space: dict[str, SearchParam] = Field(min_length=1)
    n_trials: PosInt = 20
    timeout: Annotated[float, Field(gt=0)] | None = None  # seconds for this invocation
    seed: int = 0
    pruner: PrunerParams = PrunerParams()
    cv_folds: Annotated[int, Field(ge=0)] = 0  # >1: objective = k-fold mean over train+valid
    n_threads: PosInt | None = 1  # threads of native libraries (OpenMP/BLAS) inside a trial
    storage: str | None = None  # SQLAlchemy URL; default sqlite:///<repo root>/optuna.db
    study_name: str | None = None  # default: <model>-<hash of this section and the model's>


# ---------------------------------------------------------------- registry, infer, report


class RegistryTask(Strict):
    """Promotion gate of one task: versions compete on `test_<metric>`."""

    metric: str
    direction: Literal["minimize", "maximize"]
    threshold: float

    def passes(self, value: float) -> bool:
        if value != value:  # NaN never passes
            return False
        return value <= self.threshold if self.direction == "minimize" else value >= self.threshold

    def better(self, value: float, than: float | None) -> bool:
        if value != value:
            return False
        if than is None:
            return True
        return value < than if self.direction == "minimize" else value > than


class InferTask(Strict):
    input: str
    dataset: str


class ReportParams(Strict):
    title: str = "reprolab report"
    scatter_points: PosInt = 2000
    segmentation_examples: PosInt = 4  # test images shown with their masks
    worst_images: PosInt = 5  # per-image Dice of the worst test images


class Params(Strict):
    seed: int = 42
    datasets: dict[str, DatasetParams]
    models: dict[str, ModelParams]
    pretrain: dict[str, ModelParams] = {}
    imports: dict[str, ModelParams] = {}
    finetune: dict[str, ModelParams] = {}
    ensembles: dict[str, ModelParams] = {}
    registry: dict[str, RegistryTask]
    infer: dict[str, InferTask] = {}
    hpo: dict[str, HpoStudy] = {}
    report: ReportParams = ReportParams()

    @model_validator(mode="after")
    def _references_exist(self) -> Params:
        problems = self._check_model_sections()
        for task, spec in self.infer.items():
            if task not in self.registry:
                problems.append(f"infer.{task}: no registry.{task} section")
            if spec.dataset not in self.datasets:
                problems.append(f"infer.{task}.dataset: unknown dataset {spec.dataset!r}")
        for name, model in self.models.items():
            if model.use_hpo and name not in self.hpo:
                problems.append(f"models.{name}.use_hpo: true, but there is no hpo.{name} section")
        for name, study in self.hpo.items():
            problems += _check_space(name, study, self.models.get(name))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _check_model_sections(self) -> list[str]:
        problems, seen = [], {}
        bases = {name for section in BASE_SECTIONS for name in getattr(self, section)}
        for section, (needs_dataset, needs_task, needs_base) in MODEL_SECTIONS.items():
            for name, model in getattr(self, section).items():
                where = f"{section}.{name}"
                if name in seen:
                    problems.append(f"{where}: name already used by {seen[name]}.{name}")
                seen[name] = section
                if needs_dataset and model.dataset is None:
                    problems.append(f"{where}.dataset: required key is missing")
                elif model.dataset is not None and model.dataset not in self.datasets:
                    problems.append(
                        f"{where}.dataset: unknown dataset {model.dataset!r}, "
                        f"expected one of {sorted(self.datasets)}"
                    )
                if needs_task and model.task is None:
                    problems.append(f"{where}.task: required key is missing")
                elif model.task is not None and model.task not in self.registry:
                    problems.append(
                        f"{where}.task: no registry.{model.task} section, "
                        f"expected one of {sorted(self.registry)}"
                    )
                if needs_base and model.base not in bases:
                    problems.append(
                        f"{where}.base: must name a pretrain or imports entry, "
                        f"expected one of {sorted(bases)}, got {model.base!r}"
                    )
                elif not needs_base and model.base is not None:
                    problems.append(f"{where}.base: only finetune entries start from a base")
                problems += self._check_members(where, model)
        return problems

    def _check_members(self, where: str, model: Any) -> list[str]:
        """An ensemble's members: trained or fine-tuned models of the same dataset and task."""
        members = getattr(model, "members", None)
        if members is None:
            return []
        problems = []
        if len(set(members)) != len(members):
            problems.append(f"{where}.members: the same model twice, got {members}")
        for member in members:
            spec = self.models.get(member) or self.finetune.get(member)
            if spec is None:
                problems.append(
                    f"{where}.members: {member!r} is not a models or finetune entry, expected "
                    f"one of {sorted([*self.models, *self.finetune])}"
                )
            elif (spec.dataset, spec.task) != (model.dataset, model.task):
                problems.append(
                    f"{where}.members: {member!r} learns {spec.dataset}/{spec.task}, "
                    f"not {model.dataset}/{model.task}"
                )
        return problems

    def model(self, name: str) -> Any:
        """The params of model `name`, whichever model section holds it."""
        for section in MODEL_SECTIONS:
            found = getattr(self, section).get(name)
            if found is not None:
                return found
        raise KeyError(name)

    def section_of(self, name: str) -> str:
        return next(s for s in MODEL_SECTIONS if name in getattr(self, s))

    def models_of_task(self, task: str) -> list[str]:
        """Models that compete for `task`'s registry: trained or fine-tuned ones."""
        return [
            name
            for section in ("models", "finetune", "ensembles")
            for name, m in getattr(self, section).items()
            if m.task == task
        ]


def _check_space(name: str, study: HpoStudy, model: Any) -> list[str]:
    """Every searched param must exist for the model's kind and accept the space's bounds
    (or every choice): checked before any trial, with the key path."""
    if model is None:  # the model was left out (a quick run on a subset): nothing to tune
        return []
    cls = type(model)
    tunable = sorted(set(cls.model_fields) - _NOT_TUNABLE)
    problems = []
    for key, dim in study.space.items():
        where = f"hpo.{name}.space.{key}"
        if key not in tunable:
            problems.append(
                f"{where}: unknown param for kind {model.kind!r}, expected one of {tunable}"
            )
            continue
        for value in dim.corners():
            try:
                cls.model_validate({**model.model_dump(), key: value})
            except ValidationError as err:
                reason = err.errors()[0]
                rule = _RULES.get(reason["type"])
                text = rule(reason.get("ctx", {})) if rule else reason["msg"]
                problems.append(f"{where}: {value!r} is not valid for models.{name}.{key}: {text}")
    return problems


# ---------------------------------------------------------------- loading and errors


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate params.yaml; raise ParamsError listing every bad key."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as err:
        raise ParamsError(f"{path}: file not found") from err
    except yaml.YAMLError as err:
        raise ParamsError(f"{path}: not valid YAML: {err}") from err
    return parse_params(raw, source=str(path))


def parse_params(raw: Any, source: str = "params") -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level")
    try:
        return Params.model_validate(raw)
    except ValidationError as err:
        # a whole-file check reports several keys at once: one line (and prefix) each
        lines = [line for e in err.errors() for line in _describe(e, raw).splitlines()]
        raise ParamsError("\n".join(f"{source}: {line}" for line in lines)) from None


_RULES = {
    "greater_than": lambda c: f"must be > {c['gt']}",
    "greater_than_equal": lambda c: f"must be >= {c['ge']}",
    "less_than": lambda c: f"must be < {c['lt']}",
    "less_than_equal": lambda c: f"must be <= {c['le']}",
    "too_short": lambda c: f"must have at least {c['min_length']} item(s)",
    "literal_error": lambda c: f"must be one of {c['expected']}",
}


def _describe(error: dict, raw: Any) -> str:
    """One line: the key path as the user wrote it (pydantic's union tags removed)."""
    path, node, loc = [], raw, error["loc"]
    for i, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            path.append(str(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            path.append(f"[{part}]")
            node = node[part]
        elif i == len(loc) - 1 and error["type"] in ("extra_forbidden", "missing"):
            path.append(part)  # the offending or absent key itself
        # anything else is a tag pydantic inserted (e.g. the union member): skip it
    where = ".".join(path).replace(".[", "[") or "(top level)"
    kind, ctx = error["type"], error.get("ctx", {})
    if kind == "extra_forbidden":
        return f"{where}: unknown key"
    if kind == "missing":
        return f"{where}: required key is missing"
    if kind == "union_tag_invalid":
        return (
            f"{where}.kind: unknown kind {ctx.get('tag')!r}, expected one of {ctx['expected_tags']}"
        )
    if kind == "value_error":
        text = str(ctx.get("error", error["msg"])).removeprefix("Value error, ")
        if not path:  # a whole-file check: its lines name their keys already
            return text
        return "\n".join(f"{where}.{line}" for line in text.splitlines())
    rule = _RULES.get(kind)
    text = rule(ctx) if rule else error["msg"][0].lower() + error["msg"][1:]
    return f"{where}: {text}, got {error.get('input')!r}"
