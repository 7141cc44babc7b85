"""HF directory -> GGUF with llama.cpp's converter, checked by llama.cpp itself: the same
tokens as the model's tokenizer, the same greedy continuation as transformers."""

from __future__ import annotations

import pytest

from reprolab.llamacpp import install
from reprolab.llamacpp.check import GgufCheckError, check
from reprolab.llamacpp.convert import ConversionError, to_gguf


def _loaded(folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(
        folder
    )


def test_a_byte_level_bpe_llama_reads_text_as_its_model(tiny_llama, tiny_gguf):
    model, tokenizer = _loaded(tiny_llama)
    measures = check(tiny_gguf, model, tokenizer, strict=True)
    assert measures["tokenizer_match"] == 1.0 and measures["texts_compared"] == 4
    assert measures["greedy_agreement"] > 0  # at least the first token; f16 may part later


def test_q8_0_is_smaller_and_still_tokenizes_the_same(llama_cpp, tiny_llama, tiny_gguf, tmp_path):
    q8 = to_gguf(tiny_llama, tmp_path / "model-q8_0.gguf", "q8_0")
    assert q8.stat().st_size < tiny_gguf.stat().st_size
    model, tokenizer = _loaded(tiny_llama)
    assert check(q8, model, tokenizer, strict=False)["tokenizer_match"] == 1.0


def test_a_character_vocabulary_converts_in_byte_level_form(llama_cpp, tmp_path):
    """Mini-T's tokenizer (characters, no merges, no pre-tokenizer) is not one llama.cpp's
    converter knows; written in byte-level form it gives the model's ids, spaces included."""
    from reprolab.lm.generation import find_hf_dir
    from tests.tiny_models import minit

    case = minit(tmp_path)
    hf = find_hf_dir(case.dir)
    gguf = to_gguf(hf, tmp_path / "minit.gguf", "f16")
    model, tokenizer = _loaded(hf)
    measures = check(gguf, model, tokenizer, strict=True)
    assert measures["texts_compared"] >= 2


def test_a_check_fails_when_the_tokens_differ(tiny_llama, tiny_gguf):
    """The check can fail: the same GGUF against another tokenizer."""
    from transformers import AutoModelForCausalLM

    from reprolab.lm import tokenizers

    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    other = tokenizers.char_tokenizer("The quick brown fox jumps over the lazy dog. 0123456789")
    with pytest.raises(GgufCheckError, match="tokenizes"):
        check(tiny_gguf, model, other, strict=False)


def test_a_folder_the_converter_refuses_leaves_no_file(llama_cpp, tmp_path):
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text('{"architectures": ["NoSuchForCausalLM"]}')
    out = tmp_path / "out" / "model-f16.gguf"
    with pytest.raises(ConversionError, match="converter failed") as err:
        to_gguf(tmp_path / "hf", out, "f16")
    assert "\n" not in str(err.value)
    assert not out.exists() and not list(out.parent.glob("*"))


def test_an_unknown_type_and_a_missing_build_are_named(tmp_path, monkeypatch, llama_cpp):
    with pytest.raises(ConversionError, match="outtype: expected one of"):
        to_gguf(tmp_path, tmp_path / "x.gguf", "q4_k")
    monkeypatch.setenv(install.ENV, str(tmp_path / "nowhere"))
    with pytest.raises(install.LlamaCppMissing, match="make setup"):
        to_gguf(tmp_path, tmp_path / "x.gguf", "f16")
