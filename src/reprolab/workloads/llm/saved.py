"""A fine-tuned language model on disk: one directory that is at once a standard Hugging Face
model directory and an MLflow pyfunc model (the DVC output and the registered artifact are
the same bytes). Layout of `models/<name>/`:

- `config.json`, `model.safetensors`, `generation_config.json`, tokenizer files: the merged
  model (`merge: true`), or a copy of the base (`merge: false`);
  `AutoModelForCausalLM.from_pretrained("models/<name>")`;
- `adapter/` (`adapter_config.json`, `adapter_model.safetensors`): the PEFT LoRA adapter alone,
  for the base it was trained on:
  `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("models/<base>"),
  "models/<name>/adapter")`; with `merge: false` the fine-tuned model is the root's base copy
  plus this adapter (`load_llm` and `reprolab generate` apply it);
- `README.md` (model card) and `card.json` (its inputs);
- `MLmodel`, `python_model.pkl`, requirements...: the MLflow pyfunc, and
  `artifacts/llm.json` (prompt template, fixed prompts, sampling defaults, where the base came
  from), whose folder's parent is the root. With `merge: true` the MLmodel also declares
  MLflow's transformers flavour over the root's files (`mlflow.transformers.load_model`
  gives a text-generation pipeline; its tokenizer is read from `components/tokenizer`);

Models saved before kept the HF model under `artifacts/hf` and the adapter under
`artifacts/lora_adapter`; `load_llm`, `reprolab.lm.hf_dir` and the pyfunc read both layouts.

The pyfunc takes two input shapes:
- generation, as every causal-LM pyfunc (reprolab.lm.pyfunc): a frame with `prompt`, or with
  `instruction` [+ `input`] (rendered with the training template) -> `prompt`, `completion`;
  params max_new_tokens, temperature (default 0: greedy), top_k, top_p, seed;
- scoring: a frame with `prompt` and `response` -> per row the summed negative log-likelihood
  of the response tokens (`nll`) and their count (`tokens`)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from reprolab.core.errors import DataError
from reprolab.core.saving import add_transformers_flavor, save_pyfunc
from reprolab.lm import ADAPTER_SUBDIR, META_FILE, adapter_dir, hf_dir, read_meta
from reprolab.lm.generation import Sampling
from reprolab.lm.pyfunc import PROMPT, CausalLMPyfunc, complete, sampling_params, signature

PACKAGES = ("torch", "transformers", "tokenizers", "peft", "safetensors", "pandas", "numpy", "tqdm")
INPUTS = ("prompt", "instruction", "input", "response")
# files of a model directory that are not part of its Hugging Face model
NOT_HF = {
    "MLmodel",
    "python_model.pkl",
    "conda.yaml",
    "python_env.yaml",
    "requirements.txt",
    "input_example.json",
    "serving_input_example.json",
    "registered_model_meta",
    "README.md",
    "card.json",
    "import.json",
    "reprolab.json",
    "samples.json",
    "training.json",
}


def load_llm(path: Path, dtype: str = "float32", device: str = "cpu"):
    """(model, tokenizer, meta) from a saved fine-tuned model (adapter applied when it was not
    merged) or from a plain Hugging Face directory."""
    import torch
    from transformers import AutoModelForCausalLM

    from reprolab.workloads.llm.loading import load_tokenizer

    meta = read_meta(path)
    weights = hf_dir(path)
    model = AutoModelForCausalLM.from_pretrained(weights, dtype=getattr(torch, dtype))
    adapter = adapter_dir(path)
    if adapter is not None and not meta.get("merged", False):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    return model.to(device).eval(), load_tokenizer(weights), meta


def default_sampling(meta: dict[str, Any]) -> dict[str, Any]:
    """The pyfunc's sampling defaults: saved in llm.json, else (a model saved before) greedy
    with the model's max_new_tokens."""
    if "sampling" in meta:
        return dict(meta["sampling"])
    return sampling_params(
        Sampling(max_new_tokens=int(meta.get("max_new_tokens", 64)), temperature=0.0)
    )


def save_llm(
    path: Path,
    weights_dir: Path,
    adapter: Path | None,
    meta: dict[str, Any],
    input_example: pd.DataFrame | None = None,
) -> None:
    """Write the model directory at `path` (see the module docstring): the MLflow pyfunc
    files, then the HF files of `weights_dir` (a merged model or the base) at the root and
    the adapter directory under adapter/."""
    meta = {**meta, "sampling": default_sampling(meta)}
    example = input_example if input_example is not None else _example(meta)
    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / META_FILE
        marker.write_text(json.dumps(meta, indent=2, sort_keys=True))
        from reprolab.core.requirements import pins

        save_pyfunc(
            path,
            python_model=LlmPyfunc(),
            artifacts={"meta": str(marker)},
            signature=llm_signature(meta["sampling"]),
            input_example=example,
            pip_requirements=pins(*PACKAGES),
        )
    copy_hf(weights_dir, path)
    if adapter is not None:
        shutil.copytree(adapter, path / ADAPTER_SUBDIR)
    if meta.get("merged"):  # the root holds the fine-tuned weights, not the bare base
        _declare_transformers_flavor(path)


def _declare_transformers_flavor(path: Path) -> None:
    """MLflow's transformers flavour over the merged model at the root (read back once)."""
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(str(path))
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    add_transformers_flavor(path, model, tokenizer, "text-generation")


def llm_signature(defaults: dict[str, Any]):
    """Every causal LM's signature, widened to the two input shapes: all input columns
    optional, the scoring columns as optional outputs."""
    from mlflow.types.schema import ColSpec, Schema

    from reprolab.lm.pyfunc import COMPLETION

    inputs = Schema([ColSpec("string", name, required=False) for name in INPUTS])
    outputs = Schema(
        [
            ColSpec("string", PROMPT, required=False),
            ColSpec("string", COMPLETION, required=False),
            ColSpec("double", "nll", required=False),
            ColSpec("long", "tokens", required=False),
        ]
    )
    return signature(defaults, inputs, outputs)


def _example(meta: dict[str, Any]) -> pd.DataFrame:
    """An instruction (the first fixed prompt) when the model has a template, else a prompt."""
    first = (meta.get("prompts") or ["How do I reproduce a DVC pipeline?"])[0]
    if "template" in meta:
        return pd.DataFrame({"instruction": [first], "input": [""]})
    return pd.DataFrame({PROMPT: [first]})


def copy_hf(source: Path, target: Path) -> None:
    """The Hugging Face files at the top of `source` (config, weights, tokenizer...) into
    `target`, without another model's MLflow files, card or notes."""
    target.mkdir(parents=True, exist_ok=True)
    for item in sorted(Path(source).iterdir()):
        if item.is_file() and item.name not in NOT_HF:
            shutil.copy2(item, target / item.name)


def check_prompt(text: Any, tokenizer, limit: int | None, where: str = "prompt") -> list[int]:
    """Token ids of a prompt; DataError for an empty one or one longer than `limit` tokens."""
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: empty prompt {text!r}")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if limit is not None and len(ids) > limit:
        raise DataError(
            f"{where}: {len(ids)} tokens, longer than the model's limit of {limit} "
            f"({text[:60]!r}...)"
        )
    return ids


class LlmPyfunc(CausalLMPyfunc):
    """Serving wrapper; see the module docstring for the two input shapes."""

    def load_context(self, context) -> None:
        root = Path(context.artifacts["meta"]).parent.parent
        self.model, self.tokenizer, self.meta = load_llm(root)
        self.defaults = default_sampling(self.meta)

    def predict(self, context, model_input, params=None):
        from reprolab.lm.generation import context_length

        frame = _frame(model_input)
        if "response" in frame.columns and PROMPT in frame.columns:
            return self._score(frame)
        prompts = self._prompts(frame)
        max_new = int({**self.defaults, **(params or {})}["max_new_tokens"])
        total = context_length(self.model)
        limit = None if total is None else total - max_new
        for i, prompt in enumerate(prompts):
            check_prompt(prompt, self.tokenizer, limit, where=f"row {i}")
        return complete(self.model, self.tokenizer, prompts, self.defaults, params)

    def _score(self, frame: pd.DataFrame) -> pd.DataFrame:
        from reprolab.workloads.llm.instructions import encode
        from reprolab.workloads.llm.scoring import example_nll

        max_length = int(self.meta.get("max_length", 512))
        examples = [
            encode(self.tokenizer, p, r, max_length)
            for p, r in zip(frame[PROMPT], frame["response"], strict=True)
        ]
        nll, tokens = example_nll(self.model, examples, self.tokenizer.pad_token_id)
        return pd.DataFrame({"nll": nll, "tokens": tokens})

    def _prompts(self, frame: pd.DataFrame) -> list[str]:
        from reprolab.workloads.llm.instructions import PromptTemplate

        if PROMPT in frame.columns:
            return [str(p) for p in frame[PROMPT]]
        if "instruction" not in frame.columns:
            raise DataError(
                f"input: expected a 'prompt' or 'instruction' column, got {list(frame.columns)}"
            )
        if "template" not in self.meta:
            raise DataError("input: this model has no prompt template; give a 'prompt' column")
        template = PromptTemplate.from_dict(self.meta["template"])
        inputs = frame["input"] if "input" in frame.columns else [""] * len(frame)
        return [
            template.render(i, "" if pd.isna(x) else x)
            for i, x in zip(frame["instruction"], inputs, strict=True)
        ]


def _frame(model_input) -> pd.DataFrame:
    """A frame from what a pyfunc may be given: a frame, a dict of columns, prompts."""
    if isinstance(model_input, pd.DataFrame):
        return model_input
    if isinstance(model_input, dict):
        return pd.DataFrame(model_input)
    from reprolab.lm.pyfunc import _prompts

    return pd.DataFrame({PROMPT: _prompts(model_input)})


def score_saved(path: Path, split) -> tuple[dict, pd.DataFrame, dict[str, Any]]:
    """Test perplexity of a saved model and of its base (when the base directory it was
    trained from is still there), a per-example table, and the fixed prompts' generations of
    both side by side (for the report)."""
    import numpy as np

    from reprolab.core.metrics import perplexities
    from reprolab.workloads.llm.instructions import PromptTemplate, encode
    from reprolab.workloads.llm.loading import set_threads
    from reprolab.workloads.llm.scoring import example_nll, generate

    meta = read_meta(path)
    set_threads(meta.get("threads"))
    max_length = int(meta.get("max_length", 512))
    batch = int(meta.get("eval_batch_size", 8))
    template = PromptTemplate.from_dict(meta["template"]) if "template" in meta else split.template
    prompts = [template.render(p) for p in meta.get("prompts", [])]
    max_new = int(meta.get("max_new_tokens", 48))

    def run(model, tokenizer, label):
        examples = [
            encode(tokenizer, p, r, max_length)
            for p, r in zip(split.X["prompt"], split.X["response"], strict=True)
        ]
        nll, tokens = example_nll(model, examples, tokenizer.pad_token_id, batch, desc=label)
        return nll, tokens, generate(model, tokenizer, prompts, max_new)

    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, tokenizer, _ = load_llm(path, device=device)
    nll, tokens, outputs = run(model, tokenizer, "test")
    frame = pd.DataFrame({"nll": nll, "tokens": tokens})
    del model
    base_outputs = None
    base = meta.get("base_dir")
    if base and (Path(base) / "config.json").is_file():
        base_model, base_tokenizer, _ = load_llm(Path(base), device=device)
        base_nll, _, base_outputs = run(base_model, base_tokenizer, "test (base)")
        frame["base_nll"] = base_nll
    metrics = perplexities(frame, split.groups)
    table = split.prediction_table(frame)
    samples = [
        {
            "prompt": raw,
            "base": base_outputs[i] if base_outputs is not None else None,
            "finetuned": outputs[i],
        }
        for i, raw in enumerate(meta.get("prompts", []))
    ]
    extra = {
        "generations.json": {
            "model": Path(path).name,
            "base": meta.get("base"),
            "max_new_tokens": max_new,
            "decoding": "greedy",
            "samples": samples,
        }
    }
    metrics["examples"] = int(np.sum(np.asarray(tokens) > 0))
    return metrics, table, extra
