"""`hf_classifier`: a BERT-family encoder fine-tuned for sequence classification.

The base is a standard Hugging Face directory: `models/<base>` written by a pretrain stage
(`bert_mlm`) or an import stage (`hf`: a hub id such as beomi/kcbert-base, or a local path).
A training step is plain PyTorch; the steps run in the shared `Loop` (core/train/loop.py):

- `unfrozen_layers: N` trains only the top N encoder layers plus the head (pooler and
  classifier); embeddings and lower layers keep their base weights (null: train everything);
- dynamic padding over length-grouped batches; AdamW with linear warm-up and decay;
  gradient clipping; bf16 autocast behind a param;
- every `eval_every` steps the valid accuracy is measured and logged; the best weights are
  kept and training stops after `patience` evaluations without improvement;
- every `checkpoint_every` steps a checkpoint (weights, optimiser, schedule, position in the
  epoch, RNG, best-so-far) is written under `.reprolab/checkpoints/`; rerunning the same
  params on the same base resumes from it and ends with the same weights as an uninterrupted
  run.

Saved as one directory that is at once a standard Hugging Face directory (config.json with
`id2label`/`label2id` from the dataset's `label_names`, model.safetensors, tokenizer files and
a model card README.md at its root: `AutoModelForSequenceClassification.from_pretrained(dir)`)
and an MLflow pyfunc (frame with `text` -> (n, 2) probabilities, like every sentiment model)
whose `artifacts/reprolab.json` holds the prediction settings; its folder's parent is the
root. Models saved before kept the HF files under `artifacts/hf/`; they still load."""

from __future__ import annotations

import hashlib
import json
import tempfile
from functools import partial
from pathlib import Path
from typing import Any, Self

import mlflow.pyfunc
import numpy as np

from reprolab.core.model import Model, StepLogger
from reprolab.core.saving import add_transformers_flavor, save_pyfunc
from reprolab.core.train import checkpoint
from reprolab.core.train.budget import cut_short_note
from reprolab.core.train.loop import Loop
from reprolab.core.train.schedule import lambda_lr
from reprolab.core.train.setup import (
    autocast,
    record,
    reproducible_fit,
    resolve_bf16,
    resolve_device,
    set_threads,
)
from reprolab.workloads.sentiment.hf_classifier_net import (
    base_dir,
    freeze,
    label_names,
    load_classifier,
)

TEXT = "text"
CONFIG_FILE = "reprolab.json"  # MLflow artifact: max_length, batch size, labels to predict
LEGACY_HF = "hf"  # the artifact that held the HF directory in models saved before
PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "pandas")


def predict_proba(model, tokenizer, texts, max_length: int, batch_size: int, bf16: bool):
    """(n, 2) float64 softmax probabilities, batches in length order, results in input order
    (on the model's device: a GPU while training, the CPU once saved)."""
    import torch

    from reprolab.workloads.sentiment import hf_text

    ids = hf_text.encode(tokenizer, [str(t) for t in texts], max_length)
    out = np.zeros((len(ids), model.config.num_labels), dtype=np.float64)
    device = model.device.type
    model.eval()
    with torch.inference_mode():
        for index in hf_text.sorted_batches([len(x) for x in ids], batch_size):
            padded = hf_text.pad([ids[i] for i in index], tokenizer.pad_token_id)
            batch, attention = (t.to(device) for t in padded)
            with autocast(device, bf16):
                logits = model(input_ids=batch, attention_mask=attention).logits
            out[index] = torch.softmax(logits.float(), dim=-1).double().cpu().numpy()
    return out


class HFClassifier(Model):
    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.model = None
        self.tokenizer = None
        self.summary: dict[str, Any] = {}
        self.frozen: list[str] = []
        self.labels: list[str] = []
        self.bf16 = resolve_bf16(params.bf16, "cpu")  # settled by the device in fit

    @reproducible_fit
    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        import torch
        from transformers import AutoTokenizer

        from reprolab.workloads.sentiment import hf_text

        p = self.params
        device = resolve_device(p.device)
        self.bf16 = resolve_bf16(p.bf16, device)
        record(run, device=device, bf16=self.bf16)
        torch.manual_seed(self.seed)
        source = base_dir(p.base)
        tokenizer = AutoTokenizer.from_pretrained(source)
        self.labels = label_names(train, p.dataset)
        model = load_classifier(source, len(self.labels), p.classifier_dropout, self.labels)
        self.frozen = freeze(model, p.unfrozen_layers)
        model.to(device)

        ids = hf_text.encode(tokenizer, list(train.X[TEXT]), p.max_length)
        labels = np.asarray(train.y, dtype=np.int64)
        lengths = [len(x) for x in ids]
        per_epoch = -(-len(ids) // p.batch_size)
        total = (
            per_epoch * p.epochs if p.max_steps is None else min(p.max_steps, per_epoch * p.epochs)
        )
        trainable = [t for t in model.parameters() if t.requires_grad]
        optimiser = torch.optim.AdamW(
            hf_text.decay_groups(model, p.weight_decay), lr=p.lr, fused=True
        )
        ckdir = checkpoint.checkpoint_dir(
            "hf_classifier", p, self.seed, extra=_fingerprint(source, train)
        )
        schedule = lambda_lr(
            optimiser, warmup=int(p.warmup_ratio * total), total=total, decay="linear"
        )
        order = hf_text.EpochOrder(lengths, p.batch_size, self.seed)
        kept = (model, optimiser, schedule, order)  # what a checkpoint carries
        seen = 0

        def step(_: int) -> dict[str, float]:
            nonlocal seen
            model.train()
            index = order.next()
            batch, attention = hf_text.pad([ids[i] for i in index], tokenizer.pad_token_id)
            batch, attention = batch.to(device), attention.to(device)
            target = torch.from_numpy(labels[index]).to(device)
            with autocast(device, self.bf16):
                logits = model(input_ids=batch, attention_mask=attention).logits
            loss = torch.nn.functional.cross_entropy(logits.float(), target)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trainable, p.max_grad_norm)
            optimiser.step()
            schedule.step()
            seen += len(index)
            return {"train_loss": loss.item()}

        loop = Loop(
            "hf_classifier",
            steps=total,
            eval_every=p.eval_every,
            monitor="valid_accuracy",
            mode="max",
            patience=p.patience,
            best=-1.0,
            max_seconds=p.max_seconds,
            checkpoint=ckdir,
            checkpoint_every=p.checkpoint_every,
        )
        outcome = loop.run(
            step,
            lambda: {"valid_accuracy": self._accuracy(model, tokenizer, valid)},
            run=run,
            keep=model,  # the best weights are put back at the end
            status=lambda: {"lr": schedule.get_last_lr()[0]},
            save_state=partial(hf_text.training_state, *kept),
            load_state=partial(hf_text.load_training_state, *kept),
        )
        self.model, self.tokenizer = model.cpu().eval(), tokenizer  # saved from the CPU
        self.summary = {
            "base": str(source),
            "steps": outcome.steps,
            "planned_steps": total,
            "best_step": outcome.best_step,
            "best_valid_accuracy": outcome.best,
            "stopped_early": outcome.stopped_early,
            "cut_short": outcome.cut_short,
            "frozen_parameters": len(self.frozen),
            "trainable_parameters": sum(t.numel() for t in trainable),
            "parameters": sum(t.numel() for t in model.parameters()),
            "train_examples_per_s": round(seen / max(outcome.seconds, 1e-9), 1),
            "resumed_from_step": outcome.resumed_from or None,
        }
        return self

    def _accuracy(self, model, tokenizer, split: Any) -> float:
        probs = predict_proba(
            model,
            tokenizer,
            list(split.X[TEXT]),
            self.params.max_length,
            self.params.eval_batch_size,
            self.bf16,
        )
        return float(np.mean(probs.argmax(1) == np.asarray(split.y)))

    def predict(self, inputs: Any) -> np.ndarray:
        """(n, 2) class probabilities, like the saved pyfunc."""
        if self.model is None:
            raise RuntimeError("fit the model before predicting")
        texts = list(inputs[TEXT]) if hasattr(inputs, "columns") else list(inputs)
        p = self.params
        return predict_proba(
            self.model, self.tokenizer, texts, p.max_length, p.eval_batch_size, self.bf16
        )

    def save(self, path: Path, input_example: Any) -> None:
        """The MLflow pyfunc files, then the HF model, tokenizer and model card, at `path`."""
        from mlflow.models import infer_signature

        from reprolab.core.requirements import pins

        if self.model is None:
            raise RuntimeError("fit the model before saving")
        path = Path(path)
        signature = None
        if input_example is not None:
            signature = infer_signature(input_example, self.predict(input_example))
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / CONFIG_FILE
            config.write_text(json.dumps(self._config(), indent=2, sort_keys=True) + "\n")
            save_pyfunc(
                path,
                python_model=HFClassifierPyfunc(),
                artifacts={"config": str(config)},
                input_example=input_example,
                signature=signature,
                pip_requirements=pins(*PACKAGES),
            )
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        add_transformers_flavor(path, self.model, self.tokenizer, "text-classification")
        self._write_card(path)

    def _config(self) -> dict[str, Any]:
        p = self.params
        return {
            "max_length": p.max_length,
            "batch_size": p.eval_batch_size,
            "bf16": self.bf16,
            "threads": p.threads,
            "label_names": self.labels,
            "summary": self.summary,
        }

    def _write_card(self, path: Path) -> None:
        from reprolab.core import card
        from reprolab.lm import model_root

        base_model, base_license = card.base_card(model_root(base_dir(self.params.base)))
        labels = ", ".join(f"{i} {name}" for i, name in enumerate(self.labels))
        name = card.model_name(path)
        card.write_card(
            path,
            name=name,
            kind="hf_classifier",
            summary=(
                f"A BERT-family encoder (base: `{base_model}`) fine-tuned for binary sentiment "
                f"classification of Korean movie reviews. Labels: {labels}."
            ),
            license=card.combined_license(base_license, *card.data_license("nsmc")),
            pipeline_tag="text-classification",
            datasets=["nsmc"],
            base_model=base_model,
            tags=["bert", "sentiment", "text-classification", "mlflow"],
            usage=USAGE.format(name=name),
            params=card.tuning_params(self.params),
            metrics={"valid": {"accuracy": self.summary.get("best_valid_accuracy")}},
            intended_use=(
                "Sentiment (negative/positive) of short Korean movie reviews, as a baseline "
                "and a worked example of a reproducible fine-tuning pipeline."
            ),
            limits=[
                "Trained on movie reviews only: other domains, long texts and other "
                "languages are out of distribution.",
                f"Texts are cut to {self.params.max_length} tokens.",
                "Two classes only: neutral or mixed reviews get one of the two labels.",
                *cut_short_note(
                    bool(self.summary.get("cut_short")),
                    self.summary.get("steps"),
                    self.params.max_seconds,
                ),
            ],
        )


USAGE = """```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer

model = AutoModelForSequenceClassification.from_pretrained("models/{name}")
tokenizer = AutoTokenizer.from_pretrained("models/{name}")
# or as an MLflow pyfunc: a frame with a `text` column -> (n, 2) probabilities
import mlflow.pyfunc, pandas as pd

mlflow.pyfunc.load_model("models/{name}").predict(pd.DataFrame({{"text": ["재밌어요"]}}))
# or as MLflow's transformers flavour: a text-classification pipeline
import mlflow.transformers

mlflow.transformers.load_model("models/{name}")("재밌어요")
```"""


class HFClassifierPyfunc(mlflow.pyfunc.PythonModel):
    """Serving wrapper: a frame with a `text` column in, (n, 2) probabilities out."""

    def __getstate__(self) -> dict:
        # MLflow may load the model while saving it (input example): never pickle weights
        return {}

    def load_context(self, context) -> None:
        from transformers import AutoTokenizer

        directory, config = _locate(context.artifacts)
        self.config = json.loads(config.read_text())
        set_threads(self.config.get("threads", self.config.get("num_threads")))
        self.tokenizer = AutoTokenizer.from_pretrained(directory)
        self.model = load_classifier(directory).eval()

    def predict(self, context, model_input, params=None):
        column = model_input[TEXT] if TEXT in model_input else model_input.iloc[:, 0]
        texts = column.fillna("").astype(str).tolist()
        c = self.config
        return predict_proba(
            self.model, self.tokenizer, texts, c["max_length"], c["batch_size"], c["bf16"]
        )


def _locate(artifacts: dict[str, str]) -> tuple[Path, Path]:
    """(HF directory, prediction settings): the model's root and its artifacts/reprolab.json,
    or, for a model saved before, artifacts/hf and the settings inside it."""
    if LEGACY_HF in artifacts:
        directory = Path(artifacts[LEGACY_HF])
        return directory, directory / CONFIG_FILE
    config = Path(artifacts["config"])
    return config.parent.parent, config


def _fingerprint(source: Path, train: Any) -> str:
    """The base's weights and the training texts: a checkpoint only resumes the same run."""
    digest = hashlib.sha256()
    for name in ("model.safetensors", "pytorch_model.bin", "config.json"):
        f = source / name
        if f.is_file():
            digest.update(f.read_bytes())
    digest.update(str(len(train.y)).encode())
    digest.update(hashlib.sha256("\n".join(train.X[TEXT]).encode()).digest())
    return digest.hexdigest()[:16]
