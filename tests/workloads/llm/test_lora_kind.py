"""The `lora` kind end to end on a tiny base: fit (base and fine-tuned perplexity), save one
directory that is a Hugging Face model at its root (merged, or the base copy) with the adapter
under adapter/, a model card and an MLflow pyfunc with a signature and an input example;
score it with its base on the test split, serve it through pyfunc with the same outputs as
every causal LM; models of the earlier layout still load; bad bases and targets are refused
before any weight is loaded."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytest.importorskip("peft")

from reprolab import workloads
from reprolab.core import saving
from reprolab.core.errors import DataError
from reprolab.lm import generation, hf_dir
from reprolab.workloads.llm import data as instructions
from reprolab.workloads.llm import loading
from reprolab.workloads.llm.params import InstructionsDataset, LoraParams
from tests.workloads.llm import tiny


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tiny.save_base(tmp_path / "models" / "tinybase")
    data = InstructionsDataset(workload="llm", kind="instructions", code_alpaca=False, synthetic=40)
    instructions.prepare(data, 0, tmp_path / "raw", tmp_path / "data", None)
    return tmp_path


def spec(**overrides):
    values = {
        "workload": "llm",
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
    model = workloads.build(spec(merge=merge, save_dtype="float32"), 0)
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
    assert meta["sampling"] == {
        "max_new_tokens": 4,
        "temperature": 0.0,
        "top_k": 50,
        "top_p": 1.0,
        "seed": 0,
    }
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert not (out / "artifacts" / "hf").exists()
    assert hf_dir(out) == out
    check_root_and_adapter(ws, out, model, merge)
    check_signature(out)
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: other\n")  # the tiny base has no card: unknown
    assert "base_model: tinybase" in card and "pipeline_tag: text-generation" in card
    assert "Synthetic MLOps/DevOps Q&A" in card and "| valid | perplexity |" in card
    assert "models/tuned/adapter" in card

    metrics, table, files = test.score_model(out)
    assert metrics["perplexity"] < metrics["base_perplexity"]
    assert len(table) == len(test.y) and {"perplexity", "base_perplexity"} <= set(table)
    sample = files["generations.json"]["samples"][0]
    assert sample["prompt"] == spec().prompts[0]
    assert isinstance(sample["base"], str) and isinstance(sample["finetuned"], str)

    predictor = saving.load_predictor(out)
    scored = predictor.predict(test.X.head(3))
    assert list(scored.columns) == ["nll", "tokens"] and (scored["tokens"] > 0).all()
    generated = predictor.predict(pd.DataFrame({"instruction": ["Explain Docker."]}))
    assert list(generated.columns) == ["prompt", "completion"]
    assert generated["prompt"][0].endswith("### Instruction:\nExplain Docker.\n\n### Response:\n")
    assert isinstance(generated["completion"].iloc[0], str)
    sampled = predictor.predict(
        pd.DataFrame({"prompt": ["How do I", "Run dvc"]}),
        params={"max_new_tokens": 2, "temperature": 1.0, "top_k": 5, "seed": 3},
    )
    assert list(sampled.columns) == ["prompt", "completion"] and len(sampled) == 2
    with pytest.raises(Exception, match="empty prompt"):
        predictor.predict(pd.DataFrame({"prompt": ["  "]}))


def logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=ids).logits


def check_root_and_adapter(ws, out, model, merge):
    """The root loads with AutoModelForCausalLM (the merged model, or the base copy) and the
    adapter alone with PEFT on the base; both give the fine-tuned model's logits."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    ids = torch.tensor([model.tokenizer("How do I reproduce a pipeline?")["input_ids"]])
    expected = logits(model.model.eval(), ids)
    root = AutoModelForCausalLM.from_pretrained(out).eval()
    base = AutoModelForCausalLM.from_pretrained(ws / "models" / "tinybase").eval()
    base_logits = logits(base, ids)
    tuned = PeftModel.from_pretrained(base, out / "adapter").eval()
    assert torch.allclose(logits(tuned, ids), expected, atol=1e-4)
    assert torch.allclose(logits(root, ids), expected if merge else base_logits, atol=1e-4)
    loaded, _ = generation.load(out)  # applies the adapter when it was not merged
    assert torch.allclose(logits(loaded, ids), expected, atol=1e-4)
    check_transformers_flavor(out, ids, expected if merge else None)


def check_transformers_flavor(out, ids, expected):
    """A merged model also carries MLflow's transformers flavour over the root's weights; a
    base copy plus adapter does not (the flavour would load the bare base)."""
    import mlflow.transformers
    import torch
    from mlflow.models import Model

    flavors = Model.load(str(out)).flavors
    assert ("transformers" in flavors) == (expected is not None)
    if expected is not None:
        pipe = mlflow.transformers.load_model(str(out))
        assert type(pipe).__name__ == "TextGenerationPipeline"
        assert torch.allclose(logits(pipe.model.eval(), ids), expected, atol=1e-4)


def check_signature(out):
    """Signature and input example in MLmodel: the causal-LM params, both input shapes."""
    from mlflow.models import Model

    saved = Model.load(str(out))
    assert saved.signature is not None and saved.saved_input_example_info is not None
    inputs = {c.name: c.required for c in saved.signature.inputs.inputs}
    assert inputs == {"prompt": False, "instruction": False, "input": False, "response": False}
    outputs = [c.name for c in saved.signature.outputs.inputs]
    assert outputs == ["prompt", "completion", "nll", "tokens"]
    assert {p.name: (p.dtype.name, p.default) for p in saved.signature.params.params} == PARAMS
    example = saved.load_input_example(str(out))
    assert list(example.columns) == ["instruction", "input"]
    assert example["instruction"][0] == spec().prompts[0]


PARAMS = {
    "max_new_tokens": ("long", 4),
    "temperature": ("double", 0.0),
    "top_k": ("long", 50),
    "top_p": ("double", 1.0),
    "seed": ("long", 0),
}


def test_both_causal_lm_pyfuncs_share_outputs_and_params(ws, tmp_path):
    """Mini-T's pyfunc (reprolab.lm.pyfunc) and a LoRA model's (reprolab.workloads.llm.saved) return
    the same columns and take the same params; a model saved in the earlier layout (HF files
    under artifacts/hf, adapter under artifacts/lora_adapter) still loads and generates."""
    import shutil

    from mlflow.models import Model

    from reprolab.lm import pyfunc
    from reprolab.workloads.llm import saved

    base = ws / "models" / "tinybase"
    lm, tok = generation.load(base)
    pyfunc.save(tmp_path / "plain", lm, tok, generation.Sampling(max_new_tokens=3), ["Run dvc"])
    meta = {"merged": True, "max_new_tokens": 3, "max_length": 64, "prompts": ["Run dvc"]}
    saved.save_llm(tmp_path / "tuned", base, None, meta)
    legacy = tmp_path / "legacy"
    (tmp_path / "parts" / "artifacts").mkdir(parents=True)
    shutil.copytree(base, tmp_path / "parts" / "hf")
    (tmp_path / "parts" / "llm.json").write_text(json.dumps(meta))
    saving.save_pyfunc(
        legacy,
        python_model=saved.LlmPyfunc(),
        artifacts={"hf": str(tmp_path / "parts/hf"), "meta": str(tmp_path / "parts/llm.json")},
        pip_requirements=[],  # no inference: a subprocess run of ~10 s
    )
    assert hf_dir(legacy) == legacy / "artifacts" / "hf"

    frame = pd.DataFrame({"prompt": ["Run dvc", "How do I"]})
    greedy = {"max_new_tokens": 3, "temperature": 0.0}
    outputs = [
        saving.load_predictor(tmp_path / name).predict(frame, params=greedy)
        for name in ("plain", "tuned", "legacy")
    ]
    for out in outputs:
        assert list(out.columns) == ["prompt", "completion"]
        assert out["prompt"].tolist() == frame["prompt"].tolist()
    assert outputs[0]["completion"].tolist() == outputs[1]["completion"].tolist()
    assert outputs[1]["completion"].tolist() == outputs[2]["completion"].tolist()
    signatures = [Model.load(str(tmp_path / n)).signature for n in ("plain", "tuned")]
    names = [[(p.name, p.dtype.name) for p in s.params.params] for s in signatures]
    assert names[0] == names[1] == [(k, t) for k, (t, _) in PARAMS.items()]


def test_bad_targets_refused_before_loading(ws, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("weights loaded before the check")

    monkeypatch.setattr(loading, "load_base", boom)
    train = instructions.load_split(ws / "data", "train")
    with pytest.raises(DataError, match=r"\['c_attn'\] match no linear layer of the 'llama' base"):
        workloads.build(spec(target_modules=["c_attn"]), 0).fit(train, train, None)


def test_bad_base_refused(ws):
    train = instructions.load_split(ws / "data", "train")
    with pytest.raises(DataError, match="base 'nothere': models/nothere not found"):
        workloads.build(spec(base="nothere"), 0).fit(train, train, None)
    (ws / "models" / "empty").mkdir()
    with pytest.raises(DataError, match="models/empty: not a Hugging Face model directory"):
        workloads.build(spec(base="empty"), 0).fit(train, train, None)
