"""The DVC remote on S3, over the real S3 protocol against moto's server on 127.0.0.1:
`make remote-s3` keeps secrets out of committed files, `make push/pull` round-trips the
pipeline's outputs, a fresh clone pulls and `dvc repro` reruns nothing, faults give one
clear line naming the remote, and an interrupted push is completed by pushing again."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from reprolab.ops import devservers, sandbox
from tests.conftest import only_register_ran, up_to_date

REPO = Path(__file__).resolve().parents[2]
KEY_ID, SECRET = "AKIAREPROLABTEST0001", "reprolab-test-secret-0123456789abcdef"
# one cheap model keeps the pipeline run to seconds; the rest of the DAG is unchanged
OVERRIDES = {"datasets.wine.sample_fraction": 0.25}


def _mirror() -> Path:
    from tests.conftest import _mirror as find

    found = find()
    if found is None:
        pytest.skip("no dataset mirror: set REPROLAB_DATA_MIRROR (CI uses ../shared/datasets)")
    return found


def _env(root: Path, endpoint: str | None = None) -> dict[str, str]:
    env = sandbox.env_for(root)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        REPROLAB_DATA_MIRROR=str(_mirror()),
        MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}",
    )
    env.pop("REPROLAB_MLFLOW_ARTIFACTS", None)
    return env


def sh(root: Path, *cmd: str, check: bool = True, env: dict | None = None):
    done = subprocess.run(
        cmd, cwd=root, env=env or _env(root), capture_output=True, text=True, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def _bucket(endpoint: str, name: str) -> None:
    import boto3

    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    ).create_bucket(Bucket=name)


def _count(endpoint: str, bucket: str) -> int:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sum(page.get("KeyCount", 0) for page in pages)


def _md5s(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.md5(p.read_bytes()).hexdigest()
        for top in ("data", "models")
        for p in sorted((root / top).rglob("*"))
        if p.is_file() and p.name != ".gitignore"
    }


def _make_repo(dest: Path) -> Path:
    return sandbox.create(dest, OVERRIDES, source=REPO, models=["wine-ridge"])


@pytest.fixture(scope="module")
def s3():
    with devservers.moto_s3() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, s3) -> Path:
    """A repository whose pipeline ran once, outputs committed, remote on S3 committed."""
    root = _make_repo(tmp_path_factory.mktemp("s3") / "repo")
    sh(root, "dvc", "repro")
    _bucket(s3, "team")
    sh(root, "make", "-s", "remote-s3", "BUCKET=team", f"ENDPOINT={s3}")
    sh(root, "git", "add", "-A")
    sh(root, "git", "commit", "-qm", "pipeline outputs and the S3 remote")
    return root


def test_remote_s3_writes_secrets_only_to_config_local(tmp_path):
    root = sandbox.create(tmp_path / "repo", source=REPO)
    env = {**_env(root), "REPROLAB_S3_SECRET_ACCESS_KEY": SECRET}  # never on a command line
    args = ("make", "-s", "remote-s3", "BUCKET=team", "ENDPOINT=http://127.0.0.1:9")
    done = sh(root, *args, f"ACCESS_KEY_ID={KEY_ID}", "PROFILE=team", env=env)
    assert SECRET not in done.stdout + done.stderr  # make does not echo it either
    shared = (root / ".dvc" / "config").read_text()
    local_file = root / ".dvc" / "config.local"
    local = local_file.read_text()
    assert "s3://team/dvc" in shared and "endpointurl = http://127.0.0.1:9" in shared
    assert "remote = s3" in shared
    for secret in (KEY_ID, SECRET, "profile"):
        assert secret not in shared
        assert secret in local
    assert local_file.stat().st_mode & 0o777 == 0o600  # readable by its owner only
    assert sh(root, "git", "check-ignore", ".dvc/config.local").returncode == 0
    assert sh(root, "dvc", "remote", "default").stdout.strip() == "s3"
    # a secret on the make command line (ps, shell history) is refused, nothing written
    bad = sh(root, *args[:3], "BUCKET=other", f"SECRET_ACCESS_KEY={SECRET}", check=False)
    assert bad.returncode == 2 and "shows in ps and shell history" in bad.stderr
    # half a key pair (no secret in the environment, no terminal to ask) is refused
    bare = {k: v for k, v in _env(root).items() if "SECRET" not in k}
    bad = sh(root, *args[:3], "BUCKET=other", "ACCESS_KEY_ID=x", check=False, env=bare)
    assert bad.returncode != 0 and "REPROLAB_S3_SECRET_ACCESS_KEY" in bad.stderr
    assert "other" not in (root / ".dvc" / "config").read_text()


def _probe(root: Path, endpoint: str, bucket: str, **env: str):
    sh(root, "make", "-s", "remote-s3", f"BUCKET={bucket}", f"ENDPOINT={endpoint}")
    started = time.monotonic()
    done = sh(root, "make", "-s", "push", check=False, env={**_env(root), **env})
    return done, time.monotonic() - started


def test_faults_give_one_line_naming_the_remote(tmp_path, s3):
    root = sandbox.create(tmp_path / "repo", source=REPO)
    dead = f"http://127.0.0.1:{devservers.free_port()}"
    cases = [
        (s3, "no-such-bucket", "bucket 'no-such-bucket' does not exist"),
        (dead, "team", "endpoint unreachable"),
    ]
    with devservers.moto_s3(auth=True) as strict:
        cases.append((strict, "team", "credentials rejected (InvalidAccessKeyId)"))
        for endpoint, bucket, reason in cases:
            done, seconds = _probe(root, endpoint, bucket)
            errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
            assert done.returncode != 0, done.stdout
            assert len(errors) == 1, done.stderr
            assert errors[0].startswith(f"error: remote 's3' (s3://{bucket}/dvc at {endpoint}): ")
            assert reason in errors[0]
            assert "Traceback" not in done.stderr
            assert seconds < 20


@pytest.mark.slow
def test_push_delete_pull_round_trip(pipeline, s3):
    root = pipeline
    before = _md5s(root)
    assert any(k.startswith("models/wine-ridge/") for k in before)
    pushed = sh(root, "make", "-s", "push")
    assert "reachable, bucket exists, credentials accepted" in pushed.stdout
    assert _count(s3, "team") > 0
    shutil.rmtree(root / ".dvc" / "cache")
    for out in ("data/raw", "data/processed", "models/wine-ridge", "reports/predictions"):
        shutil.rmtree(root / out, ignore_errors=True)
    assert not _md5s(root)
    sh(root, "make", "-s", "pull")
    assert _md5s(root) == before
    assert up_to_date(sh(root, "dvc", "status").stdout)


@pytest.mark.slow
def test_fresh_clone_pulls_and_reproduces_nothing(pipeline, s3, tmp_path):
    sh(pipeline, "make", "-s", "push")
    clone = tmp_path / "clone"
    sh(tmp_path, "git", "clone", "-q", str(pipeline), str(clone))
    assert not (clone / ".dvc" / "config.local").exists()  # credentials come from the env
    sh(clone, "dvc", "pull")
    assert _md5s(clone) == _md5s(pipeline)
    repro = sh(clone, "dvc", "repro")
    assert only_register_ran(repro.stdout), repro.stdout
    assert "didn't change, skipping" in repro.stdout
    assert up_to_date(sh(clone, "dvc", "status").stdout)


@contextlib.contextmanager
def _slow_proxy(endpoint: str, delay: float):
    """A TCP proxy that holds every request `delay` seconds: a push takes long enough to be
    interrupted half way, deterministically."""
    target = int(endpoint.rsplit(":", 1)[1])
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def pipe(src: socket.socket, dst: socket.socket, slow: bool) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if slow:
                    time.sleep(delay)
                dst.sendall(data)
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                upstream = socket.create_connection(("127.0.0.1", target))
                threading.Thread(target=pipe, args=(client, upstream, True), daemon=True).start()
                threading.Thread(target=pipe, args=(upstream, client, False), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        listener.close()


@pytest.mark.slow
def test_interrupted_push_completes_on_rerun(pipeline, s3):
    root = pipeline
    _bucket(s3, "half")
    with _slow_proxy(s3, delay=0.1) as slow:
        sh(root, "make", "-s", "remote-s3", "BUCKET=half", f"ENDPOINT={slow}", "REMOTE=half")
        _interrupted_push(root, s3)


def _interrupted_push(root: Path, s3: str) -> None:
    cache_before = sorted(p.name for p in (root / ".dvc" / "cache").rglob("*") if p.is_file())
    push = subprocess.Popen(
        ["dvc", "push", "-r", "half", "-j", "1"],
        cwd=root,
        env=_env(root),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    devservers.wait_for(lambda: _count(s3, "half") >= 1, "first object", 60)
    os.killpg(push.pid, signal.SIGKILL)  # the push dies half way, no clean-up
    push.wait()
    partial = _count(s3, "half")
    sh(root, "make", "-s", "push", "REMOTE=half")
    total = _count(s3, "half")
    assert 0 < partial < total
    assert "in sync" in sh(root, "dvc", "status", "-c", "-r", "half").stdout
    cache_after = sorted(p.name for p in (root / ".dvc" / "cache").rglob("*") if p.is_file())
    assert cache_after == cache_before
