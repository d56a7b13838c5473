"""Concurrency: 8 chat sessions replying at once on the local engine, against one session alone.

Run: .venv/bin/python -m bench.concurrency
Each session is a `ChatSession` (what every browser tab gets) in its own thread, sharing the app's one
engine, as eight tabs of one app process do. Latency is from sending the message to the end of the reply.
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from bench.stats import Figure, summarise
from controller.chat import ChatSession
from controller.providers import LOCAL, ProviderConfig
from errors import BnaGPTError
from model.json_store import JsonConversationStore
from settings import load_settings
from utils.local_server import MODEL_ALIAS, LocalEngine, bundled_model_path

SECTION = "5 concurrency"
SESSIONS = 8
ROUNDS = 3
REPLY_TOKENS = 64
PROMPTS = [
    "Tell me about the sea.",
    "What is bread made of?",
    "Describe a mountain village.",
    "Why do rivers flow?",
    "Explain what a computer does.",
    "Write about a lighthouse.",
    "What do cats like?",
    "Describe the night sky.",
]


def _reply_seconds(chat: ChatSession, prompt: str, config: ProviderConfig) -> tuple[float, float]:
    """Seconds to the reply's first text and to its end."""
    chat.new()
    started = time.perf_counter()
    first = None
    reply = chat.send(prompt, config)
    try:
        for _ in reply:
            if first is None:
                first = time.perf_counter() - started
    finally:
        reply.close()
    end = time.perf_counter() - started
    return (end if first is None else first), end


def run(rounds: int = ROUNDS) -> list[Figure]:
    """Replies alone, then `rounds` rounds of SESSIONS at once."""
    settings = load_settings()
    engine = LocalEngine(bundled_model_path(), 2048, settings.local_parallel, settings.local_threads)
    engine.ensure_running()
    config = ProviderConfig(
        kind=LOCAL, model=MODEL_ALIAS, context_window=2048, max_tokens=REPLY_TOKENS, temperature=0
    )
    alone: list[float] = []
    together: list[float] = []
    alone_first: list[float] = []
    together_first: list[float] = []
    errors: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as folder:
            store_path = Path(folder) / "conversations.json"
            sessions = [ChatSession(JsonConversationStore(store_path), engine) for _ in range(SESSIONS)]
            _reply_seconds(sessions[0], PROMPTS[0], config)  # warm-up
            for _ in range(rounds):
                for prompt in PROMPTS:
                    first, end = _reply_seconds(sessions[0], prompt, config)
                    alone.append(end * 1000)
                    alone_first.append(first * 1000)

            def one(chat: ChatSession, prompt: str) -> None:
                try:
                    first, end = _reply_seconds(chat, prompt, config)
                    together.append(end * 1000)
                    together_first.append(first * 1000)
                except BnaGPTError as error:
                    errors.append(str(error))

            for _ in range(rounds):
                threads = [
                    threading.Thread(target=one, args=(chat, prompt))
                    for chat, prompt in zip(sessions, PROMPTS, strict=True)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
    finally:
        engine.stop()
    return [
        summarise(SECTION, f"reply of ≤ {REPLY_TOKENS} tokens, one session alone", "ms", alone),
        summarise(SECTION, f"reply of ≤ {REPLY_TOKENS} tokens, {SESSIONS} sessions at once", "ms", together),
        summarise(SECTION, "first text, one session alone", "ms", alone_first),
        summarise(SECTION, f"first text, {SESSIONS} sessions at once", "ms", together_first),
        summarise(SECTION, "engine slots (BNAGPT_LOCAL_PARALLEL)", "count", [engine.parallel]),
        summarise(
            SECTION, f"errors in {SESSIONS} × {rounds} concurrent replies", "count", [len(errors)], "0"
        ),
    ]


if __name__ == "__main__":
    for figure in run():
        print(f"{figure.name:<50} median {figure.median:8.1f} {figure.unit:<5} p95 {figure.p95:8.1f}")
