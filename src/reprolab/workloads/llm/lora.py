"""LoRA and QLoRA fine-tuning of a causal language model with PEFT: target modules checked
against the architecture, adapters attached (optionally to the top blocks only), a training
loop on (prompt, response) pairs with the loss on response tokens only, and merging the
adapter into a full-precision base. Loading the base (and the QLoRA-on-CPU trap that
`check_gradients` guards against) is in reprolab.workloads.llm.loading."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from reprolab.core.errors import DataError
from reprolab.core.train.schedule import lambda_lr
from reprolab.workloads.llm.instructions import collate, encode
from reprolab.workloads.llm.scoring import example_nll

# Attention projections by model_type: the usual LoRA targets of each architecture.
DEFAULT_TARGETS: dict[str, list[str]] = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mixtral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "phi3": ["qkv_proj", "o_proj"],
    "gpt2": ["c_attn", "c_proj"],
    "gpt_neox": ["query_key_value", "dense"],
    "falcon": ["query_key_value", "dense"],
}


# ---------------------------------------------------------------- architecture checks


def linear_module_names(config) -> list[str]:
    """Names of the linear layers of the architecture, from a weightless (meta) instance."""
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(config)
    except ValueError as err:
        raise DataError(
            f"base: a {config.model_type!r} model is not a causal language model ({err})"
        ) from err
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]


def resolve_targets(
    target_modules: Sequence[str] | dict[str, list[str]] | None,
    model_type: str,
    names: Sequence[str],
) -> list[str]:
    """The LoRA target names for this architecture, each checked to match at least one linear
    layer (a name matches a layer whose dotted path ends with it); DataError otherwise."""
    if isinstance(target_modules, dict):
        if model_type not in target_modules:
            raise DataError(
                f"target_modules: no entry for architecture {model_type!r}, "
                f"got entries for {sorted(target_modules)}"
            )
        targets = list(target_modules[model_type])
    elif target_modules is None:
        if model_type not in DEFAULT_TARGETS:
            raise DataError(
                f"target_modules: no default for architecture {model_type!r} "
                f"(defaults: {sorted(DEFAULT_TARGETS)}); set target_modules"
            )
        targets = DEFAULT_TARGETS[model_type]
    else:
        targets = list(target_modules)
    leaves = sorted({n.rsplit(".", 1)[-1] for n in names})
    unmatched = [t for t in targets if not any(n == t or n.endswith("." + t) for n in names)]
    if unmatched:
        raise DataError(
            f"target_modules: {unmatched} match no linear layer of the {model_type!r} base; "
            f"its linear layers are named {leaves}"
        )
    return targets


# ---------------------------------------------------------------- adapters


def attach_lora(
    model,
    targets: list[str],
    r: int,
    alpha: float,
    dropout: float,
    quantized: bool,
    last_layers: int | None = None,
):
    """A PEFT LoRA model. `last_layers`: adapters only in the top N transformer blocks, so
    that backward stops there (the lower blocks run forward only: much faster on a CPU)."""
    from peft import LoraConfig, get_peft_model

    if quantized:
        from peft import prepare_model_for_kbit_training

        # fp32 norms/head and input grads; no gradient checkpointing (slow on CPU, small model)
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    layers: dict[str, Any] = {}
    if last_layers is not None:
        total = model.config.num_hidden_layers
        if last_layers > total:
            raise DataError(f"last_layers: {last_layers}, but the base has {total} layers")
        layers = {"layers_to_transform": list(range(total - last_layers, total))}
    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=targets,
        bias="none",
        task_type="CAUSAL_LM",
        **layers,
    )
    return get_peft_model(model, config)


# ---------------------------------------------------------------- data


def encode_pairs(
    tokenizer, prompts: Iterable[str], responses: Iterable[str], max_length: int
) -> tuple[list[dict[str, list[int]]], int]:
    """Encoded examples with at least one response token, and how many were dropped because
    the prompt alone filled max_length."""
    kept, dropped = [], 0
    for prompt, response in zip(prompts, responses, strict=True):
        example = encode(tokenizer, prompt, response, max_length)
        if any(label != -100 for label in example["labels"]):
            kept.append(example)
        else:
            dropped += 1
    return kept, dropped


# ---------------------------------------------------------------- training


@dataclass
class TrainConfig:
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 5
    batch_size: int = 4
    grad_accum: int = 1
    max_steps: int = 50
    eval_every: int = 25
    max_grad_norm: float = 1.0
    eval_batch_size: int = 8


def check_gradients(model) -> None:
    """Every LoRA B matrix must have a non-zero gradient after the first backward (A's are
    zero at step one by construction); a silent QLoRA stall fails here instead."""
    dead = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and "lora_B" in n and (p.grad is None or not bool(p.grad.abs().sum()))
    ]
    if dead:
        raise RuntimeError(
            f"{len(dead)} LoRA matrices got no gradient (first: {dead[0]}); with 4-bit weights "
            "this is the bitsandbytes CPU repacking trap: train a freshly loaded model"
        )


def train(
    model,
    train_examples: Sequence[dict[str, list[int]]],
    valid_examples: Sequence[dict[str, list[int]]],
    pad_id: int,
    config: TrainConfig,
    seed: int,
    log: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """AdamW on the trainable (adapter) parameters with warm-up and cosine decay, gradient
    accumulation and clipping, on the one loop of core.train.loop; validation perplexity
    every `eval_every` steps and at the end. Returns the logged rows (`step` and metrics),
    each also sent to `log(step, metrics)`."""
    import random

    import torch

    from reprolab.core.train.loop import Loop

    if not train_examples:
        raise DataError("no training example has a response token within max_length")
    device = next(model.parameters()).device
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    # linear warm-up, then cosine decay to 10 % of the peak
    schedule = lambda_lr(optimiser, warmup=config.warmup_steps, total=config.max_steps, floor=0.1)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    order: list[int] = []

    def next_batch():
        nonlocal order
        if len(order) < config.batch_size:
            fresh = list(range(len(train_examples)))
            rng.shuffle(fresh)
            order += fresh
        chunk, order = order[: config.batch_size], order[config.batch_size :]
        batch = collate([train_examples[i] for i in chunk], pad_id)
        return {k: v.to(device) for k, v in batch.items()}

    # measurements only (never steering training): steps and response tokens so far, and
    # when the evaluation of the point being logged began (its own time is not counted)
    clock = {"steps": 0, "tokens": 0, "evaluated_at": 0.0}

    def step(i: int) -> dict[str, float]:
        model.train()
        optimiser.zero_grad(set_to_none=True)
        losses = []
        for _ in range(config.grad_accum):
            batch = next_batch()
            loss = model(**batch).loss / config.grad_accum
            loss.backward()
            losses.append(float(loss.detach()) * config.grad_accum)
            clock["tokens"] += int((batch["labels"] != -100).sum())
        if i == 0:
            check_gradients(model)
        torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
        optimiser.step()
        schedule.step()
        clock["steps"] = i + 1
        return {"train_loss": sum(losses) / len(losses)}

    def evaluate() -> dict[str, float]:
        clock["evaluated_at"] = time.perf_counter()
        if not valid_examples:
            return {}
        nll, count = example_nll(model, valid_examples, pad_id, config.eval_batch_size, "valid")
        loss = sum(nll) / max(1, sum(count))
        return {"valid_loss": loss, "valid_perplexity": math.exp(loss)}

    def status() -> dict[str, float]:
        elapsed = clock["evaluated_at"] - started
        return {
            "lr": schedule.get_last_lr()[0],
            "steps_per_s": clock["steps"] / elapsed,
            "train_tokens_per_s": clock["tokens"] / elapsed,
        }

    loop = Loop("lora", steps=config.max_steps, eval_every=config.eval_every)
    started = time.perf_counter()
    sink = SimpleNamespace(log_step=log) if log is not None else None
    return loop.run(step, evaluate, run=sink, status=status).history


def trainable_summary(model) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"parameters": total, "trainable_parameters": trainable}


def merge_adapter(base_dir: Path, adapter_dir: Path, dtype: str = "float32"):
    """A plain transformers model: the base in full precision (also after QLoRA: merging
    into 4-bit weights would re-quantise them) with the adapter folded into its weights."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=getattr(torch, dtype))
    return PeftModel.from_pretrained(base, adapter_dir).merge_and_unload().eval()
