"""The `lora` kind end to end on a tiny base: fit (base and fine-tuned perplexity), save an
MLflow model (merged, or base + adapter), score it with its base on the test split, serve it
through pyfunc; bad bases and targets are refused before any weight is loaded."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytest.importorskip("peft")

from reprolab import models
from reprolab.data import instructions
from reprolab.errors import DataError
from reprolab.llm import lora as lora_lib
from reprolab.params import InstructionsDataset, LoraParams
from tests.llm import tiny


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny.save_base(tmp_path / "models" / "tinybase")
    data = InstructionsDataset(kind="instructions", code_alpaca=False, synthetic=40)
    instructions.prepare(data, 0, tmp_path / "raw", tmp_path / "data", None)
    return tmp_path


def spec(**overrides):
    values = {
        "kind": "lora",
        "dataset": "ins",
        "task": "llm-sft",
        "base": "tinybase",
        "r": 4,
        "alpha": 8,
        "dropout": 0.0,
        "lr": 5e-3,
        "warmup_steps": 0,
        "batch_size": 4,
        "max_steps": 6,
        "eval_every": 3,
        "eval_examples": 4,
        "max_length": 160,
        "prompts": ["How do I reproduce a pipeline with DVC?"],
        "max_new_tokens": 4,
        "threads": 2,
        **overrides,
    }
    return LoraParams(**values)


class Steps:
    def __init__(self):
        self.rows = []

    def log_step(self, step, metrics):
        self.rows.append((step, metrics))


@pytest.mark.parametrize("merge", [True, False])
def test_fit_save_score_serve(ws, merge):
    train = instructions.load_split(ws / "data", "train")
    valid = instructions.load_split(ws / "data", "valid")
    test = instructions.load_split(ws / "data", "test")
    model = models.build(spec(merge=merge, save_dtype="float32"), 0)
    steps = Steps()
    model.fit(train, valid, steps)
    assert [s for s, _ in steps.rows] == [0, 3, 6]
    assert {"train_loss", "valid_perplexity", "lr", "steps_per_s"} <= set(steps.rows[-1][1])
    scores = model.evaluate(valid)
    assert scores["perplexity"] < scores["base_perplexity"]  # lr 5e-3 on tiny random weights

    out = ws / "models" / "tuned"
    model.save(out, None)
    meta = json.loads((out / "artifacts" / "llm.json").read_text())
    assert meta["merged"] is merge and meta["base_dir"] == "models/tinybase"
    assert (out / "artifacts" / "lora_adapter" / "adapter_config.json").is_file()
    assert (out / "artifacts" / "hf" / "config.json").is_file()

    metrics, table, files = test.score_model(out)
    assert metrics["perplexity"] < metrics["base_perplexity"]
    assert len(table) == len(test.y) and {"perplexity", "base_perplexity"} <= set(table)
    sample = files["generations.json"]["samples"][0]
    assert sample["prompt"] == spec().prompts[0]
    assert isinstance(sample["base"], str) and isinstance(sample["finetuned"], str)

    predictor = models.load_predictor(out)
    scored = predictor.predict(test.X.head(3))
    assert list(scored.columns) == ["nll", "tokens"] and (scored["tokens"] > 0).all()
    generated = predictor.predict(pd.DataFrame({"instruction": ["Explain Docker."]}))
    assert isinstance(generated["generated"].iloc[0], str)
    with pytest.raises(Exception, match="empty prompt"):
        predictor.predict(pd.DataFrame({"prompt": ["  "]}))


def test_bad_targets_refused_before_loading(ws, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("weights loaded before the check")

    monkeypatch.setattr(lora_lib, "load_base", boom)
    train = instructions.load_split(ws / "data", "train")
    with pytest.raises(DataError, match=r"\['c_attn'\] match no linear layer of the 'llama' base"):
        models.build(spec(target_modules=["c_attn"]), 0).fit(train, train, None)


def test_bad_base_refused(ws):
    train = instructions.load_split(ws / "data", "train")
    with pytest.raises(DataError, match="base 'nothere': models/nothere not found"):
        models.build(spec(base="nothere"), 0).fit(train, train, None)
    (ws / "models" / "empty").mkdir()
    with pytest.raises(DataError, match="models/empty: not a Hugging Face model directory"):
        models.build(spec(base="empty"), 0).fit(train, train, None)
