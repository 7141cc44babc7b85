"""The llama.cpp build these tests run against: `make setup` makes it; without it they fail
with the command to run rather than skip, since CI must exercise the real server."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def llama_cpp() -> Path:
    from reprolab.llamacpp import install

    if not install.available():
        pytest.fail(f"no llama.cpp build at {install.home()}: run `make setup`")
    return install.home()


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A tiny Llama with a byte-level BPE tokenizer, saved as a Hugging Face directory."""
    from tests.workloads.llm import tiny

    return tiny.save_base(tmp_path_factory.mktemp("tiny-llama") / "hf")


@pytest.fixture(scope="session")
def tiny_gguf(llama_cpp, tiny_llama, tmp_path_factory) -> Path:
    from reprolab.llamacpp.convert import to_gguf

    return to_gguf(tiny_llama, tmp_path_factory.mktemp("gguf") / "model-f16.gguf", "f16")
