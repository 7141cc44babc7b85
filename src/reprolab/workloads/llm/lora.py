"""LoRA and QLoRA fine-tuning of a causal language model with PEFT, on (prompt, response)
pairs with the loss on response tokens only; perplexity, greedy generation and merging.

QLoRA on CPU (bitsandbytes >= 0.48 ships a CPU library): a 4-bit `Linear4bit` repacks its
weights into a CPU inference layout the first time it runs in eval mode without gradients
(e.g. a validation pass or `generate`); after that, backward no longer reaches the layers
below it and training silently stalls. We switch that repacking off on every 4-bit layer of
a model we train (`support_avx512bf16_for_cpu = False`), train a model loaded fresh for
training, and check after the first backward that every adapter matrix received a gradient.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolab.core.errors import DataError
from reprolab.workloads.llm.instructions import collate, encode

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


@dataclass(frozen=True)
class Device:
    """Where and in which precision to train: CUDA with bf16 when the GPU supports it,
    else the CPU in fp32 (bf16 on CPU only when asked)."""

    name: str  # "cpu" | "cuda"
    dtype: str  # "float32" | "bfloat16"
    note: str

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)


def pick_device(dtype: str = "auto") -> Device:
    import torch

    if torch.cuda.is_available():
        bf16_ok = torch.cuda.is_bf16_supported()
        if dtype == "bfloat16" and not bf16_ok:
            raise DataError("dtype: bfloat16 asked, but this GPU does not support bf16")
        chosen = "bfloat16" if bf16_ok and dtype in ("auto", "bfloat16") else "float32"
        return Device("cuda", chosen, f"CUDA {torch.cuda.get_device_name(0)}, {chosen}")
    chosen = "bfloat16" if dtype == "bfloat16" else "float32"
    return Device("cpu", chosen, f"CPU ({torch.get_num_threads()} threads), {chosen}")


def set_threads(threads: int | None) -> None:
    """Cap torch's intra-op threads (a shared machine): `threads`, or all cores up to 4."""
    import torch

    torch.set_num_threads(threads or max(1, min(4, os.cpu_count() or 1)))


# ---------------------------------------------------------------- architecture checks


def load_config(base_dir: Path):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(base_dir)
    except (OSError, ValueError) as err:
        raise DataError(f"base {base_dir}: cannot read its config.json ({err})") from err


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


# ---------------------------------------------------------------- loading


def load_base(base_dir: Path, device: Device, quantization: str = "none"):
    """The base model for training or scoring: `device.dtype`, or 4-bit NF4 weights with
    `device.dtype` compute when quantization == "nf4" (bitsandbytes)."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": device.torch_dtype}
    if quantization == "nf4":
        try:
            from transformers import BitsAndBytesConfig
        except ImportError as err:  # pragma: no cover - pinned
            raise DataError("quantization: nf4 needs bitsandbytes") from err
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=device.torch_dtype,
        )
        kwargs["device_map"] = {"": device.name}
    model = AutoModelForCausalLM.from_pretrained(base_dir, **kwargs)
    if quantization != "nf4":
        model = model.to(device.name)
    if quantization == "nf4":
        no_cpu_repack(model)
    return model


def no_cpu_repack(model) -> int:
    """Switch off bitsandbytes' CPU inference repacking on every 4-bit layer (see the module
    docstring); returns how many layers were touched."""
    count = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            count += 1
    return count


def load_tokenizer(path: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


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


# ---------------------------------------------------------------- scoring and generation


def example_nll(
    model, examples: Sequence[dict[str, list[int]]], pad_id: int, batch_size: int = 8, desc=""
) -> tuple[list[float], list[int]]:
    """Per example: summed negative log-likelihood of its labelled (response) tokens and
    their count. Batches are formed by length (less padding); the order is the input's."""
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    nll, tokens = [0.0] * len(examples), [0] * len(examples)
    was_training = model.training
    model.eval()
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    with torch.no_grad():
        for chunk in tqdm(batches, desc=desc or "perplexity", unit="batch", leave=False):
            batch = collate([examples[i] for i in chunk], pad_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits.float()
            labels = batch["labels"][:, 1:]
            losses = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)),
                labels.reshape(-1),
                ignore_index=-100,
                reduction="none",
            ).view(labels.shape)
            counted = labels != -100
            for row, index in enumerate(chunk):
                nll[index] = float(losses[row][counted[row]].sum())
                tokens[index] = int(counted[row].sum())
    model.train(was_training)
    return nll, tokens


def perplexity(nll: Sequence[float], tokens: Sequence[int]) -> float:
    return math.exp(sum(nll) / max(1, sum(tokens)))


def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
    """Greedy continuations, one prompt at a time (no padding effects), without the prompt."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
            generated = model.generate(
                **ids,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            new = generated[0, ids["input_ids"].shape[1] :]
            out.append(tokenizer.decode(new, skip_special_tokens=True).strip())
    model.train(was_training)
    return out


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


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))


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
    accumulation and clipping; validation perplexity every `eval_every` steps and at the end.
    Returns the logged rows."""
    import random

    import torch
    from tqdm.auto import tqdm

    if not train_examples:
        raise DataError("no training example has a response token within max_length")
    device = next(model.parameters()).device
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: lr_factor(s, config.warmup_steps, config.max_steps)
    )
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

    rows: list[dict[str, float]] = []
    losses: list[float] = []
    tokens_seen = 0
    started = time.perf_counter()
    model.train()
    bar = tqdm(range(1, config.max_steps + 1), desc="lora", unit="step", leave=False)
    for step in bar:
        optimiser.zero_grad(set_to_none=True)
        for _ in range(config.grad_accum):
            batch = next_batch()
            loss = model(**batch).loss / config.grad_accum
            loss.backward()
            losses.append(float(loss.detach()) * config.grad_accum)
            tokens_seen += int((batch["labels"] != -100).sum())
        if step == 1:
            check_gradients(model)
        torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
        optimiser.step()
        schedule.step()
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        if step % config.eval_every and step != config.max_steps:
            continue
        elapsed = time.perf_counter() - started
        row = {
            "train_loss": sum(losses) / len(losses),
            "lr": schedule.get_last_lr()[0],
            "steps_per_s": step / elapsed,
            "train_tokens_per_s": tokens_seen / elapsed,
        }
        losses = []
        if valid_examples:
            nll, count = example_nll(
                model, valid_examples, pad_id, config.eval_batch_size, desc="valid"
            )
            row["valid_loss"] = sum(nll) / max(1, sum(count))
            row["valid_perplexity"] = math.exp(row["valid_loss"])
        rows.append({"step": step, **row})
        if log is not None:
            log(step, row)
        model.train()
    bar.close()
    return rows


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
