"""Commands that use a model: `pid` (gains for one plant), `predict` (sentiment of texts),
`generate` (a causal LM's continuation)."""

from __future__ import annotations

import click

from reprolab.cli_support import (
    choice,
    load,
    params_option,
    registered_choice,
    task_choice,
    user_errors,
)


@click.command()
@click.option("--plant", "plant_file", type=click.Path(dir_okay=False), help="plant as YAML")
@click.option("--kind", type=click.Choice(["fopdt", "sopdt", "integrating"]))
@click.option("--gain", type=float)
@click.option("--delay", type=float, help="dead time (s)")
@click.option("--time-constant", type=float, default=1.0, show_default=True)
@click.option("--damping", type=float, default=0.5, show_default=True)
@click.option("--natural-frequency", type=float, default=1.0, show_default=True)
@click.option("--model", default="models:/pid-control@champion", show_default=True)
@click.option("--dataset", default="control", show_default=True, help="loop settings from")
@click.option("--out", type=click.Path(file_okay=False), default="reports/pid", show_default=True)
@params_option
def pid(
    plant_file,
    kind,
    gain,
    delay,
    time_constant,
    damping,
    natural_frequency,
    model,
    dataset,
    out,
    params_path,
) -> None:
    """PID gains for one plant from the champion PIDNet, its simulated response against
    Ziegler–Nichols and SIMC, and a plot (PLANT as YAML, or --kind/--gain/--delay...)."""
    with user_errors():
        from pathlib import Path

        from reprolab.core.errors import DataError
        from reprolab.core.io import atomic_write_json
        from reprolab.workloads.control import gains as pidlib
        from reprolab.workloads.control.data import loop_of
        from reprolab.workloads.control.plants import Plant

        params = load(params_path)
        controls = [n for n, d in params.datasets.items() if d.kind == "control"]
        loop = loop_of(params.datasets[choice("dataset", dataset, controls)])
        if plant_file:
            plant = pidlib.plant_from_yaml(Path(plant_file))
        elif kind and gain is not None and delay is not None:
            plant = Plant(kind, gain, delay, time_constant, damping, natural_frequency)
        else:
            raise DataError("give --plant FILE.yaml, or --kind, --gain and --delay")
        result = pidlib.tune(plant, loop, model)
        folder = Path(out)
        figure = pidlib.plot(result, loop, folder / f"{plant.kind}-response.png")
        summary = {k: result[k] for k in ("plant", "features", "gains", "metrics")}
        atomic_write_json(folder / f"{plant.kind}-response.json", summary)
        click.echo(f"{'controller':<16} {'Kp':>8} {'Ki':>8} {'Kd':>8} {'IAE':>8} {'overshoot':>10}")
        for name, g in result["gains"].items():
            m = result["metrics"][name]
            click.echo(
                f"{name:<16} {g['kp']:>8.3f} {g['ki']:>8.3f} {g['kd']:>8.3f} "
                f"{m['iae']:>8.2f} {m['overshoot']:>9.1f}%"
            )
        click.echo(f"plot: {figure}  summary: {folder / (plant.kind + '-response.json')}")


@click.command()
@click.argument("task")
@click.argument("texts", nargs=-1, required=True)
@click.option("--alias", default="champion", show_default=True, help="Registry alias to use.")
@click.option("--model", "model_dir", help="A model directory or URI instead of the alias.")
@params_option
def predict(
    task: str, texts: tuple[str, ...], alias: str, model_dir: str | None, params_path: str
) -> None:
    """Label each of TEXTS with TASK's model (e.g. nsmc-sentiment): one JSON line per text."""
    with user_errors():
        import json

        from reprolab.workloads.sentiment.api import SentimentPredictor

        if model_dir:  # the labels still come from the task's params
            task_choice(task, params_path)
        else:
            registered_choice(task, alias, params_path)
        predictor = SentimentPredictor(
            alias=alias, task=task, model=model_dir, params_path=params_path
        )
        for result in predictor.predict(list(texts), return_probs=True):
            click.echo(json.dumps(result, ensure_ascii=False))


@click.command()
@click.argument("prompt")
@click.option("--model-dir", type=click.Path(), help="A Hugging Face causal-LM directory.")
@click.option("--run-id", help="An MLflow run whose logged model to use.")
@click.option("--alias", default="champion", show_default=True, help="Registry alias.")
@click.option("--task", default="llm-sft", show_default=True, help="Registered model (task).")
@click.option("--max-new-tokens", default=200, show_default=True, type=int)
@click.option("--temperature", default=0.8, show_default=True, type=float, help="0: greedy.")
@click.option("--top-k", default=50, show_default=True, type=int, help="0: no top-k cut.")
@click.option("--top-p", default=1.0, show_default=True, type=float)
@click.option("--seed", default=None, type=int, help="Sampling seed (default: random).")
@params_option
def generate(
    prompt: str,
    model_dir: str | None,
    run_id: str | None,
    alias: str,
    task: str,
    max_new_tokens: int,
    temperature: float,
    top_k: int,
    top_p: float,
    seed: int | None,
    params_path: str,
) -> None:
    """Continue PROMPT with a causal LM, streaming tokens as they come: by default
    models:/<task>@<alias>; --model-dir or --run-id pick another model."""
    with user_errors():
        from reprolab.lm import generation

        sampling = generation.Sampling(max_new_tokens, temperature, top_k, top_p, seed)
        sampling.check()
        if not prompt.strip():
            raise generation.GenerationError("prompt: empty (give some text to continue)")
        if model_dir is None and run_id is None:  # the registry's model: task and alias count
            registered_choice(task, alias, params_path)
        directory = generation.locate(model_dir=model_dir, run_id=run_id, alias=alias, task=task)
        model, tokenizer = generation.load(directory)
        pieces = generation.stream(model, tokenizer, prompt, sampling)  # checks the prompt
        click.echo(prompt, nl=False)
        for piece in pieces:
            click.echo(piece, nl=False)
        click.echo()
