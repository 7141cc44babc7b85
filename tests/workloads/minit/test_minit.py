"""Mini-T on a tiny config: the loss falls, an interrupted run resumes from its checkpoint to
the same weights as an uninterrupted one, and the saved directory is at once a standard HF
causal-LM directory and an MLflow pyfunc model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from reprolab import workloads
from reprolab.core import saving
from reprolab.core.errors import ParamsError
from reprolab.core.train.schedule import warmup_decay
from reprolab.lm import tokenizers as tokenization
from reprolab.params import parse_params
from reprolab.workloads.minit.params import MiniTParams
from tests.tiny_models import cpu_run_tags

TEXT = "the quick brown fox jumps over the lazy dog.\nnow is the time for all good men.\n" * 60


@dataclass
class Split:  # what data.shakespeare.load_split returns, built in memory
    tokens: np.ndarray
    tokenizer_dir: Path
    X: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"prompt": ["the ", "now"]}))

    def tokenizer(self):
        return tokenization.load(self.tokenizer_dir)


@pytest.fixture
def splits(tmp_path) -> tuple[Split, Split]:
    tok = tokenization.char_tokenizer(TEXT)
    tok.save_pretrained(str(tmp_path / "tok"))
    cut = int(len(TEXT) * 0.9)
    return (
        Split(tokenization.encode(tok, TEXT[:cut]), tmp_path / "tok"),
        Split(tokenization.encode(tok, TEXT[cut:]), tmp_path / "tok"),
    )


def tiny(tmp_path, **overrides) -> MiniTParams:
    values = {
        "workload": "minit",
        "kind": "minit",
        "dataset": "s",
        "n_layer": 1,
        "n_embd": 32,
        "n_head": 2,
        "block_size": 32,
        "batch_size": 8,
        "lr": 3e-3,
        "warmup_steps": 5,
        "max_steps": 40,
        "max_seconds": None,
        "eval_every": 10,
        "eval_batches": 2,
        "log_every": 10,
        "checkpoint_every": 10,
        "checkpoint_dir": str(tmp_path / "ckpt"),
        "sample_tokens": 8,
        "threads": 1,  # tiny matrices: a second thread only adds waiting
        **overrides,
    }
    return MiniTParams(**values)


class Recorder:
    def __init__(self, stop_at: int | None = None) -> None:
        self.points: dict[int, dict] = {}
        self.stop_at = stop_at

    def log_step(self, step: int, metrics: dict) -> None:
        self.points[step] = metrics
        if step == self.stop_at:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C here


@pytest.mark.parametrize("arch", ["mistral", "llama", "gpt2"])
def test_loss_falls_and_curves_are_logged(arch, splits, tmp_path):
    train, valid = splits
    model = workloads.build(tiny(tmp_path, arch=arch), seed=0)
    log = Recorder()
    model.fit(train, valid, log)
    valid_curve = [log.points[s]["valid_loss"] for s in (10, 20, 30, 40)]
    assert valid_curve[-1] < valid_curve[0] - 0.3, valid_curve
    assert valid_curve[-1] < np.log(len(train.tokenizer())) - 0.5  # beats uniform guessing
    assert {"train_loss", "lr", "tokens_per_s", "elapsed_s"} <= set(log.points[40])
    assert log.points[40]["lr"] == pytest.approx(3e-4, rel=0.05)  # annealed to min_lr_ratio * lr
    scores = model.evaluate(valid)
    assert scores["loss"] == pytest.approx(valid_curve[-1], abs=0.3)
    assert scores["perplexity"] == pytest.approx(np.exp(scores["loss"]))
    assert model.summary["steps"] == 40 and model.summary["stopped_by"] == "max_steps"


def test_a_time_guard_cuts_training_short_on_the_step_schedule(splits, tmp_path, capsys):
    """The guard stops the loop; the cosine still follows the planned steps (by steps it is
    near the peak early on), so the run is cut short, not annealed, and says so."""
    train, valid = splits
    params = tiny(tmp_path, max_steps=100_000, max_seconds=2.0, warmup_steps=0)
    model = workloads.build(params, seed=0)
    log = Recorder()
    model.fit(train, valid, log)
    assert model.summary["stopped_by"] == "max_seconds" and model.summary["steps"] < 100_000
    assert model.summary["cut_short"] and model.summary["seconds"] >= 2.0
    last = log.points[max(log.points)]
    expected = warmup_decay(
        max(log.points) - 1,
        warmup=0,
        total=100_000,
        peak=params.lr,
        floor=params.lr * params.min_lr_ratio,
    )
    assert last["lr"] == pytest.approx(expected) and last["lr"] > 0.99 * params.lr
    assert "minit: cut short: max_seconds=2 reached at step" in capsys.readouterr().err


def test_trains_on_the_device_asked_and_device_keeps_the_checkpoint(splits, tmp_path):
    train, valid = splits
    tags: dict = {}

    class Run(Recorder):
        def set_tags(self, new: dict) -> None:
            tags.update(new)

    short = {"max_steps": 4, "warmup_steps": 1, "eval_every": 4, "log_every": 4}
    model = workloads.build(tiny(tmp_path, device="cpu", **short), seed=0)
    model.fit(train, valid, Run())
    assert tags == cpu_run_tags(1)
    assert next(model.net.parameters()).device.type == "cpu"
    # where it trains does not change what it learns: the same checkpoint either way
    auto = workloads.build(tiny(tmp_path, **short), seed=0)
    assert auto.checkpoint_path(train.tokens) == model.checkpoint_path(train.tokens)


def test_learning_rate_schedule():
    def lr_at(step: int) -> float:  # Mini-T's use: by steps, to 10 % of the peak
        return warmup_decay(step, warmup=10, total=1010, floor=0.1)

    assert [lr_at(s) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert lr_at(10) == 1.0 and lr_at(1010) == pytest.approx(0.1)
    assert lr_at(510) == pytest.approx(0.55)


def test_an_interrupted_run_resumes_to_the_same_weights(splits, tmp_path, capsys):
    train, valid = splits
    whole = workloads.build(tiny(tmp_path, checkpoint_dir=str(tmp_path / "a")), seed=0)
    whole.fit(train, valid, Recorder())
    assert not any((tmp_path / "a").rglob("*.pt"))  # a finished run leaves no checkpoint

    params = tiny(tmp_path, checkpoint_dir=str(tmp_path / "b"))
    first = workloads.build(params, seed=0)
    with pytest.raises(KeyboardInterrupt):  # at step 30's log, before its checkpoint
        first.fit(train, valid, Recorder(stop_at=30))
    saved = list((tmp_path / "b").rglob("state.pt"))
    assert len(saved) == 1
    state = torch.load(saved[0], weights_only=False)
    assert state["step"] == 20  # the last checkpoint: steps 21-30 are done again
    assert set(state["family"]) == {"model", "optimiser", "sampler", "elapsed"}

    log = Recorder()
    resumed = workloads.build(params, seed=0).fit(train, valid, log)
    out = capsys.readouterr().out
    assert "resuming from" in out and "at step 20" in out
    assert sorted(log.points) == [10, 20, 30, 40]  # the curve before the interruption, replayed

    def losses(model):
        return [h["valid_loss"] for h in model.summary["history"]]

    assert losses(resumed) == losses(whole)
    for (name, a), (_, b) in zip(
        whole.net.state_dict().items(), resumed.net.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name
    # other params or other data: a fresh start, never a foreign checkpoint
    assert params.model_copy(update={"lr": 1e-3}) != params
    other = workloads.build(params.model_copy(update={"lr": 1e-3}), seed=0)
    assert other.checkpoint_path(train.tokens) != resumed.checkpoint_path(train.tokens)
    assert resumed.checkpoint_path(train.tokens[:-1]) != resumed.checkpoint_path(train.tokens)


def test_saved_model_is_an_hf_directory_and_a_pyfunc(splits, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    train, valid = splits
    model = workloads.build(tiny(tmp_path, max_steps=20), seed=0).fit(train, valid, None)
    out = tmp_path / "model"
    model.save(out, input_example=train.X)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "MLmodel"):
        assert (out / name).is_file(), name
    hf = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    tok = AutoTokenizer.from_pretrained(str(out))
    x = torch.from_numpy(valid.tokens[:32].astype(np.int64))[None]
    with torch.no_grad():
        assert torch.allclose(hf(input_ids=x).logits, model.net(input_ids=x).logits, atol=1e-5)
    assert tok.decode(tok("the lazy dog")["input_ids"]) == "the lazy dog"
    samples = json.loads((out / "samples.json").read_text())
    assert [s["prompt"] for s in samples] == ["the ", "now"]
    assert json.loads((out / "training.json").read_text())["steps"] == 20

    predictor = saving.load_predictor(out)
    frame = predictor.predict(
        pd.DataFrame({"prompt": ["the quick"]}), params={"max_new_tokens": 5, "temperature": 0.0}
    )
    assert list(frame.columns) == ["prompt", "completion"] and len(frame) == 1
    greedy = hf.generate(
        input_ids=torch.tensor([tok("the quick")["input_ids"]]), max_new_tokens=5, do_sample=False
    )
    assert frame["completion"][0] == tok.decode(greedy[0, 9:], skip_special_tokens=True)
    # MLflow's transformers flavour: a pipeline over the same root files
    import mlflow.transformers

    pipe = mlflow.transformers.load_model(str(out))
    assert type(pipe).__name__ == "TextGenerationPipeline"
    piped = pipe("the quick", max_new_tokens=5, do_sample=False, return_full_text=False)
    assert piped[0]["generated_text"] == frame["completion"][0]
    assert [p.name for p in out.rglob("*.safetensors")] == ["model.safetensors"]  # once
    # saved into a stage's staging directory, the flavour still names the model
    staged = tmp_path / ".model.k2x9.tmp"
    staged.mkdir()
    (staged / "MLmodel").write_text((out / "MLmodel").read_text())
    saving.add_transformers_flavor(staged, hf, tok, "text-generation")
    flavor = yaml.safe_load((staged / "MLmodel").read_text())["flavors"]["transformers"]
    assert flavor["source_model_name"] == "model" and flavor["model_binary"] == "."
    # a base for LoRA as it is: PEFT finds the Llama-style projections
    from peft import LoraConfig, get_peft_model

    lora = get_peft_model(hf, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    assert 0 < lora.get_nb_trainable_parameters()[0] < 2000

    from mlflow.models import Model

    signature = Model.load(str(out)).signature
    assert [c.name for c in signature.outputs.inputs] == ["prompt", "completion"]
    assert [p.name for p in signature.params.params] == [
        "max_new_tokens",
        "temperature",
        "top_k",
        "top_p",
        "seed",
    ]
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlicense: mit\n") and "pipeline_tag: text-generation" in card
    assert "Tiny Shakespeare" in card and "public domain" in card
    assert "| valid | loss |" in card and "20 steps" in card
    assert 'AutoModelForCausalLM.from_pretrained("models/model")' in card


def test_bad_minit_params_name_the_key():
    raw = {
        "datasets": {"s": {"workload": "minit", "kind": "shakespeare"}},
        "models": {},
        "pretrain": {
            "m": {"workload": "minit", "kind": "minit", "dataset": "s", "n_embd": 30, "n_head": 4}
        },
        "registry": {},
    }
    with pytest.raises(ParamsError, match=r"pretrain\.m\.n_embd: must be a multiple of n_head"):
        parse_params(raw)
    raw["pretrain"]["m"] = {"workload": "minit", "kind": "minit", "dataset": "s", "arch": "bert"}
    with pytest.raises(ParamsError, match=r"pretrain\.m\.arch: must be one of"):
        parse_params(raw)
