"""`make bench`: python -m reprolab.ops.bench [NAME ...] [--rounds N] [--warmup N]"""

from __future__ import annotations

import importlib

import click

from reprolab.core.bench import measure, ratio

ENTRIES: dict[str, str] = {  # name -> "module:attribute" of an Entry, imported lazily
    "train-loop": "reprolab.core.train.bench:ENTRY",
    "unet-bf16": "reprolab.workloads.nuclei.bench:ENTRY",
    "mlp-loop": "reprolab.workloads.wine.bench:ENTRY",
    "encoder-loop": "reprolab.workloads.sentiment.bench:ENTRY",
}


@click.command()
@click.argument("names", nargs=-1)
@click.option("--rounds", default=8, show_default=True, help="Timed calls per variant.")
@click.option("--warmup", default=2, show_default=True, help="Untimed calls per variant first.")
def main(names: tuple[str, ...], rounds: int, warmup: int) -> None:
    """Run the benchmark entries (all by default) and print candidate/baseline ratios."""
    unknown = sorted(set(names) - set(ENTRIES))
    if unknown:
        raise click.UsageError(f"unknown entries {unknown}; known: {sorted(ENTRIES)}")
    for name in names or ENTRIES:
        module, attribute = ENTRIES[name].split(":")
        entry = getattr(importlib.import_module(module), attribute)
        seconds = measure(entry.setup(), rounds, warmup)
        click.echo(
            f"{entry.name}: baseline {seconds['baseline'] * 1000:.0f} ms/{entry.unit}, "
            f"candidate {seconds['candidate'] * 1000:.0f} ms/{entry.unit}, "
            f"speed-up x{ratio(seconds):.2f}  ({entry.claim})"
        )
        if entry.report is not None:
            click.echo(f"{entry.name}: {entry.report()}")


if __name__ == "__main__":
    main()
