"""Causal language models: import (GGUF, Hugging Face id or directory), instruction data,
LoRA/QLoRA fine-tuning, perplexity, loading any causal-LM directory (by path, MLflow run or
registry alias), streaming generation, the MLflow pyfunc wrapper and the LLM benchmark. Every
function imports torch/transformers/peft lazily so that stage `--help` stays instant."""

from __future__ import annotations

from pathlib import Path

# (OMP_WAIT_POLICY=PASSIVE is set by `reprolab/__init__.py`: decoding SmolLM2 on 2 threads ran
# at 0.4 tokens/s with spinning and 8.6 with sleeping waits on a loaded 2-core machine.)
from reprolab.errors import DataError

HF_SUBDIR = "hf"  # inside an MLflow model directory: artifacts/hf is a standard HF model dir


def hf_dir(path: str | Path) -> Path:
    """The standard Hugging Face model directory inside a model directory: the directory
    itself when it holds config.json (an imported or pretrained base), else the `artifacts/`
    sub-folder of an MLflow model that holds one (a fine-tuned, registered model)."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    for candidate in (path / "artifacts" / HF_SUBDIR, *sorted(path.glob("artifacts/*"))):
        if (candidate / "config.json").is_file():
            return candidate
    raise DataError(
        f"{path}: not a Hugging Face model directory (no config.json here or under artifacts/)"
    )
