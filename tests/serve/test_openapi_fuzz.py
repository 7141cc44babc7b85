"""Schemathesis over the service's own OpenAPI schema, against the live server, with every
check it has: no answer is a 5xx or breaks the schema, every request the schema forbids is
refused, and every request it allows is answered, except where JSON Schema cannot state
what the server checks (listed in SEMANTIC, with the 4xx the server answers instead)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serve.conftest import start_server

pytestmark = pytest.mark.slow

# operation -> (statuses a schema-valid request may also get, what the schema cannot state)
SEMANTIC = {
    "/v1/completions": ("400", "a prompt's length in the model's tokens, not characters"),
    "/v1/chat/completions": ("400", "the rendered conversation's length in tokens"),
    "/v1/tasks/llm-sft/predict": ("422", "a prompt's length in the model's tokens"),
    "/v1/tasks/nuclei-segmentation/predict": ("422", "whether the bytes are an image"),
    "/v1/tasks/nuclei-segmentation/predict/image": ("422", "whether the file is an image"),
    "/v1/tasks/{task}/invocations": ("400", "whether the table has the model's columns"),
}
INVOCATIONS = ["wine-quality", "nsmc-sentiment", "nuclei-segmentation", "pid-control"]


def config(path: Path) -> Path:
    """schemathesis.toml: the positive-data check accepts the one documented 4xx for each
    operation in SEMANTIC; everything else keeps the defaults."""
    lines = []
    for route, (status, why) in SEMANTIC.items():
        routes = [route.format(task=t) for t in INVOCATIONS] if "{task}" in route else [route]
        for one in routes:
            lines += [
                f"# {why}",
                "[[operations]]",
                f'include-path = "{one}"',
                "[operations.checks.positive_data_acceptance]",
                f'expected-statuses = ["2xx", "{status}", "401", "403", "404", "409", "429"]',
                "",
            ]
    path.write_text("\n".join(lines))
    return path


@pytest.mark.parametrize("backend", ["transformers", "llama.cpp"])
def test_every_check_holds_against_the_schema(served_store, params_file, tmp_path, backend):
    """On each LM backend: llama.cpp's schema types the parameters it implements."""
    st = Path(sys.executable).parent / "schemathesis"
    binary = str(st) if st.is_file() else shutil.which("schemathesis")
    assert binary, "schemathesis is a test dependency (pyproject [dev])"
    settings = config(tmp_path / "schemathesis.toml")
    with start_server(
        served_store,
        params_file,
        *("--max-tokens", "4", "--reload-interval", "0", "--lm-backend", backend),
    ) as srv:
        result = subprocess.run(
            [
                binary,
                "--config-file",
                str(settings),
                "run",
                f"{srv.url}/openapi.json",
                "--checks",
                "all",
                "--header",
                f"Authorization: Bearer {srv.token}",
                "--max-examples",
                "15",
                "--phases",
                "examples,coverage,fuzzing",
                "--generation-deterministic",
                "--request-timeout",
                "60",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            cwd=tmp_path,  # its example database, .schemathesis/, stays out of the repo
            timeout=900,
        )
        server_log = srv.log_tail(60)
    report = result.stdout[-8000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"{report}\n--- server log ---\n{server_log}"
