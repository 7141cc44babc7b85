"""NSMC workload on tiny generated data: parsing and validation errors (file and line),
prepare through the mirror and the upstream route, classification metrics, the TF-IDF model
and its saved pyfunc, SentimentPredictor and `reprolab predict` edge cases."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from reprolab.core.errors import DataError, RegistryError
from reprolab.core.fetch import RemoteFile
from reprolab.core.metrics import classification
from reprolab.workloads.sentiment import data as nsmc
from reprolab.workloads.sentiment.params import NsmcDataset, TfidfLogRegParams

POS = ["정말 재밌어요 최고", "배우 연기 좋다 감동", "최고의 영화 추천", "재밌다 또 보고 싶다"]
NEG = ["너무 지루하다 별로", "최악의 영화 시간 낭비", "별로 재미없다", "지루하고 최악"]
HEADER = "id\tdocument\tlabel"


def rows(n: int, start: int = 0) -> list[str]:
    """n lines alternating positive/negative reviews with unique ids."""
    out = []
    for i in range(n):
        texts, label = (POS, 1) if i % 2 == 0 else (NEG, 0)
        out.append(f"{start + i}\t{texts[(i // 2) % 4]} {i}\t{label}")
    return out


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_quotes_literally_and_keeps_empty_documents(tmp_path):
    path = write(tmp_path / "r.txt", [HEADER, '1\t"좋아요""\t1', "2\t\t0", "3\t별로\t0"])
    frame = nsmc.read_ratings(path)
    assert frame["document"].tolist() == ['"좋아요""', "", "별로"]
    assert frame["label"].tolist() == [1, 0, 0]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([HEADER, "1\t좋다\t1", "2\t별로\t2"], "line 3: label must be 0 or 1, got '2'"),
        ([HEADER, "1\t좋다\t1", "2\t별로"], "line 3: expected 3 tab-separated fields"),
        ([HEADER, "1\t좋\t다\t1"], "line 2: expected 3 tab-separated fields"),
        ([HEADER, "1\t좋다\t1", "1\t별로\t0"], "line 3: duplicate id '1' (first on line 2)"),
        (["id,document,label", "1,좋다,1"], "line 1: expected the header"),
        ([HEADER, "\t좋다\t1"], "line 2: empty id"),
        ([HEADER], "no data rows"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, lines, message):
    path = write(tmp_path / "bad.txt", lines)
    with pytest.raises(DataError) as caught:
        nsmc.read_ratings(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def _remote(path, name) -> RemoteFile:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return RemoteFile(name, path.as_uri(), digest, f"sentiment/{name}")


@pytest.fixture
def tiny_mirror(tmp_path, monkeypatch):
    """A mirror with 60 train rows (2 empty) and 24 test rows (1 empty), pins pointed at it."""
    mirror = tmp_path / "mirror"
    train = rows(60)
    train[3] = "3\t \t0"
    train[10] = "10\t\t1"
    train[7] = '7\t""최악"" 이다 ' + "가" * 400 + "\t0"  # quotes + over max_length
    test = rows(24, start=1000)
    test[5] = "1005\t\t0"
    tr = write(mirror / "sentiment/ratings_train.txt", [HEADER, *train])
    te = write(mirror / "sentiment/ratings_test.txt", [HEADER, *test])
    monkeypatch.setattr(nsmc, "TRAIN", _remote(tr, "ratings_train.txt"))
    monkeypatch.setattr(nsmc, "TEST", _remote(te, "ratings_test.txt"))
    return mirror


def test_prepare_from_the_mirror(tmp_path, tiny_mirror):
    params = NsmcDataset(workload="sentiment", kind="nsmc", max_length=50, valid_size=0.25)
    out = tmp_path / "out"
    summary = nsmc.prepare(params, 0, tmp_path / "raw", out, tiny_mirror)
    assert summary["rows"] == {"train": 43, "valid": 15, "test": 24}
    assert summary["empty_documents"] == {"train_dropped": 2, "test_kept": 1}
    assert summary["truncated_to_max_length"] == {"train": 1, "test": 0}
    train, valid, test = (nsmc.load_split(out, s) for s in ("train", "valid", "test"))
    assert list(train.X.columns) == ["text"]
    assert train.X["text"].str.len().max() == 50
    everything = pd.concat([train.X, valid.X])["text"]
    assert everything.str.startswith('""최악""').sum() == 1  # quotes survive the round trip
    assert (test.X["text"] == "").sum() == 1
    assert set(train.groups) <= {"short", "medium", "long"}
    again = tmp_path / "again"
    nsmc.prepare(params, 0, tmp_path / "raw2", again, tiny_mirror)
    assert (again / "valid.tsv").read_bytes() == (out / "valid.tsv").read_bytes()


def test_sampling_rate_keeps_both_labels(tmp_path, tiny_mirror):
    params = NsmcDataset(workload="sentiment", kind="nsmc", sampling_rate=0.5, valid_size=0.2)
    summary = nsmc.prepare(params, 1, tmp_path / "raw", tmp_path / "out", tiny_mirror)
    assert summary["rows"]["test"] == 12
    assert summary["rows"]["train"] + summary["rows"]["valid"] == 28  # round(29 / 2) per label
    assert set(summary["labels"]["test"]) == {0, 1}


def test_upstream_test_file_is_truncated_to_the_pinned_rows(tmp_path, monkeypatch):
    """Online route: download the full file (file:// URL here), keep header + first rows,
    check the result against the mirror's checksum."""
    full = write(tmp_path / "up/ratings_test.txt", [HEADER, *rows(30)])
    kept = write(tmp_path / "kept.txt", [HEADER, *rows(20)])
    monkeypatch.setattr(nsmc, "TEST_ROWS", 20)
    monkeypatch.setattr(nsmc, "TEST_UPSTREAM", _remote(full, "ratings_test.full.txt"))
    monkeypatch.setattr(nsmc, "TEST", _remote(kept, "ratings_test.txt"))
    path = nsmc.fetch_test(tmp_path / "raw", None)
    assert path.read_bytes() == kept.read_bytes()
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["ratings_test.txt"]

    monkeypatch.setattr(nsmc, "TEST_ROWS", 19)
    with pytest.raises(DataError, match="first 19 rows do not match the pin"):
        nsmc.fetch_test(tmp_path / "raw3", None)
    assert not (tmp_path / "raw3/ratings_test.txt").exists()


def test_classification_metrics():
    from sklearn.metrics import f1_score, roc_auc_score

    y = np.array([0, 0, 1, 1, 1, 0])
    probs = np.array([0.1, 0.6, 0.8, 0.4, 0.9, 0.3])
    m = classification(y, np.column_stack([1 - probs, probs]))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["f1"] == pytest.approx(f1_score(y, probs >= 0.5))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, probs))
    assert m["confusion"] == {
        "true_0": {"pred_0": 2, "pred_1": 1},
        "true_1": {"pred_0": 1, "pred_1": 2},
    }
    labels_only = classification(y, (probs >= 0.5).astype(int))
    assert labels_only["accuracy"] == m["accuracy"] and np.isnan(labels_only["roc_auc"])
    with pytest.raises(ValueError, match="cannot score"):
        classification(y, probs[:3])


@pytest.fixture
def trained(tmp_path, tiny_mirror):
    from reprolab import workloads

    out = tmp_path / "data"
    nsmc.prepare(
        NsmcDataset(workload="sentiment", kind="nsmc", valid_size=0.25),
        0,
        tmp_path / "raw",
        out,
        tiny_mirror,
    )
    train, valid, test = (nsmc.load_split(out, s) for s in ("train", "valid", "test"))
    spec = TfidfLogRegParams(
        workload="sentiment",
        kind="tfidf_logreg",
        dataset="nsmc",
        task="nsmc-sentiment",
        hash_bits=12,
    )
    model = workloads.build(spec, 0).fit(train, valid)
    model.save(tmp_path / "model", input_example=train.X.head(3))
    return model, test, tmp_path / "model"


def test_tfidf_model_learns_and_its_pyfunc_returns_probabilities(trained):
    from reprolab.core import saving

    model, test, path = trained
    probs = model.predict(test.X)
    assert probs.shape == (len(test.y), 2)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    metrics = model.evaluate(test)
    assert metrics["accuracy"] >= 0.9 and metrics["roc_auc"] >= 0.9
    assert (path / "model.skops").is_file()
    import yaml

    mlmodel = yaml.safe_load((path / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["predict_fn"] == "predict_proba"
    (output,) = json.loads(mlmodel["signature"]["outputs"])
    assert output["tensor-spec"] == {"dtype": "float64", "shape": [-1, 2]}
    loaded = saving.load_predictor(path)
    np.testing.assert_allclose(loaded.predict(test.X), probs)
    frame = test.prediction_table(probs)
    assert list(frame.columns) == ["actual", "predicted", "probability", "group"]


def test_predictor_schema_and_edge_cases(trained, tmp_path):
    from reprolab.workloads.sentiment.api import PredictorError, SentimentPredictor

    _, _, path = trained
    predictor = SentimentPredictor(model=str(path), params_path=tmp_path / "none.yaml")
    long_text = "정말 재밌어요 최고 " * 100
    out = predictor.predict(["최고의 영화 추천", "최악의 영화 시간 낭비", "", "   ", long_text])
    assert [r["label"] for r in out] == ["positive", "negative", None, None, "positive"]
    first = out[0]
    assert set(first) == {"text", "label", "confidence", "probs"}
    assert set(first["probs"]) == {"negative", "positive"}
    assert first["confidence"] == pytest.approx(max(first["probs"].values()))
    assert out[2] == {
        "text": "",
        "label": None,
        "confidence": 0.0,
        "probs": None,
        "note": "empty text: no prediction",
    }
    assert out[4]["text"] == long_text and "truncated to max_length=300" in out[4]["note"]
    single = predictor.predict("배우 연기 좋다 감동", return_probs=False)
    assert len(single) == 1 and "probs" not in single[0]
    with pytest.raises(PredictorError, match="input 1: expected a string, got int"):
        predictor.predict(["좋다", 3])
    with pytest.raises(PredictorError, match="got NoneType"):
        predictor.predict(None)


def test_label_names_and_max_length_come_from_params(trained, tmp_path):
    import yaml

    from reprolab.workloads.sentiment.api import SentimentPredictor

    _, _, path = trained
    params = {
        "datasets": {
            "nsmc": {
                "workload": "sentiment",
                "kind": "nsmc",
                "label_names": ["부정", "긍정"],
                "max_length": 5,
            }
        },
        "models": {
            "m": {
                "dataset": "nsmc",
                "task": "nsmc-sentiment",
                "workload": "sentiment",
                "kind": "tfidf_logreg",
            }
        },
        "registry": {
            "nsmc-sentiment": {"metric": "accuracy", "direction": "maximize", "threshold": 0.5}
        },
    }
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(params, allow_unicode=True))
    predictor = SentimentPredictor(model=str(path), params_path=params_path)
    (result,) = predictor.predict("최고의 영화 추천 합니다")
    assert result["label"] in ("부정", "긍정") and set(result["probs"]) == {"부정", "긍정"}
    assert "max_length=5" in result["note"]


def test_missing_champion_is_a_clear_error_in_a_fresh_store(tmp_path):
    from reprolab.workloads.sentiment.api import SentimentPredictor

    with pytest.raises(RegistryError, match="models:/nsmc-sentiment@champion: cannot load"):
        SentimentPredictor(params_path=tmp_path / "none.yaml")


def test_cli_predict_prints_json_lines_and_errors_without_traceback(trained, tmp_path):
    from reprolab.cli import main

    _, _, path = trained
    runner = CliRunner()
    args = ["predict", "nsmc-sentiment", "--params", str(tmp_path / "none.yaml")]
    done = runner.invoke(main, [*args, "--model", str(path), "최고의 영화 추천", " "])
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.output.splitlines()]
    assert lines[0]["label"] == "positive" and lines[1]["label"] is None
    failed = runner.invoke(main, [*args, "--alias", "nope", "좋다"])
    assert failed.exit_code == 1
    assert "error: models:/nsmc-sentiment@nope: cannot load" in failed.output
    assert "Traceback" not in failed.output


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "nb_logreg", "hash_bits": 12},
        {"kind": "tfidf_logreg", "hash_bits": 12, "morphemes": True},
    ],
    ids=["nb_logreg", "tfidf_morphemes"],
)
def test_morpheme_models_learn_and_carry_their_code(spec, tmp_path, tiny_mirror):
    import yaml

    from reprolab import workloads
    from reprolab.core import saving
    from reprolab.workloads.sentiment.params import NbLogRegParams

    out = tmp_path / "data"
    dataset = NsmcDataset(workload="sentiment", kind="nsmc", valid_size=0.25)
    nsmc.prepare(dataset, 0, tmp_path / "raw", out, tiny_mirror)
    train, valid, test = (nsmc.load_split(out, s) for s in ("train", "valid", "test"))
    task = {"workload": "sentiment", "dataset": "nsmc", "task": "nsmc-sentiment"}
    cls = NbLogRegParams if spec["kind"] == "nb_logreg" else TfidfLogRegParams
    model = workloads.build(cls(**task, **spec), 0).fit(train, valid)
    probs = model.predict(test.X)
    assert probs.shape == (len(test.y), 2) and model.evaluate(test)["accuracy"] >= 0.9
    model.save(tmp_path / "model", input_example=train.X.head(3))
    # the pipeline calls reprolab's morpheme function: its source and Kiwi travel with it
    assert (tmp_path / "model/code/reprolab/workloads/sentiment/morphemes.py").is_file()
    requirements = (tmp_path / "model/requirements.txt").read_text()
    assert "kiwipiepy==" in requirements and "kiwipiepy-model==" in requirements
    assert yaml.safe_load((tmp_path / "model/MLmodel").read_text())["flavors"]["sklearn"]
    np.testing.assert_allclose(saving.load_predictor(tmp_path / "model").predict(test.X), probs)


def test_nb_log_count_ratio_leans_towards_the_class_that_uses_an_ngram():
    import scipy.sparse as sp

    from reprolab.workloads.sentiment.nb_logreg import log_count_ratio

    x = sp.csr_matrix(np.array([[1, 0, 1], [1, 0, 1], [0, 1, 1], [0, 1, 1]], dtype=float))
    r = log_count_ratio(x, np.array([1, 1, 0, 0]), alpha=0.5)
    assert r[0] > 0 > r[1] and r[2] == pytest.approx(0.0)
