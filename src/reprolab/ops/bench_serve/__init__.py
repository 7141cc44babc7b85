"""`make bench-serve`: `python -m reprolab.ops.bench_serve` load-tests `reprolab serve` against
`mlflow models serve` (see __main__). The parts: inputs (what is sent), load (the client and
its numbers), servers (started one at a time), parts (wine, NSMC, LLM), report (the tables)."""

from reprolab.ops.bench_serve.inputs import (
    MLFLOW,
    OURS,
    OURS_BATCHING,
    WINE_ROW,
)
from reprolab.ops.bench_serve.load import (
    measure,
    percentile,
    post_json,
    stream_completion,
    summarize,
    summarize_streams,
)
from reprolab.ops.bench_serve.parts import compare
from reprolab.ops.bench_serve.report import render
from reprolab.ops.bench_serve.servers import running

__all__ = [
    "MLFLOW",
    "OURS",
    "OURS_BATCHING",
    "WINE_ROW",
    "compare",
    "measure",
    "percentile",
    "post_json",
    "render",
    "running",
    "stream_completion",
    "summarize",
    "summarize_streams",
]
