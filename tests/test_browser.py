"""What only a browser shows: a reply streaming in, a reload, sidebar clicks, Stop, escaped HTML.

Drives Debian's chromium through Playwright against `streamlit run app.py` on the real local engine.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from model.json_store import JsonConversationStore
from model.message import Message, Role
from tests import chatgpt_export
from tests.conftest import (
    CHROMIUM_ARGS,
    article,
    read_conversation,
    read_document,
    serve_app,
    stored_messages,
    wait_until,
)
from utils.markdown import WORD_JOINER

pytestmark = [pytest.mark.browser, pytest.mark.engine]


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    """`streamlit run app.py` on a free port with its own data folder."""
    with serve_app(tmp_path) as url:
        yield url


def send(page, text: str) -> None:
    box = page.get_by_placeholder("Message bnaGPT")
    expect(box).to_be_editable(timeout=60_000)
    box.fill(text)
    # The box sends nothing while an attached file is still uploading: Enter would be lost.
    expect(page.get_by_role("button", name="Send message")).to_be_enabled()
    box.press("Enter")


def attach(page, path: Path) -> None:
    """Put a file in the chat box and wait until the box lists it (then `send` waits for its upload)."""
    page.locator('[data-testid="stChatInput"] input[type="file"]').set_input_files(str(path))
    expect(page.get_by_role("button", name=f"Remove {path.name}")).to_be_visible()


def bubbles(page):
    return page.locator('[data-testid="stChatMessage"]')


# Notes, inside the page, every length the reply's text takes: no polling from the test while it streams.
_WATCH_LENGTHS = """() => {
  window.__lengths = [];
  new MutationObserver(() => {
    const all = document.querySelectorAll('[data-testid="stChatMessage"]');
    if (all.length < 2) return;
    const body = all[all.length - 1].querySelector('.st-key-reply_body [data-testid="stMarkdownContainer"]');
    const n = body ? body.innerText.trim().length : 0;
    if (n && window.__lengths[window.__lengths.length - 1] !== n) window.__lengths.push(n);
  }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def test_chat_streams_survives_reload_and_deletes(page, app_url, tmp_path):
    """Send, watch the reply grow, reload, reopen from the sidebar, move it to the trash."""
    page.goto(app_url)
    expect(page.get_by_placeholder("Message bnaGPT")).to_be_editable(timeout=60_000)
    page.evaluate(_WATCH_LENGTHS)
    send(
        page,
        "Write a long story about a lighthouse keeper. <b>not bold</b> ![pixel](http://198.51.100.7/p.png)",
    )
    stop = page.locator('[data-testid="stChatMessage"] button', has_text="Stop")
    expect(stop).to_be_visible(timeout=60_000)
    expect(stop).to_have_count(0, timeout=120_000)  # the reply has ended
    lengths = page.evaluate("() => window.__lengths")
    assert len(lengths) >= 3, f"the reply did not stream: saw lengths {lengths}"
    data_file = tmp_path / "conversations.json"
    assert wait_until(lambda: len(stored_messages(data_file)) == 2, 30)

    user_bubble = bubbles(page).first
    expect(user_bubble).to_contain_text("<b>not bold</b>")  # shown as text, not markup
    expect(user_bubble.locator("b")).to_have_count(0)
    expect(page.locator('[data-testid="stChatMessage"] img[src*="198.51.100.7"]')).to_have_count(0)
    reply = stored_messages(data_file)[1][1]
    words = [w for w in reply.split() if w.isalpha()]  # Markdown may restyle the rest
    assert words

    page.goto(app_url)  # a new tab: nothing open
    sidebar = page.locator('[data-testid="stSidebar"]')
    conversation_id = next(iter(read_document(data_file)["conversations"]))
    sidebar.locator(f".st-key-open_{conversation_id} button").first.click()
    expect(bubbles(page).nth(1)).to_contain_text(words[0], timeout=60_000)
    expect(bubbles(page).nth(1)).to_contain_text(words[-1])

    page.reload()  # the address keeps the open conversation
    expect(bubbles(page).first).to_contain_text(
        "Write a long story about a lighthouse keeper", timeout=60_000
    )
    expect(bubbles(page)).to_have_count(2)

    sidebar.locator(f".st-key-delete_{conversation_id} button").first.click()  # to the trash
    expect(page.get_by_text("How can I help you today?")).to_be_visible(timeout=60_000)
    # The row may stay on screen, greyed, while Streamlit finishes the rerun: wait for it to go.
    expect(sidebar.locator(f".st-key-open_{conversation_id}")).to_have_count(0, timeout=60_000)
    expect(bubbles(page)).to_have_count(0, timeout=60_000)
    assert read_document(data_file)["conversations"][conversation_id]["trashed_at"]


def test_stop_keeps_the_partial_reply(page, app_url, tmp_path):
    """Stop ends the reply; what arrived stays on screen and in the file, marked stopped."""
    page.goto(app_url)
    send(page, "Write a long essay about the history of bread.")
    stop = page.locator('[data-testid="stChatMessage"] button', has_text="Stop")
    expect(stop).to_be_visible(timeout=60_000)
    reply_body = page.locator('.st-key-reply_body [data-testid="stMarkdownContainer"]')
    expect(reply_body).to_have_text(re.compile(r"\w{3,}.*\w{3,}.*\w{3,}", re.DOTALL), timeout=90_000)
    stop.click()
    note = page.locator('[data-testid="stCaptionContainer"]', has_text="Stopped")
    expect(note).to_be_visible(timeout=60_000)
    # Drawn with Streamlit's icon font: Debian's Chromium has no glyph for "⏹".
    expect(note.get_by_role("img", name="stop_circle icon")).to_be_visible()
    expect(note).not_to_contain_text("⏹")
    data_file = tmp_path / "conversations.json"
    assert wait_until(lambda: len(stored_messages(data_file)) == 2, 10)
    role, text, status = stored_messages(data_file)[1]
    assert (role, status) == ("assistant", "stopped")
    assert text.strip()
    expect(bubbles(page).nth(1)).to_contain_text(text.strip()[:20])


def test_reload_while_the_first_reply_streams_keeps_the_chat(page, app_url, tmp_path):
    """The address names a new chat as soon as it is sent: a reload mid-reply reopens it, not a new chat."""
    page.goto(app_url)
    send(page, "Write a long essay about the history of cheese.")
    expect(page.locator('[data-testid="stChatMessage"] button', has_text="Stop")).to_be_visible(
        timeout=60_000
    )
    sidebar = page.locator('[data-testid="stSidebar"]')
    expect(sidebar.get_by_text("No saved conversations yet")).to_have_count(0)
    expect(sidebar.get_by_role("button", name="Write a long essay about the")).to_be_visible()
    expect(page.get_by_text("How can I help you today?")).to_have_count(0)  # no greyed welcome under it
    conversation_id = next(iter(read_document(tmp_path / "conversations.json")["conversations"]))
    assert f"c={conversation_id}" in page.url
    page.reload()
    expect(bubbles(page).first).to_contain_text("history of cheese", timeout=60_000)
    assert f"c={conversation_id}" in page.url


def test_a_reload_mid_reply_shows_the_reply_without_another_reload(page, app_url, tmp_path):
    """Three times: reload while the reply streams. The reloaded page shows the reply as it was saved and
    follows it until it ends, never the question alone with only Retry under it."""
    page.goto(app_url)
    for attempt in range(3):
        page.locator(".st-key-new_chat button").click()
        expect(page.get_by_text("How can I help you today?")).to_be_visible(timeout=60_000)
        send(page, f"Write a long essay about the history of cheese, part {attempt + 1}.")
        written = bubbles(page).nth(1).locator(".st-key-reply_body")
        expect(written).to_contain_text(re.compile(r"\w{3,}.*\w{3,}.*\w{3,}"), timeout=120_000)
        page.reload()
        expect(bubbles(page).first).to_contain_text(f"part {attempt + 1}", timeout=60_000)
        expect(bubbles(page).nth(1)).to_contain_text(re.compile(r"\w{3,}"), timeout=60_000)
        expect(page.get_by_text("The reply is still being written")).to_have_count(0, timeout=60_000)
        expect(bubbles(page)).to_have_count(2)


def test_nothing_is_fetched_from_outside_the_machine(page, app_url):
    """Every request the pages make goes to the app itself, the favicon included."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.goto(app_url)
    send(page, "Say hello.")
    expect(page.locator('[data-testid="stChatMessage"] button', has_text="Stop")).to_have_count(
        0, timeout=120_000
    )
    expect(bubbles(page)).to_have_count(2)
    for name in ("Assistants", "Library", "Settings", "Chat"):
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=name).click()
        expect(page.locator('[data-testid="stSidebarNav"] a[aria-current="page"]')).to_contain_text(
            name, timeout=60_000
        )
    expect(page.locator('link[rel*="icon"]')).not_to_have_count(0)
    icons = page.eval_on_selector_all('link[rel*="icon"]', "links => links.map(l => l.href)")
    outside = [u for u in seen + icons if not u.startswith((app_url, "data:", "blob:"))]
    assert not outside, outside


def test_names_and_user_messages_show_as_typed(page, app_url, tmp_path):
    """Dashes, icon codes and Markdown in a name or a user message are shown exactly as typed."""
    store = JsonConversationStore(tmp_path / "conversations.json")
    typed = "a -- b :material/home: x **not bold** :smile: $x$"
    chat = store.create(typed, [Message(Role.USER, typed)])
    page.goto(f"{app_url}/?c={chat.id}")
    sidebar = page.locator('[data-testid="stSidebar"]')
    row = sidebar.locator(f".st-key-open_{chat.id} button").first
    expect(row).to_be_visible(timeout=60_000)
    # Invisible word joiners keep "--" from becoming a dash: what the user sees is what they typed.
    assert wait_until(lambda: row.inner_text().replace(WORD_JOINER, "") == typed, 10), row.inner_text()
    expect(row.locator('[data-testid="stIconMaterial"]')).to_have_count(0)
    expect(bubbles(page).first.locator('[data-testid="stText"]')).to_have_text(typed)


def test_a_stored_reply_makes_the_browser_fetch_nothing_from_elsewhere(page, app_url, tmp_path):
    """A reply (stored: it is opened again and again) holding images in every form of the Markdown corpus,
    and a name with icon codes and addresses: no request reaches another server, nothing in the name
    becomes an icon or a link, and the page carries its Content-Security-Policy."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tests.test_markdown import WRAPPERS

    hits: list[str] = []

    class Pixel(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.end_headers()
            self.wfile.write(base64.b64decode(_PIXEL))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pixel)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    pixel = f"http://127.0.0.1:{server.server_address[1]}"
    forms = [w.format(p=f"![seen]({pixel}/{n}.png)") for n, w in enumerate(WRAPPERS)]
    reply = "\n\n".join(forms) + f"\n\nand raw: <img src='{pixel}/raw.png'>"
    name = "Plan :material_home: :material/home: see https://example.com or www.example.com"
    store = JsonConversationStore(tmp_path / "conversations.json")
    chat = store.create(name, [Message(Role.USER, "Show me."), Message(Role.ASSISTANT, reply)])
    try:
        page.goto(f"{app_url}/?c={chat.id}")
        expect(bubbles(page).nth(1)).to_contain_text("and raw", timeout=60_000)
        row = page.locator(f'[data-testid="stSidebar"] .st-key-open_{chat.id} button').first
        expect(row).to_be_visible()
        page.wait_for_timeout(2_000)  # any image the page would load has been asked for by now
        assert hits == []
        policy = page.locator('meta[http-equiv="Content-Security-Policy"]')
        expect(policy).to_have_count(1)
        assert "img-src 'self'" in policy.get_attribute("content")
        expect(row.locator('[data-testid="stIconMaterial"]')).to_have_count(0)
        expect(row.locator("a")).to_have_count(0)
        assert row.inner_text().replace(WORD_JOINER, "") == name
    finally:
        server.shutdown()
        server.server_close()


_PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="


def test_the_chat_address_opens_the_chat(page, app_url, tmp_path):
    """/chat, typed or bookmarked, with or without a chat named in it, opens the chat: no "Page not found".

    (The very first tab after the server starts is left out: until st.navigation has run once, Streamlit
    reads the `pages/` folder the old way and says "Page not found" for any address but the root.)"""
    store = JsonConversationStore(tmp_path / "conversations.json")
    chat = store.create("Bookmarked", [Message(Role.USER, "kept question"), Message(Role.ASSISTANT, "kept")])
    page.goto(app_url)
    expect(page.get_by_placeholder("Message bnaGPT")).to_be_visible(timeout=60_000)
    for address in (f"{app_url}/chat", f"{app_url}/chat?c={chat.id}"):
        page.goto(address)
        expect(page.get_by_placeholder("Message bnaGPT")).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Page not found")).to_have_count(0)
    expect(bubbles(page).first).to_contain_text("kept question")
    assert f"c={chat.id}" in page.url


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
    page.get_by_text("Imported 2 conversations from the ChatGPT export").wait_for(timeout=60_000)
    names = sorted(
        c["name"] for c in read_document(tmp_path / "conversations.json")["conversations"].values()
    )
    assert names == ["Porto trip", "Saudação"]

    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="Download JSON").click()
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    # Handed over through the page, never as a /media/ address anyone with the link could fetch.
    assert not [url for url in asked if "/media/" in url]
    assert exported["format"] == "bnagpt-export"
    assert sorted(c["name"] for c in exported["conversations"]) == ["Porto trip", "Saudação"]


def test_a_file_attached_in_the_chat_box_is_cited_by_page_and_kept(page, app_url, tmp_path):
    """Attach a PDF with the question, get the planted page as a source, open it, reload: all still there."""
    from tests import make_files
    from tests.test_documents import pages_with

    pdf = tmp_path / "keeper.pdf"
    pdf.write_bytes(make_files.pdf(pages_with("The lighthouse keeper's cat is named Bartolomeu.", 4, 6)))
    page.goto(app_url)
    box = page.get_by_placeholder("Message bnaGPT")
    expect(box).to_be_editable()
    attach(page, pdf)
    send(page, "What is the name of the lighthouse keeper's cat?")
    # The first file loads the embedding model and indexes: minutes on a busy 2-core machine.
    source = page.get_by_role("button", name="[1] keeper.pdf · page 4")
    expect(source).to_be_visible(timeout=240_000)
    source.click()
    passage = page.get_by_test_id("stPopoverBody")
    expect(passage).to_contain_text("The lighthouse keeper's cat is named Bartolomeu.")
    page.reload()
    expect(page.get_by_role("button", name="[1] keeper.pdf · page 4")).to_be_visible()
    page.get_by_text("Files (1)").click()
    expect(page.get_by_text("Ready")).to_be_visible()
    assert len(list((tmp_path / "files").iterdir())) == 1
    # The chat's JSON export (made when clicked) carries the file itself.
    page.get_by_role("button", name="Conversation").click()
    # The export is made when clicked: two whole test suites on 2 cores once took over a minute.
    with page.expect_download(timeout=180_000) as download:
        page.get_by_role("button", name="Export as JSON").click()
    exported = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    (sha,) = exported["files"]
    assert base64.b64decode(exported["files"][sha]) == pdf.read_bytes()
    assert exported["conversations"][0]["files"][0]["name"] == "keeper.pdf"


def test_an_unreadable_file_is_named_and_the_message_kept(page, app_url, tmp_path):
    exe = tmp_path / "setup.exe"
    exe.write_bytes(b"MZ\x90\x00")
    page.goto(app_url)
    expect(page.get_by_placeholder("Message bnaGPT")).to_be_editable()
    attach(page, exe)
    send(page, "Summarise the installer, please")
    expect(page.get_by_text("“setup.exe” is not a kind of file bnaGPT reads", exact=False)).to_be_visible()
    expect(page.get_by_text("Your message was not sent", exact=False).first).to_be_visible()
    expect(page.locator("code", has_text="Summarise the installer, please")).to_be_visible()
    assert not (tmp_path / "files").exists()


def test_the_run_button_draws_a_figure_that_survives_a_reload(page, app_url, tmp_path):
    """A reply's Python block runs in the sandbox from its Run button; the plot shows, and stays on reload."""
    store = JsonConversationStore(tmp_path / "conversations.json")
    code = "import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [3, 5])\nprint('drawn', 3 + 5)"
    chat = store.create(
        "A plot",
        [Message(Role.USER, "Plot a and b"), Message(Role.ASSISTANT, f"Here:\n\n```python\n{code}\n```")],
    )
    page.goto(f"{app_url}/?c={chat.id}")
    page.get_by_role("button", name="Run the code").click()
    reply = bubbles(page).nth(1)
    expect(reply.locator('[data-testid="stImage"] img')).to_have_count(1, timeout=90_000)
    expect(reply.get_by_text("Ran Python")).to_be_visible()
    reply.get_by_text("Ran Python").click()
    expect(reply.get_by_text("drawn 8")).to_be_visible()
    page.reload()
    expect(bubbles(page).nth(1).locator('[data-testid="stImage"] img')).to_have_count(1, timeout=60_000)
    [step] = read_conversation(tmp_path / "conversations.json", chat.id)["messages"][1]["steps"]
    assert step["by_user"] and step["output"] == "drawn 8" and step["files"][0]["name"] == "figure-1.png"


def test_the_search_switch_answers_from_a_page_of_the_stand_in(web, page, app_url):
    """Toggle -> search -> fetch -> extract -> an answer listing the page as its source, in the browser."""
    web.pages["/kiwi"] = article("Kiwi festival", "The Zubrowka kiwi festival is held in the town of Lutz.")
    web.results = [{"title": "Kiwi festival in Zubrowka", "url": web.url("/kiwi"), "content": ""}]
    page.goto(app_url)
    page.get_by_text("Search the web").click()
    send(page, "In which town is the Zubrowka kiwi festival held?")
    reply = bubbles(page).nth(1)
    expect(reply.get_by_text("Searched the web")).to_be_visible(timeout=120_000)
    expect(page.locator('[data-testid="stChatMessage"] button', has_text="Stop")).to_have_count(
        0, timeout=120_000
    )
    expect(reply.get_by_role("button", name=re.compile(r"^\[1\] Kiwi festival in Zubrowka"))).to_be_visible()
    assert any(r == "/kiwi" for r in web.requests)


# A paste as the browser makes it when an image is copied: a ClipboardEvent carrying the file.
_PASTE_IMAGE = """(encoded) => {
  const bytes = Uint8Array.from(atob(encoded), c => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], 'receipt.png', {type: 'image/png'}));
  document.activeElement.dispatchEvent(
    new ClipboardEvent('paste', {clipboardData: data, bubbles: true, cancelable: true}));
}"""


def test_an_image_pasted_in_the_chat_box_is_read_and_answered_and_kept(page, app_url, tmp_path):
    """Paste a receipt photo into the chat box with a question: its thumbnail and OCR text show, the
    bundled model answers from the text, a reload keeps it all, and Listen gives a player."""
    from tests import make_files

    photo = tmp_path / "receipt.png"
    make_files.text_image(["PADARIA LUTZ", "TOTAL 47,90"]).save(photo)
    page.goto(app_url)
    box = page.get_by_placeholder("Message bnaGPT")
    expect(box).to_be_editable()
    box.click()
    page.evaluate(_PASTE_IMAGE, base64.b64encode(photo.read_bytes()).decode())
    expect(page.get_by_role("button", name="Remove receipt.png")).to_be_visible()
    send(page, "What is the name of the bakery on this receipt?")
    question = bubbles(page).nth(0)
    expect(question.locator('[data-testid="stImage"] img')).to_have_count(1, timeout=120_000)
    expect(question.get_by_text("Text read with OCR in “receipt.png”")).to_be_visible()
    expect(page.locator('[data-testid="stChatMessage"] button', has_text="Stop")).to_have_count(
        0, timeout=180_000
    )
    expect(bubbles(page).nth(1)).to_contain_text("Lutz", ignore_case=True)
    page.reload()
    expect(bubbles(page).nth(0).locator('[data-testid="stImage"] img')).to_have_count(1, timeout=60_000)
    bubbles(page).nth(0).get_by_text("Text read with OCR").click()
    expect(bubbles(page).nth(0).get_by_text("TOTAL 47,90")).to_be_visible()
    bubbles(page).nth(1).get_by_role("button", name="Listen").click()
    expect(bubbles(page).nth(1).locator("audio")).to_have_count(1, timeout=60_000)
    page.screenshot(path=str(tmp_path / "image-chat.png"), full_page=True)
    [message] = [
        m
        for c in read_document(tmp_path / "conversations.json")["conversations"]
        for m in read_conversation(tmp_path / "conversations.json", c)["messages"]
        if m["role"] == "user"
    ]
    assert message["media"][0]["name"] == "receipt.png" and "LUTZ" in message["media"][0]["text"]


@contextlib.contextmanager
def microphone_page(chromium: str, sound: Path) -> Iterator:
    """A page of a Chromium whose microphone (its fake capture device) plays `sound` once."""
    from playwright.sync_api import sync_playwright

    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={sound}%noloop",
    ]
    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=args)
        yield browser.new_context(permissions=["microphone"]).new_page()
        browser.close()


def test_a_spoken_question_is_transcribed_answered_and_read_aloud(chromium, app_url, tmp_path):
    """Voice mode end to end: Chromium's fake microphone plays espeak-ng's question, the chat box records
    it, Whisper's transcript is sent, the bundled model answers, and the answer comes with a player."""
    question = tmp_path / "question.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-w", str(question), "What is the capital of France?"], check=True
    )
    with microphone_page(chromium, question) as page:
        page.goto(app_url)
        expect(page.get_by_placeholder("Message bnaGPT")).to_be_editable()
        page.get_by_text("Read replies aloud").click()
        page.get_by_role("button", name="Start recording").click()
        expect(page.get_by_role("button", name="Submit recording")).to_be_visible()
        page.wait_for_timeout(4_000)  # the fake microphone plays the 2-second question meanwhile
        page.get_by_role("button", name="Submit recording").click()
        expect(bubbles(page).nth(0)).to_contain_text("capital", timeout=120_000)
        expect(bubbles(page).nth(0).locator("audio")).to_have_count(1)  # the recording, kept
        expect(bubbles(page).nth(1).locator("audio")).to_have_count(1, timeout=180_000)  # read aloud
        expect(bubbles(page).nth(1)).to_contain_text("Read by")


def test_a_silent_recording_is_not_sent_and_stays_to_listen_to(chromium, app_url, tmp_path):
    """A muted microphone: nothing was heard, so no message is sent or answered; the user is told, the
    recording stays on the page to play, and the words typed with it are kept."""
    from tests import make_files

    quiet = tmp_path / "quiet.wav"
    quiet.write_bytes(make_files.silence(3))
    with microphone_page(chromium, quiet) as page:
        page.goto(app_url)
        box = page.get_by_placeholder("Message bnaGPT")
        expect(box).to_be_editable()
        box.fill("About the report:")
        page.get_by_role("button", name="Start recording").click()
        expect(page.get_by_role("button", name="Submit recording")).to_be_visible()
        page.wait_for_timeout(3_500)
        page.get_by_role("button", name="Submit recording").click()
        expect(page.get_by_text("Your recording was not sent.")).to_be_visible(timeout=120_000)
        expect(page.get_by_text("Nothing was heard in “recording.wav”")).to_be_visible()
        expect(page.locator('[data-testid="stAudio"]')).to_have_count(1)
        expect(page.get_by_text("About the report:")).to_be_visible()
        expect(bubbles(page)).to_have_count(0)
    assert (
        not (tmp_path / "conversations.json").exists()
        or stored_messages(tmp_path / "conversations.json") == []
    )


def test_edit_a_question_switch_versions_reload_copy_and_leave_out(page, app_url, tmp_path):
    """Edit a question in Chromium: the bundled model answers the new version; "<" brings back the old one
    with its answer, a reload keeps that choice, Copy puts a reply's Markdown on the clipboard, and a
    message left out shows dimmed."""
    data_file = tmp_path / "conversations.json"
    store = JsonConversationStore(data_file)
    chat = store.create(
        "Versions",
        [
            Message(Role.USER, "What is 2+2?"),
            Message(Role.ASSISTANT, "**4**, of course."),
            Message(Role.USER, "Name a colour."),
            Message(Role.ASSISTANT, "Blue."),
        ],
    )
    _, a1, q2, _ = chat.messages
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_url)
    page.goto(f"{app_url}/?c={chat.id}")
    expect(bubbles(page)).to_have_count(4)

    page.locator(f".st-key-edit_{q2.id} button").first.click()  # a button with help is drawn twice
    box = page.locator(f".st-key-edit_text_{q2.id} textarea")
    expect(box).to_have_value("Name a colour.")
    box.fill("Name a fruit.")
    page.get_by_role("button", name="Send", exact=True).click()
    expect(bubbles(page).nth(2)).to_contain_text("Name a fruit.")
    expect(page.locator('[data-testid="stChatMessage"] button', has_text="Stop")).to_have_count(
        0, timeout=180_000
    )
    assert wait_until(lambda: len(store.get(chat.id).messages) == 6, 60)
    edited = store.get(chat.id).path()[2]
    assert edited.content == "Name a fruit." and edited.parent == a1.id
    expect(bubbles(page).nth(2)).to_contain_text("2/2")

    page.locator(f".st-key-prev_{edited.id} button").first.click()  # "<"
    expect(bubbles(page).nth(2)).to_contain_text("Name a colour.")
    expect(bubbles(page).nth(2)).to_contain_text("1/2")
    expect(bubbles(page).nth(3)).to_contain_text("Blue.")
    page.reload()
    expect(bubbles(page).nth(2)).to_contain_text("Name a colour.", timeout=60_000)
    expect(bubbles(page).nth(3)).to_contain_text("Blue.")
    expect(bubbles(page)).to_have_count(4)

    bubbles(page).nth(1).locator('[data-testid="stPopover"] button').first.click()  # Copy
    popover = page.locator('[data-testid="stPopoverBody"]')
    popover.locator('[data-testid="stCode"]').hover()  # the copy button shows on hover
    popover.get_by_role("button", name="Copy to clipboard").click()
    assert wait_until(lambda: page.evaluate("navigator.clipboard.readText()") == "**4**, of course.", 30)

    page.keyboard.press("Escape")
    page.locator(f".st-key-leave_{a1.id} button").first.click()
    expect(page.locator(f".st-key-leftout_{a1.id}")).to_have_css("opacity", "0.45")
    expect(page.get_by_text("1 message left out")).to_be_visible()
    assert [m.context.value for m in store.get(chat.id).messages][:2] == ["auto", "never"]
