"""`make bench-llm`: latency, throughput and memory of a causal language model, base vs merged
LoRA, in fp32, bf16 and 4-bit NF4 (the original project's full-precision-vs-4-bit benchmark).

For each model x precision: load time, time to first token (prefill plus one decoded token at
batch 1), decode tokens/s at batch 1, 4 and 8 (greedy, `--new-tokens` tokens per row, EOS
ignored so every row decodes the same count) and the peak memory: CUDA's peak allocation on a
GPU; on the CPU the growth of the process's peak RSS during that variant (ru_maxrss never
goes down, so a variant that needs less than an earlier one reports 0: read it as "no more
than before"), plus the weights' own bytes, which are exact on both.

Writes reports/bench/llm.json and reports/bench/llm.png and prints a table. Defaults are
quick on a CPU (8 new tokens, 1 repeat); `--model DIR` benchmarks any HF directory (a tiny one
in the tests)."""

from __future__ import annotations

import platform
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import click

PRECISIONS = ("fp32", "bf16", "nf4")
PROMPT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\nExplain what a Docker image is.\n\n"
    "### Response:\n"
)


def _rss_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def load(path: Path, precision: str, device: str):
    """(model, tokenizer) of an HF directory or a saved fine-tuned model, in a precision."""
    import torch
    from transformers import AutoModelForCausalLM

    from reprolab.lm import hf_dir
    from reprolab.workloads.llm.loading import load_tokenizer

    weights = hf_dir(path)
    kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if precision == "bf16" else torch.float32}
    if precision == "nf4":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=torch.bfloat16 if device == "cuda" else torch.float32,
        )
        kwargs["device_map"] = {"": device}
    model = AutoModelForCausalLM.from_pretrained(weights, **kwargs)
    if precision != "nf4":
        model = model.to(device)
    # nf4 on a CPU: bitsandbytes repacks the 4-bit weights for inference on the first eval
    # forward (its fast path; see reprolab.workloads.llm.loading for why training must not)
    return model.eval(), load_tokenizer(weights)


def weight_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters()) + sum(
        b.numel() * b.element_size() for b in model.buffers()
    )


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def time_generate(model, tokenizer, batch: int, new_tokens: int, device: str) -> float:
    import torch

    ids = tokenizer([PROMPT] * batch, return_tensors="pt", add_special_tokens=False).to(device)
    _sync(device)
    started = time.perf_counter()
    with torch.no_grad():
        model.generate(
            **ids,
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
    _sync(device)
    return time.perf_counter() - started


def bench_one(
    path: Path, precision: str, device: str, batches: list[int], new_tokens: int, repeats: int
) -> dict[str, Any]:
    import torch

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rss_before = _rss_bytes()
    started = time.perf_counter()
    model, tokenizer = load(path, precision, device)
    row: dict[str, Any] = {
        "load_s": time.perf_counter() - started,
        "weights_mb": weight_bytes(model) / 2**20,
    }
    time_generate(model, tokenizer, 1, 2, device)  # warm-up
    row["ttft_ms"] = 1000 * statistics.median(
        time_generate(model, tokenizer, 1, 1, device) for _ in range(max(1, repeats))
    )
    for batch in batches:
        seconds = statistics.median(
            time_generate(model, tokenizer, batch, new_tokens, device)
            for _ in range(max(1, repeats))
        )
        # decode rate: the first token's time (prefill) is not decoding
        decode = max(seconds - row["ttft_ms"] / 1000, 1e-9) if new_tokens > 1 else seconds
        row[f"tokens_per_s_b{batch}"] = batch * max(new_tokens - 1, 1) / decode
    if device == "cuda":
        row["peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:
        row["peak_rss_growth_mb"] = max(0, _rss_bytes() - rss_before) / 2**20
    del model
    return row


def supported(precision: str, device: str) -> str | None:
    """Why a precision cannot run here (None when it can)."""
    import torch

    if precision == "bf16" and device == "cuda" and not torch.cuda.is_bf16_supported():
        return "this GPU has no bf16"
    if precision == "nf4":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            return "bitsandbytes is not installed"
    return None


def run(
    models: dict[str, Path],
    precisions: list[str],
    batches: list[int],
    new_tokens: int,
    repeats: int,
    threads: int | None,
) -> dict[str, Any]:
    import torch

    from reprolab.workloads.llm.loading import set_threads

    set_threads(threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = []
    for label, path in models.items():
        for precision in precisions:
            reason = supported(precision, device)
            entry = {"model": label, "path": str(path), "precision": precision}
            if reason:
                results.append({**entry, "skipped": reason})
                continue
            click.echo(f"{label} {precision} ...", err=True)
            results.append(
                {**entry, **bench_one(path, precision, device, batches, new_tokens, repeats)}
            )
    return {
        "device": device if device == "cpu" else f"cuda ({torch.cuda.get_device_name(0)})",
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "load_average": list(_loadavg()),
        "new_tokens": new_tokens,
        "batches": batches,
        "repeats": repeats,
        "torch": torch.__version__,
        "results": results,
    }


def _loadavg() -> tuple[float, ...]:
    try:
        import os

        return tuple(round(x, 2) for x in os.getloadavg())
    except OSError:
        return ()


def table(report: dict[str, Any]) -> str:
    batches = report["batches"]
    memory = "peak MB" if report["device"] != "cpu" else "+RSS MB"
    header = [
        "model",
        "precision",
        "load s",
        "TTFT ms",
        *[f"tok/s b{b}" for b in batches],
        "weights MB",
        memory,
    ]
    lines = [" | ".join(header), " | ".join("---" for _ in header)]
    for r in report["results"]:
        if "skipped" in r:
            lines.append(" | ".join([r["model"], r["precision"], f"skipped: {r['skipped']}"]))
            continue
        cells = [
            r["model"],
            r["precision"],
            f"{r['load_s']:.1f}",
            f"{r['ttft_ms']:.0f}",
            *[f"{r[f'tokens_per_s_b{b}']:.1f}" for b in batches],
            f"{r['weights_mb']:.0f}",
            f"{r.get('peak_mb', r.get('peak_rss_growth_mb', 0)):.0f}",
        ]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in report["results"] if "skipped" not in r]
    labels = [f"{r['model']}\n{r['precision']}" for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    width = 0.8 / max(1, len(report["batches"]))
    for i, batch in enumerate(report["batches"]):
        axes[0].bar(
            [x + i * width for x in range(len(rows))],
            [r[f"tokens_per_s_b{batch}"] for r in rows],
            width,
            label=f"batch {batch}",
        )
    axes[0].set_title("decode tokens/s")
    axes[0].legend()
    axes[1].bar(range(len(rows)), [r["ttft_ms"] for r in rows])
    axes[1].set_title("time to first token (ms)")
    axes[2].bar(range(len(rows)), [r["weights_mb"] for r in rows])
    axes[2].set_title("weights (MB)")
    centre = width * (len(report["batches"]) - 1) / 2  # under each group of batch bars
    axes[0].set_xticks([x + centre for x in range(len(rows))], labels, fontsize=7)
    for ax in axes[1:]:
        ax.set_xticks(range(len(rows)), labels, fontsize=7)
    fig.suptitle(
        f"{report['device']}, {report['threads']} threads, {report['new_tokens']} new tokens, "
        f"load {report['load_average']}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def default_models() -> dict[str, Path]:
    """Base and merged LoRA from the pipeline's params.yaml (the first lora finetune entry)."""
    from reprolab.core.layout import model_dir
    from reprolab.params import load_params

    params = load_params()
    for name, spec in params.finetune.items():
        if spec.kind == "lora":
            return {spec.base: model_dir(spec.base), name: model_dir(name)}
    raise click.UsageError("no lora entry in params.yaml's finetune section; pass --model")


@click.command()
@click.option(
    "--model",
    "model_paths",
    multiple=True,
    help="LABEL=DIR (repeatable); default: base and merged LoRA of params.yaml.",
)
@click.option(
    "--precision",
    "precisions",
    multiple=True,
    type=click.Choice(PRECISIONS),
    help="Default: all three.",
)
@click.option("--batch", "batches", multiple=True, type=int, help="Default: 1, 4, 8.")
@click.option("--new-tokens", default=8, show_default=True, help="Tokens generated per row.")
@click.option("--repeats", default=1, show_default=True, help="Timed runs per cell (median).")
@click.option("--threads", type=int, default=None, help="torch threads (default: cores up to 4).")
@click.option("--out", default="reports/bench", show_default=True, type=click.Path(file_okay=False))
def main(model_paths, precisions, batches, new_tokens, repeats, threads, out) -> None:
    """Benchmark generation latency, throughput and memory; write OUT/llm.json and llm.png."""
    from reprolab.cli_support import user_errors
    from reprolab.core.io import atomic_write_json

    with user_errors():
        if model_paths:
            models = {}
            for item in model_paths:
                label, _, path = item.rpartition("=")
                models[label or Path(path).name] = Path(path)
        else:
            models = default_models()
        missing = [str(p) for p in models.values() if not Path(p).is_dir()]
        if missing:
            raise click.UsageError(f"model directory not found: {missing} (run the pipeline first)")
        report = run(
            models,
            list(precisions or PRECISIONS),
            list(batches or (1, 4, 8)),
            new_tokens,
            repeats,
            threads,
        )
        out_dir = Path(out)
        atomic_write_json(out_dir / "llm.json", report)
        plot(report, out_dir / "llm.png")
        click.echo(table(report))
        click.echo(
            f"\n{report['device']}, {report['threads']} threads, load average "
            f"{report['load_average']} -> {out_dir / 'llm.json'}, {out_dir / 'llm.png'}"
        )


if __name__ == "__main__":
    main()
