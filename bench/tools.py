"""Tools: the code sandbox's start-up and runs, and a web search answered on a loopback stand-in.

Run: .venv/bin/python -m bench.tools
- Sandbox: a new session (bwrap + the kernel) and a trivial run, repeated; a trivial run in a warm session
  (goal p95 ≤ 150 ms); a numpy + matplotlib plot in a new session (imports included); 8 sessions running
  at once, each its own chat (goal 0 errors).
- Web: the search switch's path on a loopback HTTP server speaking SearXNG's JSON API and serving three
  article pages: search -> fetch -> extract -> rank, then the same followed by the bundled model's answer.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from bench.stats import Figure, summarise
from controller.sandbox import Sandbox
from controller.search_engines import SearXNG
from controller.tools.web_search import WebSearch
from settings import load_settings

SECTION = "10 tools"
STARTS = 20
WARM_RUNS = 100
PLOT = "import numpy as np, matplotlib.pyplot as plt\nx = np.linspace(0, 6, 200)\nplt.plot(x, np.sin(x))"
PAGE = """<html><body><nav>Home News Shop</nav><article><h1>{title}</h1>{body}</article>
<footer>Subscribe</footer></body></html>"""


def sandbox_figures(starts: int = STARTS, warm_runs: int = WARM_RUNS) -> list[Figure]:
    settings = load_settings()
    box = Sandbox(settings.sandbox_dir, settings.sandbox_python)
    problem = box.problem()
    if problem:
        raise SystemExit(f"The sandbox cannot run here: {problem}")
    try:
        cold = []
        for n in range(starts):
            started = time.perf_counter()
            assert box.run(f"cold-{n}", "1 + 1").value == "2"
            cold.append((time.perf_counter() - started) * 1000)
            box.restart(f"cold-{n}")
        box.run("warm", "x = 1")
        warm = []
        for _ in range(warm_runs):
            started = time.perf_counter()
            assert box.run("warm", "x + 1").value == "2"
            warm.append((time.perf_counter() - started) * 1000)
        plots = []
        for n in range(max(3, starts // 4)):
            started = time.perf_counter()
            result = box.run(f"plot-{n}", PLOT)
            assert result.ok and len(result.figures) == 1, result.error
            plots.append(time.perf_counter() - started)
            box.restart(f"plot-{n}")
        results: dict[int, object] = {}
        code = "import numpy as np\nfloat(np.linalg.eigvalsh(np.eye(50) * {n}).sum())"

        def one(n: int) -> None:
            results[n] = box.run(f"parallel-{n}", code.format(n=n))

        started = time.perf_counter()
        threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        together = time.perf_counter() - started
        errors = sum(1 for n, r in results.items() if r.value != f"{50.0 * n}")
    finally:
        box.close()
    return [
        summarise(SECTION, "sandbox: new session + trivial run", "ms", cold),
        summarise(SECTION, "sandbox: trivial run, warm session", "ms", warm, "p95 ≤ 150"),
        summarise(SECTION, "sandbox: numpy + matplotlib plot, new session", "s", plots),
        summarise(SECTION, "sandbox: 8 sessions at once (numpy), wall time", "s", [together]),
        summarise(SECTION, "sandbox: 8 sessions at once, errors", "count", [errors], "≤ 0"),
    ]


def _stand_in() -> tuple[ThreadingHTTPServer, str]:
    pages = {
        "/festival": ("Kiwi festival", "The Zubrowka kiwi festival is held every March in the town of Lutz."),
        "/weather": ("Weather", "Zubrowka has cold winters and mild summers. " * 20),
        "/history": ("History", "Zubrowka was founded in 1820 by kiwi farmers. " * 20),
    }

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/search":
                base = f"http://127.0.0.1:{self.server.server_address[1]}"
                rows = [{"title": t, "url": base + p, "content": ""} for p, (t, _) in pages.items()]
                body, kind = json.dumps({"results": rows}).encode(), "application/json"
            else:
                title, text = pages[path]
                body, kind = PAGE.format(title=title, body=f"<p>{text}</p>").encode(), "text/html"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"127.0.0.1:{server.server_address[1]}"


def web_figures(repeats: int = 10) -> list[Figure]:
    from controller.chat import ChatSession
    from controller.providers import LOCAL, ProviderConfig
    from controller.toolbox import Toolbox
    from model.file_store import FileStore
    from model.json_store import JsonConversationStore
    from utils.local_server import MODEL_ALIAS, LocalEngine, bundled_model_path

    server, address = _stand_in()
    os.environ["BNAGPT_SEARXNG_URL"] = f"http://{address}"
    os.environ["BNAGPT_FETCH_ALLOW"] = address
    search = WebSearch(SearXNG(f"http://{address}"), allow=frozenset({address}))
    search.run(query="warm-up: imports and BM25")
    searches = []
    for _ in range(repeats):
        started = time.perf_counter()
        outcome = search.run(query="When is the Zubrowka kiwi festival?")
        searches.append((time.perf_counter() - started) * 1000)
        assert outcome.sources and "Lutz" in outcome.sources[0].passage, outcome
    folder = Path(tempfile.mkdtemp())
    engine = LocalEngine(bundled_model_path(), 2048)
    engine.ensure_running()
    settings = load_settings()
    toolbox = Toolbox(Sandbox(settings.sandbox_dir, settings.sandbox_python), FileStore(folder), os.environ)
    config = ProviderConfig(kind=LOCAL, model=MODEL_ALIAS, context_window=2048, max_tokens=48, temperature=0)
    answers, found = [], 0
    try:
        for n in range(repeats):
            chat = ChatSession(JsonConversationStore(folder / f"c{n}.json"), engine, toolbox=toolbox)
            started = time.perf_counter()
            reply = chat.send("In which town is the Zubrowka kiwi festival held?", config, search_first=True)
            text = "".join(reply)
            reply.close()
            answers.append(time.perf_counter() - started)
            found += "Lutz" in text
    finally:
        engine.stop()
        server.shutdown()
    return [
        summarise(SECTION, "web: search -> fetch 3 pages -> extract -> rank (stand-in)", "ms", searches),
        summarise(SECTION, "web: switch on, question -> bundled model's answer (48 tokens)", "s", answers),
        summarise(SECTION, "web: answers naming the fact found on the page", "%", [100 * found / repeats]),
    ]


def run(quick: bool = False, smoke: bool = False) -> list[Figure]:
    if smoke:
        return sandbox_figures(2, 2) + web_figures(1)
    return sandbox_figures(5 if quick else STARTS, 20 if quick else WARM_RUNS) + web_figures(
        3 if quick else 10
    )


if __name__ == "__main__":
    for figure in run():
        print(f"{figure.name:<66} median {figure.median:9.2f} {figure.unit:<6} p95 {figure.p95:9.2f}")
