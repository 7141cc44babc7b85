"""Report section of a language-modelling task (LoRA fine-tuning): test perplexity of each
fine-tuned model against its base on the same examples, per data source, the training curve
of validation perplexity, and the fixed prompts' generations of base and fine-tuned model side
by side (reports/eval/<task>/<model>/generations.json, written by the evaluate stage)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from reprolab.core import figures
from reprolab.core.document import Document
from reprolab.core.layout import TIMINGS_FILE, eval_dir, registry_file, train_dir
from reprolab.core.summary import champion_sentence

if TYPE_CHECKING:
    from reprolab.params import Params

GENERATIONS = "generations.json"


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _cell(text: str | None, limit: int = 300) -> str:
    """A generation as one markdown table cell."""
    if text is None:
        return "_(base not available)_"
    text = text.strip() or "_(empty)_"
    if len(text) > limit:
        text = text[:limit] + " …"
    return text.replace("|", "\\|").replace("\n", " ⏎ ")


def task_section(doc: Document, task: str, params: Params, figdir: Path) -> None:
    # models evaluated so far (a run of a subset of stages leaves the others out)
    names = [
        n for n in params.models_of_task(task) if (eval_dir(task, n) / "metrics.json").is_file()
    ]
    if not names:
        return
    registry = _read(registry_file(task))
    spec = params.registry[task]
    doc.heading(f"Task `{task}`")
    doc.text(champion_sentence(registry, spec.metric, registry.get("previous_champion")))
    champion = (registry.get("champion") or {}).get("model")

    header = ["model", "base", "base perplexity", "fine-tuned perplexity", "change"]
    groups = sorted(
        {
            k
            for n in names
            for k, v in _read(eval_dir(task, n) / "metrics.json").items()
            if isinstance(v, dict) and "perplexity" in v
        }
    )
    header += [f"{g} (base → tuned)" for g in groups]
    header += ["train steps/s", "train s"]
    rows = []
    for name in names:
        m = _read(eval_dir(task, name) / "metrics.json")
        t = _read(train_dir(name) / TIMINGS_FILE)
        model = params.model(name)
        base_ppl, ppl = m.get("base_perplexity"), m.get("perplexity")
        change = f"{(ppl / base_ppl - 1):+.1%}" if base_ppl and ppl else ""
        row = [
            f"**{name}** ★" if champion == name else name,
            str(getattr(model, "base", "") or ""),
            f"{base_ppl:.3f}" if base_ppl else "",
            f"{ppl:.3f}" if ppl else "",
            change,
        ]
        for g in groups:
            part = m.get(g, {})
            row.append(
                f"{part['base_perplexity']:.2f} → {part['perplexity']:.2f}"
                if "base_perplexity" in part
                else f"{part.get('perplexity', float('nan')):.2f}"
            )
        steps = t.get("steps_per_s")
        row += [
            f"{steps:.2f}" if steps else "",
            f"{t['fit_seconds']:.0f}" if "fit_seconds" in t else "",
        ]
        rows.append(row)
    doc.table(header, rows)
    doc.text(
        f"Token-level perplexity of the responses (prompt tokens carry no loss) on the test "
        f"split, base and fine-tuned model scored on the same examples in the same evaluate "
        f"run; ★ marks the `champion` alias of `{task}` (metric `{spec.metric}`, "
        f"{spec.direction}, threshold {spec.threshold})."
    )

    curves = {n: c for n in names if (c := figures.train_curves(n)) is not None}
    curves = {n: c for n, c in curves.items() if "valid_perplexity" in c}
    if curves:
        doc.figure(
            _perplexity_curves(curves, figdir / f"{task}-valid-perplexity.png"),
            "Validation perplexity during fine-tuning (step 0: the base model)",
        )

    for name in names:
        gen = _read(eval_dir(task, name) / GENERATIONS)
        if not gen.get("samples"):
            continue
        doc.text(
            f"Generations of `{name}` and its base `{gen.get('base')}` for fixed prompts "
            f"({gen.get('decoding', 'greedy')}, at most {gen.get('max_new_tokens')} new tokens):"
        )
        doc.table(
            ["prompt", "base", "fine-tuned"],
            [[_cell(s["prompt"]), _cell(s["base"]), _cell(s["finetuned"])] for s in gen["samples"]],
        )


def _perplexity_curves(curves: dict, path: Path) -> Path:
    fig, axes = figures.grid(len(curves))
    for ax, (name, frame) in zip(axes, curves.items(), strict=True):
        part = frame.dropna(subset=["valid_perplexity"])
        ax.plot(part["step"], part["valid_perplexity"], marker="o")
        ax.set(title=name, xlabel="step", ylabel="valid perplexity")
    return figures.save(fig, path)
