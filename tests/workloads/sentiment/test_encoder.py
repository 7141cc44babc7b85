"""The BERT-family sentiment models on tiny data with a tiny encoder built from a config (no
download): WordPiece tokenizer training, MLM pretraining, the standard HF directory,
fine-tuning with `unfrozen_layers` (frozen weights unchanged), resume from a checkpoint
(same result as an uninterrupted run), the saved pyfunc and SentimentPredictor on it, the
`hf` import kind, the probability-averaging ensemble and params validation."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from reprolab.core.errors import DataError, ParamsError
from reprolab.core.train.setup import cpu_kernels
from reprolab.workloads.sentiment.params import (
    BertMLMParams,
    HFClassifierParams,
    HFImportParams,
    ProbAverageParams,
    TfidfLogRegParams,
)
from tests.tiny_models import TaggedRun

POS = ["정말 재밌어요", "배우 연기 최고", "감동 추천합니다", "재밌다 또 보고 싶다", "명작 최고"]
NEG = ["너무 지루하다", "최악의 영화", "시간 낭비 별로", "재미없다 실망", "지루하고 최악"]
FILLER = ["영화", "오늘", "그냥", "스토리", "배우들", "감독", "장면", "음악"]


class Split:
    """A TextSplit stand-in: `X` frame with `text`, labels, groups, score."""

    def __init__(self, n: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        texts, labels = [], []
        for i in range(n):
            label = i % 2
            core = (POS if label else NEG)[int(rng.integers(5))]
            words = [str(w) for w in rng.choice(FILLER, size=int(rng.integers(0, 4)))]
            texts.append(" ".join([*words, core, *words[:1]]))
            labels.append(label)
        self.X = pd.DataFrame({"text": texts})
        self.y = np.array(labels)
        self.groups = np.array(["all"] * n)

    def score(self, probs):
        from reprolab.core.metrics import classification_by_group

        return classification_by_group(self.y, probs, self.groups)


TINY = dict(
    workload="sentiment",
    kind="bert_mlm",
    dataset="nsmc",
    task="nsmc-sentiment",
    vocab_size=200,
    min_frequency=1,
    max_length=16,
    hidden_size=32,
    num_layers=2,
    num_heads=2,
    intermediate_size=64,
    batch_size=16,
    max_steps=6,
    warmup_steps=2,
    eval_every=3,
    eval_rows=40,
    checkpoint_every=3,
    bf16=False,
    threads=1,
)


@pytest.fixture(autouse=True)
def checkpoints(tmp_path, monkeypatch):
    monkeypatch.setenv("REPROLAB_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return tmp_path / "checkpoints"


@pytest.fixture(scope="module")
def splits():
    return Split(160, 0), Split(40, 1), Split(40, 2)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory, splits):
    """A tiny MLM-pretrained encoder saved as a standard HF directory."""
    from reprolab.workloads.sentiment.bert_mlm import BertMLM

    train, valid, _ = splits
    out = tmp_path_factory.mktemp("encoder")
    old = os.environ.get("REPROLAB_CHECKPOINTS")
    os.environ["REPROLAB_CHECKPOINTS"] = str(out / "ck")
    try:
        log = TaggedRun()
        model = BertMLM(BertMLMParams(**TINY), seed=0).fit(train, valid, log)
    finally:
        if old is None:
            os.environ.pop("REPROLAB_CHECKPOINTS")
        else:
            os.environ["REPROLAB_CHECKPOINTS"] = old
    model.save(out / "hf", None)
    return model, out / "hf", log


def test_wordpiece_tokenizer_keeps_hangul_and_saves(tmp_path, splits):
    from transformers import AutoTokenizer

    from reprolab.workloads.sentiment.hf_text import SPECIAL_TOKENS, train_tokenizer

    tok = train_tokenizer(list(splits[0].X["text"]), 200, 1, False, 16)
    assert tok.convert_ids_to_tokens(list(range(5))) == SPECIAL_TOKENS
    pieces = tok.tokenize("정말 재밌어요")
    assert "정말" in pieces  # whole syllables, not NFD jamo
    assert "[UNK]" not in pieces
    tok.save_pretrained(tmp_path / "tok")
    again = AutoTokenizer.from_pretrained(tmp_path / "tok")
    ids = again("정말 재밌어요")["input_ids"]
    assert ids[0] == again.cls_token_id and ids[-1] == again.sep_token_id
    assert ids == tok("정말 재밌어요")["input_ids"]


def test_dynamic_padding_and_length_grouped_batches():
    from reprolab.workloads.sentiment.hf_text import epoch_batches, pad

    batch, mask = pad([[2, 7, 3], [2, 3]], pad_id=0, multiple=4)
    assert batch.tolist() == [[2, 7, 3, 0], [2, 3, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 0], [1, 1, 0, 0]]
    lengths = list(np.random.default_rng(0).integers(3, 60, size=500))
    first = epoch_batches(lengths, 16, seed=1, epoch=0)
    assert sorted(np.concatenate(first).tolist()) == list(range(500))
    assert [b.tolist() for b in first] == [b.tolist() for b in epoch_batches(lengths, 16, 1, 0)]
    assert [b.tolist() for b in first] != [b.tolist() for b in epoch_batches(lengths, 16, 1, 1)]
    spread = np.mean([np.ptp(np.asarray(lengths)[b]) for b in first])
    assert spread < 20  # grouped by length: little padding inside a batch


def test_mlm_pretraining_writes_a_standard_hf_directory(encoder, splits):
    from transformers import AutoModel, AutoModelForMaskedLM, AutoTokenizer

    model, path, log = encoder
    assert [step for step, _ in log.steps] == [3, 6]
    for _, metrics in log.steps:
        assert np.isfinite(metrics["train_mlm_loss"]) and np.isfinite(metrics["valid_mlm_loss"])
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in path.iterdir()
    }
    encoder_only = AutoModel.from_pretrained(path)
    assert encoder_only.config.num_hidden_layers == 2 and encoder_only.config.hidden_size == 32
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer.mask_token == "[MASK]" and len(tokenizer) <= 200
    mlm = AutoModelForMaskedLM.from_pretrained(path)
    ids = tokenizer("정말 [MASK]", return_tensors="pt")
    assert mlm(**ids).logits.shape[-1] == len(tokenizer)
    metrics = model.evaluate(splits[1])
    assert np.isfinite(metrics["mlm_loss"]) and metrics["perplexity"] > 1
    assert model.predict(splits[1].X).shape == (40, 32)
    assert model.summary["steps"] == 6
    card = (path / "README.md").read_text()
    assert card.startswith("---\nlicense: mit\n") and "pipeline_tag: fill-mask" in card
    assert "CC0 1.0" in card and "| valid | mlm_loss |" in card


def test_mlm_masks_only_real_tokens():
    import torch

    from reprolab.workloads.sentiment.bert_mlm import mask_tokens

    ids = torch.tensor([[2, 10, 11, 12, 3, 0], [2, 13, 3, 0, 0, 0]])
    _inputs, labels = mask_tokens(ids, ids < 5, 50, prob=0.99, generator=torch.Generator())
    picked = labels != -100
    assert not picked[ids < 5].any()
    assert picked[ids >= 5].all()
    assert (labels[picked] == ids[picked]).all()


def classifier_params(base, **extra):
    values = dict(
        workload="sentiment",
        kind="hf_classifier",
        dataset="nsmc",
        task="nsmc-sentiment",
        base=str(base),
        max_length=16,
        batch_size=16,
        eval_batch_size=32,
        lr=3e-3,
        epochs=2,
        eval_every=4,
        patience=10,
        checkpoint_every=2,
        bf16=False,
        threads=1,
    )
    return HFClassifierParams(**{**values, **extra})


def test_finetune_trains_only_the_unfrozen_top_layers(encoder, splits):
    import torch
    from transformers import AutoModel

    from reprolab.workloads.sentiment.hf_classifier import HFClassifier

    _, base, _ = encoder
    train, valid, test = splits
    log = TaggedRun()
    model = HFClassifier(classifier_params(base, unfrozen_layers=1), seed=0).fit(train, valid, log)
    before = AutoModel.from_pretrained(base).state_dict()
    after = model.model.bert.state_dict()
    frozen = [k for k in before if not k.startswith(("encoder.layer.1.", "pooler."))]
    assert any(k.startswith("embeddings.") for k in frozen)
    assert any(k.startswith("encoder.layer.0.") for k in frozen)
    for key in frozen:
        assert torch.equal(before[key], after[key]), f"{key} changed but is frozen"
    trained = [k for k in before if k.startswith("encoder.layer.1.") and k.endswith("weight")]
    assert any(not torch.equal(before[k], after[k]) for k in trained)
    assert model.summary["frozen_parameters"] == len(model.frozen) > 0
    assert [s for s, _ in log.steps] == [4, 8, 12, 16, 20]  # 10 batches x 2 epochs
    assert all(0 <= m["valid_accuracy"] <= 1 for _, m in log.steps)
    probs = model.predict(test.X)
    assert probs.shape == (40, 2)
    np.testing.assert_allclose(probs.sum(1), 1.0)


def test_finetune_learns_the_toy_task(encoder, splits):
    from reprolab.workloads.sentiment.hf_classifier import HFClassifier

    _, base, _ = encoder
    train, valid, test = splits
    model = HFClassifier(classifier_params(base, epochs=6, eval_every=10), seed=0)
    model.fit(train, valid, None)
    assert model.evaluate(test)["accuracy"] >= 0.9


@pytest.mark.parametrize(
    ("extra", "stop_at", "resumed_from", "steps"),
    [
        ({}, 4, 2, 20),  # interrupted while logging step 4: its last checkpoint is step 2
        ({}, 12, 10, 20),  # checkpoint at the end of epoch 0: resumes with epoch 1's batches
        # early stopping (best at step 10, stops at 20): best weights kept through a resume
        (
            {"epochs": 10, "eval_every": 5, "patience": 2, "lr": 1e-3, "checkpoint_every": 7},
            15,
            14,
            20,
        ),
    ],
)
def test_interrupted_finetune_resumes_to_the_same_weights(
    encoder, splits, checkpoints, extra, stop_at, resumed_from, steps
):
    import torch

    from reprolab.workloads.sentiment.hf_classifier import HFClassifier

    _, base, _ = encoder
    train, valid, _ = splits
    params = classifier_params(base, **extra)
    whole_run = TaggedRun()
    whole = HFClassifier(params, seed=0).fit(train, valid, whole_run)
    assert not any(checkpoints.glob("*/state.pt"))  # a finished run leaves no checkpoint

    with pytest.raises(KeyboardInterrupt):
        HFClassifier(params, seed=0).fit(train, valid, TaggedRun(stop_at=stop_at))
    assert len(list(checkpoints.glob("*/state.pt"))) == 1
    run = TaggedRun()
    resumed = HFClassifier(params, seed=0).fit(train, valid, run)
    assert resumed.summary["resumed_from_step"] == resumed_from
    assert resumed.summary["steps"] == whole.summary["steps"] == steps
    assert whole.summary["stopped_early"] == (steps < whole.summary["planned_steps"])
    for key in ("best_step", "best_valid_accuracy", "stopped_early", "planned_steps"):
        assert resumed.summary[key] == whole.summary[key], key
    assert [s for s, _ in run.steps] == [s for s, _ in whole_run.steps]  # earlier curve replayed
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert not any(checkpoints.glob("*/state.pt"))


def test_saved_classifier_is_a_pyfunc_with_a_standard_hf_directory(encoder, splits, tmp_path):
    import copy
    import shutil

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from reprolab.core import saving
    from reprolab.workloads.sentiment.api import PredictorError, SentimentPredictor
    from reprolab.workloads.sentiment.hf_classifier import HFClassifier, HFClassifierPyfunc
    from reprolab.workloads.sentiment.hf_classifier_net import base_dir

    _, base, _ = encoder
    train, valid, test = splits
    labelled = copy.copy(train)
    labelled.label_names = ["부정", "긍정"]
    model = HFClassifier(classifier_params(base, epochs=1), seed=0).fit(labelled, valid, None)
    model.save(tmp_path / "model", input_example=train.X.head(3))
    root = tmp_path / "model"
    assert (root / "python_model.pkl").stat().st_size < 10_000  # weights not pickled
    assert not (root / "artifacts" / "hf").exists()
    hf = AutoModelForSequenceClassification.from_pretrained(root).eval()
    assert hf.config.id2label == {0: "부정", 1: "긍정"}
    assert hf.config.label2id == {"부정": 0, "긍정": 1}
    tokenizer = AutoTokenizer.from_pretrained(root)
    loaded = saving.load_predictor(root)
    np.testing.assert_allclose(loaded.predict(test.X), model.predict(test.X), atol=1e-6)
    ids = tokenizer(list(test.X["text"][:4]), padding=True, return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(hf(**ids).logits, -1).numpy()
    np.testing.assert_allclose(probs, model.predict(test.X.head(4)), atol=1e-5)
    # MLflow's transformers flavour: a pipeline over the same root, with the label names
    import mlflow.transformers

    pipe = mlflow.transformers.load_model(str(root))
    first = test.X["text"].iloc[0]
    said = pipe(first)[0]
    assert said["label"] == ["부정", "긍정"][int(probs[0].argmax())]
    assert said["score"] == pytest.approx(float(probs[0].max()), abs=1e-5)
    card = (root / "README.md").read_text()
    assert card.startswith("---\nlicense: mit\n") and "base_model: hf" in card
    assert "pipeline_tag: text-classification" in card and "e9t/nsmc" in card
    assert "Labels: 0 부정, 1 긍정." in card and "| valid | accuracy |" in card
    assert "CC0 1.0" in card

    # a model saved in the earlier layout (HF files under artifacts/hf) still loads
    parts = tmp_path / "parts" / "hf"
    parts.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(root / name, parts / name)
    shutil.copy(root / "artifacts" / "reprolab.json", parts / "reprolab.json")
    saving.save_pyfunc(
        tmp_path / "legacy",
        python_model=HFClassifierPyfunc(),
        artifacts={"hf": str(parts)},
        pip_requirements=[],  # no inference: a subprocess run of ~10 s
    )
    legacy = saving.load_predictor(tmp_path / "legacy")
    np.testing.assert_allclose(legacy.predict(test.X), model.predict(test.X), atol=1e-6)
    assert base_dir(str(tmp_path / "legacy")) == tmp_path / "legacy" / "artifacts" / "hf"

    predictor = SentimentPredictor(model=str(tmp_path / "model"), params_path=tmp_path / "no.yaml")
    out = predictor.predict(["정말 재밌어요", "", "   ", "최고 " * 500], return_probs=True)
    assert set(out[0]) == {"text", "label", "confidence", "probs"}
    assert out[0]["label"] in ("positive", "negative")
    assert out[1]["label"] is None and out[1]["confidence"] == 0.0
    assert out[3]["note"].startswith("truncated") and out[3]["text"] == "최고 " * 500
    with pytest.raises(PredictorError, match="input 1: expected a string, got int"):
        predictor.predict(["좋다", 3])


@pytest.fixture
def one_second_steps(monkeypatch):
    """The guard's clock advances one second per read: one per step."""
    from reprolab.core.train import budget

    seconds = iter(range(10**6))
    monkeypatch.setattr(budget, "_now", lambda: float(next(seconds)))


TAGS = {"deterministic": "true", "threads": "1", "device": "cpu"}  # threads: 1 in TINY


def test_pretraining_on_the_device_asked_cut_short_by_its_guard(
    splits, one_second_steps, monkeypatch
):
    import torch

    from reprolab.workloads.sentiment.bert_mlm import BertMLM

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)  # bf16: auto -> on
    train, valid, _ = splits
    spec = {**TINY, "max_steps": 40, "eval_every": 10, "checkpoint_every": 100}
    params = BertMLMParams(**{**spec, "bf16": "auto", "device": "cpu", "max_seconds": 30})
    run = TaggedRun()
    model = BertMLM(params, seed=0).fit(train, valid, run)
    # one second a step: the guard stops the 40 planned steps at step 30, not annealed
    assert model.summary["steps"] == 30 and model.summary["cut_short"]
    assert [s for s, _ in run.steps] == [10, 20, 30] and run.steps[-1][1]["lr"] > 0.0
    cut = {"cut_short": "true", "cut_at_step": "30", "planned_steps": "40"}
    assert run.tags == {**TAGS, "bf16": "true", "cpu_kernels": cpu_kernels(), **cut}
    assert next(model.model.parameters()).device.type == "cpu"


def test_finetune_on_the_device_asked_cut_short_by_its_guard(encoder, splits, one_second_steps):
    from reprolab.workloads.sentiment.hf_classifier import HFClassifier

    _, base, _ = encoder
    train, valid, _ = splits
    params = classifier_params(base, epochs=4, eval_every=10, device="cpu", max_seconds=30)
    run = TaggedRun()
    model = HFClassifier(params, seed=0).fit(train, valid, run)
    assert run.tags["cut_short"] == "true" and run.tags["cut_at_step"] == "30"
    assert {k: run.tags[k] for k in TAGS} == TAGS and run.tags["bf16"] == "false"
    assert model.summary["steps"] == 30 and model.summary["cut_short"]
    assert [s for s, _ in run.steps] == [10, 20, 30] and run.steps[-1][1]["lr"] > 0.0


def test_label_names_come_from_the_split_then_params(tmp_path, monkeypatch):
    import yaml

    from reprolab.workloads.sentiment.hf_classifier_net import label_names

    class Named:
        label_names = ("bad", "good")

    assert label_names(Named(), "nsmc") == ["bad", "good"]
    monkeypatch.chdir(tmp_path)
    assert label_names(None, "nsmc") == ["negative", "positive"]  # no params.yaml here
    params = {
        "datasets": {
            "reviews": {"workload": "sentiment", "kind": "nsmc", "label_names": ["부정", "긍정"]}
        },
        "models": {},
        "registry": {},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    assert label_names(None, "reviews") == ["부정", "긍정"]
    assert label_names(None, "other") == ["negative", "positive"]


def test_hf_import_from_a_local_directory(encoder, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from reprolab.workloads.sentiment.hf_import import HFImport

    _, base, _ = encoder
    params = HFImportParams(
        workload="sentiment", kind="hf", dataset="nsmc", task="nsmc-sentiment", source=str(base)
    )
    model = HFImport(params, seed=0).fit(None, None, None)
    model.save(tmp_path / "imported", None)
    assert AutoModel.from_pretrained(tmp_path / "imported").config.hidden_size == 32
    AutoTokenizer.from_pretrained(tmp_path / "imported")
    card = (tmp_path / "imported" / "README.md").read_text()
    assert card.startswith("---\nlicense: mit\n") and "base_model: hf" in card
    missing = HFImportParams(
        workload="sentiment",
        kind="hf",
        dataset="nsmc",
        task="nsmc-sentiment",
        source=str(tmp_path / "nope"),
    )
    with pytest.raises(DataError, match="cannot load a Hugging Face model"):
        HFImport(missing, seed=0).fit(None, None, None)


def test_ensemble_averages_members_with_a_weight_chosen_on_valid(encoder, splits, tmp_path):
    from reprolab import workloads
    from reprolab.core import saving
    from reprolab.workloads.sentiment.ensemble import ProbAverage
    from reprolab.workloads.sentiment.hf_classifier import HFClassifier

    _, base, _ = encoder
    train, valid, test = splits
    bert = HFClassifier(classifier_params(base, epochs=1), seed=0).fit(train, valid, None)
    bert.save(tmp_path / "bert", input_example=train.X.head(3))
    tfidf_params = TfidfLogRegParams(
        workload="sentiment",
        kind="tfidf_logreg",
        dataset="nsmc",
        task="nsmc-sentiment",
        hash_bits=10,
    )
    tfidf = workloads.build(tfidf_params, 0).fit(train, valid)
    tfidf.save(tmp_path / "tfidf", input_example=train.X.head(3))

    params = ProbAverageParams(
        workload="sentiment",
        kind="prob_average",
        dataset="nsmc",
        task="nsmc-sentiment",
        members=[str(tmp_path / "tfidf"), str(tmp_path / "bert")],
    )
    log = TaggedRun()
    ensemble = ProbAverage(params, seed=0).fit(train, valid, log)
    assert 0 <= ensemble.weight <= 1
    assert len(log.steps) == 21  # the grid 0, 0.05, ..., 1
    best = max(m["valid_accuracy"] for _, m in log.steps)
    assert ensemble.valid_scores["ensemble"] == best
    ensemble.save(tmp_path / "ens", input_example=train.X.head(3))
    assert (tmp_path / "ens/python_model.pkl").stat().st_size < 10_000  # members not pickled
    loaded = saving.load_predictor(tmp_path / "ens")
    expected = ensemble.weight * tfidf.predict(test.X) + (1 - ensemble.weight) * bert.predict(
        test.X
    )
    np.testing.assert_allclose(loaded.predict(test.X), expected, atol=1e-6)

    fixed = ProbAverageParams(**{**params.model_dump(), "weight": 0.25})
    assert ProbAverage(fixed, seed=0).fit(train, valid, None).weight == 0.25
    gone = ProbAverageParams(**{**params.model_dump(), "members": ["nope-a", "nope-b"]})
    with pytest.raises(DataError, match="ensemble member not found"):
        ProbAverage(gone, seed=0).fit(train, valid, None)


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        ("pretrain", {"hidden_size": 30, "num_heads": 4}, "must be a multiple of num_heads"),
        ("pretrain", {"mask_prob": 1.5}, "mask_prob: must be < 1"),
        ("finetune", {"unfrozen_layers": -1}, "unfrozen_layers: must be >= 0"),
        ("ensemble", {"members": ["a", "b", "c"]}, "members"),
    ],
)
def test_bad_params_name_the_key(section, values, message):
    from reprolab.params import parse_params

    kinds = {
        "pretrain": dict(TINY),
        "finetune": {
            "workload": "sentiment",
            "kind": "hf_classifier",
            "dataset": "nsmc",
            "task": "nsmc-sentiment",
        },
        "ensemble": {
            "workload": "sentiment",
            "kind": "prob_average",
            "dataset": "nsmc",
            "task": "nsmc-sentiment",
            "members": ["a", "b"],
        },
    }
    raw = {
        "datasets": {"nsmc": {"workload": "sentiment", "kind": "nsmc"}},
        "models": {"m": {**kinds[section], **values}},
        "registry": {
            "nsmc-sentiment": {"metric": "accuracy", "direction": "maximize", "threshold": 0.5}
        },
    }
    with pytest.raises(ParamsError) as caught:
        parse_params(raw)
    assert "models.m." in str(caught.value) and message in str(caught.value)


def test_trainer_api_returns_run_metrics_model_and_tokenizer(workspace, splits):
    """reprolab.workloads.sentiment.api.train: the original trainer call, over the pipeline's
    own stages."""
    import yaml
    from transformers import PreTrainedModel

    from reprolab.workloads.sentiment.api import train

    processed = workspace / "data/processed/nsmc"
    processed.mkdir(parents=True)
    for name, split in zip(("train", "valid", "test"), splits, strict=True):
        rows = [
            f"{i}\t{t}\t{y}" for i, (t, y) in enumerate(zip(split.X["text"], split.y, strict=True))
        ]
        (processed / f"{name}.tsv").write_text("id\tdocument\tlabel\n" + "\n".join(rows) + "\n")
    encoder = {k: v for k, v in TINY.items() if k != "task"}
    params = {
        "datasets": {"nsmc": {"workload": "sentiment", "kind": "nsmc"}},
        "models": {},
        "pretrain": {"enc": encoder},
        "finetune": {
            "bert": {
                **classifier_params("x").model_dump(exclude={"base", "use_hpo"}),
                "base": "enc",
            }
        },
        "registry": {
            "nsmc-sentiment": {"metric": "accuracy", "direction": "maximize", "threshold": 0.5}
        },
    }
    (workspace / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))

    base = train("enc")
    assert isinstance(base.model, PreTrainedModel) and base.tokenizer is not None
    assert (workspace / "models/enc/config.json").is_file()
    result = train("bert", overrides={"finetune.bert.unfrozen_layers": 1})
    assert result.run_name == "bert" and len(result.run_id) == 32
    assert 0 <= result.metrics["accuracy"] <= 1 and "roc_auc" in result.metrics
    assert result.model.config.num_labels == 2
    assert type(result.model).__name__ == "BertForSequenceClassification"
    assert result.tokenizer("좋다")["input_ids"][0] == result.tokenizer.cls_token_id
    with pytest.raises(Exception, match="no model 'nope'"):
        train("nope")


def test_interrupted_pretraining_resumes_to_the_same_weights(splits, checkpoints):
    import torch

    from reprolab.workloads.sentiment.bert_mlm import BertMLM

    train, valid, _ = splits
    params = BertMLMParams(**{**TINY, "eval_every": 1, "checkpoint_every": 2})
    whole = BertMLM(params, seed=0).fit(train, valid, TaggedRun())
    with pytest.raises(KeyboardInterrupt):
        BertMLM(params, seed=0).fit(train, valid, TaggedRun(stop_at=3))  # last checkpoint: step 2
    resumed = BertMLM(params, seed=0).fit(train, valid, TaggedRun())
    assert resumed.summary["resumed_from_step"] == 2
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert not any(checkpoints.glob("*/state.pt"))
