"""Model cards: Hugging Face front matter, data licences (Code Alpaca's non-commercial one
carries over to the model), deterministic text, placeholders for the lineage that the
pipeline fills, and the same card rendered again from card.json with test metrics."""

from __future__ import annotations

import yaml

from reprolab.core import card

FIELDS = {
    "name": "smollm2-lora",
    "kind": "lora",
    "summary": "A LoRA fine-tune.",
    "license": card.combined_license("apache-2.0", *card.data_license("code_alpaca")),
    "pipeline_tag": "text-generation",
    "datasets": ["code_alpaca", "synthetic_mlops"],
    "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "params": {"r": 8, "lr": 0.001, "prompts": ["a", "b"]},
    "metrics": {"valid": {"perplexity": 3.14159265, "examples": 48, "groups": {"x": 1.0}}},
    "limits": ["Non-commercial use only."],
}


def front_matter(text: str) -> dict:
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_front_matter_and_licences():
    text = card.model_card(**FIELDS)
    meta = front_matter(text)
    assert meta["license"] == "cc-by-nc-4.0"
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta["datasets"] == ["sahil280114/codealpaca"]  # the synthetic data has no upstream
    assert meta["pipeline_tag"] == "text-generation" and meta["language"] == ["en"]
    assert meta["tags"][:2] == ["reprolab", "lora"]
    assert "Licence: CC BY-NC 4.0 (non-commercial use only" in text
    assert "| valid | perplexity | 3.1416 |" in text and "| valid | examples | 48 |" in text
    assert "groups" not in text  # per-group breakdowns stay in the reports
    assert "test metrics, where a stage measures them, are added" in text
    assert "- Non-commercial use only." in text


def test_licence_rules():
    assert card.combined_license(None, *card.data_license("nsmc")) == "mit"
    assert card.combined_license("apache-2.0", "mit") == "apache-2.0"
    assert card.combined_license("apache-2.0", "cc-by-nc-4.0") == "cc-by-nc-4.0"
    assert card.data_license("unknown") == ["other"]


def test_text_is_deterministic_and_lineage_is_filled_by_the_caller(tmp_path):
    card.write_card(tmp_path, **FIELDS)
    first = (tmp_path / "README.md").read_bytes()
    card.write_card(tmp_path, **FIELDS)
    assert (tmp_path / "README.md").read_bytes() == first
    text = first.decode()
    assert "- git commit: _the MLflow run's `git_commit` tag (filled in the registered" in text
    assert "- data md5 (DVC): _the MLflow run's `data_md5` tag" in text

    again = card.render_card(
        tmp_path,
        metrics={"test": {"perplexity": 2.5}},
        lineage={"git_commit": "abc123", "data_md5": "d41d8cd9.dir", "mlflow_run": "r1"},
    )
    assert "| test | perplexity | 2.5000 |" in again and "| valid | perplexity |" in again
    assert "- git commit: `abc123`" in again and "- MLflow run: `r1`" in again
    assert "test metrics, where" not in again
    assert card.render_card(tmp_path / "none") == ""
    merged = card.render_card(tmp_path, metrics={"valid": {"accuracy": 0.5}}, brief=True)
    assert "| valid | perplexity | 3.1416 |" in merged and "| valid | accuracy | 0.5000 |" in merged
    assert "## Params" not in merged and "## How to load it" not in merged


def test_a_card_without_metrics_has_no_metrics_section():
    text = card.model_card(**{**FIELDS, "metrics": None})
    assert "## Metrics" not in text and "## Lineage" in text


def test_names_and_bases(tmp_path):
    assert card.model_name(tmp_path / ".nsmc-bert.k2j_x9a1.tmp") == "nsmc-bert"
    assert card.model_name(tmp_path / "nsmc-bert") == "nsmc-bert"
    assert card.base_card(None) == (None, None)
    assert card.base_card(tmp_path / "plain") == ("plain", "other")
    imported = tmp_path / "smollm2"
    imported.mkdir()
    card.write_card(imported, **{**FIELDS, "name": "smollm2", "kind": "gguf"})
    assert card.base_card(imported) == ("HuggingFaceTB/SmolLM2-135M-Instruct", "cc-by-nc-4.0")
    trained = tmp_path / "enc"
    trained.mkdir()
    card.write_card(trained, **{**FIELDS, "name": "nsmc-encoder", "kind": "bert_mlm"})
    assert card.base_card(trained)[0] == "nsmc-encoder"
