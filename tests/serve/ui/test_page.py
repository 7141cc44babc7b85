"""The web page in a real browser (Debian's Chromium driven by Playwright) against a live
`reprolab serve`: sign-in, every task's tab, a streamed chat, a promote and a rollback, the
experiments, and errors shown as one-line messages."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect

from reprolab.ops import ui_driver
from tests.serve.ui.conftest import TOKEN, USER


def test_a_wrong_token_is_refused_and_nothing_is_reachable_without_signing_in(page, ui_server):
    shown = ui_driver.login_error(page, ui_server.url, USER, "not-the-token")
    assert "Incorrect Credentials" in shown and "Signed in as" not in shown
    assert httpx.get(f"{ui_server.url}/ui/config").status_code == 401
    joined = httpx.post(f"{ui_server.url}/ui/gradio_api/queue/join", json={"fn_index": 0})
    assert joined.status_code in (401, 403)


def test_every_task_answers_in_its_tab(signed_in, ui_server):
    grade = ui_driver.try_wine(signed_in)
    assert 0 < grade < 12
    assert "v1" in ui_driver.served_line(signed_in, "wine-quality")
    label = ui_driver.try_sentiment(signed_in, "간만에 참 유쾌하게 웃은듯...")
    assert label.split()[0] in ("positive", "negative") and "confidence" in label
    assert signed_in.locator("#nsmc-sentiment-probs").get_by_text("%").first.is_visible()
    nuclei = ui_driver.try_nuclei(signed_in)  # the example image from data/raw/nuclei
    assert nuclei.split()[1] == "nuclei" and "64x64 pixels" in nuclei
    table = ui_driver.try_pid(signed_in)
    assert "PIDNet (served)" in table and "Ziegler–Nichols" in table


def test_an_uploaded_image_is_segmented(signed_in, ui_server, tmp_path):
    from tests.serve.ui.conftest import _png_cells

    image = tmp_path / "upload.png"
    image.write_bytes(_png_cells())
    assert "64x64 pixels" in ui_driver.try_nuclei(signed_in, image)


def test_a_chat_reply_streams_token_by_token(signed_in):
    # greedy: the tiny model then never picks its end token, and answers all max tokens
    text, lengths = ui_driver.chat(signed_in, "the quick", model="minit", temperature=0)
    assert text.strip()
    growing = {n for n in lengths if 0 < n < len(text)}
    assert len(growing) >= 3, f"the answer arrived in one piece: lengths {lengths}"


def test_two_people_chat_at_the_same_time(chromium_browser, ui_server):
    """Two browsers send a chat before either is answered: each gets its own streamed answer
    (with Gradio's default of one event at a time, the second would wait for the first)."""
    contexts, pages = [], []
    for name in ("ann", "bob"):
        context = chromium_browser.new_context(viewport=ui_driver.VIEWPORT)
        page = context.new_page()
        page.set_default_timeout(ui_driver.TIMEOUT_MS)
        ui_driver.sign_in(page, ui_server.url, name, TOKEN)
        ui_driver.open_tab(page, "Chat")
        page.locator("#chat-input textarea").fill(f"hello from {name}")
        contexts.append(context)
        pages.append(page)
    try:
        for page in pages:
            page.locator("#chat-input textarea").press("Enter")
        for page in pages:
            page.locator("#chat-status").get_by_text("answered in").wait_for()
            assert page.locator("#chat-box .message.bot").last.inner_text().strip()
            assert "hello from" in page.locator("#chat-box .message.user").last.inner_text()
    finally:
        for context in contexts:
            context.close()


def test_promote_and_rollback_move_the_alias_and_the_served_model(signed_in, served_store):
    v2 = served_store.wine_v2
    outcome = ui_driver.registry_move(
        signed_in, "wine-quality", "promote", "checked by hand", version=v2, force=True
    )
    assert f"v{v2}: promoted to champion" in outcome and f"served now: v{v2}" in outcome
    wait = {"timeout": ui_driver.TIMEOUT_MS}
    expect(signed_in.locator("#registry-versions")).to_contain_text("champion", **wait)
    expect(signed_in.locator("#registry-history")).to_contain_text(f"{USER} (web page)", **wait)
    expect(signed_in.locator("#registry-reason textarea")).to_have_value("", **wait)
    assert f"v{v2}" in ui_driver.served_line_after(signed_in, "wine-quality", v2)

    # the fixture's v1 was never scored, so the gate refuses it: only a forced rollback restores it
    back = ui_driver.registry_move(signed_in, "wine-quality", "rollback", "regression", force=True)
    assert "served now: v1" in back
    assert "v1" in ui_driver.served_line_after(signed_in, "wine-quality", "1")


def test_the_experiments_table_and_plot(signed_in):
    table = ui_driver.experiments(signed_in)
    assert "seed-1" in table and "seed-3" in table and "score" in table
    signed_in.locator("#exp-plot img, #exp-plot canvas").first.wait_for()


@pytest.mark.parametrize(
    ("tab", "act", "words"),
    [
        ("Sentiment", lambda p: p.click("#nsmc-sentiment-go"), "review: type a review first"),
        ("Wine quality", lambda p: _bad_ph(p), "pH"),
        ("Nuclei", lambda p: p.click("#nuclei-segmentation-go"), "image: upload an image"),
    ],
)
def test_errors_show_as_one_line_messages(signed_in, tab, act, words):
    ui_driver.open_tab(signed_in, tab)
    act(signed_in)
    message = ui_driver.error_toast(signed_in)
    assert words in message and "Traceback" not in message


def _bad_ph(page) -> None:
    page.locator("#wine-quality-pH input").fill("20")
    page.click("#wine-quality-go")


def test_the_token_signs_in_only_with_a_name(page, ui_server):
    answer = httpx.post(f"{ui_server.url}/ui/login", data={"username": " ", "password": TOKEN})
    assert answer.status_code == 400
