"""Cold start and memory: the real app under `streamlit run`, visited by Chromium.

Run: .venv/bin/python -m bench.serve
Cold start, several times after a warm-up start: from launching `streamlit run app.py` to the page answering
over HTTP, to the chat page drawn in a browser tab, and to the local engine answering (counted from the page
answering). Memory: resident size of the app process and of the engine, idle after the first visit and at
its peak while 8 browser sessions each get a reply at once.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psutil

from bench.stats import Figure, summarise
from utils.local_server import free_port

SECTION_START = "4 cold start"
SECTION_MEMORY = "6 memory"
PROJECT = Path(__file__).resolve().parent.parent
STARTS = 5
SESSIONS = 8
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def _wait(check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise TimeoutError("gave up waiting")


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class App:
    """`streamlit run app.py` on a free port with its own data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "BNAGPT_DATA_DIR": str(data_dir),
            "BNAGPT_PROVIDER": "local",
            "BNAGPT_MAX_TOKENS": os.environ.get("BNAGPT_MAX_TOKENS", "64"),
            "BNAGPT_TEMPERATURE": "0",
        }
        command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port)]
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            command, cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.ps = psutil.Process(self.process.pid)

    def engine(self) -> psutil.Process | None:
        for child in self.ps.children(recursive=True):
            try:
                if any("llama_server.py" in part for part in child.cmdline()):
                    return child
            except psutil.NoSuchProcess:
                continue
        return None

    def engine_url(self) -> str | None:
        """The engine's health address, once it runs."""
        root = self.engine_root()
        return None if root is None else f"{root}/health"

    def engine_root(self) -> str | None:
        """The engine's address (its OpenAI-compatible API is under /v1), once it runs."""
        engine = self.engine()
        if engine is None:
            return None
        options = json.loads(engine.cmdline()[-1])  # utils/llama_server.py takes its options as JSON
        return f"http://127.0.0.1:{options['port']}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _page_ready(browser, url: str):
    page = browser.new_context().new_page()
    page.goto(url)
    page.get_by_placeholder("Message bnaGPT").wait_for(timeout=60_000)
    return page


def _cold_start(browser, folder: Path) -> tuple[float, float, float, App]:
    app = App(folder)
    _wait(lambda: _answers(app.url))
    served = time.perf_counter()
    _page_ready(browser, app.url)
    drawn = time.perf_counter()
    _wait(lambda: (url := app.engine_url()) is not None and _answers(url))
    ready = time.perf_counter()
    return (served - app.started) * 1000, (drawn - app.started) * 1000, (ready - served) * 1000, app


def _rss_mb(process: psutil.Process | None) -> float:
    return process.memory_info().rss / 2**20 if process is not None else 0.0


def run(starts: int = STARTS) -> list[Figure]:
    """Cold starts, then memory with 8 sessions on the last one."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("bench.serve needs Debian's chromium (apt-get install chromium)")
    served, drawn, ready = [], [], []
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as folder:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        _cold_start(browser, Path(folder))[3].stop()  # warm-up: the OS caches the files
        for attempt in range(starts):
            a, b, c, app = _cold_start(browser, Path(folder))
            served.append(a)
            drawn.append(b)
            ready.append(c)
            if attempt < starts - 1:
                app.stop()
        try:
            memory = _memory(browser, app)
        finally:
            app.stop()
            browser.close()
    return [
        summarise(SECTION_START, "launch → page answers over HTTP", "ms", served, "≤ 5000"),
        summarise(SECTION_START, "launch → chat page drawn in the browser", "ms", drawn),
        summarise(SECTION_START, "page answers → local engine answers", "ms", ready, "≤ 3000"),
        *memory,
    ]


def _memory(browser, app: App) -> list[Figure]:
    time.sleep(2)
    engine = app.engine()
    idle_app, idle_engine = [], []
    for _ in range(5):
        idle_app.append(_rss_mb(app.ps))
        idle_engine.append(_rss_mb(engine))
        time.sleep(0.2)
    pages = [_page_ready(browser, app.url) for _ in range(SESSIONS)]
    peak = {"app": max(idle_app), "engine": max(idle_engine)}
    sampling = True

    def sample() -> None:
        while sampling:
            peak["app"] = max(peak["app"], _rss_mb(app.ps))
            peak["engine"] = max(peak["engine"], _rss_mb(engine))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    for number, page in enumerate(pages):
        box = page.get_by_placeholder("Message bnaGPT")
        box.fill(f"Tell me something about the number {number}.")
        box.press("Enter")
    for page in pages:  # each reply ends when its Stop button goes away
        page.locator('[data-testid="stChatMessage"]').nth(1).wait_for(timeout=120_000)
        _wait(lambda page=page: page.get_by_role("button", name="Stop").count() == 0, 180)
    sampling = False
    sampler.join()
    return [
        summarise(SECTION_MEMORY, "app resident size, idle (1 session)", "MB", idle_app),
        summarise(
            SECTION_MEMORY, f"app resident size, peak with {SESSIONS} more sessions", "MB", [peak["app"]]
        ),
        summarise(SECTION_MEMORY, "engine resident size, idle", "MB", idle_engine),
        summarise(
            SECTION_MEMORY, f"engine resident size, peak with {SESSIONS} sessions", "MB", [peak["engine"]]
        ),
    ]


if __name__ == "__main__":
    for figure in run(int(sys.argv[1]) if len(sys.argv) > 1 else STARTS):
        print(f"{figure.name:<55} median {figure.median:8.1f} {figure.unit:<3} p95 {figure.p95:8.1f}")
