"""`reprolab doctor`: one line per check, exit 1 only when a required check fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reprolab.ops import doctor

NAMES = [name for name, _, _ in doctor.checks(Path("."))]


def _doctor(cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "reprolab", "doctor"],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def _lines(stdout: str) -> dict[str, tuple[str, str]]:
    found = {}
    for line in stdout.splitlines():
        status, name, detail = line.split(maxsplit=2)
        found[name] = (status, detail)
    return found


def test_every_check_reported_and_exit_0_on_this_machine(tmp_path):
    from reprolab.core.tracking import client

    client()  # a real store: the check searches it
    (tmp_path / ".dvc").mkdir()
    (tmp_path / ".dvc" / "config").write_text(
        "[core]\n    remote = local\n['remote \"local\"']\n    url = ../remote\n"
    )
    (tmp_path / "remote").mkdir()
    done = _doctor(tmp_path, REPROLAB_DATA_MIRROR=str(tmp_path / "no-mirror"))
    assert done.returncode == 0, done.stdout + done.stderr
    found = _lines(done.stdout)
    assert list(found) == NAMES
    assert all(status in ("ok", "warn") for status, _ in found.values())
    assert found["python"][1].startswith(f"{sys.version_info[0]}.{sys.version_info[1]}.")
    import torch

    assert found["torch"] == ("ok", found["torch"][1])
    assert found["torch"][1].startswith(torch.__version__)
    assert ("CUDA" in found["torch"][1]) == bool(torch.version.cuda)
    assert found["mlflow-store"] == ("ok", f"{os.environ['MLFLOW_TRACKING_URI']} (1 experiment)")
    assert found["dvc-remote"] == ("ok", f"'local' {tmp_path / 'remote'} (local folder)")
    assert found["data-mirror"][0] == "warn" and "not a directory" in found["data-mirror"][1]
    assert found["disk"][0] in ("ok", "warn") and "GiB free" in found["disk"][1]
    if not torch.cuda.is_available():
        assert found["cuda"][0] == "warn"


def test_an_unreachable_mlflow_server_fails_the_run(tmp_path):
    done = _doctor(
        tmp_path,
        MLFLOW_TRACKING_URI="http://127.0.0.1:9",
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
        MLFLOW_HTTP_REQUEST_TIMEOUT="3",
    )
    assert done.returncode == 1
    status, detail = _lines(done.stdout)["mlflow-store"]
    assert (status, detail) == (
        "FAIL",
        "http://127.0.0.1:9: unreachable (is the server up? MLFLOW_TRACKING_URI)",
    )
    assert "Traceback" not in done.stderr


def test_only_a_required_failure_sets_the_exit_code(monkeypatch):
    def boom():
        raise RuntimeError("no driver\nmore")

    def run(checks):
        monkeypatch.setattr(doctor, "checks", lambda root: checks)
        lines: list[str] = []
        return doctor.run(Path("."), lines.append), lines

    code, lines = run([("a", False, boom), ("b", False, lambda: (doctor.FAIL, "gone"))])
    assert code == 0 and lines == ["warn  a             no driver", "warn  b             gone"]
    code, lines = run([("a", True, boom), ("b", True, lambda: (doctor.OK, "fine"))])
    assert code == 1 and lines == ["FAIL  a             no driver", "ok    b             fine"]


def test_disk_below_the_minimum_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(doctor, "MIN_FREE_GIB", 1e9)
    status, detail = doctor.disk(tmp_path)
    assert status == doctor.FAIL and detail.endswith("need at least 1000000000 GiB")


@pytest.mark.parametrize("configured", [False, True])
def test_dvc_remote_missing_is_a_warning(tmp_path, configured):
    (tmp_path / ".dvc").mkdir()
    config = "[core]\n    remote = local\n['remote \"local\"']\n    url = ../nowhere\n"
    (tmp_path / ".dvc" / "config").write_text(config if configured else "")
    status, detail = doctor.dvc_remote(tmp_path)
    assert status == doctor.WARN
    assert ("no such folder yet" if configured else "no default remote") in detail
