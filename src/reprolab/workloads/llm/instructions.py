"""Instruction data in the Alpaca format: record validation, the prompt template (with
optional few-shot examples), a template-made synthetic MLOps/DevOps Q&A source (its facts in
facts.yaml), and tokenisation with the loss on response tokens only."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from reprolab.core.errors import DataError

FIELDS = ("instruction", "input", "output")
IGNORE = -100  # label of tokens that carry no loss (prompt, padding)

# The Stanford Alpaca template (with and without an input), as in Code Alpaca's training code.
ALPACA = {
    "with_input": (
        "Below is an instruction that describes a task, paired with an input that provides "
        "further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
    ),
    "no_input": (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
    ),
}


def validate_records(records: Any, source: str) -> list[dict[str, str]]:
    """Alpaca records: a list of objects with string `instruction` (non-empty), `input` and
    `output`. DataError naming the record index and field for the first malformed one."""
    if not isinstance(records, list):
        raise DataError(f"{source}: expected a JSON array of records, got {type(records).__name__}")
    out = []
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(
                f"{source}: record {index}: expected an object with {list(FIELDS)}, got "
                f"{type(record).__name__}"
            )
        for field in FIELDS:
            if field not in record:
                raise DataError(f"{source}: record {index}: field {field!r} is missing")
            if not isinstance(record[field], str):
                raise DataError(
                    f"{source}: record {index}: field {field!r} must be a string, got "
                    f"{type(record[field]).__name__} {record[field]!r:.60}"
                )
        if not record["instruction"].strip():
            raise DataError(f"{source}: record {index}: field 'instruction' is empty")
        extra = sorted(set(record) - set(FIELDS))
        if extra:
            raise DataError(f"{source}: record {index}: unknown field(s) {extra}")
        out.append({f: record[f] for f in FIELDS})
    return out


@dataclass(frozen=True)
class PromptTemplate:
    """How an (instruction, input) pair becomes the prompt the model continues."""

    with_input: str
    no_input: str
    few_shot: tuple[dict[str, str], ...] = ()
    separator: str = "\n\n"  # after each few-shot example's response

    def render(self, instruction: str, input: str = "") -> str:
        shots = "".join(
            self._one(s["instruction"], s.get("input", "")) + s["output"] + self.separator
            for s in self.few_shot
        )
        return shots + self._one(instruction, input)

    def _one(self, instruction: str, input: str) -> str:
        text = self.with_input if input.strip() else self.no_input
        return text.format(instruction=instruction.strip(), input=input.strip())

    def to_dict(self) -> dict[str, Any]:
        return {
            "with_input": self.with_input,
            "no_input": self.no_input,
            "few_shot": [dict(s) for s in self.few_shot],
            "separator": self.separator,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PromptTemplate:
        return cls(
            with_input=data["with_input"],
            no_input=data["no_input"],
            few_shot=tuple(data.get("few_shot", ())),
            separator=data.get("separator", "\n\n"),
        )


def check_template(with_input: str, no_input: str) -> list[str]:
    """Problems with a user template: unknown placeholders, a missing {instruction}."""
    import string

    problems = []
    for key, text in (("with_input", with_input), ("no_input", no_input)):
        try:
            names = {n for _, n, _, _ in string.Formatter().parse(text) if n is not None}
        except ValueError as err:
            problems.append(f"{key}: not a valid format string ({err})")
            continue
        allowed = {"instruction", "input"} if key == "with_input" else {"instruction"}
        if "instruction" not in names:
            problems.append(f"{key}: must contain {{instruction}}")
        if names - allowed:
            problems.append(f"{key}: unknown placeholder(s) {sorted(names - allowed)}")
    return problems


# ---------------------------------------------------------------- synthetic MLOps/DevOps Q&A

FACTS_FILE = Path(__file__).with_name("facts.yaml")


@cache
def mlops_facts() -> tuple[tuple[tuple[str, str, str], ...], tuple[str, ...]]:
    """The (topic, stem, answer) facts and the question phrasings of facts.yaml, in file order
    (the seeded shuffle depends on it). Every value must be a string, so that a YAML scalar
    read as a number, boolean or null fails here rather than changing the records."""
    import yaml  # here: saved models import this module and do not pin PyYAML

    data = yaml.safe_load(FACTS_FILE.read_text(encoding="utf-8"))
    facts = tuple((f["topic"], f["stem"], f["answer"]) for f in data["facts"])
    phrasings = tuple(data["phrasings"])
    bad = [v for v in (*phrasings, *(x for f in facts for x in f)) if not isinstance(v, str)]
    if bad:
        raise DataError(f"{FACTS_FILE}: expected strings only, got {bad[0]!r}")
    return facts, phrasings


def synthetic_mlops(n: int, seed: int) -> list[dict[str, str]]:
    """`n` template-made MLOps/DevOps Q&A records (Alpaca format), drawn by `seed` from the
    facts x phrasings of facts.yaml (160 distinct questions; more repeat them)."""
    facts, phrasings = mlops_facts()
    rng = random.Random(seed)
    pool = [(f, p) for f in facts for p in phrasings]
    rng.shuffle(pool)
    records = []
    for i in range(n):
        (topic, stem, answer), phrasing = pool[i % len(pool)]
        records.append(
            {"instruction": phrasing.format(stem=stem, topic=topic), "input": "", "output": answer}
        )
    return records


# ---------------------------------------------------------------- tokenisation


def encode(tokenizer: Any, prompt: str, response: str, max_length: int) -> dict[str, list[int]]:
    """Token ids of prompt + response + EOS and labels that are IGNORE on the prompt, so the
    loss covers the response only. Prompt and response are tokenised separately (no merge
    across the boundary). Truncated on the right to `max_length`; the result may carry no
    response token at all when the prompt fills it (callers drop such examples)."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        response_ids = [*response_ids, tokenizer.eos_token_id]
    bos = [tokenizer.bos_token_id] if getattr(tokenizer, "add_bos_token", False) else []
    ids = (bos + prompt_ids + response_ids)[:max_length]
    labels = ([IGNORE] * (len(bos) + len(prompt_ids)) + response_ids)[:max_length]
    return {"input_ids": ids, "labels": labels}


def collate(examples: list[dict[str, list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors: input_ids, attention_mask, labels (IGNORE on padding)."""
    import torch

    width = max(len(e["input_ids"]) for e in examples)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    for row, e in enumerate(examples):
        n = len(e["input_ids"])
        ids[row, :n] = torch.tensor(e["input_ids"])
        mask[row, :n] = 1
        labels[row, :n] = torch.tensor(e["labels"])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
