"""The tables the benchmark prints, and the machine it ran on."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from reprolab.ops.bench_serve.inputs import GOAL


def _cell(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned table: the first column left-aligned, the numbers right-aligned."""
    cells = [list(header), *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        first = row[0].ljust(widths[0])
        rest = [v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True)]
        lines.append("  ".join([first, *rest]).rstrip())
    return "\n".join(lines)


def _errors(run: dict[str, Any]) -> list[str]:
    if not run["errors"]:
        return []
    return [f"  {run['connections']} conn: {run['errors']} errors, first: {run['first_error']}"]


def wine_text(report: dict[str, Any]) -> str:
    if "skipped" in report:
        return f"wine: skipped ({report['skipped']})"
    header = ["wine-quality v" + report["version"], "conns", "req/s", "p50 ms", "p99 ms", "errors"]
    rows, notes = [], []
    for server in report["servers"]:
        for run in server["runs"]:
            rows.append(
                [
                    server["server"],
                    run["connections"],
                    run["req_per_s"],
                    run["p50_ms"],
                    run["p99_ms"],
                    run["errors"],
                ]
            )
            notes += _errors(run)
    predictions = {f"{s['prediction']:.4f}" for s in report["servers"]}
    lines = [render(header, rows), *notes]
    lines.append(f"prediction for the row: {', '.join(sorted(predictions))}")
    lines += comparison_text(report["comparison"])
    return "\n".join(lines)


def comparison_text(comparison: dict[str, Any] | None) -> list[str]:
    if comparison is None:
        return ["no comparison: mlflow models serve was skipped"]
    lines = [f"ours/mlflow at {comparison['connections']} connections (goal: {GOAL}):"]
    width = max(len(label) for label in comparison["settings"])
    for label, found in comparison["settings"].items():
        verdict = "goal holds" if found["goal"] else "goal does not hold"
        lines.append(
            f"  {label:<{width}}  req/s x{_cell(found['req_per_s_ratio'], 2)}  "
            f"p99 x{_cell(found['p99_ratio'], 2)}  {verdict}"
        )
    return lines


def nsmc_text(report: dict[str, Any]) -> str:
    if "skipped" in report:
        return f"nsmc: skipped ({report['skipped']})"
    header = [
        f"nsmc-sentiment v{report['version']}",
        "conns",
        "req/s",
        "texts/s",
        "p50 ms",
        "p99 ms",
        "errors",
    ]
    rows = [
        [
            "reprolab serve",
            r["connections"],
            r["req_per_s"],
            r["items_per_s"],
            r["p50_ms"],
            r["p99_ms"],
            r["errors"],
        ]
        for r in report["runs"]
    ]
    notes = [line for r in report["runs"] for line in _errors(r)]
    return "\n".join([render(header, rows), *notes])


def llm_text(report: dict[str, Any]) -> str:
    if "skipped" in report:
        return f"llm: skipped ({report['skipped']})"
    header = [
        f"{report['model']} (max {report['max_tokens']} tokens)",
        "streams",
        "TTFT p50 ms",
        "TTFT p99 ms",
        "tok/req",
        "tok/s/stream",
        "tok/s total",
        "errors",
    ]
    rows = [
        [
            "reprolab serve",
            r["connections"],
            r["ttft_p50_ms"],
            r["ttft_p99_ms"],
            r["tokens_per_request"],
            r["tokens_per_s_stream"],
            r["tokens_per_s_total"],
            r["errors"],
        ]
        for r in report["runs"]
    ]
    notes = [line for r in report["runs"] for line in _errors(r)]
    return "\n".join([render(header, rows), *notes])


def machine() -> dict[str, Any]:
    """What the numbers depend on besides the servers: cores and how busy they were."""
    try:
        load_average = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load_average = []
    return {"cpus": os.cpu_count(), "load_average": load_average, "python": sys.version.split()[0]}
