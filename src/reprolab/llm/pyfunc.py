"""A causal LM saved as one directory that is at once a standard Hugging Face model
directory (config.json, model.safetensors, generation_config.json, tokenizer files at its
root: `from_pretrained(dir)`, PEFT and serving take it as it is) and an MLflow pyfunc model
(MLmodel, python_model.pkl) whose `predict` generates text from prompts. The DVC output and
the registered artifact are the same bytes, and `models:/<task>@<alias>` loads anywhere.

pyfunc input: a frame with a `prompt` column (or a list of strings, or one string); params
(all optional): max_new_tokens, temperature (0: greedy), top_k, top_p, seed. Output: a frame
with `prompt` and `completion` (the generated text, without the prompt).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc

from reprolab.llm.generation import Sampling
from reprolab.models import save_pyfunc
from reprolab.models.requirements import pins

MARKER = "llm.json"  # an MLflow artifact: the sampling defaults; its folder's parent is the root
PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "pandas")
PROMPT = "prompt"


def save(
    path: Path,
    model,
    tokenizer,
    sampling: Sampling,
    prompts: list[str] | None = None,
    extra_packages: tuple[str, ...] = (),
) -> None:
    """Write the MLflow pyfunc files, then the HF model and tokenizer, at `path`."""
    import pandas as pd
    from mlflow.models import infer_signature

    defaults = {
        "max_new_tokens": sampling.max_new_tokens,
        "temperature": float(sampling.temperature),
        "top_k": sampling.top_k,
        "top_p": float(sampling.top_p),
        "seed": 0 if sampling.seed is None else sampling.seed,
    }
    example = pd.DataFrame({PROMPT: prompts or ["Hello"]})
    signature = infer_signature(
        example, pd.DataFrame({PROMPT: ["x"], "completion": ["y"]}), params=defaults
    )
    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / MARKER
        marker.write_text(json.dumps({"sampling": defaults}, sort_keys=True))
        save_pyfunc(
            path,
            python_model=CausalLMPyfunc(),
            artifacts={"llm": str(marker)},
            signature=signature,
            input_example=example,
            pip_requirements=pins(*PACKAGES, *extra_packages),
        )
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))


class CausalLMPyfunc(mlflow.pyfunc.PythonModel):
    """Generates completions with the HF model stored beside the MLmodel file."""

    def load_context(self, context) -> None:
        from reprolab.llm import generation

        marker = Path(context.artifacts["llm"])
        self.defaults = json.loads(marker.read_text())["sampling"]
        self.model, self.tokenizer = generation.load(marker.parent.parent)

    def predict(self, context, model_input, params: dict[str, Any] | None = None):
        import pandas as pd

        from reprolab.llm import generation

        prompts = _prompts(model_input)
        settings = {**self.defaults, **(params or {})}
        sampling = Sampling(**{k: settings[k] for k in Sampling.__dataclass_fields__})
        completions = generation.generate(self.model, self.tokenizer, prompts, sampling)
        return pd.DataFrame({PROMPT: prompts, "completion": completions})


def _prompts(model_input) -> list[str]:
    import pandas as pd

    from reprolab.llm.generation import GenerationError

    if isinstance(model_input, str):
        return [model_input]
    if isinstance(model_input, pd.DataFrame):
        if PROMPT in model_input.columns:
            return [str(p) for p in model_input[PROMPT]]
        if len(model_input.columns) == 1:
            return [str(p) for p in model_input.iloc[:, 0]]
        raise GenerationError(f"input: no '{PROMPT}' column; found {list(model_input.columns)}")
    return [str(p) for p in model_input]
