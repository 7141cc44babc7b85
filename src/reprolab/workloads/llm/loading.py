"""The base model and tokenizer of LoRA/QLoRA fine-tuning: the device and precision, the
base's config, its weights in full precision or 4-bit NF4 (bitsandbytes), and its tokenizer.

QLoRA on CPU (bitsandbytes >= 0.48 ships a CPU library): a 4-bit `Linear4bit` repacks its
weights into a CPU inference layout the first time it runs in eval mode without gradients
(e.g. a validation pass or `generate`); after that, backward no longer reaches the layers
below it and training silently stalls. We switch that repacking off on every 4-bit layer of
a model we train (`support_avx512bf16_for_cpu = False`), train a model loaded fresh for
training, and check after the first backward that every adapter matrix received a gradient
(`reprolab.workloads.llm.lora.check_gradients`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolab.core.errors import DataError


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

    from reprolab.core.train.setup import resolve_device

    if resolve_device("auto") == "cuda":
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


# ---------------------------------------------------------------- loading


def load_config(base_dir: Path):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(base_dir)
    except (OSError, ValueError) as err:
        raise DataError(f"base {base_dir}: cannot read its config.json ({err})") from err


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
