"""The report's section for language models pretrained here, from the files the pretrain
stage writes (dvclive metrics and curves, the model's training.json and samples.json)."""

from __future__ import annotations

import json
from pathlib import Path

from reprolab.core.document import Document
from reprolab.params import parse_params
from reprolab.workloads.minit import report as lm


def test_section_shows_budget_loss_curve_and_samples(workspace: Path):
    params = parse_params(
        {
            "datasets": {"shakespeare": {"workload": "minit", "kind": "shakespeare"}},
            "models": {},
            "pretrain": {"minit": {"workload": "minit", "kind": "minit", "dataset": "shakespeare"}},
            "registry": {},
        }
    )
    train = workspace / "reports/train/minit"
    (train / "plots/metrics").mkdir(parents=True)
    (train / "metrics.json").write_text(
        json.dumps({"valid": {"loss": 1.71, "perplexity": 5.53, "bits_per_char": 2.467}})
    )
    for name, values in (("train_loss", [2.5, 1.9, 1.6]), ("valid_loss", [2.6, 2.0, 1.71])):
        rows = "".join(f"{(i + 1) * 250}\t{v}\n" for i, v in enumerate(values))
        (train / f"plots/metrics/{name}.tsv").write_text(f"step\t{name}\n{rows}")
    model = workspace / "models/minit"
    model.mkdir(parents=True)
    (model / "training.json").write_text(
        json.dumps({"steps": 750, "tokens_seen": 1536000, "seconds": 290.2, "tokens_per_s": 5293})
    )
    (model / "samples.json").write_text(
        json.dumps([{"prompt": "ROMEO:\n", "completion": "What say'st thou?"}])
    )
    doc = Document("t")
    (workspace / "fig").mkdir()
    lm.base_section(doc, params, workspace / "fig")
    markdown = doc.to_markdown(base=workspace)
    assert "| minit | mistral 4×128 |" in markdown and "1.7100 ✓" in markdown
    assert "1,536,000" in markdown and "5,293" in markdown
    assert "```text\nROMEO:\nWhat say'st thou?\n```" in markdown
    assert (workspace / "fig/lm-loss-curves.png").stat().st_size > 1000
    assert "<pre>ROMEO:\nWhat say&#x27;st thou?</pre>" in doc.to_html()


def test_no_pretrained_language_model_no_section(workspace: Path):
    params = parse_params({"datasets": {}, "models": {}, "registry": {}})
    doc = Document("t")
    lm.base_section(doc, params, workspace)
    assert doc.blocks == []
