"""Where the llama.cpp build lives: `make setup` compiles `llama-server` from the source
pinned (with its sha256) in requirements-llama-cpp.txt into `.venv/llama.cpp`, beside the
venv it belongs to; `REPROLAB_LLAMA_CPP` points elsewhere (a build of one's own)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from reprolab.core.errors import ReprolabError

ENV = "REPROLAB_LLAMA_CPP"


class LlamaCppMissing(ReprolabError):
    """No llama.cpp build where the project looks for one."""


def home() -> Path:
    """The folder holding `bin/llama-server` and the converter's source in `src/`."""
    return Path(os.environ.get(ENV) or Path(sys.prefix) / "llama.cpp")


def server_binary() -> Path:
    return home() / "bin" / "llama-server"


def source() -> Path:
    """llama.cpp's source tree: convert_hf_to_gguf.py and its own gguf-py beside it."""
    return home() / "src"


def available() -> bool:
    binary = server_binary()
    return binary.is_file() and os.access(binary, os.X_OK) and converter().is_file()


def converter() -> Path:
    return source() / "convert_hf_to_gguf.py"


def require() -> None:
    """LlamaCppMissing, naming where it looked and how to build it, unless it is there."""
    if not available():
        raise LlamaCppMissing(
            f"llama.cpp: no build at {home()} (bin/llama-server and src/convert_hf_to_gguf.py); "
            f"run `make setup`, or set {ENV} to a folder laid out that way"
        )
