"""A Hugging Face causal LM written as GGUF by llama.cpp's own converter
(convert_hf_to_gguf.py, from the pinned source), so the file carries the model's tokenizer
and chat template exactly as llama.cpp reads them.

Two additions for tokenizers trained here, which are not in the converter's list of known
ones (it knows a tokenizer by the ids it gives a test text):
- a byte-level BPE with GPT-2's split (the tiny test models') is read as GPT-2's;
- a character-level BPE without merges or a pre-tokenizer (Mini-T's) has its tokens written
  in the byte-level form llama.cpp's BPE expects (' ' as 'Ġ'), under llama.cpp's default
  pre-tokenizer, with one merge of two NUL bytes (llama.cpp requires a merge; none of the
  vocabulary's characters takes part in it).
Either way `check` then compares the GGUF's tokens with the model's."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from reprolab.core.errors import ReprolabError
from reprolab.llamacpp import install

TYPES = ("f16", "q8_0")  # written by the export stage; q8_0 is what the service loads
LOG_TAIL = 20

# Runs the converter with the character-vocabulary addition; argv: source dir, then the
# converter's own arguments.
DRIVER = r"""
import runpy, sys
src = sys.argv.pop(1)
sys.path[:0] = [src, src + "/gguf-py"]
import gguf
from conversion import base

pre_of = base.TextModel.get_vocab_base_pre
vocab_of = base.TextModel.get_vocab_base
add_of = gguf.SpecialVocab.add_to_gguf
state = {"characters": False}
NO_MERGE = "\u0100 \u0100"  # two NUL bytes in byte-level form


def spec_of(tokenizer):
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return {}
    import json
    return json.loads(backend.to_str())


def get_vocab_base_pre(self, tokenizer):
    try:
        return pre_of(self, tokenizer)
    except NotImplementedError:
        spec = spec_of(tokenizer)
        model, pre = spec.get("model", {}), spec.get("pre_tokenizer") or {}
        if model.get("type") != "BPE":
            raise
        if pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and model.get("merges"):
            return "gpt-2"
        if not pre and not model.get("merges"):
            state["characters"] = True
            return "default"
        raise


def get_vocab_base(self):
    tokens, types, pre = vocab_of(self)
    if state["characters"]:
        table = gguf.vocab.bytes_to_unicode()
        tokens = [
            "".join(table[b] for b in t.encode()) if kind == gguf.TokenType.NORMAL else t
            for t, kind in zip(tokens, types)
        ]
    return tokens, types, pre


def add_to_gguf(self, writer, quiet=False):
    if state["characters"] and not self.merges:
        self.merges = [NO_MERGE]
    return add_of(self, writer, quiet=quiet)


gguf.SpecialVocab.add_to_gguf = add_to_gguf
base.TextModel.get_vocab_base_pre = get_vocab_base_pre
base.TextModel.get_vocab_base = get_vocab_base
sys.argv[0] = src + "/convert_hf_to_gguf.py"
runpy.run_path(sys.argv[0], run_name="__main__")
"""


class ConversionError(ReprolabError):
    """The converter refused the model (an architecture or tokenizer it does not know)."""


def to_gguf(hf_dir: Path, out: Path, outtype: str) -> Path:
    """`hf_dir` (config.json, safetensors, tokenizer) as one GGUF file at `out`, written
    under a temporary name and renamed when complete, so a killed conversion leaves no file
    that looks whole."""
    install.require()
    if outtype not in TYPES:
        raise ConversionError(f"outtype: expected one of {list(TYPES)}, got {outtype!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    command = [sys.executable, "-c", DRIVER, str(install.source()), str(hf_dir)]
    command += ["--outfile", str(partial), "--outtype", outtype]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1"}
    with tempfile.TemporaryFile() as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        if done.returncode != 0:
            partial.unlink(missing_ok=True)
            log.seek(0)
            tail = log.read().decode(errors="replace").splitlines()[-LOG_TAIL:]
            why = next((ln for ln in reversed(tail) if ln.strip()), "no output")
            raise ConversionError(f"{hf_dir}: llama.cpp's converter failed: {why}")
    os.replace(partial, out)
    return out


def save_hf(model, tokenizer, folder: Path) -> Path:
    """A loaded model (a PEFT model is merged first) and its tokenizer as a plain
    safetensors directory the converter reads."""
    merge = getattr(model, "merge_and_unload", None)
    if merge is not None and hasattr(model, "peft_config"):
        model = merge()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder
