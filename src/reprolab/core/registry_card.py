"""The description of a registry version: a model card with the gate's scores (valid chooses,
test is only reported), the data's licence and the lineage that fetches the exact model."""

from __future__ import annotations

from reprolab.core.params import RegistryTask
from reprolab.core.tracking import TAG

# the data behind each dataset kind, with its licence, for the registry version's card
DATA_NOTES = {
    "wine": "UCI Wine Quality (Cortez et al. 2009), CC BY 4.0",
    "nsmc": "NSMC, Naver Sentiment Movie Corpus v1.0, CC0 1.0",
    "nuclei": "BBBC038v1 / Data Science Bowl 2018 nuclei, CC0 1.0",
    "control": "synthetic plants made by this repository's code, MIT",
    "shakespeare": "Tiny Shakespeare (char-rnn), public domain text",
    "codealpaca": "Code Alpaca 2k, CC BY-NC 4.0 (non-commercial use only)",
}


def version_card(
    task: str, spec: RegistryTask, model: str, run, value: float, test: float | None
) -> str:
    """The registry version's description, a model card: the saved card of a Hugging Face
    directory with test metrics and lineage filled in, or a short one for other families."""
    from pathlib import Path

    from reprolab.core.card import render_card

    tags = run.data.tags
    keys = ("git_commit", "git_dirty", "data_path", "data_md5", "model_md5", "params_digest")
    lineage = {k: tags.get(TAG + k) for k in keys} | {"mlflow_run": run.info.run_id}
    metrics = {"valid": {spec.metric: value}}
    if test is not None:
        metrics["test"] = {spec.metric: test}
    gate = (
        f"Registry gate: valid {spec.metric} = {value:.4f} ({spec.direction}, threshold "
        f"{spec.threshold}); test {spec.metric} "
        + (f"= {test:.4f}" if test is not None else "not evaluated")
        + " (reported, never used to choose)."
    )
    if tags.get(TAG + "cut_short") == "true":
        gate += (
            f" Cut short: training stopped by its max_seconds guard at step "
            f"{tags.get(TAG + 'cut_at_step', '?')} of {tags.get(TAG + 'planned_steps', '?')}, so "
            "this model depends on the machine's speed; it is never promoted over a complete "
            "version."
        )
    model_path = tags.get(TAG + "model_path")
    saved = render_card(Path(model_path), metrics, lineage, brief=True) if model_path else ""
    if saved:
        return f"{gate}\n\n{saved}"[:4900]
    dataset = Path(tags.get(TAG + "data_path", "")).name
    lines = [
        f"# {task}: {model} ({tags.get(TAG + 'kind', '?')})",
        "",
        gate,
        "",
        f"- data: {DATA_NOTES.get(dataset, dataset or '-')}",
        f"- params digest: {lineage['params_digest'] or '?'}; DVC experiment: "
        f"{tags.get(TAG + 'dvc_exp') or '(workspace)'}",
        f"- lineage: git {(lineage['git_commit'] or '?')[:12]}"
        f"{' (uncommitted changes)' if lineage['git_dirty'] == 'true' else ''}, "
        f"{lineage['data_path'] or '-'} md5 {lineage['data_md5'] or '-'}, model md5 "
        f"{lineage['model_md5'] or '-'}",
        f"- MLflow run: {run.info.run_id}",
        "",
        f"Intended use: the `{task}` task on data like its test split; scores hold for that "
        "distribution only. Not for decisions about people.",
    ]
    return "\n".join(lines)
