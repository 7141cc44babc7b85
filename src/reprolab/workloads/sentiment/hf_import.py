"""`hf`: a base model brought in from outside (an `imports` entry): a Hugging Face hub id
(`beomi/kcbert-base` for users online, pinned by `revision`) or a local directory, loaded with
`AutoModel.from_pretrained` + `AutoTokenizer.from_pretrained` and written with
`save_pretrained` to models/<name> with a model card (README.md) naming the source, so that
a finetune kind reads it like a pretrained base. Offline (HF_HUB_OFFLINE=1) only local paths
and the local HF cache work."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

from reprolab.core.model import Model, StepLogger


class HFImport(Model):
    def __init__(self, params: Any, seed: int) -> None:
        super().__init__(params, seed)
        self.model = None
        self.tokenizer = None

    def fit(self, train: Any, valid: Any, run: StepLogger | None = None) -> Self:
        """Nothing to learn: fetch (or read) the model and its tokenizer."""
        from transformers import AutoModel, AutoTokenizer

        from reprolab.core.errors import DataError

        p = self.params
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(p.source, revision=p.revision)
            self.model = AutoModel.from_pretrained(p.source, revision=p.revision)
        except OSError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise DataError(
                f"{p.source}: cannot load a Hugging Face model ({first}); a hub id needs a "
                "network (unset HF_HUB_OFFLINE), or name a local model directory"
            ) from err
        return self

    def predict(self, inputs: Any) -> Any:
        raise NotImplementedError("an imported base model is used through a finetune kind")

    def evaluate(self, split: Any) -> dict:
        return {}

    def hyperparams(self) -> dict[str, Any]:
        return self.params.model_dump(exclude={"workload", "dataset", "task"})

    def save(self, path: Path, input_example: Any) -> None:
        if self.model is None:
            raise RuntimeError("fit (load) the model before saving")
        path = Path(path)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        info = {"kind": "hf", "source": self.params.source, "revision": self.params.revision}
        (path / "reprolab.json").write_text(json.dumps(info, indent=2) + "\n")
        self._write_card(path)

    def _write_card(self, path: Path) -> None:
        from reprolab.core import card

        p = self.params
        local = Path(p.source).exists()
        base_model, license = card.base_card(Path(p.source)) if local else (p.source, "other")
        pinned = f" at revision `{p.revision}`" if p.revision else ""
        card.write_card(
            path,
            name=card.model_name(path),
            kind="hf",
            summary=(
                f"`{base_model}` brought in unchanged from `{p.source}`{pinned} "
                f"({self.model.config.model_type} encoder): a base for `finetune` entries."
            ),
            license=license or "other",
            pipeline_tag="feature-extraction",
            base_model=base_model,
            tags=["base-model", "import", self.model.config.model_type],
            usage=(
                "```python\nfrom transformers import AutoModel, AutoTokenizer\n\n"
                f'model = AutoModel.from_pretrained("models/{card.model_name(path)}")\n'
                f'tokenizer = AutoTokenizer.from_pretrained("models/{card.model_name(path)}")\n```'
            ),
            params=card.tuning_params(p),
            intended_use="A base encoder for fine-tuning in this repository.",
            limits=["The weights, and their licence, are the source model's: see its card."],
        )
