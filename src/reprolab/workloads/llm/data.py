"""Instruction data for supervised fine-tuning: Code Alpaca 2k (sahil280114/codealpaca,
Alpaca format, CC BY-NC 4.0) and/or template-made synthetic MLOps/DevOps Q&A, rendered with
the prompt template (and few-shot examples) of params, split train/valid/test by seed.

Written per split as JSON lines {source, instruction, input, prompt, response}, plus
template.json (what a model needs to prompt the same way at serving time) and summary.json.
Records with an empty `output` (2 in Code Alpaca) are dropped and counted: nothing to learn.
A malformed record stops prepare with its index and field."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reprolab.core.errors import DataError
from reprolab.core.fetch import RemoteFile, fetch_one
from reprolab.core.io import atomic_write_json, atomic_write_text
from reprolab.core.metrics import perplexities
from reprolab.core.split import Scored, Split
from reprolab.workloads.llm.instructions import PromptTemplate, synthetic_mlops, validate_records

PROBLEM = "language-modeling"  # predictions are per-example log-likelihoods
SPLITS = ("train", "valid", "test")
TEMPLATE_FILE = "template.json"
CODE_ALPACA = RemoteFile(
    "code_alpaca_2k.json",
    "https://raw.githubusercontent.com/sahil280114/codealpaca/"
    "2f78ddc5c682ed6738ad092bbbfa59ba915afcb0/data/code_alpaca_2k.json",
    "9cb7352683bd2f530ce81eff7f8d58ccbe1a4bdf28afebbe9f80ec687256066d",
    "instructions/code_alpaca_2k.json",
)
COLUMNS = ("source", "instruction", "input", "prompt", "response")


def source_files(params, mirror: Path | None = None) -> list[RemoteFile]:
    """The pinned file prepare reads, if any (the check stage verifies the mirror's copy)."""
    return [CODE_ALPACA] if params.code_alpaca else []


@dataclass(frozen=True)
class InstructionSplit(Split):
    """Prompts and responses (`X`, the frame a language-model pyfunc scores), the responses
    (`y`), the source of each example (`groups`) and the prompt template.

    `score` takes the pyfunc's scoring output: per example the summed negative
    log-likelihood of the response tokens (`nll`) and their count (`tokens`), and the base
    model's `base_nll` when the model has a base; perplexity = exp(sum nll / sum tokens)."""

    X: pd.DataFrame
    y: np.ndarray
    groups: np.ndarray
    template: PromptTemplate

    def score(self, predicted) -> dict:
        frame = pd.DataFrame(predicted)
        return perplexities(frame, self.groups)

    def score_model(self, path: Path) -> Scored:
        """Perplexity of the saved model at `path` and of its base on this split, the
        per-example table, and generations.json (fixed prompts, base vs fine-tuned)."""
        from reprolab.workloads.llm.saved import score_saved

        return Scored(*score_saved(Path(path), self))

    def labelled_rows(self) -> None:
        return None  # examples of varying length: throughput is counted in tokens

    def prediction_table(self, predicted) -> pd.DataFrame:
        frame = pd.DataFrame(predicted).reset_index(drop=True)
        table = pd.DataFrame({"group": self.groups, "tokens": frame["tokens"].to_numpy()})
        for column in ("nll", "base_nll"):
            if column in frame:
                table[column] = frame[column].to_numpy()
                table[column.replace("nll", "perplexity")] = np.exp(
                    frame[column].to_numpy() / np.maximum(frame["tokens"].to_numpy(), 1)
                )
        return table


def template_from(params) -> PromptTemplate:
    return PromptTemplate(
        with_input=params.template.with_input,
        no_input=params.template.no_input,
        few_shot=tuple(s.model_dump() for s in params.few_shot),
    )


def read_code_alpaca(path: Path) -> list[dict[str, str]]:
    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: not a UTF-8 JSON file ({err})") from err
    return validate_records(records, str(path))


def prepare(params, seed: int, raw_dir: Path, out_dir: Path, mirror: Path | None) -> dict:
    """Fetch → validate → sample → add synthetic Q&A → render prompts → split → JSONL."""
    template = template_from(params)
    rows: list[dict[str, str]] = []
    dropped_empty = 0
    if params.code_alpaca:
        records = read_code_alpaca(fetch_one(CODE_ALPACA, raw_dir, mirror))
        kept = [r for r in records if r["output"].strip()]
        dropped_empty = len(records) - len(kept)
        if params.sampling_rate < 1:
            rng = random.Random(seed)
            kept = rng.sample(kept, max(1, round(len(kept) * params.sampling_rate)))
        rows += [{"source": "code_alpaca", **r} for r in kept]
    else:
        raw_dir.mkdir(parents=True, exist_ok=True)  # a declared output, even when unused
    rows += [{"source": "synthetic_mlops", **r} for r in synthetic_mlops(params.synthetic, seed)]
    if len(rows) < 3:
        raise DataError(f"only {len(rows)} instruction record(s): need at least 3 to split")
    for row in rows:
        row["prompt"] = template.render(row["instruction"], row["input"])
        row["response"] = row.pop("output").strip()

    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_valid = max(1, round(len(rows) * params.valid_size))
    n_test = max(1, round(len(rows) * params.test_size))
    parts = {
        "valid": order[:n_valid],
        "test": order[n_valid : n_valid + n_test],
        "train": order[n_valid + n_test :],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        lines = [
            json.dumps({c: rows[i][c] for c in COLUMNS}, ensure_ascii=False) for i in parts[split]
        ]
        atomic_write_text(out_dir / f"{split}.jsonl", "\n".join(lines) + "\n")
    atomic_write_json(out_dir / TEMPLATE_FILE, template.to_dict())
    summary = {
        "rows": {s: len(parts[s]) for s in SPLITS},
        "sources": {
            s: dict(sorted(pd.Series([rows[i]["source"] for i in parts[s]]).value_counts().items()))
            for s in SPLITS
        },
        "dropped_empty_output": dropped_empty,
        "sampling_rate": params.sampling_rate,
        "synthetic": params.synthetic,
        "few_shot": len(template.few_shot),
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary


def load_split(out_dir: Path, split: str) -> InstructionSplit:
    path = Path(out_dir) / f"{split}.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: not found; run prepare first")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}: line {number}: not JSON ({err})") from err
        missing = [c for c in COLUMNS if not isinstance(row.get(c), str)]
        if missing:
            raise DataError(f"{path}: line {number}: missing or non-string field(s) {missing}")
        rows.append(row)
    if not rows:
        raise DataError(f"{path}: no records")
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    template = PromptTemplate.from_dict(json.loads((Path(out_dir) / TEMPLATE_FILE).read_text()))
    return InstructionSplit(
        X=frame[["prompt", "response"]].reset_index(drop=True),
        y=frame["response"].to_numpy(dtype=object),
        groups=frame["source"].to_numpy(dtype=object),
        template=template,
    )
