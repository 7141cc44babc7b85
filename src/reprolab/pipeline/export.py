"""export@<name>: a trained causal LM (models/<name>/) written as GGUF, f16 and Q8_0, by
llama.cpp's converter into models/gguf/<name>/; each file is loaded by llama.cpp and checked
against the model (`llamacpp.check`), the measures go to reports/export/<name>/gguf.json,
and the Q8_0 file is logged to the model's MLflow run (gguf/model-q8_0.gguf), where the
service's llama.cpp backend finds it for any registered version of that run.

Its paths live here rather than in core.layout, which every training stage depends on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reprolab.core.io import atomic_dir, atomic_write_json
from reprolab.core.layout import RUN_FILE, model_dir, train_dir

ARTIFACT_DIR = "gguf"  # in the model's MLflow run
SERVED = "q8_0"
EXPORTS = Path("gguf.yaml")  # the models to export: dvc.yaml's foreach reads the same file


def names(path: Path = EXPORTS) -> list[str]:
    """The models gguf.yaml lists (none when it is missing)."""
    import yaml

    if not path.is_file():
        return []
    return sorted((yaml.safe_load(path.read_text()) or {}).get("gguf") or {})


def gguf_dir(name: str) -> Path:
    return Path("models/gguf") / name


def report_file(name: str) -> Path:
    return Path("reports/export") / name / "gguf.json"


def file_name(outtype: str) -> str:
    return f"model-{outtype}.gguf"


def export(name: str) -> dict[str, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reprolab.llamacpp.check import check
    from reprolab.llamacpp.convert import TYPES, to_gguf
    from reprolab.lm.generation import find_hf_dir

    hf_dir = find_hf_dir(model_dir(name))
    out = gguf_dir(name)
    with atomic_dir(out) as staging:
        for outtype in TYPES:
            to_gguf(hf_dir, staging / file_name(outtype), outtype)
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype="float32").eval()
    tokenizer = AutoTokenizer.from_pretrained(hf_dir)
    measures = {t: check(out / file_name(t), model, tokenizer, strict=t == "f16") for t in TYPES}
    atomic_write_json(report_file(name), measures)
    run_id = _log(name, out / file_name(SERVED))
    return {"files": {t: str(out / file_name(t)) for t in TYPES}, "run_id": run_id, **measures}


def _log(name: str, served: Path) -> str | None:
    """The served file as an artifact of the model's MLflow run (None: no run recorded)."""
    run_file = train_dir(name) / RUN_FILE
    if not run_file.is_file():
        return None
    run_id = json.loads(run_file.read_text())["run_id"]
    from reprolab.core.tracking import client

    mlflow = client()
    mlflow.log_artifact(run_id, str(served), ARTIFACT_DIR)
    mlflow.set_tag(run_id, "reprolab.gguf", f"{ARTIFACT_DIR}/{served.name}")
    return run_id
