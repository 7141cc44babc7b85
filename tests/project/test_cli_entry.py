"""`reprolab --version`, `python -m reprolab` (the same CLI) and the MIT licence."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from reprolab import __version__

REPO = Path(__file__).resolve().parents[2]


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=True)


def test_version_from_the_script_and_python_m():
    script = Path(sys.executable).parent / "reprolab"
    for command in ([str(script)], [sys.executable, "-m", "reprolab"]):
        assert _run(*command, "--version").stdout == f"reprolab, version {__version__}\n"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["version"] == __version__


def test_python_m_is_the_same_cli():
    from reprolab.cli import main

    shown = _run(sys.executable, "-m", "reprolab", "--help").stdout
    assert shown.startswith("Usage: reprolab [OPTIONS] COMMAND")
    for command in main.commands:
        assert f"\n  {command} " in shown, command
    assert "doctor" in main.commands


def test_mit_licence_matches_pyproject():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Copyright (c) " in text
    assert "the reprolab authors" in text
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"] == "MIT"
