"""A causal LM saved as one directory that is at once a standard Hugging Face model directory
(config.json, model.safetensors, generation_config.json, tokenizer files and a README.md model
card at its root: `from_pretrained(dir)`, PEFT and serving take it as it is) and an MLflow
pyfunc model (MLmodel, python_model.pkl) whose `predict` generates text from prompts. The DVC
output and the registered artifact are the same bytes, and `models:/<task>@<alias>` loads
anywhere.

Every causal-LM pyfunc of the repository (Mini-T, a LoRA fine-tune in
reprolab.workloads.llm.saved) generates the same way. Input: a frame with a `prompt` column (or
a list of strings, or one string). Params (all optional, defaults saved with the model and
listed in the signature): max_new_tokens, temperature (0: greedy), top_k, top_p, seed. Output: a
frame with `prompt` and `completion` (the generated text, without the prompt)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc

from reprolab.core.requirements import pins
from reprolab.core.saving import add_transformers_flavor, save_pyfunc
from reprolab.lm import META_FILE
from reprolab.lm.generation import Sampling

MARKER = META_FILE  # an MLflow artifact: the sampling defaults; its folder's parent is the root
PACKAGES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "pandas")
PROMPT = "prompt"
COMPLETION = "completion"


def sampling_params(sampling: Sampling) -> dict[str, Any]:
    """The pyfunc params every causal LM takes, with this model's defaults."""
    return {
        "max_new_tokens": int(sampling.max_new_tokens),
        "temperature": float(sampling.temperature),
        "top_k": int(sampling.top_k),
        "top_p": float(sampling.top_p),
        "seed": 0 if sampling.seed is None else int(sampling.seed),
    }


def signature(defaults: dict[str, Any], inputs=None, outputs=None):
    """The MLflow signature of a causal-LM pyfunc: `prompt` in, `prompt` and `completion`
    out, the sampling params with their defaults (`inputs`/`outputs`: wider schemas)."""
    import pandas as pd
    from mlflow.models import infer_signature
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    params = infer_signature(pd.DataFrame({PROMPT: ["x"]}), params=defaults).params
    return ModelSignature(
        inputs=inputs or Schema([ColSpec("string", PROMPT)]),
        outputs=outputs or Schema([ColSpec("string", PROMPT), ColSpec("string", COMPLETION)]),
        params=params,
    )


def complete(model, tokenizer, prompts: list[str], defaults: dict, params: dict | None):
    """The `prompt`/`completion` frame for `prompts`, sampled with the defaults overridden
    by the call's params."""
    import pandas as pd

    from reprolab.lm import generation

    settings = {**defaults, **{k: v for k, v in (params or {}).items() if v is not None}}
    sampling = Sampling(
        max_new_tokens=int(settings["max_new_tokens"]),
        temperature=float(settings["temperature"]),
        top_k=int(settings["top_k"]),
        top_p=float(settings["top_p"]),
        seed=None if settings.get("seed") is None else int(settings["seed"]),
    )
    completions = generation.generate(model, tokenizer, prompts, sampling)
    return pd.DataFrame({PROMPT: prompts, COMPLETION: completions})


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

    defaults = sampling_params(sampling)
    example = pd.DataFrame({PROMPT: prompts or ["Hello"]})
    with tempfile.TemporaryDirectory() as tmp:
        marker = Path(tmp) / MARKER
        marker.write_text(json.dumps({"sampling": defaults}, sort_keys=True))
        save_pyfunc(
            path,
            python_model=CausalLMPyfunc(),
            artifacts={"llm": str(marker)},
            signature=signature(defaults),
            input_example=example,
            pip_requirements=pins(*PACKAGES, *extra_packages),
        )
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    add_transformers_flavor(path, model, tokenizer, "text-generation")


class CausalLMPyfunc(mlflow.pyfunc.PythonModel):
    """Generates completions with the HF model stored beside the MLmodel file."""

    def load_context(self, context) -> None:
        from reprolab.lm import generation

        marker = Path(context.artifacts["llm"])
        self.defaults = json.loads(marker.read_text())["sampling"]
        self.model, self.tokenizer = generation.load(marker.parent.parent)

    def predict(self, context, model_input, params: dict[str, Any] | None = None):
        return complete(self.model, self.tokenizer, _prompts(model_input), self.defaults, params)


def _prompts(model_input) -> list[str]:
    import pandas as pd

    from reprolab.lm.generation import GenerationError

    if isinstance(model_input, str):
        return [model_input]
    if isinstance(model_input, pd.DataFrame):
        if PROMPT in model_input.columns:
            return [str(p) for p in model_input[PROMPT]]
        if len(model_input.columns) == 1:
            return [str(p) for p in model_input.iloc[:, 0]]
        raise GenerationError(f"input: no '{PROMPT}' column; found {list(model_input.columns)}")
    return [str(p) for p in model_input]
