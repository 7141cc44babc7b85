"""Model cards: the README.md in every Hugging Face directory reprolab saves, in the Hugging
Face model-card style (YAML front matter: license, base_model, datasets, language, tags,
pipeline_tag; then what the model is, how to load it, its data and their licences, params,
metrics, lineage, intended use and limits).

The text is a pure function of its inputs (no timestamps, sorted params, fixed number
formats), so a model directory's bytes and its DVC md5 stay reproducible. A save writes the
card with the metrics known then (valid) and placeholders for the lineage; `card.json` keeps
the inputs so that the pipeline renders the same card later with test metrics and lineage
filled in (the registry version's description):

    render_card(model_dir, metrics={"test": {...}}, lineage={"git_commit": ..., ...})
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CARD_FILE = "README.md"
INPUTS_FILE = "card.json"  # model_card's inputs, for rendering the card again


@dataclass(frozen=True)
class DataSource:
    """A dataset a model learned from, as its card names it."""

    id: str | None  # upstream repository (front matter `datasets`); None: made here
    name: str
    url: str
    license: str
    language: str
    about: str


DATA: dict[str, DataSource] = {
    "nsmc": DataSource(
        "e9t/nsmc",
        "NSMC, Naver Sentiment Movie Corpus v1.0",
        "https://github.com/e9t/nsmc",
        "CC0 1.0 (public domain dedication)",
        "ko",
        "Korean movie reviews from Naver Movies; label 0 negative (ratings 1-4), "
        "1 positive (ratings 9-10).",
    ),
    "tiny_shakespeare": DataSource(
        "karpathy/tiny_shakespeare",
        "Tiny Shakespeare (char-rnn)",
        "https://github.com/karpathy/char-rnn/tree/master/data/tinyshakespeare",
        "public domain text (Shakespeare); the char-rnn repository is MIT",
        "en",
        "1.1M characters of Shakespeare's plays; the last 10 % is the validation split.",
    ),
    "code_alpaca": DataSource(
        "sahil280114/codealpaca",
        "Code Alpaca 2k",
        "https://github.com/sahil280114/codealpaca",
        "CC BY-NC 4.0 (non-commercial use only; generated with an OpenAI model, whose terms "
        "also apply)",
        "en",
        "2,017 coding instructions with responses in the Alpaca format.",
    ),
    "synthetic_mlops": DataSource(
        None,
        "Synthetic MLOps/DevOps Q&A",
        "reprolab.workloads.llm.instructions.synthetic_mlops",
        "MIT (made from templates by this repository's code)",
        "en",
        "Template-made questions and answers about DVC, MLflow, Docker and CI.",
    ),
}

NON_COMMERCIAL = "cc-by-nc-4.0"
DATA_LICENSES = {
    "nsmc": "cc0-1.0",
    "tiny_shakespeare": "public-domain",
    "code_alpaca": NON_COMMERCIAL,
    "synthetic_mlops": "mit",
}
OPEN = {"mit", "cc0-1.0", "public-domain"}
LINEAGE = {
    "git_commit": "git commit",
    "git_dirty": "uncommitted changes",
    "data_path": "data",
    "data_md5": "data md5 (DVC)",
    "model_md5": "model md5 (DVC)",
    "params_digest": "params digest",
    "mlflow_run": "MLflow run",
}
PLACEHOLDERS = ("git_commit", "data_md5", "model_md5")  # shown even when not given
ROUTING = {"workload", "dataset", "task", "use_hpo"}  # params that place a model, not shape it
LATER = (
    "Known when the model was saved (validation split); test metrics, where a stage measures "
    "them, are added to the registered version's card."
)
IMPORTS = ("hf", "gguf", "hf_causal_lm")  # kinds that bring a model in unchanged


def model_card(
    name: str,
    *,
    summary: str,
    license: str,
    pipeline_tag: str,
    kind: str,
    datasets: Sequence[str] = (),
    base_model: str | None = None,
    tags: Sequence[str] = (),
    usage: str = "",
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Mapping[str, Any]] | None = None,
    lineage: Mapping[str, Any] | None = None,
    intended_use: str = "",
    limits: Sequence[str] = (),
    brief: bool = False,
) -> str:
    """The card's markdown. `datasets` are keys of DATA; `metrics` maps a split (valid,
    test) to its scalar metrics; `lineage` keys missing from it stay as placeholders.
    `brief` leaves out the loading code and the params (on the MLflow run anyway): short
    enough for a registry version's description (MLflow's SQL stores hold 5,000 chars)."""
    sources = [DATA[key] for key in datasets if key in DATA]
    parts = [
        _front_matter(license, pipeline_tag, kind, sources, base_model, tags),
        f"# {name}\n\n{summary.strip()}\n",
        "" if brief else _section("How to load it", usage),
        _data_section(datasets, sources),
        "" if brief else _section("Params", _params_block(params)),
        _section("Metrics", _metrics_table(metrics)) if metrics is not None else "",
        _section("Lineage", _lineage_list(lineage)),
        _section("Intended use", intended_use),
        _section("Limits", _limits_list(limits)),
    ]
    return "\n".join(p for p in parts if p).rstrip("\n") + "\n"


def write_card(directory: Path, **fields: Any) -> Path:
    """README.md (the card, lineage left as placeholders) and card.json (its inputs)."""
    directory = Path(directory)
    fields = json.loads(json.dumps(fields, default=str))  # what a reload gives back
    fields.pop("lineage", None)
    (directory / INPUTS_FILE).write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n")
    path = directory / CARD_FILE
    path.write_text(model_card(**fields))
    return path


def load_card(directory: Path) -> dict[str, Any]:
    """The inputs a directory's card was written from ({} when it has none)."""
    path = Path(directory) / INPUTS_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def render_card(
    directory: Path,
    metrics: Mapping[str, Mapping[str, Any]] | None = None,
    lineage: Mapping[str, Any] | None = None,
    brief: bool = False,
) -> str:
    """A saved model's card again, with more metrics (e.g. test; merged per split into the
    saved ones) and the lineage filled in; empty when the directory has no card.json."""
    fields = load_card(directory)
    if not fields:
        return ""
    merged = {k: dict(v or {}) for k, v in (fields.get("metrics") or {}).items()}
    for split, values in (metrics or {}).items():
        merged[split] = {**merged.get(split, {}), **values}
    fields["metrics"] = merged
    return model_card(**fields, lineage=lineage, brief=brief)


def combined_license(*licenses: str | None) -> str:
    """The model's licence from its base's and its data's: non-commercial when any is,
    else the first that is not an open one, else MIT (the repository's licence)."""
    known = [x for x in licenses if x]
    if NON_COMMERCIAL in known:
        return NON_COMMERCIAL
    return next((x for x in known if x not in OPEN), "mit")


def data_license(*datasets: str) -> list[str]:
    return [DATA_LICENSES.get(key, "other") for key in datasets]


def base_card(base_dir: Path | None) -> tuple[str | None, str | None]:
    """(base_model reference, licence) of a base directory: an imported base names the model
    it came from, a base trained here its own name; (None, None) without a base."""
    if base_dir is None:
        return None, None
    base_dir = Path(base_dir)
    fields = load_card(base_dir)
    if not fields:
        return base_dir.name, "other"
    if fields.get("kind") in IMPORTS and fields.get("base_model"):
        return fields["base_model"], fields.get("license")
    return fields.get("name") or base_dir.name, fields.get("license")


def model_name(path: Path) -> str:
    """The model's name from its directory, also from the staging directory a stage saves
    into first (`.<name>.<random>.tmp`, reprolab.core.io.atomic_dir)."""
    name = Path(path).name
    if name.startswith(".") and name.endswith(".tmp") and name.count(".") >= 3:
        return name[1:-4].rsplit(".", 1)[0]
    return name


def tuning_params(params: Any) -> dict[str, Any]:
    """A model's params for its card, without the routing keys."""
    dump = params.model_dump(mode="json") if hasattr(params, "model_dump") else dict(params)
    return {k: v for k, v in dump.items() if k not in ROUTING and (k != "base" or v)}


# ---------------------------------------------------------------- rendering


def _front_matter(license, pipeline_tag, kind, sources, base_model, tags) -> str:
    import yaml

    meta: dict[str, Any] = {"license": license, "library_name": "transformers"}
    if base_model:
        meta["base_model"] = base_model
    if any(s.id for s in sources):
        meta["datasets"] = [s.id for s in sources if s.id]
    if sources:
        meta["language"] = sorted({s.language for s in sources})
    meta["pipeline_tag"] = pipeline_tag
    meta["tags"] = list(dict.fromkeys(["reprolab", kind, *tags]))
    text = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, default_flow_style=False)
    return f"---\n{text}---\n"


def _section(title: str, body: str) -> str:
    body = body.strip()
    return f"## {title}\n\n{body}\n" if body else ""


def _data_section(keys: Sequence[str], sources: Sequence[DataSource]) -> str:
    lines = [f"- **{s.name}** ({s.url}): {s.about} Licence: {s.license}." for s in sources] + [
        f"- `{key}`: licence not recorded; check its source." for key in keys if key not in DATA
    ]
    return _section("Training data", "\n".join(lines))


def _params_block(params: Mapping[str, Any] | None) -> str:
    if not params:
        return ""
    import yaml

    text = yaml.safe_dump(dict(params), sort_keys=True, allow_unicode=True)
    return f"```yaml\n{text}```"


def _format(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}" if abs(value) < 1e6 else f"{value:.4g}"


def _metrics_table(metrics: Mapping[str, Mapping[str, Any]] | None) -> str:
    rows = [
        f"| {split} | {key} | {_format(value)} |"
        for split, values in sorted((metrics or {}).items())
        for key, value in sorted((values or {}).items())
        if value is not None and not isinstance(value, Mapping | list)
    ]
    if not rows:
        return "No metrics recorded yet."
    note = "" if "test" in (metrics or {}) else f"\n\n{LATER}"
    return "| split | metric | value |\n| --- | --- | --- |\n" + "\n".join(rows) + note


def _lineage_list(lineage: Mapping[str, Any] | None) -> str:
    lineage = dict(lineage or {})
    keys = [*LINEAGE, *sorted(k for k in lineage if k not in LINEAGE)]
    lines = []
    for key in keys:
        if key in lineage and lineage[key] not in (None, ""):
            lines.append(f"- {LINEAGE.get(key, key)}: `{lineage[key]}`")
        elif key in PLACEHOLDERS:
            lines.append(
                f"- {LINEAGE[key]}: _the MLflow run's `{key}` tag (filled in the registered "
                "version's card)_"
            )
    return "\n".join(lines)


def _limits_list(limits: Sequence[str]) -> str:
    items = [
        *limits,
        "Scores hold for the data distribution of the split they were measured on.",
    ]
    return "\n".join(f"- {item}" for item in items)
