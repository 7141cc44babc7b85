"""The sentiment workload's stage chain under real `dvc repro` in a throw-away repository
(2 % of NSMC): prepare, TF-IDF, NB-LR, and the encoder route that params.yaml leaves out by
default (docs/sentiment.md), added here as a user would: MLM pretraining of a tiny encoder,
fine-tuning, its ensemble with TF-IDF; then register, infer, and the champion (whichever kind
won) from a fresh process through `reprolab predict`."""

from __future__ import annotations

import json
import re
import subprocess

import pandas as pd
import pytest

from reprolab.ops import sandbox

pytestmark = pytest.mark.slow
STAGES = {
    "check",
    "prepare@nsmc",
    "hpo@nsmc-tfidf",  # a stub: nsmc-tfidf has no study
    "train@nsmc-tfidf",
    "evaluate@nsmc-tfidf",
    "hpo@nsmc-nblr",
    "train@nsmc-nblr",
    "evaluate@nsmc-nblr",
    "pretrain@nsmc-encoder",
    "finetune@nsmc-bert",
    "ensemble@nsmc-ensemble",
    "register@nsmc-sentiment",
    "infer@nsmc-sentiment",
}
# the encoder route at smoke size (docs/sentiment.md has the full-size entries)
NSMC = {"workload": "sentiment", "dataset": "nsmc"}
ENCODER = {
    "pretrain.nsmc-encoder": {
        **NSMC,
        "kind": "bert_mlm",
        "vocab_size": 500,
        "max_length": 64,
        "hidden_size": 32,
        "num_layers": 2,
        "num_heads": 2,
        "intermediate_size": 64,
        "max_steps": 20,
        "eval_every": 10,
        "warmup_steps": 5,
        "threads": 1,
    },
    "finetune.nsmc-bert": {
        **NSMC,
        "task": "nsmc-sentiment",
        "base": "nsmc-encoder",
        "kind": "hf_classifier",
        "max_length": 64,
        "max_steps": 40,
        "eval_every": 20,
        "threads": 1,
    },
    "ensembles.nsmc-ensemble.members": ["nsmc-tfidf", "nsmc-bert"],
}


def test_nsmc_chain_registers_a_champion_that_answers_in_a_fresh_process(tmp_path):
    from tests.conftest import _mirror

    mirror = _mirror()
    if mirror is None or not (mirror / "sentiment").is_dir():
        pytest.skip("no NSMC mirror: set REPROLAB_DATA_MIRROR")
    root = sandbox.create(tmp_path / "repo", {**sandbox.smoke_overrides(), **ENCODER})
    env = {**sandbox.env_for(root), "REPROLAB_DATA_MIRROR": str(mirror)}
    env.pop("REPROLAB_MLFLOW_ARTIFACTS", None)

    def run(*cmd: str, check: bool = True):
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    first = run("dvc", "repro", "infer@nsmc-sentiment")
    assert set(re.findall(r"Running stage '([^']+)'", first.stdout)) == STAGES

    summary = json.loads((root / "data/processed/nsmc/summary.json").read_text())
    assert summary["rows"]["test"] == 960 and summary["sampling_rate"] == 0.02
    metrics = json.loads((root / "reports/eval/nsmc-sentiment/nsmc-tfidf/metrics.json").read_text())
    assert 0.65 < metrics["accuracy"] <= 1 and 0.7 < metrics["roc_auc"] <= 1
    assert sum(v for row in metrics["confusion"].values() for v in row.values()) == 960
    preds = pd.read_csv(root / "reports/eval/nsmc-sentiment/nsmc-tfidf/predictions.csv")
    assert list(preds.columns) == ["actual", "predicted", "probability", "group"]
    encoder = root / "models/nsmc-encoder"
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
        p.name for p in encoder.iterdir()
    }
    curve = root / "reports/train/nsmc-encoder/plots/metrics/train_mlm_loss.tsv"
    assert len(curve.read_text().splitlines()) == 3  # header + steps 10, 20
    assert (root / "models/nsmc-bert/config.json").is_file()  # a standard HF dir at the root
    accuracy = {
        name: json.loads((root / f"reports/eval/nsmc-sentiment/{name}/metrics.json").read_text())[
            "accuracy"
        ]
        for name in ("nsmc-tfidf", "nsmc-nblr", "nsmc-bert", "nsmc-ensemble")
    }
    assert all(0.4 < a <= 1 for a in accuracy.values())
    registry = json.loads((root / "reports/registry/nsmc-sentiment.json").read_text())
    champion = registry["champion"]
    assert champion["model"] in accuracy
    assert f"v{champion['version']}: promoted to champion" in first.stdout
    for version in registry["versions"][1:]:  # each rejected, or paired with the champion
        v = version["version"]
        paired = rf"v{v}: (not clearly better than|beats) champion v\d+\b.*paired bootstrap"
        rejected = rf"v{v}: \S+ (misses the threshold|does not beat the baseline)"
        gate = [line for line in first.stdout.splitlines() if line.startswith(f"v{v}")]
        assert re.search(f"{paired}|{rejected}", first.stdout), gate
    ensemble = json.loads((root / "models/nsmc-ensemble/artifacts/ensemble.json").read_text())
    assert ensemble["members"] == ["nsmc-tfidf", "nsmc-bert"] and 0 <= ensemble["weight"] <= 1
    import yaml

    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]
    deps = {d["path"] for d in lock["ensemble@nsmc-ensemble"]["deps"]}
    assert {"models/nsmc-tfidf", "models/nsmc-bert"} <= deps
    assert "models/nsmc-encoder" in {d["path"] for d in lock["finetune@nsmc-bert"]["deps"]}
    batch = pd.read_csv(root / "reports/predictions/nsmc-sentiment.csv")
    assert set(batch["label"]) <= {0, 1}  # the true label column is kept
    assert len(batch) == 960 and set(batch["predicted_label"]) <= {"negative", "positive"}

    # batch predictions on a user TSV with quotes, read with quoting off
    (root / "mine.tsv").write_text('text\n"최고"의 영화\n시간 낭비 최악\n', encoding="utf-8")
    run("python", "stages/infer.py", "nsmc-sentiment", "--input", "mine.tsv", "--output", "o.csv")
    mine = pd.read_csv(root / "o.csv")
    assert mine["text"].tolist() == ['"최고"의 영화', "시간 낭비 최악"]

    done = run("reprolab", "predict", "nsmc-sentiment", "재밌어요 최고의 영화", "   ")
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert answers[0]["label"] in ("positive", "negative") and 0.5 <= answers[0]["confidence"] <= 1
    assert answers[1]["label"] is None and answers[1]["note"]
