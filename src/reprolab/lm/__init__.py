"""What the language-model workloads share (Mini-T and the LoRA fine-tune): one way to find
a model's Hugging Face directory (`hf_dir`), one `generate` (lm.generation), one pyfunc
contract (lm.pyfunc) and the tokenizers trained here (lm.tokenizers). Every function imports
torch/transformers/peft lazily so that stage `--help` stays instant.

Every model directory reprolab saves is a standard Hugging Face directory at its root
(config.json, safetensors, tokenizer, README.md model card), MLflow files beside them; a
fine-tuned LLM adds its PEFT adapter under `adapter/` (see reprolab.workloads.llm.saved).
Models saved before kept the HF files under `artifacts/hf` (and the adapter under
`artifacts/lora_adapter`): the helpers here find the root first and still read those."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# (OMP_WAIT_POLICY=PASSIVE is set by `reprolab/__init__.py`: decoding SmolLM2 on 2 threads ran
# at 0.4 tokens/s with spinning and 8.6 with sleeping waits on a loaded 2-core machine.)
from reprolab.core.errors import DataError

ADAPTER_SUBDIR = "adapter"  # a fine-tuned model's PEFT adapter, beside the root's HF files
META_FILE = "llm.json"  # MLflow artifact of a causal-LM pyfunc: artifacts/llm.json
LEGACY_HF = "hf"  # artifacts/hf: where models saved before kept the HF directory
LEGACY_ADAPTER = "lora_adapter"  # artifacts/lora_adapter: their adapter


def hf_dir(path: str | Path) -> Path:
    """The standard Hugging Face model directory of a model directory: the directory itself
    when it holds config.json (every model saved now, an imported or pretrained base), else
    its artifacts/hf (a model saved in the earlier layout). Other artifact folders are not
    searched: an ensemble keeps whole member models there."""
    path = Path(path)
    for candidate in (path, path / "artifacts" / LEGACY_HF):
        if (candidate / "config.json").is_file():
            return candidate
    raise DataError(
        f"{path}: not a Hugging Face model directory (no config.json here or under artifacts/)"
    )


def model_root(directory: str | Path) -> Path:
    """The model directory an HF directory belongs to: itself, or for the earlier layout's
    artifacts/hf the directory two levels up."""
    directory = Path(directory)
    if directory.parent.name == "artifacts" and (directory.parent.parent / "MLmodel").is_file():
        return directory.parent.parent
    return directory


def read_meta(path: str | Path) -> dict[str, Any]:
    """A causal-LM model's artifacts/llm.json ({} for a plain HF directory)."""
    meta = Path(path) / "artifacts" / META_FILE
    return json.loads(meta.read_text()) if meta.is_file() else {}


def adapter_dir(path: str | Path) -> Path | None:
    """A fine-tuned model's PEFT adapter: `adapter/`, or artifacts/lora_adapter before."""
    for found in (Path(path) / ADAPTER_SUBDIR, Path(path) / "artifacts" / LEGACY_ADAPTER):
        if (found / "adapter_config.json").is_file():
            return found
    return None


def unmerged_adapter(directory: str | Path) -> Path | None:
    """The adapter an HF directory's weights still need: a model fine-tuned with
    `merge: false` keeps a copy of its base as the HF model and the adapter beside it."""
    root = model_root(directory)
    if read_meta(root).get("merged", True):
        return None
    return adapter_dir(root)
