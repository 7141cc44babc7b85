"""`dvc plots show` renders with no network: the page DVC writes through the repository's
template inlines Vega, Vega-Lite and Vega-Embed instead of loading them from a CDN."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from reprolab.ops import offline_plots

REPO = Path(__file__).resolve().parents[2]


def test_the_repository_config_names_the_template():
    config = (REPO / ".dvc/config").read_text()
    assert "html_template = plots/offline.html" in config
    assert Path(".dvc/plots/offline.html") == offline_plots.TEMPLATE


@pytest.fixture
def plotted(workspace) -> Path:
    """A DVC repository with one plot and the offline template; `dvc plots show` run."""
    subprocess.run(["dvc", "init", "-q"], cwd=workspace, check=True)
    subprocess.run(
        ["dvc", "config", "plots.html_template", "plots/offline.html"], cwd=workspace, check=True
    )
    offline_plots.write(workspace)
    (workspace / "curve.tsv").write_text("step\tloss\n0\t1.0\n1\t0.5\n2\t0.25\n")
    (workspace / "dvc.yaml").write_text("plots:\n  - curve.tsv:\n      x: step\n      y: loss\n")
    subprocess.run(["dvc", "plots", "show", "-o", "out"], cwd=workspace, check=True)
    return workspace / "out" / "index.html"


def test_plots_page_loads_nothing_from_the_network(plotted):
    html = plotted.read_text()
    assert not re.search(r"<script[^>]+src=", html)  # every script is inline
    assert "window.vegaEmbed=" in html  # the bundle defines what DVC's plot divs call
    assert '<div id = "curve_tsv"' in html and "vegaEmbed('#curve_tsv'" in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium not installed")
def test_plots_page_draws_in_a_browser_without_network(plotted, tmp_path):
    """Chromium with networking off draws the chart (an <svg> or <canvas> in the plot div)."""
    done = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--proxy-server=127.0.0.1:9",  # nothing reachable: any fetch would fail
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            plotted.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"<(svg|canvas)[^>]*class=\"marks\"", done.stdout), done.stdout[-2000:]
