"""`minit`: Mini-T, a small decoder-only transformer trained from scratch on a token stream
(Tiny Shakespeare), nanoGPT-style, in a standard Hugging Face architecture (Llama, Mistral
with a sliding window, or GPT-2) so that `generate`, PEFT and serving take it unchanged.

Trained by the one loop of core.train.loop (`Loop`: steps, evaluation and logging cadence,
checkpoints, resume, curves); Mini-T's own parts: random windows of `block_size` tokens from
the train split; AdamW (weight decay on matrices only); linear warm-up then cosine decay to
`min_lr_ratio * lr` over `max_steps` (steps, never seconds: `max_seconds` is only a guard,
and a run it stops is tagged cut short); gradient clipping; validation loss on fixed windows
every `eval_every` steps; train loss, lr and tokens/s every `log_every`; a checkpoint every
`checkpoint_every` steps (model, optimiser, sampler RNG and elapsed time, with the loop's
counters) from which an interrupted run resumes; dvclive/MLflow curves through `run.log_step`.

Saved as a Hugging Face model directory that is also an MLflow pyfunc model (see
reprolab.lm.pyfunc), with a model card (README.md), `samples.json` (generations after
training) and `training.json` (steps, tokens, seconds, throughput)."""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path
from typing import Any, Self

# (OMP_WAIT_POLICY=PASSIVE is set by reprolab/__init__.py, which always loads first.)
import numpy as np
import torch

from reprolab.core.io import atomic_write_json
from reprolab.core.model import Model, StepLogger
from reprolab.core.train.budget import cut_short_note
from reprolab.core.train.loop import Loop
from reprolab.core.train.schedule import warmup_decay
from reprolab.core.train.setup import record, reproducible_fit, resolve_device
from reprolab.workloads.minit.architecture import build_net, hf_config
from reprolab.workloads.minit.training import Windows, loss_of

# params that do not change what is learned: a checkpoint stays valid across them
_NOT_LEARNING = {
    "workload",
    "checkpoint_dir",
    "threads",
    "device",
    "sample_tokens",
    "temperature",
    "top_k",
    "task",
}


class MiniT(Model):
    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.net = None
        self.tokenizer = None
        self.samples: list[dict[str, str]] = []
        self.summary: dict[str, Any] = {}

    # ------------------------------------------------------------------ training

    def checkpoint_path(self, train_tokens: np.ndarray) -> Path:
        """checkpoint_dir/minit-<hash of the learning params, seed and train tokens>/, in the
        training kit's format (core.train.checkpoint)."""
        spec = {k: v for k, v in self.params.model_dump().items() if k not in _NOT_LEARNING}
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode())
        digest.update(str(self.seed).encode())
        digest.update(np.ascontiguousarray(train_tokens).tobytes())
        return Path(self.params.checkpoint_dir) / f"minit-{digest.hexdigest()[:16]}"

    @reproducible_fit
    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        p = self.params
        device = resolve_device(p.device)
        record(run, device=device, bf16=False)
        torch.manual_seed(self.seed)
        self.tokenizer = train.tokenizer()
        net = build_net(hf_config(p, self.tokenizer)).to(device)
        decay = [w for w in net.parameters() if w.dim() >= 2]
        no_decay = [w for w in net.parameters() if w.dim() < 2]
        optimiser = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": p.weight_decay},
                {"params": no_decay, "weight_decay": 0.0},
            ],
            lr=p.lr,
            betas=(0.9, p.beta2),
        )
        sampler = Windows(train.tokens, p.block_size, p.batch_size, self.seed)
        valid_batches = [
            (x.to(device), y.to(device))
            for x, y in Windows(valid.tokens, p.block_size, p.batch_size, self.seed).fixed(
                p.eval_batches, self.seed + 1
            )
        ]
        tokens_per_step = p.batch_size * p.block_size
        # measurements only (never steering training): the lr last set, the steps since the
        # last logged point for tokens_per_s, and the seconds of an interrupted run's process
        clock = {"lr": p.lr, "window_steps": 0, "before": 0.0}

        def step(i: int) -> dict[str, float]:
            net.train()
            clock["lr"] = warmup_decay(
                i, warmup=p.warmup_steps, total=p.max_steps, peak=p.lr, floor=p.lr * p.min_lr_ratio
            )
            for group in optimiser.param_groups:
                group["lr"] = clock["lr"]
            x, y = (t.to(device) for t in sampler.sample())
            loss = loss_of(net, x, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            if p.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(net.parameters(), p.grad_clip)
            optimiser.step()
            clock["window_steps"] += 1
            return {"train_loss": loss.item()}

        def status() -> dict[str, float]:
            now = time.perf_counter()
            rate = clock["window_steps"] * tokens_per_step / max(now - clock["window_start"], 1e-9)
            clock["window_start"], clock["window_steps"] = now, 0
            return {"lr": clock["lr"], "tokens_per_s": rate, "elapsed_s": elapsed()}

        def elapsed() -> float:  # this process's seconds plus an interrupted run's
            return clock["before"] + time.perf_counter() - clock["started"]

        def save_state() -> dict:
            return {
                "model": net.state_dict(),
                "optimiser": optimiser.state_dict(),
                "sampler": sampler.generator.get_state(),
                "elapsed": elapsed(),
            }

        def load_state(state: dict) -> None:
            net.load_state_dict(state["model"])
            optimiser.load_state_dict(state["optimiser"])
            sampler.generator.set_state(state["sampler"])
            clock["before"] = state["elapsed"]

        loop = Loop(
            "minit",
            steps=p.max_steps,
            eval_every=p.eval_every,
            log_every=p.log_every,
            max_seconds=p.max_seconds,
            checkpoint=self.checkpoint_path(train.tokens),
            checkpoint_every=p.checkpoint_every,
        )
        clock["started"] = clock["window_start"] = time.perf_counter()
        cpu_started = time.process_time()
        outcome = loop.run(
            step,
            lambda: {"valid_loss": self._valid_loss(net, valid_batches)},
            run=run,
            status=status,
            save_state=save_state,
            load_state=load_state,
        )
        seconds = elapsed()
        self.net = net.cpu().eval()  # sampled, scored and saved on the CPU
        valid_points = [h for h in outcome.history if "valid_loss" in h]
        self.summary = {
            "steps": outcome.steps,
            "tokens_seen": outcome.steps * tokens_per_step,
            "seconds": round(seconds, 2),
            "tokens_per_s": round(outcome.steps * tokens_per_step / max(seconds, 1e-9), 1),
            "stopped_by": "max_steps" if outcome.steps >= p.max_steps else "max_seconds",
            "cut_short": outcome.cut_short,
            "valid_loss": valid_points[-1]["valid_loss"] if valid_points else None,
            "threads": torch.get_num_threads(),
            # CPU time of this process (both threads): on a shared machine, about
            # threads x the wall time the same work takes when the machine is idle
            "cpu_seconds": round(time.process_time() - cpu_started, 2),
            "parameters": sum(w.numel() for w in net.parameters()),
            "history": outcome.history,
        }
        self.samples = self._samples(train)
        return self

    @staticmethod
    def _valid_loss(net, batches) -> float:
        net.eval()
        with torch.no_grad():
            return float(np.mean([loss_of(net, x, y).item() for x, y in batches]))

    def _samples(self, train: Any) -> list[dict[str, str]]:
        """Generations for the split's example prompts (those that fit half the context)."""
        from reprolab.lm import generation

        limit = generation_limit(self.net)
        new_tokens, prompts = self.params.sample_tokens, []
        for prompt in train.X["prompt"]:
            length = len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
            if limit is None:
                prompts.append(prompt)
            elif length <= limit // 2:
                prompts.append(prompt)
                new_tokens = min(new_tokens, limit - length)
        if not prompts:
            return []
        sampling = generation.Sampling(
            max_new_tokens=new_tokens,
            temperature=self.params.temperature,
            top_k=self.params.top_k,
            seed=self.seed,
        )
        texts = generation.generate(self.net, self.tokenizer, prompts, sampling)
        return [{"prompt": p, "completion": t} for p, t in zip(prompts, texts, strict=True)]

    def sampling(self):
        from reprolab.lm.generation import Sampling

        return Sampling(
            max_new_tokens=self.params.sample_tokens,
            temperature=self.params.temperature,
            top_k=self.params.top_k,
            seed=self.seed,
        )

    # ------------------------------------------------------------------ scoring, saving

    def evaluate(self, split: Any) -> dict:
        """Loss on every token of `split` (non-overlapping windows of block_size), its
        perplexity and bits per character (comparable across tokenizers)."""
        if self.net is None:
            raise RuntimeError("fit the model before evaluating")
        block, tokens = self.params.block_size, torch.from_numpy(split.tokens.astype(np.int64))
        n = (len(tokens) - 1) // block
        x = tokens[: n * block].view(n, block)
        y = tokens[1 : n * block + 1].view(n, block)
        total = 0.0
        with torch.no_grad():
            for start in range(0, n, self.params.batch_size):
                xb = x[start : start + self.params.batch_size]
                yb = y[start : start + self.params.batch_size]
                total += loss_of(self.net, xb, yb).item() * yb.numel()
        loss = total / (n * block)
        chars = len(self.tokenizer.decode(split.tokens[: n * block + 1].tolist()))
        return {
            "loss": loss,
            "perplexity": math.exp(loss),
            "bits_per_char": loss * (n * block) / max(1, chars) / math.log(2),
        }

    def predict(self, inputs: Any) -> Any:
        """Completions for a frame of prompts (or a list of strings)."""
        import pandas as pd

        from reprolab.lm import generation
        from reprolab.lm.pyfunc import _prompts

        if self.net is None:
            raise RuntimeError("fit the model before predicting")
        prompts = _prompts(inputs)
        texts = generation.generate(self.net, self.tokenizer, prompts, self.sampling())
        return pd.DataFrame({"prompt": prompts, "completion": texts})

    def save(self, path: Path, input_example: Any) -> None:
        from reprolab.lm import pyfunc

        if self.net is None:
            raise RuntimeError("fit the model before saving")
        from transformers import GenerationConfig

        sampling = self.sampling()
        self.net.generation_config = GenerationConfig(
            do_sample=True,
            temperature=sampling.temperature,
            top_k=sampling.top_k,
            max_new_tokens=sampling.max_new_tokens,
            bos_token_id=self.tokenizer.bos_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        prompts = None
        if input_example is not None:
            prompts = pyfunc._prompts(input_example)
        pyfunc.save(Path(path), self.net, self.tokenizer, sampling, prompts)
        atomic_write_json(Path(path) / "samples.json", self.samples)
        atomic_write_json(Path(path) / "training.json", self.summary)
        self._write_card(Path(path))

    def _write_card(self, path: Path) -> None:
        from reprolab.core import card

        p, s = self.params, self.summary
        name = card.model_name(path)
        loss = s.get("valid_loss")
        valid = {"loss": loss, "perplexity": math.exp(loss) if loss is not None else None}
        card.write_card(
            path,
            name=name,
            kind="minit",
            summary=(
                f"Mini-T: a small decoder-only transformer (Hugging Face `{p.arch}` "
                f"architecture, {s.get('parameters')} parameters: {p.n_layer} layers, width "
                f"{p.n_embd}, {p.n_head} heads, context {p.block_size} tokens, vocabulary "
                f"{len(self.tokenizer)}) trained from scratch on Tiny Shakespeare for "
                f"{s.get('steps')} steps ({s.get('tokens_seen')} tokens)."
            ),
            license=card.combined_license(*card.data_license("tiny_shakespeare")),
            pipeline_tag="text-generation",
            datasets=["tiny_shakespeare"],
            tags=["text-generation", "from-scratch", p.arch, "mlflow"],
            usage=MINIT_USAGE.format(name=name),
            params=card.tuning_params(p),
            metrics={"valid": valid},
            intended_use=(
                "Generating Shakespeare-like text, and a worked example of training a language "
                "model reproducibly (DVC, MLflow) on a CPU."
            ),
            limits=[
                "A tiny model of one corpus: no factual knowledge, not instruction-tuned, "
                "English of Shakespeare's plays only.",
                "Samples are plausible in form, rarely in meaning.",
                *cut_short_note(bool(s.get("cut_short")), s.get("steps"), p.max_seconds),
            ],
        )


MINIT_USAGE = """```python
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("models/{name}")
tokenizer = AutoTokenizer.from_pretrained("models/{name}")
# or as an MLflow pyfunc: prompt in, prompt + completion out
import mlflow.pyfunc, pandas as pd

mlflow.pyfunc.load_model("models/{name}").predict(
    pd.DataFrame({{"prompt": ["ROMEO:\\n"]}}), params={{"max_new_tokens": 100}}
)
# or as MLflow's transformers flavour: a text-generation pipeline
import mlflow.transformers

mlflow.transformers.load_model("models/{name}")("ROMEO:\\n", max_new_tokens=100)
```"""


def generation_limit(net) -> int | None:
    """How many tokens the model can attend over in total (None: no hard limit)."""
    from reprolab.lm.generation import context_length

    if getattr(net.config, "sliding_window", None):
        return None
    return context_length(net)
