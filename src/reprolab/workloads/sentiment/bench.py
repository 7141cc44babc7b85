"""The encoder's fine-tuning loop as the pipeline runs it (HFClassifier.fit: tokenizing,
length-grouped batches with dynamic padding, a progress bar, early-stopping bookkeeping with a
copy of the best weights, checkpoint bookkeeping, a final valid accuracy) against a bare
PyTorch loop over the same model (the default nsmc-encoder size), the same batches, the same
maths (AdamW, warm-up/decay, clipping, bf16) and the same valid pass: the ratio is what the
pipeline's bookkeeping costs. Also prints prediction examples/s at batch 1 and 64."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from reprolab.core.bench import Entry
from reprolab.core.train.schedule import lambda_lr

ROWS, VALID, BATCH = 2048, 128, 32  # 64 steps per fit
WORDS = [
    "정말",
    "재밌어요",
    "배우",
    "연기",
    "최고",
    "감동",
    "추천",
    "지루하다",
    "최악",
    "영화",
    "시간",
    "낭비",
    "별로",
    "실망",
    "명작",
]


def _texts(n: int, seed: int) -> tuple[list[str], list[int]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    texts = [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 30)))) for _ in range(n)]
    return texts, [int(x) for x in rng.integers(0, 2, size=n)]


def _setup():
    import numpy as np
    import pandas as pd
    import torch
    from transformers import BertConfig, BertForMaskedLM

    from reprolab.workloads.sentiment import hf_text
    from reprolab.workloads.sentiment.hf_classifier import HFClassifier
    from reprolab.workloads.sentiment.hf_classifier_net import load_classifier
    from reprolab.workloads.sentiment.params import HFClassifierParams

    torch.set_num_threads(1)  # see docs/sentiment.md: 2 threads on a shared box
    texts, labels = _texts(ROWS, 0)
    vtexts, vlabels = _texts(VALID, 1)

    class Split:
        def __init__(self, t, y):
            self.X, self.y = pd.DataFrame({"text": t}), np.asarray(y)

    train, valid = Split(texts, labels), Split(vtexts, vlabels)
    base = Path(tempfile.mkdtemp(prefix="reprolab-bench-encoder-"))
    os.environ["REPROLAB_CHECKPOINTS"] = str(base / "checkpoints")
    tokenizer = hf_text.train_tokenizer(texts * 4, 2000, 1, False, 64)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=512,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(base / "hf")
    tokenizer.save_pretrained(base / "hf")
    params = HFClassifierParams(
        kind="hf_classifier",
        base=str(base / "hf"),
        max_length=64,
        batch_size=BATCH,
        epochs=1,
        eval_every=10**6,
        checkpoint_every=500,
        bf16=True,
        threads=1,
    )
    return params, train, valid, base / "hf", tokenizer, HFClassifier, load_classifier


def _variants() -> dict:
    import torch

    from reprolab.core.train.setup import autocast
    from reprolab.workloads.sentiment import hf_text

    params, train, valid, hf, _, HFClassifier, load_classifier = _setup()

    def ours() -> None:
        HFClassifier(params, seed=0).fit(train, valid, None)

    from transformers import AutoTokenizer

    labels = torch.as_tensor(train.y)

    def bare() -> None:
        torch.manual_seed(0)
        # the same batches from the same texts: tokenizer, token ids, length-grouped order
        tokenizer = AutoTokenizer.from_pretrained(hf)
        ids = hf_text.encode(tokenizer, list(train.X["text"]), params.max_length)
        batches = hf_text.epoch_batches([len(x) for x in ids], BATCH, 0, 0)
        vids = hf_text.encode(tokenizer, list(valid.X["text"]), params.max_length)
        model = load_classifier(hf)
        optimiser = torch.optim.AdamW(model.parameters(), lr=params.lr, fused=True)
        # same maths as ours
        schedule = lambda_lr(optimiser, warmup=1, total=len(batches), decay="linear")
        model.train()
        for index in batches:
            x, mask = hf_text.pad([ids[i] for i in index], 0)
            with autocast("cpu", True):
                logits = model(input_ids=x, attention_mask=mask).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), labels[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.max_grad_norm)
            optimiser.step()
            schedule.step()
        model.eval()
        with torch.inference_mode(), autocast("cpu", True):
            x, mask = hf_text.pad(vids, 0)
            model(input_ids=x, attention_mask=mask).logits.argmax(-1)

    return {"baseline": bare, "candidate": ours}


def prediction_report() -> str:
    """Examples/s of the classifier's predict_proba at batch 1 and 64 (256 texts)."""
    from reprolab.workloads.sentiment.hf_classifier import predict_proba

    _params, train, _, hf, tokenizer, _, load_classifier = _setup()
    model = load_classifier(hf).eval()
    texts = list(train.X["text"])[:256]
    out = []
    for batch in (1, 64):
        predict_proba(model, tokenizer, texts[:64], 64, batch, True)  # warm-up
        started = time.perf_counter()
        predict_proba(model, tokenizer, texts, 64, batch, True)
        out.append(f"batch {batch}: {len(texts) / (time.perf_counter() - started):.0f} examples/s")
    return "encoder prediction: " + ", ".join(out)


ENTRY = Entry(
    name="encoder-loop",
    unit=f"{ROWS // BATCH}-step fit",
    setup=_variants,
    claim="our fine-tuning loop vs a bare PyTorch loop over the same model and batches "
    "(target >= 0.95)",
    report=prediction_report,
)
