"""Tiny Shakespeare (karpathy/char-rnn, `data/tinyshakespeare/input.txt`): 1,115,394
characters of plays for language modelling. Fetch with a pinned sha256 (or the mirror),
validate (UTF-8, not empty), split contiguously by fraction (the last `valid_size` of the
text is the validation split, as nanoGPT does: no line of a speech leaks across), train a
tokenizer on the train split only (character level, or byte-level BPE) and write the token
ids. Outputs in data/processed/<name>/:

- `tokenizer/`: a standard HF tokenizer directory (`AutoTokenizer.from_pretrained`)
- `train.npy`, `valid.npy`: token ids (uint16)
- `summary.json`: characters, tokens, vocabulary size, unknown tokens per split
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reprolab.core.errors import DataError
from reprolab.core.fetch import RemoteFile, fetch_one
from reprolab.core.io import atomic_write_json
from reprolab.core.split import Split
from reprolab.workloads.minit.params import ShakespeareDataset

PROBLEM = "language_modeling"
UPSTREAM = "https://raw.githubusercontent.com/karpathy/char-rnn"
# the snapshot the mirror was taken from (the file has not changed since 2015)
COMMIT = "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e"
CORPUS = RemoteFile(
    "input.txt",
    f"{UPSTREAM}/{COMMIT}/data/tinyshakespeare/input.txt",
    "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    "corpus/input.txt",
)


def source_files(params: ShakespeareDataset, mirror: Path | None = None) -> list[RemoteFile]:
    """The pinned file prepare reads (the check stage verifies the mirror's copy)."""
    return [CORPUS]


SPLITS = ("train", "valid")
TOKENIZER_DIR = "tokenizer"
MIN_SPLIT_CHARS = 200  # a split shorter than this cannot fill even a small context
# prompts for examples and sample generations (the pyfunc input is a frame of prompts)
PROMPTS = ["ROMEO:\n", "First Citizen:\nBefore we proceed", "KING HENRY VI:\nO God"]


@dataclass
class TokenSplit(Split):
    """One split of a token stream: `tokens` (ids), `X` a frame of example prompts (the
    model's pyfunc input), `tokenizer_dir` the tokenizer. No `y`: there are no rows to
    count, and the model scores the split itself (MiniT.evaluate)."""

    tokens: np.ndarray
    tokenizer_dir: Path
    X: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"prompt": PROMPTS}))

    def tokenizer(self):
        from reprolab.lm import tokenizers as tokenization

        return tokenization.load(self.tokenizer_dir)

    def labelled_rows(self) -> None:
        return None  # a token stream: throughput is counted in tokens


def read_corpus(path: Path) -> str:
    """The corpus text; DataError naming the file if it is missing, not UTF-8 or empty."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err})") from err
    if not text.strip():
        raise DataError(f"{path}: empty corpus (no text to learn from)")
    return text


def split_text(text: str, valid_size: float, source: str) -> dict[str, str]:
    """Contiguous split: the first 1 - valid_size of the characters train, the rest valid."""
    cut = int(len(text) * (1 - valid_size))
    parts = {"train": text[:cut], "valid": text[cut:]}
    for name, part in parts.items():
        if len(part.strip()) < MIN_SPLIT_CHARS:
            raise DataError(
                f"{source}: the {name} split has {len(part)} characters, at least "
                f"{MIN_SPLIT_CHARS} needed (corpus of {len(text)} characters, valid_size "
                f"{valid_size})"
            )
    return parts


def prepare(
    params: ShakespeareDataset, seed: int, raw_dir: Path, out_dir: Path, mirror: Path | None
) -> dict:
    """Fetch → validate → split → tokenizer (on train) → token ids."""
    from reprolab.lm import tokenizers as tokenization

    path = fetch_one(CORPUS, raw_dir, mirror)
    text = read_corpus(path)
    if params.limit is not None:
        text = text[: params.limit]
    parts = split_text(text, params.valid_size, str(path))
    tokenizer = tokenization.build(params.tokenizer, parts["train"], params.vocab_size)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir / TOKENIZER_DIR))
    summary: dict = {
        "rows": {},  # tokens per split (the stage prints "rows per split")
        "tokenizer": params.tokenizer,
        "vocab_size": len(tokenizer),
        "valid_size": params.valid_size,
        "characters": {},
        "tokens": {},
        "unknown_tokens": {},
        "characters_per_token": {},
    }
    for name, part in parts.items():
        ids = tokenization.encode(tokenizer, part)
        np.save(out_dir / f"{name}.npy", ids)
        summary["characters"][name] = len(part)
        summary["tokens"][name] = summary["rows"][name] = len(ids)
        summary["unknown_tokens"][name] = int((ids == tokenizer.unk_token_id).sum())
        summary["characters_per_token"][name] = round(len(part) / max(1, len(ids)), 4)
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def load_split(out_dir: Path, split: str) -> TokenSplit:
    out_dir = Path(out_dir)
    path = out_dir / f"{split}.npy"
    if not path.is_file():
        raise DataError(f"{path}: not found; run prepare for this dataset first")
    tokenizer_dir = out_dir / TOKENIZER_DIR
    if not (tokenizer_dir / "tokenizer.json").is_file():
        raise DataError(f"{tokenizer_dir}/tokenizer.json: not found; run prepare again")
    return TokenSplit(tokens=np.load(path), tokenizer_dir=tokenizer_dir)
