"""`bert_mlm`: a base encoder learned from unlabelled text, KcBERT's recipe at laptop scale.

1. A WordPiece tokenizer is trained with HF `tokenizers` on the training texts.
2. A small BERT (`BertForMaskedLM` from a `BertConfig`: size in params) learns masked-language
   modelling: 15 % of the tokens picked, 80 % of those replaced by [MASK], 10 % by a random
   token, 10 % kept; the loss is computed on the picked positions only (the vocabulary
   projection on the other 85 % would be wasted work).
3. `save` writes a standard Hugging Face directory (config.json, model.safetensors,
   tokenizer.json, tokenizer_config.json, a README.md model card) that
   `AutoModel.from_pretrained(dir)`, `AutoTokenizer.from_pretrained(dir)` and a finetune kind
   (`base: <this model>`) load.

A training step is plain PyTorch: AdamW, linear warm-up and decay, gradient clipping,
length-grouped batches with dynamic padding. The steps run in the shared `Loop`: a progress
bar, the MLM losses to dvclive/MLflow, and a checkpoint every `checkpoint_every` steps (with
the place in the data, and the tokenizer beside it) from which a rerun of the same params
resumes."""

from __future__ import annotations

import json
import math
import time
from functools import partial
from pathlib import Path
from typing import Any, Self

import numpy as np

from reprolab.core.model import Model, StepLogger
from reprolab.core.train import checkpoint
from reprolab.core.train.budget import cut_short_note
from reprolab.core.train.loop import Loop
from reprolab.core.train.schedule import lambda_lr
from reprolab.core.train.setup import (
    autocast,
    module_device,
    record,
    reproducible_fit,
    resolve_bf16,
    resolve_device,
)

TEXT = "text"


def mask_tokens(ids, special, vocab_size: int, prob: float, generator=None):
    """BERT's masking of a padded id batch: returns (inputs, labels); labels are -100 where
    nothing is predicted. At least one position per batch is picked."""
    import torch

    labels = ids.clone()
    candidates = ~special
    picked = (torch.rand(ids.shape, generator=generator) < prob) & candidates
    if not picked.any():
        first = candidates.nonzero()
        if len(first):
            picked[first[0, 0], first[0, 1]] = True
    labels[~picked] = -100
    inputs = ids.clone()
    roll = torch.rand(ids.shape, generator=generator)
    replace = picked & (roll < 0.8)
    inputs[replace] = MASK_ID_PLACEHOLDER
    randomise = picked & (roll >= 0.8) & (roll < 0.9)
    inputs[randomise] = torch.randint(
        len(SPECIAL), vocab_size, (int(randomise.sum()),), generator=generator
    )
    return inputs, labels


SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MASK_ID_PLACEHOLDER = 4  # "[MASK]" is the fifth special token of every tokenizer we train


def mlm_loss(model, inputs, attention, labels):
    """Cross-entropy on the picked positions only (BertForMaskedLM's head applied to them)."""
    import torch.nn.functional as F

    hidden = model.bert(input_ids=inputs, attention_mask=attention).last_hidden_state
    picked = labels != -100
    logits = model.cls(hidden[picked])
    return F.cross_entropy(logits, labels[picked])


class BertMLM(Model):
    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.model = None
        self.tokenizer = None
        self.summary: dict[str, Any] = {}
        self.bf16 = resolve_bf16(params.bf16, "cpu")  # settled by the device in fit

    # ------------------------------------------------------------ training

    @reproducible_fit
    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        import torch
        from transformers import BertConfig, BertForMaskedLM

        from reprolab.workloads.sentiment import hf_text

        p = self.params
        device = resolve_device(p.device)
        self.bf16 = resolve_bf16(p.bf16, device)
        record(run, device=device, bf16=self.bf16)
        torch.manual_seed(self.seed)
        texts = list(train.X[TEXT])
        ckdir = checkpoint.checkpoint_dir("bert_mlm", p, self.seed, extra=_fingerprint(texts))
        started = time.perf_counter()
        if (ckdir / checkpoint.STATE).is_file() and (ckdir / "tokenizer").is_dir():
            from transformers import AutoTokenizer  # the interrupted run's vocabulary

            tokenizer = AutoTokenizer.from_pretrained(ckdir / "tokenizer")
        else:
            checkpoint.clear(ckdir)  # nothing to resume without the tokenizer it was made with
            tokenizer = hf_text.train_tokenizer(
                texts, p.vocab_size, p.min_frequency, p.lowercase, p.max_length
            )
            tokenizer.save_pretrained(ckdir / "tokenizer")
        if sorted(tokenizer.all_special_ids) != list(range(len(SPECIAL))):  # ids < 5: special
            raise RuntimeError(f"unexpected special token ids {tokenizer.all_special_ids}")
        tokenizer_seconds = time.perf_counter() - started
        ids = [x for x in hf_text.encode(tokenizer, texts, p.max_length) if len(x) > 2]
        lengths = [len(x) for x in ids]
        eval_ids = self._eval_ids(tokenizer, valid)

        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=p.hidden_size,
            num_hidden_layers=p.num_layers,
            num_attention_heads=p.num_heads,
            intermediate_size=p.intermediate_size,
            max_position_embeddings=p.max_length,
            hidden_dropout_prob=p.dropout,
            attention_probs_dropout_prob=p.dropout,
            pad_token_id=tokenizer.pad_token_id,
        )
        model = BertForMaskedLM(config).to(device)
        optimiser = torch.optim.AdamW(
            hf_text.decay_groups(model, p.weight_decay),
            lr=p.lr,
            betas=(0.9, 0.98),
            eps=1e-6,
            fused=True,
        )
        schedule = lambda_lr(optimiser, warmup=p.warmup_steps, total=p.max_steps, decay="linear")
        order = hf_text.EpochOrder(lengths, p.batch_size, self.seed)
        kept = (model, optimiser, schedule, order)  # what a checkpoint carries
        tokens = 0

        def step(_: int) -> dict[str, float]:
            nonlocal tokens
            model.train()
            index = order.next()
            batch, attention = hf_text.pad([ids[i] for i in index], tokenizer.pad_token_id)
            inputs, labels = mask_tokens(batch, batch < len(SPECIAL), len(tokenizer), p.mask_prob)
            inputs, attention, labels = (t.to(device) for t in (inputs, attention, labels))
            with autocast(device, self.bf16):
                loss = mlm_loss(model, inputs, attention, labels)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), p.max_grad_norm)
            optimiser.step()
            schedule.step()
            tokens += int(attention.sum())
            return {"train_mlm_loss": loss.item()}

        loop = Loop(
            "bert_mlm",
            steps=p.max_steps,
            eval_every=p.eval_every,
            max_seconds=p.max_seconds,
            checkpoint=ckdir,
            checkpoint_every=p.checkpoint_every,
        )
        outcome = loop.run(
            step,
            lambda: {"valid_mlm_loss": self._eval_loss(model, tokenizer, eval_ids)},
            run=run,
            status=lambda: {"lr": schedule.get_last_lr()[0]},
            save_state=partial(hf_text.training_state, *kept),
            load_state=partial(hf_text.load_training_state, *kept),
        )
        seconds = max(outcome.seconds, 1e-9)
        self.model, self.tokenizer = model.cpu().eval(), tokenizer  # saved from the CPU
        self.eval_ids = eval_ids
        losses = [h["valid_mlm_loss"] for h in outcome.history if "valid_mlm_loss" in h]
        self.summary = {
            "steps": outcome.steps,
            "epochs_seen": round(outcome.steps * p.batch_size / max(1, len(ids)), 3),
            "train_sequences": len(ids),
            "vocab_size": len(tokenizer),
            "parameters": sum(t.numel() for t in model.parameters()),
            "tokenizer_seconds": round(tokenizer_seconds, 2),
            "steps_per_s": round((outcome.steps - outcome.resumed_from) / seconds, 3),
            "tokens_per_s": round(tokens / seconds, 1),
            "resumed_from_step": outcome.resumed_from or None,
            "valid_mlm_loss": losses[-1] if losses else None,
            "cut_short": outcome.cut_short,
        }
        return self

    def _eval_ids(self, tokenizer, split: Any) -> list[list[int]]:
        from reprolab.workloads.sentiment import hf_text

        if split is None:
            return []
        texts = list(split.X[TEXT])[: self.params.eval_rows]
        return [x for x in hf_text.encode(tokenizer, texts, self.params.max_length) if len(x) > 2]

    def _eval_loss(self, model, tokenizer, eval_ids: list[list[int]]) -> float:
        """MLM loss on a fixed slice of valid with a fixed masking (comparable across steps)."""
        import torch

        from reprolab.workloads.sentiment import hf_text

        if not eval_ids:
            return float("nan")
        generator = torch.Generator().manual_seed(self.seed)
        model.eval()
        device = module_device(model)
        total, count = 0.0, 0
        with torch.no_grad():
            for index in hf_text.sorted_batches([len(x) for x in eval_ids], 256):
                batch, attention = hf_text.pad([eval_ids[i] for i in index], tokenizer.pad_token_id)
                inputs, labels = mask_tokens(
                    batch,
                    batch < len(SPECIAL),
                    len(tokenizer),
                    self.params.mask_prob,
                    generator,
                )
                n = int((labels != -100).sum())
                inputs, attention, labels = (t.to(device) for t in (inputs, attention, labels))
                with autocast(device, self.bf16):
                    total += mlm_loss(model, inputs, attention, labels).float().item() * n
                count += n
        return total / max(count, 1)

    # ------------------------------------------------------------ interface

    def evaluate(self, split: Any) -> dict:
        """MLM loss and perplexity on (the first `eval_rows` of) a split."""
        if self.model is None:
            raise RuntimeError("fit the model before evaluating")
        loss = self._eval_loss(self.model, self.tokenizer, self._eval_ids(self.tokenizer, split))
        return {"mlm_loss": loss, "perplexity": math.exp(min(loss, 50.0))}

    def predict(self, inputs: Any) -> np.ndarray:
        """Mean-pooled last hidden states, (n, hidden_size): sentence embeddings."""
        import torch

        from reprolab.workloads.sentiment import hf_text

        if self.model is None:
            raise RuntimeError("fit the model before predicting")
        texts = list(inputs[TEXT]) if hasattr(inputs, "columns") else list(inputs)
        ids = hf_text.encode(self.tokenizer, texts, self.params.max_length)
        out = np.zeros((len(ids), self.params.hidden_size), dtype=np.float32)
        with torch.no_grad():
            for index in hf_text.sorted_batches([len(x) for x in ids], 256):
                batch, attention = hf_text.pad([ids[i] for i in index], self.tokenizer.pad_token_id)
                hidden = self.model.bert(input_ids=batch, attention_mask=attention)[0]
                weights = attention.unsqueeze(-1).float()
                out[index] = ((hidden * weights).sum(1) / weights.sum(1)).numpy()
        return out

    def save(self, path: Path, input_example: Any) -> None:
        """A standard Hugging Face model directory (plus reprolab.json: how it was made)."""
        if self.model is None:
            raise RuntimeError("fit the model before saving")
        path = Path(path)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        summary = {
            "kind": "bert_mlm",
            "params": self.params.model_dump(mode="json", exclude={"workload"}),
            **self.summary,
        }
        (path / "reprolab.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        self._write_card(path)

    def _write_card(self, path: Path) -> None:
        from reprolab.core import card

        p, s = self.params, self.summary
        name = card.model_name(path)
        loss = s.get("valid_mlm_loss")
        valid = {"mlm_loss": loss, "perplexity": _exp(loss)}
        card.write_card(
            path,
            name=name,
            kind="bert_mlm",
            summary=(
                f"A small BERT encoder ({s.get('parameters')} parameters: {p.num_layers} "
                f"layers, width {p.hidden_size}, {p.num_heads} heads) with its own WordPiece "
                f"vocabulary of {s.get('vocab_size')} tokens, pretrained with masked-language "
                f"modelling on the unlabelled NSMC training reviews for {s.get('steps')} steps "
                "(KcBERT's recipe at laptop scale). A base for sentiment fine-tuning."
            ),
            license=card.combined_license(*card.data_license("nsmc")),
            pipeline_tag="fill-mask",
            datasets=["nsmc"],
            tags=["bert", "fill-mask", "from-scratch"],
            usage=MLM_USAGE.format(name=name),
            params=card.tuning_params(p),
            metrics={"valid": valid},
            intended_use=(
                "A base encoder for Korean movie-review tasks (`finetune` entries name it as "
                "`base`); sentence embeddings by mean pooling."
            ),
            limits=[
                "Learned from movie reviews only: other domains are out of distribution.",
                f"Inputs are cut to {p.max_length} tokens.",
                *cut_short_note(bool(s.get("cut_short")), s.get("steps"), p.max_seconds),
            ],
        )


MLM_USAGE = """```python
from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

encoder = AutoModel.from_pretrained("models/{name}")
mlm = AutoModelForMaskedLM.from_pretrained("models/{name}")
tokenizer = AutoTokenizer.from_pretrained("models/{name}")
```"""


def _exp(loss: float | None) -> float | None:
    return None if loss is None or loss != loss else math.exp(min(loss, 50.0))


def _fingerprint(texts: list[str]) -> str:
    import hashlib

    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:16]
