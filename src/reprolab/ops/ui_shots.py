"""`make screenshots`: one picture per tab of a running service's web page, for docs/ui/ and
the README. Each tab is used first (a prediction, a chat answer, the experiments loaded), by
the same steps the browser tests check.

    python -m reprolab.ops.ui_shots --url http://127.0.0.1:8000 --out docs/ui
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from reprolab.ops import ui_driver

REVIEW = "간만에 참 유쾌하게 웃은듯..."  # an NSMC test review
QUESTION = "How do I reproduce a DVC pipeline?"
SETTLE_MS = 1500  # the page fades an output in after it arrives


def shoot(url: str, token: str, out: Path, name: str = "reviewer") -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    steps = {
        "wine": lambda p: ui_driver.try_wine(p),
        "sentiment": lambda p: ui_driver.try_sentiment(p, REVIEW),
        "nuclei": lambda p: ui_driver.try_nuclei(p),
        "pid-control": lambda p: ui_driver.try_pid(p),
        "chat": lambda p: ui_driver.chat(p, QUESTION, temperature=0),
        "registry": lambda p: _registry(p),
        "experiments": lambda p: ui_driver.experiments(p, all_commits=True, contains="rmse"),
    }
    saved = []
    with ui_driver.browser() as browser:
        page = browser.new_page(viewport=ui_driver.VIEWPORT)
        ui_driver.sign_in(page, url, name, token)
        for shot, step in steps.items():
            step(page)
            page.wait_for_timeout(SETTLE_MS)
            path = out / f"{shot}.png"
            page.screenshot(path=str(path), full_page=True)
            click.echo(f"{path}")
            saved.append(path)
    return saved


def _registry(page) -> None:
    ui_driver.open_tab(page, "Registry")
    page.locator("#registry-summary").get_by_text("Served now").wait_for()


@click.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True)
@click.option("--out", default="docs/ui", show_default=True, type=click.Path(file_okay=False))
def main(url: str, out: str) -> None:
    """Screenshots of every tab of the page at URL (token: REPROLAB_API_TOKEN)."""
    token = os.environ.get("REPROLAB_API_TOKEN", "")
    if not token:
        raise click.UsageError("REPROLAB_API_TOKEN: set it to the service's token")
    shoot(url.rstrip("/"), token, Path(out))


if __name__ == "__main__":
    main()
