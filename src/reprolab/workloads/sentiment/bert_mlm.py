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

The loop is plain PyTorch: AdamW, linear warm-up and decay, gradient clipping, length-grouped
batches with dynamic padding, a progress bar, the MLM loss to dvclive/MLflow, and a checkpoint
every `checkpoint_every` steps from which a rerun of the same params resumes."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Self

import numpy as np

from reprolab.core.model import Model, StepLogger
from reprolab.core.train import checkpoint
from reprolab.core.train.budget import Budget
from reprolab.core.train.schedule import lambda_lr
from reprolab.core.train.setup import (
    autocast,
    module_device,
    record,
    resolve_bf16,
    resolve_device,
    set_threads,
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

    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        import torch
        from tqdm.auto import tqdm
        from transformers import BertConfig, BertForMaskedLM

        from reprolab.workloads.sentiment import hf_text

        p = self.params
        set_threads(p.threads)
        device = resolve_device(p.device)
        self.bf16 = resolve_bf16(p.bf16, device)
        record(run, device=device, bf16=self.bf16)
        torch.manual_seed(self.seed)
        texts = list(train.X[TEXT])
        ckdir = checkpoint.checkpoint_dir("bert_mlm", p, self.seed, extra=_fingerprint(texts))
        state = checkpoint.load(ckdir)
        started = time.perf_counter()
        if state is not None and (ckdir / "tokenizer").is_dir():
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(ckdir / "tokenizer")
        else:
            state = None
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
        start = state["step"] if state is not None else 0
        budget = Budget("bert_mlm", p.max_seconds, p.max_steps, start, run=run)
        schedule = lambda_lr(optimiser, warmup=p.warmup_steps, total=budget, decay="linear")
        step, epoch, position, losses, tokens = 0, 0, 0, [], 0
        valid_loss = None
        if state is not None:
            checkpoint.restore_training(state, model, optimiser, schedule)
            step, epoch, position = state["step"], state["epoch"], state["position"]
        bar = tqdm(total=p.max_steps, initial=step, desc="mlm", unit="step", leave=False)
        loop_started = time.perf_counter()
        steps_at_start = step
        while step < budget.total:
            batches = hf_text.epoch_batches(lengths, p.batch_size, self.seed, epoch)
            for index in batches[position:]:
                model.train()
                batch, attention = hf_text.pad([ids[i] for i in index], tokenizer.pad_token_id)
                inputs, labels = mask_tokens(
                    batch, batch < len(SPECIAL), len(tokenizer), p.mask_prob
                )
                inputs, attention, labels = (t.to(device) for t in (inputs, attention, labels))
                with autocast(device, self.bf16):
                    loss = mlm_loss(model, inputs, attention, labels)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), p.max_grad_norm)
                optimiser.step()
                budget.tick(step + 1)
                schedule.step()
                step, position = step + 1, position + 1
                losses.append(loss.item())
                tokens += int(attention.sum())
                bar.update(1)
                if step % p.eval_every == 0 or step == budget.total:
                    metrics = {
                        "train_mlm_loss": float(np.mean(losses)),
                        "valid_mlm_loss": self._eval_loss(model, tokenizer, eval_ids),
                        "lr": schedule.get_last_lr()[0],
                    }
                    losses, valid_loss = [], metrics["valid_mlm_loss"]
                    bar.set_postfix(
                        loss=f"{metrics['train_mlm_loss']:.3f}",
                        valid=f"{metrics['valid_mlm_loss']:.3f}",
                    )
                    if run is not None:
                        run.log_step(step, metrics)
                if step % p.checkpoint_every == 0 and step < budget.total:
                    checkpoint.save_training(
                        ckdir, model, optimiser, schedule, step=step, epoch=epoch, position=position
                    )
                if step >= budget.total:
                    break
            else:
                epoch, position = epoch + 1, 0
        bar.close()
        seconds = time.perf_counter() - loop_started
        self.model, self.tokenizer = model.cpu().eval(), tokenizer  # saved from the CPU
        self.eval_ids = eval_ids
        self.summary = {
            "steps": step,
            "epochs_seen": round(step * p.batch_size / max(1, len(ids)), 3),
            "train_sequences": len(ids),
            "vocab_size": len(tokenizer),
            "parameters": sum(t.numel() for t in model.parameters()),
            "tokenizer_seconds": round(tokenizer_seconds, 2),
            "steps_per_s": round((step - steps_at_start) / max(seconds, 1e-9), 3),
            "tokens_per_s": round(tokens / max(seconds, 1e-9), 1),
            "resumed_from_step": steps_at_start or None,
            "valid_mlm_loss": valid_loss,
        }
        checkpoint.clear(ckdir)
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
