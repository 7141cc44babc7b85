"""The web page's fixtures: a served store's server whose folder is a small DVC repository
with two experiments and a nuclei example image, and a signed-in page in Debian's Chromium.
A failed test leaves a screenshot in build/ui-failures/."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reprolab.ops import ui_driver
from tests.serve.conftest import REPO, start_server
from tests.tiny_models import png_bytes

FAILURES = REPO / "build" / "ui-failures"
TOKEN = "ui-test-token"
USER = "ann"
STAGE = """stages:
  score:
    cmd: python score.py
    params: [seed]
    metrics: [{metrics.json: {cache: false}}]
"""
SCORE = """import json, yaml
seed = yaml.safe_load(open("params.yaml"))["seed"]
json.dump({"score": 1 / (1 + seed)}, open("metrics.json", "w"))
"""


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


def dvc_repo_with_experiments(folder: Path) -> None:
    """`folder` (holding params.yaml) as a git + DVC repository with one stage that reads
    `seed`, committed, and two experiments that change it."""
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    dvc = [sys.executable, "-m", "dvc"]

    def run(*command: str) -> None:
        subprocess.run(command, cwd=folder, env=env, check=True, capture_output=True)

    (folder / "dvc.yaml").write_text(STAGE)
    (folder / "score.py").write_text(SCORE)
    (folder / ".gitignore").write_text("*.log\nmlflow.db\nmlartifacts/\n")
    run("git", "init", "-q")
    run(*dvc, "init", "-q")
    run(*dvc, "repro", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "score stage")
    for seed in (1, 3):
        run(*dvc, "exp", "run", "-q", "-S", f"seed={seed}", "--name", f"seed-{seed}")


@pytest.fixture(scope="module")
def ui_server(served_store, params_file_module):
    folder = params_file_module.parent
    images = folder / "data" / "raw" / "nuclei" / "images"
    images.mkdir(parents=True)
    (images / "cells.png").write_bytes(_png_cells())
    dvc_repo_with_experiments(folder)
    with start_server(
        served_store, params_file_module, "--reload-interval", "0.5", token=TOKEN
    ) as running:
        yield running


def _png_cells() -> bytes:
    import numpy as np

    rng = np.random.default_rng(1)
    rgb = (rng.random((64, 64, 3)) * 40).astype(np.uint8)
    rgb[8:20, 10:22] = 230
    rgb[36:50, 30:44] = 210
    return png_bytes(rgb)


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator:
    """Module-scoped: Playwright's sync API keeps an event loop running in this thread until
    it stops, and later tests call asyncio.run()."""
    if ui_driver.chromium() is None:
        pytest.skip(
            "no Chromium: install Debian's chromium package (.ci/run does) or set "
            f"{ui_driver.CHROMIUM_ENV}"
        )
    with ui_driver.browser() as launched:
        yield launched


@pytest.fixture
def page(chromium_browser, request) -> Iterator:
    """A fresh page (its own cookies); a screenshot in build/ui-failures/ when the test fails."""
    context = chromium_browser.new_context(viewport=ui_driver.VIEWPORT)
    opened = context.new_page()
    opened.set_default_timeout(ui_driver.TIMEOUT_MS)
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        FAILURES.mkdir(parents=True, exist_ok=True)
        opened.screenshot(path=str(FAILURES / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def signed_in(page, ui_server):
    ui_driver.sign_in(page, ui_server.url, USER, TOKEN)
    return page
