"""Tiny models of every family the pipelines save, trained in-process in seconds and saved as
the train stage saves them: shared by the portability tests and the serving tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest

from reprolab.workloads.wine.data import FEATURES as WINE_FEATURES

GREEDY = {"max_new_tokens": 5, "temperature": 0.0}


def cpu_run_tags(threads: int) -> dict[str, str]:
    """The tags a torch family records when it trains deterministically on the CPU, with the
    kernel path a rebuild on another CPU takes."""
    from reprolab.core.train.setup import cpu_kernels

    return {
        "deterministic": "true",
        "threads": str(threads),
        "cpu_kernels": cpu_kernels(),
        "device": "cpu",
        "bf16": "false",
    }


class TaggedRun:
    """The run a family's `fit` logs to, without MLflow: the step metrics, the tags it sets
    (device, bf16, budget_steps), and, with `stop_at`, an interrupt at that step (Ctrl-C or a
    killed job) for the resume tests."""

    def __init__(self, stop_at: int | None = None) -> None:
        self.steps: list[tuple[int, dict]] = []
        self.tags: dict[str, str] = {}
        self.stop_at = stop_at

    def log_step(self, step: int, metrics: dict) -> None:
        self.steps.append((step, metrics))
        if self.stop_at is not None and step >= self.stop_at:
            raise KeyboardInterrupt

    def set_tags(self, tags: dict[str, str]) -> None:
        self.tags.update(tags)


@dataclass
class Case:
    """A saved model, the frame to predict (None: its saved input example) and its params."""

    name: str
    dir: Path
    frame: pd.DataFrame | None = None
    params: dict[str, Any] | None = None
    wrapper: bool = True  # a reprolab pyfunc wrapper (its code travels), not a plain flavour
    unpinned: frozenset[str] = frozenset()  # modules its code imports that its pins lack

    def spec(self) -> dict[str, Any]:
        frame = None if self.frame is None else json.loads(self.frame.to_json(orient="split"))
        return {"name": self.name, "dir": str(self.dir), "frame": frame, "params": self.params}


# ---------------------------------------------------------------- tiny models, one per family


def wine_rf(root: Path) -> Case:
    from reprolab import workloads
    from reprolab.workloads.wine.params import RandomForestParams

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 4)), columns=["acidity", "sugar", "ph", "alcohol"])
    y = (5 + X["alcohol"] - 0.5 * X["ph"] ** 2 + rng.normal(0, 0.1, len(X))).to_numpy()
    split = SimpleNamespace(X=X, y=y)
    params = RandomForestParams(
        workload="wine",
        kind="random_forest",
        dataset="wine",
        task="wine-quality",
        n_estimators=8,
        n_jobs=1,
    )
    workloads.build(params, 0).fit(split, split).save(root / "wine-rf", input_example=X.head(5))
    return Case("wine-rf", root / "wine-rf", wrapper=False)


def wine_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """`n` rows of plausible wine inputs in the real feature columns (all positive)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "fixed acidity": rng.uniform(4.5, 12.0, n),
            "volatile acidity": rng.uniform(0.1, 1.0, n),
            "citric acid": rng.uniform(0.01, 0.7, n),
            "residual sugar": rng.uniform(0.9, 15.0, n),
            "chlorides": rng.uniform(0.01, 0.2, n),
            "free sulfur dioxide": rng.uniform(3.0, 70.0, n),
            "total sulfur dioxide": rng.uniform(10.0, 250.0, n),
            "density": rng.uniform(0.988, 1.003, n),
            "pH": rng.uniform(2.8, 3.9, n),
            "sulphates": rng.uniform(0.3, 1.2, n),
            "alcohol": rng.uniform(8.5, 14.5, n),
            "is_red": (rng.random(n) < 0.3).astype(float),
        },
        columns=WINE_FEATURES,
    )


def wine_model(
    root: Path, name: str = "wine-rf", n_estimators: int = 8, seed: int = 0, rows: int = 120
) -> Case:
    """A random forest on the real wine feature columns, y a grade 3..9; `seed` and
    `n_estimators` make distinct versions."""
    from reprolab import workloads
    from reprolab.workloads.wine.params import RandomForestParams

    rng = np.random.default_rng(seed)
    X = wine_frame(rows, seed)
    score = 5.8 + 0.6 * (X["alcohol"] - 10.5) - 2.0 * (X["volatile acidity"] - 0.5)
    y = np.clip(np.rint(score + rng.normal(0, 0.5, rows)), 3, 9).to_numpy()
    split = SimpleNamespace(X=X, y=y)
    params = RandomForestParams(
        workload="wine",
        kind="random_forest",
        dataset="wine",
        task="wine-quality",
        n_estimators=n_estimators,
        n_jobs=1,
    )
    workloads.build(params, seed).fit(split, split).save(root / name, input_example=X.head(5))
    return Case(name, root / name, wrapper=False)


POS = ["정말 재밌어요 최고", "배우 연기 좋다 감동", "최고의 영화 추천", "재밌다 또 보고 싶다"]
NEG = ["너무 지루하다 별로", "최악의 영화 시간 낭비", "별로 재미없다", "지루하고 최악"]


def reviews(n: int) -> SimpleNamespace:
    labels = np.arange(n) % 2 == 0
    texts = [f"{(POS if pos else NEG)[(i // 2) % 4]} {i}" for i, pos in enumerate(labels)]
    return SimpleNamespace(X=pd.DataFrame({"text": texts}), y=labels.astype(int))


def nsmc_models(root: Path) -> list[Case]:
    """A TF-IDF model (a plain sklearn flavour), an NB-LR over morphemes (sklearn, calling
    reprolab's Kiwi function: its code travels) and their probability-average ensemble."""
    from reprolab import workloads
    from reprolab.workloads.sentiment.ensemble import ProbAverage
    from reprolab.workloads.sentiment.params import (
        NbLogRegParams,
        ProbAverageParams,
        TfidfLogRegParams,
    )

    train, valid = reviews(40), reviews(16)
    task = {"workload": "sentiment", "dataset": "nsmc", "task": "nsmc-sentiment"}
    members = {
        "nsmc-tfidf": TfidfLogRegParams(kind="tfidf_logreg", hash_bits=10, C=4.0, **task),
        "nsmc-nblr": NbLogRegParams(kind="nb_logreg", hash_bits=10, **task),
    }
    for name, params in members.items():
        workloads.build(params, 0).fit(train, valid).save(root / name, train.X.head(3))
    cases = [
        Case("nsmc-tfidf", root / "nsmc-tfidf", wrapper=False),
        Case("nsmc-nblr", root / "nsmc-nblr"),
    ]
    params = ProbAverageParams(kind="prob_average", members=[str(c.dir) for c in cases], **task)
    ProbAverage(params, 0).fit(train, valid).save(root / "nsmc-ensemble", train.X.head(3))
    return [*cases, Case("nsmc-ensemble", root / "nsmc-ensemble")]


def png_bytes(rgb: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def nuclei_unet(root: Path) -> Case:
    from reprolab import workloads
    from tests.workloads.nuclei.test_unet import Pairs, unet_params

    pairs = Pairs([0, 1, 2], h=48, w=48)
    rgbs = pairs.rgb()
    spec = unet_params(base_width=4, batch_size=4, max_steps=6, eval_every=6, warmup_steps=2)
    model = workloads.build(spec, 0).fit(pairs, pairs)
    model.save(root / "nuclei-unet", input_example=pd.DataFrame({"image": [png_bytes(rgbs[0])]}))
    return Case("nuclei-unet", root / "nuclei-unet")


TINY_CONTROL = {
    "workload": "control",
    "kind": "control",
    "n_plants": 24,
    "horizon": 30.0,
    "disturbance_time": 15.0,
    "delay": (0.2, 1.0),
}


def pidnet_params(**changes: Any):
    """PIDNet params small enough to train in a second (`changes` override them)."""
    from reprolab.workloads.control.params import PIDNetParams

    spec = {"dataset": "c", "task": "t", "workload": "control", "kind": "pidnet"}
    return PIDNetParams(**{**spec, "epochs": 1, "batch_size": 8, **changes})


def pid_pidnet(root: Path) -> Case:
    from reprolab import workloads
    from reprolab.workloads.control import data as control
    from reprolab.workloads.control.params import ControlDataset

    control.prepare(ControlDataset(**TINY_CONTROL), 7, root / "control-raw", root / "control", None)
    train, valid = (control.load_split(root / "control", s) for s in ("train", "valid"))
    model = workloads.build(pidnet_params(), 0).fit(train, valid, None)
    model.save(root / "pid-pidnet", input_example=train.X.head(2))
    return Case("pid-pidnet", root / "pid-pidnet")


def minit(root: Path) -> Case:
    from reprolab import workloads
    from reprolab.lm import tokenizers
    from reprolab.workloads.minit.params import MiniTParams

    text = "the quick brown fox jumps over the lazy dog.\n" * 40
    tok = tokenizers.char_tokenizer(text)
    tok.save_pretrained(str(root / "minit-tok"))
    split = SimpleNamespace(
        tokens=tokenizers.encode(tok, text),
        X=pd.DataFrame({"prompt": ["the ", "a lazy"]}),
        tokenizer=lambda: tokenizers.load(root / "minit-tok"),
    )
    params = MiniTParams(
        workload="minit",
        kind="minit",
        dataset="s",
        n_layer=1,
        n_embd=16,
        n_head=2,
        block_size=16,
        batch_size=4,
        lr=3e-3,
        warmup_steps=1,
        max_steps=4,
        max_seconds=None,
        eval_every=4,
        eval_batches=1,
        log_every=4,
        checkpoint_every=4,
        checkpoint_dir=str(root / "minit-ckpt"),
        sample_tokens=4,
        threads=1,
    )
    model = workloads.build(params, 0).fit(split, split, None)
    model.save(root / "minit", input_example=split.X)
    return Case("minit", root / "minit", params=GREEDY)


def llm_lora(root: Path) -> Case:
    """A LoRA adapter (not merged) on a tiny Llama: the pyfunc scores prompt/response pairs."""
    from reprolab import workloads
    from reprolab.workloads.llm import data as instructions
    from reprolab.workloads.llm.params import InstructionsDataset, LoraParams
    from tests.workloads.llm import tiny

    ws = root / "lora-ws"
    tiny.save_base(ws / "models" / "tinybase")
    data = InstructionsDataset(workload="llm", kind="instructions", code_alpaca=False, synthetic=40)
    instructions.prepare(data, 0, ws / "raw", ws / "data", None)
    train, valid = (instructions.load_split(ws / "data", s) for s in ("train", "valid"))
    params = LoraParams(
        workload="llm",
        kind="lora",
        dataset="ins",
        task="llm-sft",
        base="tinybase",
        r=2,
        alpha=4,
        dropout=0.0,
        warmup_steps=0,
        batch_size=2,
        max_steps=2,
        eval_every=2,
        eval_examples=2,
        max_length=160,
        prompts=["How do I reproduce a pipeline?"],
        max_new_tokens=2,
        threads=1,
        merge=False,
    )
    with pytest.MonkeyPatch.context() as mp:  # the base is found as models/<base>
        mp.chdir(ws)
        model = workloads.build(params, 0).fit(train, valid, None)
        model.save(ws / "models" / "llm-lora", input_example=train.X.head(3))
    frame = valid.X[["prompt", "response"]].head(2).reset_index(drop=True)
    return Case("llm-lora", ws / "models" / "llm-lora", frame=frame)
