"""Drive the service's web page in a real browser (Playwright on the system's Chromium): sign
in, use each tab, read what it shows. The browser tests and `make screenshots` share it, so
the pictures in docs/ui/ come from the same steps the tests check."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_ENV = "REPROLAB_CHROMIUM"  # a Chromium binary; default: `chromium` on PATH
TIMEOUT_MS = 60_000
EXP_SHOW_TIMEOUT_MS = 300_000  # `dvc exp show` over 20 commits: seconds, longer on a busy box
VIEWPORT = {"width": 1280, "height": 900}
# records the length of the chat's last answer each time the page changes it
WATCH_CHAT = """() => {
  window.__lengths = [];
  const box = document.querySelector('#chat-box');
  new MutationObserver(() => {
    const bots = box.querySelectorAll('.message.bot');
    const last = bots[bots.length - 1];
    if (last) window.__lengths.push(last.innerText.length);
  }).observe(box, {subtree: true, childList: true, characterData: true});
}"""


def chromium() -> str | None:
    """The Chromium to drive: $REPROLAB_CHROMIUM, else Debian's `chromium` on PATH."""
    return (
        os.environ.get(CHROMIUM_ENV) or shutil.which("chromium") or shutil.which("chromium-browser")
    )


@contextmanager
def browser(path: str | None = None) -> Iterator[Any]:
    """A headless Chromium (no sandbox when running as root, as in containers and CI)."""
    from playwright.sync_api import sync_playwright

    binary = path or chromium()
    if binary is None:
        raise RuntimeError(f"no Chromium found: install Debian's chromium, or set {CHROMIUM_ENV}")
    args = ["--no-sandbox"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=binary, args=args)
        try:
            yield launched
        finally:
            launched.close()


def sign_in(page: Any, url: str, name: str, token: str) -> None:
    """Open /ui and sign in; returns once the page greets `name`."""
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{url}/ui/")
    page.fill("input[type=text]", name)
    page.fill("input[type=password]", token)
    page.keyboard.press("Enter")
    page.locator("#signed-in").get_by_text(name).wait_for()


def login_error(page: Any, url: str, name: str, token: str) -> str:
    """Try to sign in with `token`; the page's text afterwards (the login form's message)."""
    page.goto(f"{url}/ui/")
    page.fill("input[type=text]", name)
    page.fill("input[type=password]", token)
    page.keyboard.press("Enter")
    page.get_by_text("Incorrect Credentials").wait_for()
    return page.inner_text("body")


def open_tab(page: Any, title: str) -> None:
    page.get_by_role("tab", name=title, exact=True).click()


def text_of(page: Any, elem_id: str) -> str:
    """The value of a Textbox or Number, or the text of anything else, by elem_id."""
    box = page.locator(f"#{elem_id}")
    field = box.locator("textarea, input")
    return field.first.input_value() if field.count() else box.inner_text()


def wait_value(page: Any, elem_id: str, contains: str = "") -> str:
    """Wait until the field `elem_id` holds a value (containing `contains`); the value."""
    field = page.locator(f"#{elem_id}").locator("textarea, input").first
    page.wait_for_function(
        "([el, text]) => el.value !== '' && el.value.includes(text)",
        arg=[field.element_handle(), contains],
    )
    return field.input_value()


def served_line(page: Any, task: str, version: str | None = None) -> str:
    """The tab's 'answers with vN' line, once it names `version` when given."""
    line = page.locator(f"#{task}-served")
    line.get_by_text("answers with" if version is None else f"v{version}").first.wait_for()
    return line.inner_text()


def served_line_after(page: Any, task: str, version: str) -> str:
    """Open the task's tab (by its workload's title) and wait for it to name `version`."""
    titles = {
        "wine-quality": "Wine quality",
        "nsmc-sentiment": "Sentiment",
        "nuclei-segmentation": "Nuclei",
        "pid-control": "PID control",
    }
    open_tab(page, titles[task])
    page.reload()
    page.locator("#signed-in").wait_for()
    open_tab(page, titles[task])
    return served_line(page, task, version)


def error_toast(page: Any) -> str:
    """The text of the error message the page shows."""
    toast = page.locator(".toast-body, [data-testid='toast-body']").first
    toast.wait_for()
    return toast.inner_text()


# ---------------------------------------------------------------- one step per tab


def try_wine(page: Any, task: str = "wine-quality", colour: str = "red") -> float:
    open_tab(page, "Wine quality")
    served_line(page, task)
    page.locator(f"#{task}-colour").get_by_text(colour, exact=True).click()
    page.click(f"#{task}-go")
    return float(wait_value(page, f"{task}-grade"))


def try_sentiment(page: Any, text: str, task: str = "nsmc-sentiment") -> str:
    open_tab(page, "Sentiment")
    served_line(page, task)
    page.locator(f"#{task}-text textarea").fill(text)
    page.click(f"#{task}-go")
    return wait_value(page, f"{task}-label", "confidence")


def try_nuclei(page: Any, image: Path | None = None, task: str = "nuclei-segmentation") -> str:
    """Upload `image` (or click the first example) and segment; the 'N nuclei' line."""
    open_tab(page, "Nuclei")
    served_line(page, task)
    if image is not None:
        page.locator(f"#{task}-image input[type=file]").set_input_files(str(image))
    else:
        page.locator(f"#tab-{task} .gallery-item").first.click()
    shown(page, f"#{task}-image img")
    page.click(f"#{task}-go")
    line = wait_value(page, f"{task}-count", "nuclei")
    shown(page, f"#{task}-overlay img")
    return line


def shown(page: Any, selector: str) -> None:
    """Wait until the image at `selector` has loaded (not a broken link)."""
    image = page.locator(selector).first
    image.wait_for()
    page.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=image.element_handle())


def try_pid(page: Any, task: str = "pid-control") -> str:
    """Tune the default plant; the table's text (PIDNet and Ziegler–Nichols rows)."""
    open_tab(page, "PID control")
    served_line(page, task)
    page.click(f"#{task}-go")
    table = page.locator(f"#{task}-table")
    table.get_by_text("Ziegler").first.wait_for()
    page.locator(f"#{task}-plot img, #{task}-plot canvas").first.wait_for()
    return table.inner_text()


def chat(
    page: Any, message: str, model: str | None = None, temperature: float | None = None
) -> tuple[str, list[int]]:
    """Send `message`; the streamed answer and the lengths it had as it arrived."""
    open_tab(page, "Chat")
    if model is not None:
        choose(page, "chat-model", model)
    if temperature is not None:
        number = page.locator("#chat-temperature input[type=number]")
        number.fill(str(temperature))
        number.press("Enter")
    bots = page.locator("#chat-box .message.bot")
    turn = bots.count() + 1
    page.evaluate(WATCH_CHAT)
    page.locator("#chat-input textarea").fill(message)
    page.keyboard.press("Enter")
    page.locator("#chat-status").get_by_text(f"answer {turn}: ").get_by_text(
        "answered in"
    ).wait_for()
    return bots.last.inner_text(), page.evaluate("() => window.__lengths")


def choose(page: Any, elem_id: str, value: str) -> None:
    """Pick `value` in a Dropdown."""
    field = page.locator(f"#{elem_id} input").first
    field.click()
    exact = re.compile(rf"^\W*{re.escape(value)}\s*$")  # the chosen one carries a check mark
    page.get_by_role("option").filter(has_text=exact).first.click()


def registry_move(
    page: Any, task: str, action: str, reason: str, version: str | None = None, force: bool = False
) -> str:
    """Promote `version` (or roll back, to `version` or the previous champion) after the
    page's confirmation, past the gate's refusal if `force`; the outcome the page reports."""
    open_tab(page, "Registry")
    choose(page, "registry-task", task)
    page.locator("#registry-summary").get_by_text(task).first.wait_for()
    if action == "promote":
        choose(page, "registry-version", version or "")
    elif version is not None:
        choose(page, "registry-to", version)
    if force:
        page.get_by_label("move it even where the gate refuses (recorded as forced)").check()
    page.locator("#registry-reason textarea").fill(reason)
    page.click("#registry-promote" if action == "promote" else "#registry-rollback")
    page.locator("#registry-question").get_by_text("The served model follows").wait_for()
    page.click("#registry-yes")
    outcome = page.locator("#registry-outcome")
    outcome.get_by_text("served now").wait_for()
    return outcome.inner_text()


def experiments(page: Any, all_commits: bool = False, contains: str = "") -> str:
    """Load the experiments table (of the last 20 commits), keep the columns containing
    `contains`; the table's text."""
    open_tab(page, "Experiments")
    if all_commits:
        page.locator("#exp-all input").check()
    page.click("#exp-load")
    if contains:
        page.locator("#exp-filter textarea, #exp-filter input").first.fill(contains)
    from playwright.sync_api import expect

    table = page.locator("#exp-table")
    expect(table).to_contain_text("workspace", timeout=EXP_SHOW_TIMEOUT_MS)
    return table.inner_text()
