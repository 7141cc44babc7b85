"""Tiny Shakespeare preparation and the LM tokenizers: round trips through a saved standard
HF tokenizer directory, a contiguous split, and clear errors for bad corpora."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from reprolab.core.errors import DataError, ParamsError
from reprolab.lm import tokenizers as tokenization
from reprolab.workloads.minit import data as shakespeare
from reprolab.workloads.minit.params import ShakespeareDataset

TEXT = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n"
    "All:\nSpeak, speak.\n\nFirst Citizen:\nYou are all resolved rather to die than to famish?\n"
) * 20
ODD = "Zwölf naïve café — “quoted” \t tabs\n\nand   spaces 123 &$!"


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_tokenizer_round_trip_through_a_saved_directory(kind, tmp_path):
    from transformers import AutoTokenizer

    tok = tokenization.build(kind, TEXT + ODD, vocab_size=300)
    tok.save_pretrained(str(tmp_path / "tok"))
    assert (tmp_path / "tok" / "tokenizer.json").is_file()
    loaded = AutoTokenizer.from_pretrained(str(tmp_path / "tok"))
    for text in (TEXT, ODD, "a", " spaces, then a newline \n"):
        ids = loaded(text, add_special_tokens=False)["input_ids"]
        assert loaded.decode(ids) == text
        assert tokenization.encode(loaded, text).tolist() == ids
    assert loaded.eos_token == tokenization.EOS and loaded.pad_token_id == loaded.eos_token_id
    if kind == "char":  # one token per character, specials first
        assert len(loaded(TEXT, add_special_tokens=False)["input_ids"]) == len(TEXT)
        assert len(loaded) == len(set(TEXT + ODD)) + 2
    else:  # merges learned: fewer tokens than characters, any byte encodable
        assert len(loaded(TEXT, add_special_tokens=False)["input_ids"]) < len(TEXT) / 2
        assert loaded.decode(loaded("日本語", add_special_tokens=False)["input_ids"]) == "日本語"


def test_char_tokenizer_maps_unseen_characters_to_unk():
    tok = tokenization.char_tokenizer("abc")
    ids = tok("abz", add_special_tokens=False)["input_ids"]
    assert (
        ids[-1] == tok.unk_token_id and ids[:2] == tok("ab", add_special_tokens=False)["input_ids"]
    )


@pytest.fixture
def corpus_mirror(tmp_path, monkeypatch) -> Path:
    """A mirror holding a small corpus, with the pin pointing at it."""
    mirror = tmp_path / "mirror"
    (mirror / "corpus").mkdir(parents=True)
    (mirror / "corpus" / "input.txt").write_text(TEXT)
    digest = hashlib.sha256(TEXT.encode()).hexdigest()
    pinned = shakespeare.CORPUS.__class__(
        "input.txt", shakespeare.CORPUS.url, digest, shakespeare.CORPUS.mirror_path
    )
    monkeypatch.setattr(shakespeare, "CORPUS", pinned)
    return mirror


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_prepare_splits_contiguously_and_saves_the_tokenizer(kind, corpus_mirror, tmp_path):
    params = ShakespeareDataset(
        workload="minit", kind="shakespeare", tokenizer=kind, vocab_size=300, valid_size=0.2
    )
    out = tmp_path / "processed"
    summary = shakespeare.prepare(params, 0, tmp_path / "raw", out, corpus_mirror)
    cut = int(len(TEXT) * 0.8)
    assert summary["characters"] == {"train": cut, "valid": len(TEXT) - cut}
    train, valid = shakespeare.load_split(out, "train"), shakespeare.load_split(out, "valid")
    tok = train.tokenizer()
    assert tok.decode(train.tokens.tolist()) == TEXT[:cut]
    assert tok.decode(valid.tokens.tolist()) == TEXT[cut:]
    assert train.tokens.dtype == np.uint16 and len(train.tokens) == summary["tokens"]["train"]
    assert summary["unknown_tokens"] == {"train": 0, "valid": 0}


def test_the_real_corpus_matches_its_pin():
    mirror = Path(__file__).resolve().parents[3].parent / "shared" / "datasets"
    source = mirror / shakespeare.CORPUS.mirror_path
    if not source.is_file():
        pytest.skip(f"{source}: no mirror here")
    assert hashlib.sha256(source.read_bytes()).hexdigest() == shakespeare.CORPUS.sha256
    assert shakespeare.CORPUS.url.startswith("https://raw.githubusercontent.com/karpathy/char-rnn/")


def test_checksum_mismatch_names_the_file(corpus_mirror, tmp_path):
    (corpus_mirror / "corpus" / "input.txt").write_text(TEXT + "tampered")
    params = ShakespeareDataset(workload="minit", kind="shakespeare")
    with pytest.raises(DataError, match=r"input\.txt.*sha256 mismatch"):
        shakespeare.prepare(params, 0, tmp_path / "raw", tmp_path / "out", corpus_mirror)


def test_empty_or_unreadable_corpus_is_a_clear_error(tmp_path):
    empty = tmp_path / "input.txt"
    empty.write_text(" \n\n")
    with pytest.raises(DataError, match=rf"{empty}: empty corpus"):
        shakespeare.read_corpus(empty)
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(DataError, match=rf"{binary}: not UTF-8"):
        shakespeare.read_corpus(binary)
    with pytest.raises(DataError, match="file not found"):
        shakespeare.read_corpus(tmp_path / "missing.txt")


def test_a_split_too_small_names_the_split():
    with pytest.raises(DataError, match=r"corpus\.txt: the valid split has 30 characters"):
        shakespeare.split_text("x" * 300, 0.1, "corpus.txt")


def test_load_split_without_prepare_says_what_to_run(tmp_path):
    with pytest.raises(DataError, match="run prepare"):
        shakespeare.load_split(tmp_path, "train")


def test_bad_dataset_params_name_the_key():
    from reprolab.params import parse_params

    raw = {
        "datasets": {
            "s": {
                "workload": "minit",
                "kind": "shakespeare",
                "tokenizer": "words",
                "vocab_size": 10,
            }
        },
        "models": {},
        "registry": {},
    }
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    assert "datasets.s.tokenizer: must be one of 'char' or 'bpe'" in str(err.value)
    assert "datasets.s.vocab_size: must be >= 260, got 10" in str(err.value)
