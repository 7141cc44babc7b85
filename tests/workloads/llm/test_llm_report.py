"""The report's language-modelling section: base vs fine-tuned perplexity, per source, and
the generations side by side, from the files the finetune stage writes."""

from __future__ import annotations

import json

from reprolab.core.document import Document
from reprolab.params import parse_params
from reprolab.workloads.llm import report as llm_report


def test_section(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = parse_params(
        {
            "datasets": {"ins": {"workload": "llm", "kind": "instructions", "code_alpaca": False}},
            "models": {},
            "imports": {"tiny": {"workload": "llm", "kind": "gguf", "source": "package:x"}},
            "finetune": {
                "tiny-lora": {
                    "workload": "llm",
                    "kind": "lora",
                    "dataset": "ins",
                    "task": "llm-sft",
                    "base": "tiny",
                }
            },
            "registry": {
                "llm-sft": {"metric": "perplexity", "direction": "minimize", "threshold": 20}
            },
        }
    )
    out = tmp_path / "reports/eval/llm-sft/tiny-lora"
    out.mkdir(parents=True)
    metrics = {
        "perplexity": 5.0,
        "base_perplexity": 6.5,
        "code_alpaca": {"perplexity": 5.5, "base_perplexity": 6.0},
        "synthetic_mlops": {"perplexity": 2.0, "base_perplexity": 9.0},
    }
    (out / "metrics.json").write_text(json.dumps(metrics))
    samples = [{"prompt": "Say | hi", "base": "Hello\nthere", "finetuned": "Hi."}]
    (out / "generations.json").write_text(
        json.dumps({"base": "tiny", "max_new_tokens": 8, "samples": samples})
    )
    train = tmp_path / "reports/train/tiny-lora"
    (train / "plots/metrics").mkdir(parents=True)
    (train / "timings.json").write_text(json.dumps({"steps_per_s": 0.5, "fit_seconds": 80}))
    (train / "plots/metrics/valid_perplexity.tsv").write_text(
        "step\tvalid_perplexity\n0\t6.6\n20\t5.3\n"
    )
    (tmp_path / "reports/registry").mkdir(parents=True)
    (tmp_path / "reports/registry/llm-sft.json").write_text(
        json.dumps({"champion": {"model": "tiny-lora", "version": "1", "value": 5.0}})
    )
    doc = Document("t")
    figdir = tmp_path / "figs"
    figdir.mkdir()
    llm_report.task_section(doc, "llm-sft", params, figdir)
    text = doc.to_markdown(base=tmp_path)
    assert (
        "| **tiny-lora** ★ | tiny | 6.500 | 5.000 | -23.1% "
        "| 6.00 → 5.50 | 9.00 → 2.00 | 0.50 | 80 |" in text
    )
    assert "| Say \\| hi | Hello ⏎ there | Hi. |" in text
    assert (figdir / "llm-sft-valid-perplexity.png").is_file()
