"""Does a GGUF file load in llama.cpp and read text as its model does? The file is served by
a `llama-server`, which must tokenize sample texts to the same ids as the Hugging Face
tokenizer and carry the same chat template. Its greedy continuations are compared with
transformers': rounding to f16 or Q8_0 may part them after a few tokens at a near tie, so the
agreement is measured, and only a first token that differs (a broken conversion) fails an
f16 file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprolab.core.errors import ReprolabError
from reprolab.llamacpp.server import LlamaServer, ServerOptions

SAMPLES = (
    "The quick brown fox jumps over the lazy dog.",
    "First Citizen:\nBefore we proceed any further, hear me speak.",
    "def add(a, b):\n    return a + b\n",
    "  Spaces,\ttabs and 3.14159 numbers; UPPER and lower.",
)
GREEDY_TOKENS = 16


class GgufCheckError(ReprolabError):
    """The GGUF file does not read text as its model does."""


def greedy_ids(model: Any, ids: list[int], count: int) -> list[int]:
    import torch

    with torch.no_grad():
        out = model.generate(
            input_ids=torch.tensor([ids]),
            attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            max_new_tokens=count,
            do_sample=False,
            pad_token_id=model.config.pad_token_id or model.config.eos_token_id,
        )
    return out[0, len(ids) :].tolist()


def known_part(tokenizer: Any, text: str) -> str:
    """`text` without the characters a vocabulary lacks (a character vocabulary learned
    from one corpus): the two tokenizers drop an unknown character each its own way."""
    unknown = getattr(tokenizer, "unk_token_id", None)
    if unknown is None or unknown not in tokenizer(text, add_special_tokens=False)["input_ids"]:
        return text
    return "".join(
        c for c in text if unknown not in tokenizer(c, add_special_tokens=False)["input_ids"]
    )


def agreement(a: list[int], b: list[int]) -> float:
    """The share of the longer sequence that both begin with."""
    same = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        same += 1
    return same / max(len(a), len(b), 1)


def check(gguf: Path, model: Any, tokenizer: Any, strict: bool) -> dict[str, Any]:
    """Measures of `gguf` against the HF `model` and `tokenizer`; GgufCheckError when the
    tokens or the template differ, or (`strict`) when a greedy continuation's first token
    does."""
    server = LlamaServer(gguf, ServerOptions(slots=1, context=512))
    try:
        checked = 0
        for text in (known_part(tokenizer, t) for t in SAMPLES):
            if not text.strip():
                continue
            ours = tokenizer(text, add_special_tokens=False)["input_ids"]
            checked += 1
            theirs = server.tokenize(text)
            if ours != theirs:
                raise GgufCheckError(
                    f"{gguf.name}: tokenizes {text[:30]!r} as {theirs[:8]}..., "
                    f"the model's tokenizer as {ours[:8]}..."
                )
        if checked < 2:
            raise GgufCheckError(f"{gguf.name}: fewer than 2 sample texts in the vocabulary")
        template = getattr(tokenizer, "chat_template", None) or None
        served = server.http.get("/props").json().get("chat_template") or None
        if template is not None and served is not None and template.strip() != served.strip():
            raise GgufCheckError(f"{gguf.name}: its chat template is not the model's")
        shares = []
        for text in (known_part(tokenizer, t) for t in SAMPLES[:2]):
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            body = {"prompt": ids, "n_predict": GREEDY_TOKENS, "temperature": 0.0}
            body.update(top_k=0, top_p=1.0, min_p=0.0, repeat_penalty=1.0, cache_prompt=False)
            got = server.completion({**body, "return_tokens": True})["tokens"]
            want = greedy_ids(model, ids, GREEDY_TOKENS)
            shares.append(agreement(got, want))
            if strict and got[:1] != want[:1]:
                raise GgufCheckError(
                    f"{gguf.name}: the greedy next token after {text[:30]!r} is {got[:1]}, "
                    f"transformers' {want[:1]}"
                )
    finally:
        server.close()
    return {
        "size_mb": round(gguf.stat().st_size / 2**20, 1),
        "tokenizer_match": 1.0,
        "texts_compared": checked,
        "chat_template": template is not None,
        "greedy_agreement": round(sum(shares) / len(shares), 4),
    }
