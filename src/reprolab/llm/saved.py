"""A fine-tuned language model on disk: an MLflow pyfunc model directory whose artifacts are
a standard Hugging Face model (`artifacts/hf`: the merged model, or a copy of the base when
the adapter is not merged), the PEFT adapter (`artifacts/lora_adapter`) and `artifacts/llm.json`
(prompt template, fixed prompts, where the base came from). `load_llm(path)` gives back a
ready transformers model from such a directory or from a plain HF directory.

The pyfunc takes a frame with `prompt` and `response` columns (scored: per-row summed NLL of
the response tokens and their count) or with `prompt` / `instruction` [+ `input`] only
(greedy generation, instructions rendered with the training template)."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from reprolab.errors import DataError
from reprolab.llm import HF_SUBDIR, hf_dir
from reprolab.models import save_pyfunc

ADAPTER_SUBDIR = "lora_adapter"  # sorts after "hf": a search for the first HF dir finds the model
META_FILE = "llm.json"
PACKAGES = ("torch", "transformers", "tokenizers", "peft", "safetensors", "pandas", "numpy")


def read_meta(path: Path) -> dict[str, Any]:
    meta = Path(path) / "artifacts" / META_FILE
    return json.loads(meta.read_text()) if meta.is_file() else {}


def adapter_dir(path: Path) -> Path | None:
    found = Path(path) / "artifacts" / ADAPTER_SUBDIR
    return found if (found / "adapter_config.json").is_file() else None


def load_llm(path: Path, dtype: str = "float32", device: str = "cpu"):
    """(model, tokenizer, meta) from a saved fine-tuned model (adapter applied when it was not
    merged) or from a plain Hugging Face directory."""
    import torch
    from transformers import AutoModelForCausalLM

    from reprolab.llm.lora import load_tokenizer

    meta = read_meta(path)
    weights = hf_dir(path)
    model = AutoModelForCausalLM.from_pretrained(weights, dtype=getattr(torch, dtype))
    adapter = adapter_dir(path)
    if adapter is not None and not meta.get("merged", False):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    return model.to(device).eval(), load_tokenizer(weights), meta


def save_llm(
    path: Path,
    weights_dir: Path,
    adapter: Path | None,
    meta: dict[str, Any],
    input_example: Any = None,
) -> None:
    """Write the MLflow model directory at `path` from a saved HF directory (merged model or
    base copy) named `hf` and an adapter directory named `adapter` (MLflow keeps an artifact
    directory's own name, and the layout is documented)."""
    for name, source in ((HF_SUBDIR, weights_dir), (ADAPTER_SUBDIR, adapter)):
        if source is not None and Path(source).name != name:
            raise ValueError(f"{source}: the {name} artifact directory must be named {name!r}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        artifacts = {HF_SUBDIR: str(weights_dir)}
        if adapter is not None:
            artifacts[ADAPTER_SUBDIR] = str(adapter)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        artifacts["meta"] = str(tmp / META_FILE)
        from reprolab.models.requirements import pins

        save_pyfunc(
            path,
            python_model=LlmPyfunc(),
            artifacts=artifacts,
            input_example=input_example,
            pip_requirements=pins(*PACKAGES),
        )


def copy_hf(source: Path, target: Path) -> None:
    shutil.copytree(source, target)


def check_prompt(text: Any, tokenizer, limit: int, where: str = "prompt") -> list[int]:
    """Token ids of a prompt; DataError for an empty one or one longer than `limit` tokens."""
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where}: empty prompt {text!r}")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) > limit:
        raise DataError(
            f"{where}: {len(ids)} tokens, longer than the model's limit of {limit} "
            f"({text[:60]!r}...)"
        )
    return ids


class LlmPyfunc(mlflow.pyfunc.PythonModel):
    """Serving wrapper; see the module docstring for the two input shapes."""

    def load_context(self, context) -> None:
        root = Path(context.artifacts[HF_SUBDIR]).parent.parent
        self.model, self.tokenizer, self.meta = load_llm(root)

    def predict(self, context, model_input, params=None):
        from reprolab.llm.instructions import PromptTemplate, encode
        from reprolab.llm.lora import example_nll, generate

        frame = pd.DataFrame(model_input)
        max_length = int(self.meta.get("max_length", 512))
        if "response" in frame.columns and "prompt" in frame.columns:
            examples = [
                encode(self.tokenizer, p, r, max_length)
                for p, r in zip(frame["prompt"], frame["response"], strict=True)
            ]
            nll, tokens = example_nll(self.model, examples, self.tokenizer.pad_token_id)
            return pd.DataFrame({"nll": nll, "tokens": tokens})
        if "prompt" in frame.columns:
            prompts = [str(p) for p in frame["prompt"]]
        elif "instruction" in frame.columns:
            template = PromptTemplate.from_dict(self.meta["template"])
            inputs = frame["input"] if "input" in frame.columns else [""] * len(frame)
            prompts = [
                template.render(i, x) for i, x in zip(frame["instruction"], inputs, strict=True)
            ]
        else:
            raise DataError(
                f"input: expected a 'prompt' or 'instruction' column, got {list(frame.columns)}"
            )
        max_new = int((params or {}).get("max_new_tokens", self.meta.get("max_new_tokens", 64)))
        limit = int(getattr(self.model.config, "max_position_embeddings", 2048)) - max_new
        for i, p in enumerate(prompts):
            check_prompt(p, self.tokenizer, limit, where=f"row {i}")
        return pd.DataFrame({"generated": generate(self.model, self.tokenizer, prompts, max_new)})


def score_saved(path: Path, split) -> tuple[dict, pd.DataFrame, dict[str, Any]]:
    """Test perplexity of a saved model and of its base (when the base directory it was
    trained from is still there), a per-example table, and the fixed prompts' generations of
    both side by side (for the report)."""
    import numpy as np

    from reprolab.data.instructions import perplexities
    from reprolab.llm.instructions import PromptTemplate, encode
    from reprolab.llm.lora import example_nll, generate, set_threads

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
