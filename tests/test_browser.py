"""What only a browser shows: a reply streaming in, a reload, sidebar clicks, Stop, escaped HTML.

Drives Debian's chromium through Playwright against `streamlit run app.py` on the real local engine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import chatgpt_export
from tests.conftest import IN_CI, PROJECT, chromium_path, read_document, stored_messages, wait_until
from utils.local_server import free_port

pytestmark = [pytest.mark.browser, pytest.mark.engine]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def chromium() -> str:
    """Debian's chromium: skipped without it on a developer machine, a failure in CI."""
    path = chromium_path()
    if path is None:
        message = "Debian's chromium is not installed (apt-get install chromium); browser tests need it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free port with its own data folder."""
    port = free_port()
    env = {
        **os.environ,
        "BNAGPT_DATA_DIR": str(tmp_path),
        "BNAGPT_MAX_TOKENS": "300",
        "BNAGPT_TEMPERATURE": "0",
    }
    log = (tmp_path / "streamlit.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "streamlit", "run", "app.py",
            "--server.headless", "true",
            "--server.port", str(port),
            "--server.address", "127.0.0.1",
            "--browser.gatherUsageStats", "false",
        ],
        cwd=PROJECT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/_stcore/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    assert wait_until(healthy, 60), (tmp_path / "streamlit.log").read_text(errors="replace")
    yield url
    server.terminate()
    server.wait(timeout=20)
    log.close()


@pytest.fixture
def page(chromium: str):
    """A fresh browser page."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        browser.close()


def send(page, text: str) -> None:
    box = page.get_by_placeholder("Message bnaGPT")
    box.wait_for(timeout=60_000)
    box.fill(text)
    box.press("Enter")


def assistant_text(page) -> str:
    bubbles = page.locator('[data-testid="stChatMessage"]')
    count = bubbles.count()
    return bubbles.nth(count - 1).inner_text() if count >= 2 else ""


def test_chat_streams_survives_reload_and_deletes(page, app_url, tmp_path):
    """Send, watch the reply grow, reload, reopen from the sidebar, move it to the trash."""
    page.goto(app_url)
    send(
        page,
        "Write a long story about a lighthouse keeper. <b>not bold</b> ![pixel](http://198.51.100.7/p.png)",
    )
    stop = page.locator('[data-testid="stChatMessage"] button', has_text="Stop")
    stop.wait_for(timeout=60_000)
    lengths = []
    while stop.count() and stop.is_visible():
        text = assistant_text(page).replace("Stop", "").strip()
        if text and (not lengths or len(text) != lengths[-1]):
            lengths.append(len(text))
        time.sleep(0.05)
    assert len(lengths) >= 3, f"the reply did not stream: saw lengths {lengths}"
    assert wait_until(lambda: len(stored_messages(tmp_path / "conversations.json")) == 2, 30)

    user_bubble = page.locator('[data-testid="stChatMessage"]').first
    assert "<b>not bold</b>" in user_bubble.inner_text()  # shown as text, not markup
    assert user_bubble.locator("b").count() == 0
    assert page.locator('[data-testid="stChatMessage"] img[src*="198.51.100.7"]').count() == 0
    reply = stored_messages(tmp_path / "conversations.json")[1][1]

    page.goto(app_url)  # a new tab: nothing open
    sidebar = page.locator('[data-testid="stSidebar"]')
    conversation_id = next(iter(read_document(tmp_path / "conversations.json")["conversations"]))
    sidebar.locator(f".st-key-open_{conversation_id} button").first.click()
    page.locator('[data-testid="stChatMessage"]').nth(1).wait_for(timeout=30_000)
    shown = page.locator('[data-testid="stChatMessage"]').nth(1).inner_text()
    words = [w for w in reply.split() if w.isalpha()]  # Markdown may restyle the rest
    assert words and words[0] in shown and words[-1] in shown

    page.reload()  # the address keeps the open conversation
    page.locator('[data-testid="stChatMessage"]').nth(1).wait_for(timeout=30_000)
    assert (
        "Write a long story about a lighthouse keeper"
        in page.locator('[data-testid="stChatMessage"]').first.inner_text()
    )

    sidebar.locator(f".st-key-delete_{conversation_id} button").first.click()  # to the trash
    page.get_by_text("How can I help you today?").wait_for(timeout=30_000)
    entry = read_document(tmp_path / "conversations.json")["conversations"][conversation_id]
    assert entry["trashed_at"]
    assert sidebar.locator(f".st-key-open_{conversation_id}").count() == 0
    assert wait_until(lambda: page.locator('[data-testid="stChatMessage"]').count() == 0, 10)


def test_stop_keeps_the_partial_reply(page, app_url, tmp_path):
    """Stop ends the reply; what arrived stays on screen and in the file, marked stopped."""
    page.goto(app_url)
    send(page, "Write a long essay about the history of bread.")
    stop = page.locator('[data-testid="stChatMessage"] button', has_text="Stop")
    stop.wait_for(timeout=60_000)
    assert wait_until(lambda: len(assistant_text(page).replace("Stop", "").strip()) > 20, 30)
    stop.click()
    page.get_by_text("Stopped").wait_for(timeout=30_000)
    data_file = tmp_path / "conversations.json"
    assert wait_until(lambda: len(stored_messages(data_file)) == 2, 10)
    role, text, status = stored_messages(data_file)[1]
    assert (role, status) == ("assistant", "stopped")
    assert (
        text.strip()
        and text.strip()[:20] in page.locator('[data-testid="stChatMessage"]').nth(1).inner_text()
    )


def test_import_a_chatgpt_export_and_download_everything(page, app_url, tmp_path):
    """Upload ChatGPT's export zip on the Library page, then download all chats as JSON."""
    archive = tmp_path / "chatgpt-export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("conversations.json", json.dumps(chatgpt_export.export()))
        z.writestr("chat.html", "<html></html>")
    page.goto(app_url)
    page.get_by_placeholder("Message bnaGPT").wait_for(timeout=60_000)  # the app is up
    page.locator('[data-testid="stSidebarNav"]').get_by_text("Library").click()
    page.get_by_text("File to import").wait_for(timeout=60_000)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(archive))
    import_button = page.get_by_role("button", name="Import", exact=True)
    import_button.wait_for(timeout=60_000)
    import_button.click()
    page.get_by_text("Imported 2 conversations from the ChatGPT export").wait_for(timeout=30_000)
    names = sorted(
        c["name"] for c in read_document(tmp_path / "conversations.json")["conversations"].values()
    )
    assert names == ["Porto trip", "Saudação"]

    page.get_by_role("button", name="Prepare the export of all chats").click()
    with page.expect_download(timeout=30_000) as download:
        page.get_by_role("button", name="Download JSON").click()
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert exported["format"] == "bnagpt-export"
    assert sorted(c["name"] for c in exported["conversations"]) == ["Porto trip", "Saudação"]
