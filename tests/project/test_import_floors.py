"""Imports point down the house: core < lm, params < workloads < pipeline, hpo, report < serve,
ops < cli, stages. Every import in src/ counts, function-level ones included (they hide an
arrow from a reader, not from this test). The few arrows still pointing up live in files
every training stage depends on, so removing them reruns the whole pipeline; they are named
here and wait for that move, and the list must shrink, never grow."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FLOOR = {
    "__init__": 0,
    "core": 0,
    "lm": 1,
    "llamacpp": 1,
    "params": 1,
    "workloads": 2,
    "pipeline": 3,
    "hpo": 3,
    "report": 3,
    "serve": 4,
    "ops": 4,
    "cli": 5,
    "cli_support": 5,
    "__main__": 5,
}
WAITING = {
    ("reprolab.params", "reprolab.workloads"),  # the schema assembled from the workloads
    ("reprolab.workloads.llm.bench", "reprolab.cli_support"),
    ("reprolab.workloads.sentiment.api", "reprolab.ops.sandbox"),
    ("reprolab.workloads.sentiment.api", "reprolab.pipeline.evaluate"),
    ("reprolab.workloads.sentiment.api", "reprolab.pipeline.train"),
}


def room(module: str) -> str:
    """`core` of reprolab.core.io; `__init__` of reprolab itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def arrows() -> set[tuple[str, str]]:
    """(importer, imported) for every reprolab import in src/reprolab."""
    found = set()
    for path in sorted((ROOT / "src" / "reprolab").rglob("*.py")):
        parts = path.relative_to(ROOT / "src").with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found |= {(module, name) for name in names if name.split(".")[0] == "reprolab"}
    return found


def test_every_package_has_a_floor():
    rooms = {room(m) for pair in arrows() for m in pair}
    assert rooms <= set(FLOOR), f"give these a floor: {sorted(rooms - set(FLOOR))}"


def test_imports_point_down_but_for_the_named_few():
    up = {(a, b) for a, b in arrows() if FLOOR[room(b)] > FLOOR[room(a)]}
    assert up <= WAITING, f"imports that point up: {sorted(up - WAITING)}"
    assert up >= WAITING, f"gone, take them off WAITING: {sorted(WAITING - up)}"
