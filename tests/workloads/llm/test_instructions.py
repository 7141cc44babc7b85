"""Instruction data: Code Alpaca from the mirror, synthetic MLOps Q&A, templates, splits by
seed, and malformed records named by index and field."""

from __future__ import annotations

import json

import pytest

from reprolab.core.errors import DataError, ParamsError
from reprolab.params import parse_params
from reprolab.workloads.llm import data as instructions
from reprolab.workloads.llm.instructions import PromptTemplate, synthetic_mlops, validate_records
from reprolab.workloads.llm.params import InstructionsDataset


def spec(**overrides):
    return InstructionsDataset(workload="llm", kind="instructions", **overrides)


def test_prepare_from_mirror(tmp_path, mirror):
    params = spec(
        sampling_rate=0.1, synthetic=30, few_shot=[{"instruction": "Say hi.", "output": "Hi."}]
    )
    summary = instructions.prepare(params, 7, tmp_path / "raw", tmp_path / "out", mirror)
    assert sum(summary["rows"].values()) == round(2015 * 0.1) + 30
    assert summary["dropped_empty_output"] == 2
    train = instructions.load_split(tmp_path / "out", "train")
    assert set(train.groups) == {"code_alpaca", "synthetic_mlops"}
    prompt = train.X["prompt"].iloc[0]
    assert prompt.startswith("Below is an instruction") and "Say hi." in prompt
    assert prompt.endswith("### Response:\n")
    assert train.template.few_shot[0]["output"] == "Hi."
    again = instructions.prepare(params, 7, tmp_path / "raw", tmp_path / "again", mirror)
    assert again == summary
    assert (tmp_path / "out" / "valid.jsonl").read_text() == (
        tmp_path / "again" / "valid.jsonl"
    ).read_text()
    other = instructions.prepare(params, 8, tmp_path / "raw", tmp_path / "other", mirror)
    assert (tmp_path / "out" / "valid.jsonl").read_text() != (
        tmp_path / "other" / "valid.jsonl"
    ).read_text()
    assert other["rows"] == summary["rows"]


def test_synthetic_only(tmp_path):
    summary = instructions.prepare(
        spec(code_alpaca=False, synthetic=50), 0, tmp_path / "raw", tmp_path / "out", None
    )
    assert summary["rows"] == {"train": 40, "valid": 5, "test": 5}


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ({"instruction": "x"}, "expected a JSON array of records"),
        (
            [{"instruction": "a", "input": "", "output": "b"}, "text"],
            "record 1: expected an object",
        ),
        ([{"instruction": "a", "output": "b"}], "record 0: field 'input' is missing"),
        (
            [{"instruction": "a", "input": 3, "output": "b"}],
            "record 0: field 'input' must be a string",
        ),
        (
            [{"instruction": " ", "input": "", "output": "b"}],
            "record 0: field 'instruction' is empty",
        ),
        (
            [{"instruction": "a", "input": "", "output": "b", "x": 1}],
            r"record 0: unknown field\(s\) \['x'\]",
        ),
    ],
)
def test_malformed_records_named(records, message):
    with pytest.raises(DataError, match=message):
        validate_records(records, "data.json")


def test_malformed_file_stops_prepare(tmp_path, monkeypatch):
    raw = tmp_path / "mirror" / "instructions"
    raw.mkdir(parents=True)
    bad = [{"instruction": "a", "input": "", "output": "b"}] * 3 + [
        {"instruction": "a", "input": "", "output": None}
    ]
    (raw / "code_alpaca_2k.json").write_text(json.dumps(bad))
    monkeypatch.setattr(
        instructions,
        "CODE_ALPACA",
        instructions.CODE_ALPACA.__class__(
            "code_alpaca_2k.json",
            "https://example.invalid",
            __import__("hashlib").sha256((raw / "code_alpaca_2k.json").read_bytes()).hexdigest(),
            "instructions/code_alpaca_2k.json",
        ),
    )
    with pytest.raises(DataError, match="record 3: field 'output' must be a string, got NoneType"):
        instructions.prepare(spec(), 0, tmp_path / "raw", tmp_path / "out", tmp_path / "mirror")


def test_synthetic_is_seeded():
    assert synthetic_mlops(20, 1) == synthetic_mlops(20, 1)
    assert synthetic_mlops(20, 1) != synthetic_mlops(20, 2)
    many = synthetic_mlops(200, 0)
    assert len({r["instruction"] for r in many}) == 160  # the pool, then repeats
    assert all(r["output"] and r["instruction"].endswith(("?", ".")) for r in many)


def test_template_render_and_round_trip():
    t = PromptTemplate("I: {instruction}\nX: {input}\nR: ", "I: {instruction}\nR: ")
    assert t.render("go", "") == "I: go\nR: "
    assert t.render("go", "now") == "I: go\nX: now\nR: "
    assert PromptTemplate.from_dict(t.to_dict()) == t


def test_bad_template_rejected_with_key_path():
    raw = {
        "datasets": {
            "ins": {
                "workload": "llm",
                "kind": "instructions",
                "template": {"no_input": "Q: {question}\nA: "},
            }
        },
        "models": {},
        "registry": {},
    }
    with pytest.raises(ParamsError) as err:
        parse_params(raw)
    text = str(err.value)
    assert "datasets.ins.template" in text and "{instruction}" in text and "question" in text
