"""import@: a tiny GGUF written here with the `gguf` package loads, de-quantised, into a plain
model that saves as safetensors and reloads with the same logits; bad sources are refused
with their value named."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gguf")

from reprolab.core.errors import DataError  # noqa: E402
from reprolab.workloads.llm import gguf_import  # noqa: E402
from tests.workloads.llm import tiny  # noqa: E402


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_tiny_gguf_round_trip(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    original, tok = tiny.write_gguf(tmp_path / "tiny.gguf")
    source = gguf_import.resolve(str(tmp_path))  # a directory with one .gguf file
    assert source.form == "gguf" and source.gguf_file == "tiny.gguf"
    model, tokenizer = gguf_import.load(source, "float32")
    assert getattr(model.config, "quantization_config", None) is None
    out = tmp_path / "hf"
    gguf_import.save(model, tokenizer, out)
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()

    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    reloaded_tok = AutoTokenizer.from_pretrained(out)
    text = "How do I reproduce a DVC pipeline?"
    assert reloaded_tok(text)["input_ids"] == tok(text)["input_ids"]
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(reloaded(ids).logits, original(ids).logits, atol=1e-5)


def test_import_kind_writes_hf_dir(tmp_path):
    from reprolab import workloads
    from reprolab.workloads.llm.params import LlmImportParams

    tiny.write_gguf(tmp_path / "tiny.gguf")
    spec = LlmImportParams(
        workload="llm", kind="gguf", source=str(tmp_path / "tiny.gguf"), dtype="bfloat16"
    )
    model = workloads.build(spec, 0).fit(None, None, None)
    model.save(tmp_path / "out", None)
    info = (tmp_path / "out" / "import.json").read_text()
    assert '"architecture": "llama"' in info and "gguf_sha256" in info
    config = (tmp_path / "out" / "config.json").read_text()
    assert "bfloat16" in config and "quant_method" not in config
    card = (tmp_path / "out" / "README.md").read_text()
    assert card.startswith("---\nlicense: other\n") and "pipeline_tag: text-generation" in card
    assert "(tiny.gguf)" in card and "De-quantised from a quantised GGUF file" in card
    frame = model.predict(["How do I"])
    assert list(frame.columns) == ["prompt", "completion"] and frame["prompt"][0] == "How do I"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "source: empty"),
        ("./no/such/dir", "neither an existing directory or file nor a valid Hugging Face id"),
        ("not an id!", "neither an existing directory or file nor a valid Hugging Face id"),
        ("package:no_such_package_xyz", "no installed package 'no_such_package_xyz'"),
    ],
)
def test_bad_sources_named(source, message):
    with pytest.raises(DataError, match=message):
        gguf_import.resolve(source)


def test_offline_unknown_id_is_clear():
    source = gguf_import.resolve("someone/no-such-model-xyz")
    assert source.form == "hub"
    with pytest.raises(DataError, match=r"someone/no-such-model-xyz.*HF_HUB_OFFLINE"):
        gguf_import.load(source)


def test_directory_without_model(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"without config\.json or a \.gguf file"):
        gguf_import.resolve(str(tmp_path))


def test_kind_gguf_refuses_a_plain_directory(tmp_path):
    from reprolab import workloads
    from reprolab.workloads.llm.params import LlmImportParams

    tiny.save_base(tmp_path / "base")
    spec = LlmImportParams(workload="llm", kind="gguf", source=str(tmp_path / "base"))
    with pytest.raises(DataError, match="kind gguf needs a GGUF file"):
        workloads.build(spec, 0).fit(None, None, None)
    spec = LlmImportParams(
        workload="llm", kind="hf_causal_lm", source=str(tmp_path / "base"), dtype="float32"
    )
    model = workloads.build(spec, 0).fit(None, None, None)
    assert model.info["architecture"] == "llama"
