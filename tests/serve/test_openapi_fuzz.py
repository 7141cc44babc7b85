"""Schemathesis over the service's own OpenAPI schema, against the live server: whatever a
client sends that the schema allows or not, no answer is a 5xx and none breaks the schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.serve.conftest import start_server

pytestmark = pytest.mark.slow

CHECKS = "not_a_server_error,response_schema_conformance,status_code_conformance"


def test_no_5xx_and_no_schema_violation(served_store, params_file, tmp_path):
    st = Path(sys.executable).parent / "schemathesis"
    binary = str(st) if st.is_file() else shutil.which("schemathesis")
    assert binary, "schemathesis is a test dependency (pyproject [dev])"
    with start_server(
        served_store, params_file, "--max-tokens", "4", "--reload-interval", "0"
    ) as srv:
        result = subprocess.run(
            [
                binary,
                "run",
                f"{srv.url}/openapi.json",
                "--checks",
                CHECKS,
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
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"{report}\n--- server log ---\n{server_log}"
