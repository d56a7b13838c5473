"""A reply as the user sees it: the same prompt straight to the engine and through the chat page in Chromium.

Run: .venv/bin/python -m bench.browser [pairs]
The real app (`streamlit run app.py`) on the bundled model, visited by headless Chromium. Each pair sends
the same prompt (temperature 0, 200 tokens) first straight to the app's own engine over HTTP, with no
browser work going on, then through a new chat in the page. The page is timed inside the page: a
MutationObserver notes when Enter was pressed, when the reply's first text appears and when the reply is
complete (its Stop button gone), so that no polling from Playwright takes CPU from the reply. CPU seconds
per reply are read for the engine, the Streamlit process and all of Chromium's processes.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from bench.serve import CHROMIUM_ARGS, App, _answers, _wait
from bench.stats import Figure, summarise
from bench.streaming import PROMPT, TOKENS, engine_reply

SECTION = "7 browser"
PAIRS = 4

# Installed in the page before each reply: records times in window.__bench, does no work between changes.
_TIMER = """() => {
  const B = (window.__bench = {sent: null, first: null, done: null, text: ""});
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && B.sent === null) B.sent = performance.now();
  }, true);
  const observer = new MutationObserver(() => {
    if (B.sent === null) return;
    const bubbles = document.querySelectorAll('[data-testid="stChatMessage"]');
    if (bubbles.length < 2) return;
    const reply = bubbles[bubbles.length - 1];
    const body = reply.querySelector('.st-key-reply_body [data-testid="stMarkdownContainer"]');
    const text = body ? body.innerText.trim() : "";
    if (B.first === null && text) B.first = performance.now();
    const stopping = [...reply.querySelectorAll("button")].some((b) => b.innerText.includes("Stop"));
    if (B.first !== null && !stopping) {
      B.done = performance.now();
      B.text = text;
      observer.disconnect();
    }
  });
  observer.observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def _cpu(processes: list[psutil.Process]) -> dict[int, float]:
    seconds = {}
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[process.pid] = times.user + times.system
    return seconds


def _chromium() -> list[psutil.Process]:
    found = []
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if "chrom" in child.name():
                found.append(child)
        except psutil.NoSuchProcess:
            continue
    return found


class _Meter:
    """CPU seconds used by the engine, the app and Chromium between `start` and `stop`."""

    def __init__(self, app: App, engine: psutil.Process) -> None:
        self.groups = {"engine": lambda: [engine], "app": lambda: [app.ps], "chromium": _chromium}

    def start(self) -> None:
        self._before = {name: _cpu(find()) for name, find in self.groups.items()}

    def stop(self) -> dict[str, float]:
        used = {}
        for name, find in self.groups.items():
            before, after = self._before[name], _cpu(find())
            used[name] = sum(t - before.get(pid, 0.0) for pid, t in after.items())
        return used


def _page_reply(page) -> tuple[float, float, str]:
    """(seconds to first text, seconds to the whole reply, the reply) for a new chat in the page."""
    page.locator(".st-key-new_chat button").click()
    page.get_by_text("How can I help you today?").wait_for(timeout=60_000)
    _wait(lambda: page.locator('[data-testid="stChatMessage"]').count() == 0, 30)
    page.evaluate(_TIMER)
    box = page.get_by_placeholder("Message bnaGPT")
    box.fill(PROMPT)
    box.press("Enter")
    page.wait_for_function("() => window.__bench.done !== null", timeout=120_000, polling=500)
    timing = page.evaluate("() => window.__bench")
    return (timing["first"] - timing["sent"]) / 1000, (timing["done"] - timing["sent"]) / 1000, timing["text"]


def run(pairs: int = PAIRS) -> list[Figure]:
    """`pairs` alternating replies, engine alone then page, after one warm-up pair."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("bench.browser needs Debian's chromium (apt-get install chromium)")
    os.environ["BNAGPT_MAX_TOKENS"] = str(TOKENS)
    results: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)

    with (
        sync_playwright() as playwright,
        tempfile.TemporaryDirectory() as folder,
        httpx.Client(timeout=120) as client,
    ):
        app = App(Path(folder))
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            _wait(lambda: _answers(app.url))
            page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
            page.goto(app.url)
            page.get_by_placeholder("Message bnaGPT").wait_for(timeout=60_000)
            _wait(lambda: (url := app.engine_url()) is not None and _answers(url))
            engine = app.engine()
            base_url = f"{app.engine_root()}/v1"
            meter = _Meter(app, engine)
            for pair in range(pairs + 1):  # the first pair warms up caches and imports
                meter.start()
                started = time.perf_counter()
                first, tokens, _ = engine_reply(client, base_url, PROMPT)
                engine_done = time.perf_counter() - started
                engine_cpu = meter.stop()
                time.sleep(0.5)
                meter.start()
                page_first, page_done, text = _page_reply(page)
                page_cpu = meter.stop()
                if not pair:
                    continue
                note("engine first", first)
                note("engine done", engine_done)
                note("engine tokens", tokens)
                note("page first", page_first)
                note("page done", page_done)
                note("page characters", len(text))
                note("ratio", page_done / engine_done)
                for name, seconds in engine_cpu.items():
                    note(f"engine alone cpu {name}", seconds)
                for name, seconds in page_cpu.items():
                    note(f"page cpu {name}", seconds)
                time.sleep(0.5)
        finally:
            browser.close()
            app.stop()
    return _figures(results)


def _figures(r: dict[str, list[float]]) -> list[Figure]:
    figures = [
        summarise(SECTION, f"engine alone: first token ({TOKENS}-token reply)", "s", r["engine first"]),
        summarise(SECTION, "engine alone: whole reply", "s", r["engine done"]),
        summarise(SECTION, "chat page in Chromium: first text on screen", "s", r["page first"]),
        summarise(SECTION, "chat page in Chromium: whole reply on screen", "s", r["page done"]),
        summarise(SECTION, "ratio page ÷ engine alone: whole reply", "×", r["ratio"], "≤ 1.10"),
        summarise(SECTION, "tokens per reply (engine alone)", "tokens", r["engine tokens"]),
    ]
    for case, label in (("engine alone", "engine alone"), ("page", "through the page")):
        for name in ("engine", "app", "chromium"):
            figures.append(summarise(SECTION, f"CPU per reply {label}: {name}", "s", r[f"{case} cpu {name}"]))
    return figures


if __name__ == "__main__":
    for figure in run(int(sys.argv[1]) if len(sys.argv) > 1 else PAIRS):
        print(f"{figure.name:<55} median {figure.median:8.3f} {figure.unit:<6} p95 {figure.p95:8.3f}")
