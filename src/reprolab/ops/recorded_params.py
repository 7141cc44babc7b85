"""A run's params as MLflow recorded them, written back into a params.yaml: what makes a
`dvc exp run -S` experiment (params changed, code as committed) rebuildable from its commit."""

from __future__ import annotations

import json
from pathlib import Path

from reprolab.core.errors import LineageError


def restore_params(
    wt: Path, recorded: dict[str, str], model: str, tags: dict[str, str]
) -> list[str]:
    """Write the run's recorded params where params.yaml at the commit differs (a `dvc exp
    run -S` experiment), and HPO's applied params as train reads them; the keys changed."""
    import yaml

    from reprolab.params import MODEL_SECTIONS

    tuned = json.loads(tags.get("hpo_params") or "{}")
    best = wt / "reports" / "hpo" / model / "best.json"  # train@'s dependency, read if use_hpo
    best.parent.mkdir(parents=True, exist_ok=True)
    best.write_text(json.dumps(tuned, sort_keys=True))
    params_file = wt / "params.yaml"
    doc = yaml.safe_load(params_file.read_text())
    section = next((s for s in MODEL_SECTIONS if model in (doc.get(s) or {})), None)
    if section is None:
        raise LineageError(f"params.yaml at {tags['git_commit'][:8]} has no model {model!r}")
    entry, changed = doc[section][model], []
    if "seed" in recorded and _value(recorded["seed"]) != doc.get("seed"):
        doc["seed"], changed = _value(recorded["seed"]), ["seed"]
    for key, value in entry.items():
        if key in ("workload", "dataset", "task") or key in tuned or key not in recorded:
            continue
        if _value(recorded[key]) != value:
            entry[key] = _value(recorded[key])
            changed.append(f"{section}.{model}.{key}={recorded[key]}")
    if changed:
        params_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    return changed


def _value(text: str):
    """A param as MLflow logged it (`str(value)`) back to its YAML value."""
    import yaml

    if text == "None":
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text
