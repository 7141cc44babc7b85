"""Scoring and generation with a causal language model: the summed negative log-likelihood
of each example's response tokens, perplexity, and greedy continuations of prompts."""

from __future__ import annotations

import math
from collections.abc import Sequence

from reprolab.workloads.llm.instructions import collate


def example_nll(
    model, examples: Sequence[dict[str, list[int]]], pad_id: int, batch_size: int = 8, desc=""
) -> tuple[list[float], list[int]]:
    """Per example: summed negative log-likelihood of its labelled (response) tokens and
    their count. Batches are formed by length (less padding); the order is the input's."""
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    device = next(model.parameters()).device
    order = sorted(range(len(examples)), key=lambda i: len(examples[i]["input_ids"]))
    nll, tokens = [0.0] * len(examples), [0] * len(examples)
    was_training = model.training
    model.eval()
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    with torch.no_grad():
        for chunk in tqdm(batches, desc=desc or "perplexity", unit="batch", leave=False):
            batch = collate([examples[i] for i in chunk], pad_id)
            batch = {k: v.to(device) for k, v in batch.items()}
            logits = model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).logits.float()
            labels = batch["labels"][:, 1:]
            losses = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.size(-1)),
                labels.reshape(-1),
                ignore_index=-100,
                reduction="none",
            ).view(labels.shape)
            counted = labels != -100
            for row, index in enumerate(chunk):
                nll[index] = float(losses[row][counted[row]].sum())
                tokens[index] = int(counted[row].sum())
    model.train(was_training)
    return nll, tokens


def perplexity(nll: Sequence[float], tokens: Sequence[int]) -> float:
    return math.exp(sum(nll) / max(1, sum(tokens)))


def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int) -> list[str]:
    """Greedy continuations, one prompt at a time (no padding effects), without the prompt."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
            generated = model.generate(
                **ids,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            new = generated[0, ids["input_ids"].shape[1] :]
            out.append(tokenizer.decode(new, skip_special_tokens=True).strip())
    model.train(was_training)
    return out
