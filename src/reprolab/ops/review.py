"""`make review`: what changed against a baseline revision, for people reviewing experiments.
Experiments table, metrics and params diffs (DVC's own markdown) and every plot rendered to PNG
offline (vl-convert: `dvc plots show`'s HTML would load vega from a CDN), in
reports/review.md and a self-contained reports/review.html."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from reprolab.core.document import Document
from reprolab.core.errors import ReprolabError
from reprolab.core.io import atomic_dir, atomic_write_text

OUT = Path("reports")
_NOISE = r"(src|stages|data|models|reports)/[^:]*$|:(red|white)\.|_per_s$|fit_seconds$"


def _dvc(*args: str) -> str:
    done = subprocess.run(["dvc", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ReprolabError(f"dvc {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def review(rev: str, experiments: list[str]) -> Path:
    """Compare each of `experiments` (default: the workspace) against `rev`."""
    targets = experiments or ["workspace"]
    doc = Document(f"Review against `{rev}`")
    doc.heading("Experiments")
    # dependency hashes and per-group breakdowns would bury the comparison: keep what varies
    shown = _dvc("exp", "show", "--md", "--no-pager", "--only-changed", "--drop", _NOISE)
    doc.preformatted(_table_or(shown, "No experiments differ from the baseline."))
    for target in targets:
        pair = [rev] if target == "workspace" else [rev, target]
        doc.heading(f"`{target}` vs `{rev}`: metrics")
        doc.preformatted(_table_or(_dvc("metrics", "diff", *pair, "--md"), "No metric changed."))
        doc.heading(f"`{target}` vs `{rev}`: params")
        doc.preformatted(_table_or(_dvc("params", "diff", *pair, "--md"), "No param changed."))

    revisions = [rev] + [t for t in targets if t != "workspace"]
    plots = json.loads(_dvc("plots", "diff", *revisions, "--json")).get("data", {})
    with atomic_dir(OUT / "review") as staging:
        if plots:
            doc.heading(f"Plots: {', '.join(targets)} vs {rev}")
        for name, entries in plots.items():
            for i, entry in enumerate(entries):
                png = staging / f"{_slug(name)}-{i}.png"
                png.write_bytes(_render(entry["content"]))
                doc.figure(png, name)
        markdown = doc.to_markdown(base=OUT).replace(staging.name + "/", "review/")
        html = doc.to_html()
    atomic_write_text(OUT / "review.md", markdown)
    atomic_write_text(OUT / "review.html", html)
    return OUT / "review.md"


def _table_or(markdown: str, empty: str) -> str:
    """DVC prints a header-only table when nothing differs; say so in words instead."""
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    return markdown.strip() if len(rows) > 2 else empty


def _render(spec: dict) -> bytes:
    import vl_convert

    return vl_convert.vegalite_to_png(spec, scale=1.5)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
