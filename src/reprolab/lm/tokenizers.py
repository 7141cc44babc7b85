"""Tokenizers for language models trained here, built with HF `tokenizers` and saved as a
standard `PreTrainedTokenizerFast` directory (tokenizer.json + tokenizer_config.json), so
`AutoTokenizer.from_pretrained(dir)` loads them and they travel inside a model directory.

- `char`: one token per character of the training text (a BPE model without merges: the
  input is never split, so whitespace and newlines are ordinary characters), plus
  `<|endoftext|>` (end of text, also used for padding) and `<unk>` for unseen characters.
- `bpe`: byte-level BPE (GPT-2's scheme) trained on the given text: every string is
  encodable and decoding is exact.
"""

from __future__ import annotations

from pathlib import Path

EOS = "<|endoftext|>"
UNK = "<unk>"
SPECIALS = (EOS, UNK)


def char_tokenizer(text: str):
    """A character-level tokenizer over the characters of `text` (ids 0, 1: specials)."""
    from tokenizers import Tokenizer, decoders, models

    if not text:
        raise ValueError("cannot build a character vocabulary from empty text")
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for char in sorted(set(text)):
        vocab[char] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(list(SPECIALS))
    return _wrap(tok)


def bpe_tokenizer(text: str, vocab_size: int):
    """A byte-level BPE tokenizer trained on `text` (at most `vocab_size` tokens)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if not text:
        raise ValueError("cannot train BPE on empty text")
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_chunks(text), trainer=trainer, length=None)
    return _wrap(tok)


def _chunks(text: str, lines: int = 1000):
    """Lines grouped in chunks (each keeps its newlines, so they are learned as bytes)."""
    split = text.splitlines(keepends=True)
    for start in range(0, len(split), lines):
        yield "".join(split[start : start + lines])


def _wrap(tok):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=EOS, unk_token=UNK
    )


def build(kind: str, text: str, vocab_size: int = 1024):
    if kind == "char":
        return char_tokenizer(text)
    if kind == "bpe":
        return bpe_tokenizer(text, vocab_size)
    raise ValueError(f"unknown tokenizer kind {kind!r}, expected 'char' or 'bpe'")


def load(directory: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(directory))


def encode(tokenizer, text: str):
    """Token ids of a long text as a uint16/uint32 numpy array (no special tokens added)."""
    import numpy as np

    ids = tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids
    dtype = np.uint16 if len(tokenizer) <= 65_536 else np.uint32
    return np.asarray(ids, dtype=dtype)
