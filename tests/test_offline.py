"""Offline means no connection and no name lookup: the app, under strace, through a journey that loads
every engine (chat, a PDF, an image, Listen, a spoken question, the search by meaning, Settings)."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import IN_CI, serve_app

# connect(), sendto() and friends to an internet address, as strace prints them.
_INET = re.compile(
    r"(?P<call>connect|sendto|sendmsg|sendmmsg)\(.*?sa_family=AF_INET6?, "
    r"sin6?_port=htons\((?P<port>\d+)\).*?(?:inet_addr\(\"(?P<v4>[^\"]+)\"\)|"
    r"inet_pton\(AF_INET6, \"(?P<v6>[^\"]+)\")"
)


def outside(trace: str) -> list[str]:
    """The lines of an strace log that reach beyond this machine: a connection or datagram to an address
    other than loopback, or any DNS query (port 53, to whatever resolver: even a loopback one asks out)."""
    found = []
    for line in trace.splitlines():
        match = _INET.search(line)
        if match is None:
            continue
        address = ipaddress.ip_address(match["v4"] or match["v6"])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if int(match["port"]) == 53 or not (address.is_loopback or address.is_unspecified):
            found.append(line.strip())
    return found


def test_the_check_sees_lookups_and_connections_but_not_loopback():
    trace = """\
3140  connect(8, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("10.255.255.53")}, 16) = 0
3141  connect(9, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("127.0.0.53")}, 16) = 0
3142  connect(5, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = 0
3143  connect(6, {sa_family=AF_INET6, sin6_port=htons(443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "2001:db8::1", &sin6_addr), sin6_scope_id=0}, 28) = -1
3144  connect(7, {sa_family=AF_INET6, sin6_port=htons(8501), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0
3145  sendto(9, "x", 1, 0, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("203.0.113.9")}, 16) = 1
3146  connect(3, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1
"""
    assert [line.split()[0] for line in outside(trace)] == ["3140", "3141", "3143", "3145"]


@pytest.mark.browser
@pytest.mark.engine
def test_an_offline_journey_makes_no_connection_or_lookup_beyond_loopback(chromium, tmp_path):
    from tests import make_files
    from tests.test_browser import microphone_page
    from tests.test_documents import pages_with

    strace = shutil.which("strace")
    if strace is None:
        message = "strace is not installed (apt-get install strace); the offline test needs it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    log = tmp_path / "strace.log"
    question = tmp_path / "question.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-w", str(question), "What is the capital of France?"], check=True
    )
    pdf = tmp_path / "keeper.pdf"
    pdf.write_bytes(make_files.pdf(pages_with("The lighthouse keeper's cat is named Bartolomeu.", 2, 1)))
    photo = tmp_path / "receipt.png"
    make_files.text_image(["PADARIA LUTZ", "TOTAL 47,90"]).save(photo)
    wrapper = (strace, "-f", "-qq", "-e", "trace=connect,sendto,sendmsg,sendmmsg", "-o", str(log))
    with (
        serve_app(tmp_path, env={"BNAGPT_MAX_TOKENS": "32"}, wrapper=wrapper) as url,
        microphone_page(chromium, question) as page,
    ):
        expect.set_options(timeout=120_000)
        page.goto(url)
        _journey(page, pdf, photo)
        time.sleep(10)  # onnxruntime's telemetry was sent about 4 s after its last use
    trace = log.read_text(errors="replace")
    assert "127.0.0.1" in trace  # the log is real: the app talked to its engine
    assert outside(trace) == []


def _journey(page, pdf: Path, photo: Path) -> None:
    """Chat, a PDF, an image, Listen, a spoken question, the search by meaning, Settings."""
    from tests.test_browser import attach, bubbles, send

    done = '[data-testid="stChatMessage"] button:has-text("Stop")'
    send(page, "Say hello.")
    expect(bubbles(page)).to_have_count(2)
    expect(page.locator(done)).to_have_count(0)
    attach(page, pdf)
    send(page, "What is the name of the lighthouse keeper's cat?")
    expect(page.get_by_role("button", name=re.compile(r"\[1\] keeper\.pdf"))).to_be_visible(timeout=300_000)
    attach(page, photo)
    send(page, "What is the name of the bakery?")
    expect(bubbles(page)).to_have_count(6)
    expect(bubbles(page).nth(4).get_by_text("Text read with OCR in “receipt.png”")).to_be_visible()
    expect(page.locator(done)).to_have_count(0, timeout=180_000)
    bubbles(page).nth(5).get_by_role("button", name="Listen").click()
    expect(bubbles(page).nth(5).locator("audio")).to_have_count(1)
    page.get_by_role("button", name="Start recording").click()
    expect(page.get_by_role("button", name="Submit recording")).to_be_visible()
    page.wait_for_timeout(4_000)  # the fake microphone plays the 2-second question meanwhile
    page.get_by_role("button", name="Submit recording").click()
    expect(bubbles(page).nth(6)).to_contain_text("capital")
    expect(page.locator(done)).to_have_count(0, timeout=180_000)
    search = page.get_by_placeholder("Search names and messages")
    search.fill("feline companion")
    search.press("Enter")
    expect(page.get_by_text("Searching by meaning too")).to_have_count(0, timeout=180_000)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Settings").click()
    expect(page.get_by_text("Images and voice")).to_be_visible()
