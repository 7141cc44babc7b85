"""`lora` (finetune section): LoRA or QLoRA (4-bit NF4) supervised fine-tuning of the causal
language model in models/<base> on instruction data, loss on the response tokens only.

fit: check the target modules against the base architecture (before loading any weight),
measure the base model's validation perplexity, attach the adapter, train (dvclive + MLflow
curves through `run.log_step`), measure the fine-tuned validation perplexity. save: one
directory that is a Hugging Face model at its root (the merged model when `merge: true`, else
a copy of the base), the adapter under adapter/, a model card and an MLflow pyfunc with a
signature and an input example (layout: reprolab.workloads.llm.saved). The evaluate stage scores the
saved model and the base on the test split and writes their generations for the fixed
prompts side by side."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any, Self

from reprolab.core.errors import DataError
from reprolab.core.model import Model, StepLogger
from reprolab.core.train.setup import reproducible_fit


class LoraFinetune(Model):
    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.model = None
        self.tokenizer = None
        self.template = None
        self.targets: list[str] = []
        self.summary: dict[str, Any] = {}
        self.sources: list[str] = []  # the training data's sources (model card)
        self._scored: dict[int, dict] = {}

    # ------------------------------------------------------------------ paths and checks

    def base_dir(self) -> Path:
        from reprolab.core.layout import model_dir
        from reprolab.lm import hf_dir

        if self.params.base is None:
            raise DataError("base: a lora model needs a base (a pretrain or imports entry)")
        path = model_dir(self.params.base)
        if not path.is_dir():
            raise DataError(f"base {self.params.base!r}: {path} not found; build it first")
        return hf_dir(path)

    def check(self) -> tuple[Path, Any]:
        """Everything that can be wrong before training: the base directory, the target
        modules against its architecture, bitsandbytes for nf4. Returns (base dir, config)."""
        from reprolab.workloads.llm.loading import load_config
        from reprolab.workloads.llm.lora import linear_module_names, resolve_targets

        base = self.base_dir()
        config = load_config(base)
        names = linear_module_names(config)
        self.targets = resolve_targets(self.params.target_modules, config.model_type, names)
        total = getattr(config, "num_hidden_layers", None)
        if self.params.last_layers is not None and total and self.params.last_layers > total:
            raise DataError(
                f"last_layers: {self.params.last_layers}, but the {config.model_type!r} base "
                f"has {total} layers"
            )
        if self.params.quantization == "nf4":
            try:
                import bitsandbytes  # noqa: F401
            except ImportError as err:
                raise DataError(f"quantization: nf4 needs bitsandbytes ({err})") from err
        return base, config

    # ------------------------------------------------------------------ training

    @reproducible_fit
    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        from reprolab.workloads.llm import loading, lora, scoring

        p = self.params
        base, _ = self.check()
        device = loading.pick_device(p.dtype)
        started = time.perf_counter()
        self.tokenizer = loading.load_tokenizer(base)
        self.template = getattr(train, "template", None)
        self.sources = sorted({str(g) for g in getattr(train, "groups", ())})
        train_ex, dropped = lora.encode_pairs(
            self.tokenizer, train.X["prompt"], train.X["response"], p.max_length
        )
        valid_ex = self._valid_examples(valid)
        if not valid_ex:
            raise DataError("valid split: no example has a response token within max_length")
        model = loading.load_base(base, device, p.quantization)
        pad = self.tokenizer.pad_token_id
        base_nll, base_tokens = scoring.example_nll(model, valid_ex, pad, p.eval_batch_size, "base")
        base_ppl = scoring.perplexity(base_nll, base_tokens)
        if run is not None:
            run.log_step(0, {"valid_perplexity": base_ppl, "valid_loss": _log(base_ppl)})
        self.model = lora.attach_lora(
            model,
            self.targets,
            p.r,
            p.alpha,
            p.dropout,
            quantized=p.quantization == "nf4",
            last_layers=p.last_layers,
        )
        setup_seconds = time.perf_counter() - started
        rows = lora.train(
            self.model,
            train_ex,
            valid_ex,
            pad,
            lora.TrainConfig(
                lr=p.lr,
                weight_decay=p.weight_decay,
                warmup_steps=p.warmup_steps,
                batch_size=p.batch_size,
                grad_accum=p.grad_accum,
                max_steps=p.max_steps,
                eval_every=p.eval_every,
                eval_batch_size=p.eval_batch_size,
            ),
            self.seed,
            run.log_step if run is not None else None,
        )
        last = rows[-1]
        self.summary = {
            "device": device.note,
            "quantization": p.quantization,
            "target_modules": self.targets,
            **lora.trainable_summary(self.model),
            "train_examples": len(train_ex),
            "train_dropped_too_long": dropped,
            "valid_examples": len(valid_ex),
            "base_perplexity": base_ppl,
            "perplexity": last["valid_perplexity"],
            "steps_per_s": last["steps_per_s"],
            "train_tokens_per_s": last["train_tokens_per_s"],
            "setup_seconds": setup_seconds,
        }
        self._scored[id(valid)] = {
            "perplexity": last["valid_perplexity"],
            "base_perplexity": base_ppl,
            "examples": len(valid_ex),
        }
        return self

    def _valid_examples(self, split: Any) -> list:
        from reprolab.workloads.llm import lora

        examples, _ = lora.encode_pairs(
            self.tokenizer, split.X["prompt"], split.X["response"], self.params.max_length
        )
        return examples[: self.params.eval_examples]

    def evaluate(self, split: Any) -> dict:
        """Perplexity of the fine-tuned model (and of the base, from fit) on a split's first
        `eval_examples` examples; the valid split seen in fit is not scored twice."""
        from reprolab.workloads.llm import scoring

        if self.model is None:
            raise RuntimeError("fit the model before evaluating")
        if id(split) in self._scored:
            return dict(self._scored[id(split)])
        examples = self._valid_examples(split)
        nll, tokens = scoring.example_nll(
            self.model, examples, self.tokenizer.pad_token_id, self.params.eval_batch_size
        )
        return {"perplexity": scoring.perplexity(nll, tokens), "examples": len(examples)}

    def predict(self, inputs: Any) -> Any:
        """Greedy completions of raw prompts (a list, or a frame with `prompt`), as the saved
        pyfunc returns them: a frame with `prompt` and `completion`."""
        import pandas as pd

        from reprolab.lm.pyfunc import COMPLETION, PROMPT, _prompts
        from reprolab.workloads.llm.scoring import generate

        if self.model is None:
            raise RuntimeError("fit the model before predicting")
        prompts = _prompts(inputs)
        texts = generate(self.model, self.tokenizer, prompts, self.params.max_new_tokens)
        return pd.DataFrame({PROMPT: prompts, COMPLETION: texts})

    # ------------------------------------------------------------------ saving

    def save(self, path: Path, input_example: Any) -> None:
        """The model directory (reprolab.workloads.llm.saved); `input_example` (training
        pairs) is not used: the saved example is an instruction, what serving sends."""
        from reprolab.workloads.llm import lora, saved

        if self.model is None:
            raise RuntimeError("fit the model before saving")
        p = self.params
        base = self.base_dir()
        with tempfile.TemporaryDirectory() as tmp:
            adapter, weights = Path(tmp) / "adapter", Path(tmp) / "merged"
            self.model.save_pretrained(adapter)
            if p.merge:
                merged = lora.merge_adapter(base, adapter)
                merged.to(getattr(__import__("torch"), p.save_dtype))
                merged.save_pretrained(weights, safe_serialization=True)
                self.tokenizer.save_pretrained(weights)
            saved.save_llm(path, weights if p.merge else base, adapter, self._meta(base))
        self._write_card(Path(path), base)

    def _meta(self, base: Path) -> dict[str, Any]:
        p = self.params
        meta = {
            "base": p.base,
            "base_dir": base.as_posix(),
            "merged": p.merge,
            "save_dtype": p.save_dtype if p.merge else "as base",
            "quantization": p.quantization,
            "target_modules": self.targets,
            "template": self.template.to_dict() if self.template is not None else None,
            "prompts": list(p.prompts),
            "max_new_tokens": p.max_new_tokens,
            "max_length": p.max_length,
            "eval_batch_size": p.eval_batch_size,
            "threads": p.threads,
            "fit": _jsonable(self.summary),
        }
        if meta["template"] is None:
            del meta["template"]
        return meta

    def _write_card(self, path: Path, base: Path) -> None:
        from reprolab.core import card

        p = self.params
        from reprolab.lm import model_root

        base_model, base_license = card.base_card(model_root(base))
        sources = self.sources or ["code_alpaca", "synthetic_mlops"]
        name = card.model_name(path)
        method = "QLoRA (4-bit NF4 base)" if p.quantization == "nf4" else "LoRA"
        stored = "the merged model" if p.merge else f"a copy of the base `{p.base}`"
        flavour = (
            " `mlflow.transformers.load_model` gives a text-generation pipeline over the root."
        )
        card.write_card(
            path,
            name=name,
            kind="lora",
            summary=(
                f"{_base_name(p.base, base_model)} fine-tuned with {method} (r={p.r}, "
                f"alpha={p.alpha:g}, modules {', '.join(self.targets)}) on instruction data, "
                f"loss on the response tokens only. The root holds {stored}; the adapter alone "
                "is under `adapter/`." + (flavour if p.merge else "")
            ),
            license=card.combined_license(base_license, *card.data_license(*sources)),
            pipeline_tag="text-generation",
            datasets=sources,
            base_model=base_model,
            tags=["peft", "instruction-tuning", "text-generation", "mlflow"],
            usage=LORA_USAGE.format(name=name, base=p.base),
            params=card.tuning_params(p),
            metrics={
                "valid": {
                    "perplexity": self.summary.get("perplexity"),
                    "base_perplexity": self.summary.get("base_perplexity"),
                }
            },
            intended_use=(
                "Answering short coding and MLOps questions in the training prompt format; a "
                "worked example of reproducible LoRA fine-tuning on a CPU."
            ),
            limits=[
                "Code Alpaca data are CC BY-NC 4.0: use for non-commercial purposes only "
                "when they are in the training data."
                if "code_alpaca" in sources
                else "Trained on template-made data only.",
                "A small model trained for a few steps: answers and code may be wrong; "
                "check them before use.",
                f"Prompt + response are cut to {p.max_length} tokens in training.",
            ],
        )


LORA_USAGE = """```python
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("models/{name}")
tokenizer = AutoTokenizer.from_pretrained("models/{name}")
# the adapter alone, on the base it was trained from
from peft import PeftModel

base = AutoModelForCausalLM.from_pretrained("models/{base}")
tuned = PeftModel.from_pretrained(base, "models/{name}/adapter")
# or as an MLflow pyfunc: prompt/instruction in, prompt + completion out
import mlflow.pyfunc, pandas as pd

mlflow.pyfunc.load_model("models/{name}").predict(
    pd.DataFrame({{"instruction": ["How do I reproduce a DVC pipeline?"]}}),
    params={{"max_new_tokens": 48, "temperature": 0.0}},
)
```"""


def _base_name(base: str, original: str | None) -> str:
    """`base`, and the model it was imported from when that has another name."""
    return f"`{base}`" if original in (None, base) else f"`{base}` (`{original}`)"


def _log(value: float) -> float:
    import math

    return math.log(value)


def _jsonable(data: dict) -> dict:
    return json.loads(json.dumps(data, default=str))
