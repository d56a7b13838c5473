"""Streaming overhead: the same reply straight from the local engine and through the app.

Run: .venv/bin/python -m bench.streaming
(a) posts the exact request the agent sends (system prompt, user message, temperature 0, fixed seed,
200 tokens) to the llama.cpp server with a bare httpx stream; (b) sends the same message through
`ChatSession.send` (store, agent, memory, transport), as the chat page does; (c) does the same but reads
the reply with llama-index's own `response_gen`, as the agent seam did before: that generator polls its
queue with `sleep(0)` in a loop, taking a core from the engine. Runs alternate so all see the same engine
state. Time to first token is measured from the moment the message is handed over.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.stats import Figure, summarise
from controller.agent import SYSTEM_PROMPT, Agent, to_chat_message
from controller.chat import ChatSession
from controller.providers import LOCAL, ProviderConfig
from model.json_store import JsonConversationStore
from settings import CHAT_FORMAT
from utils.local_server import MODEL_ALIAS, LocalEngine, bundled_model_path

SECTION = "1 streaming"
PROMPT = "Write a long story about a lighthouse keeper, a storm and a lost ship. Describe every detail."
TOKENS = 200
SEED = 42


def _raw(client: httpx.Client, base_url: str) -> tuple[float, int, float]:
    """(seconds to first token, tokens, seconds from first to last token) straight from the engine."""
    body = {
        "model": MODEL_ALIAS,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": PROMPT}],
        "temperature": 0,
        "seed": SEED,
        "max_tokens": TOKENS,
        "stream": True,
    }
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    with client.stream("POST", f"{base_url}/chat/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if delta:
                last = time.perf_counter()
                if not tokens:
                    first = last
                tokens += 1
    return first - started, tokens, last - first


def _app(chat: ChatSession, config: ProviderConfig) -> tuple[float, int, float]:
    """The same through the app's controller; a fresh chat each time, as a user starting one."""
    chat.new()
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    reply = chat.send(PROMPT, config)
    try:
        for _chunk in reply:
            last = time.perf_counter()
            if not tokens:
                first = last
            tokens += 1
    finally:
        reply.close()
    return first - started, tokens, last - first


def _with_response_gen(self: Agent, history, text: str):
    """Agent.stream as it was before reading the queue itself (the whole history fits here)."""
    self._memory.set([to_chat_message(m) for m in history])
    yield from self._agent.stream_chat(text).response_gen


def _app_response_gen(chat: ChatSession, config: ProviderConfig) -> tuple[float, int, float]:
    ours = Agent.stream
    Agent.stream = _with_response_gen
    try:
        return _app(chat, config)
    finally:
        Agent.stream = ours


def run(repeats: int = 5) -> list[Figure]:
    """Measure both paths `repeats` times each after one warm-up of each."""
    engine = LocalEngine(bundled_model_path(), context_size=2048, chat_format=CHAT_FORMAT)
    engine.ensure_running()
    try:
        with tempfile.TemporaryDirectory() as folder:
            chat = ChatSession(JsonConversationStore(Path(folder) / "conversations.json"), engine)
            config = ProviderConfig(
                kind=LOCAL, model=MODEL_ALIAS, context_window=2048, max_tokens=TOKENS, temperature=0
            )
            results: dict[str, list[tuple[float, int, float]]] = {"raw": [], "app": [], "gen": []}
            client = httpx.Client(timeout=120)  # kept open, like the app's
            _raw(client, engine.base_url), _app(chat, config)  # warm-up: caches, connections, imports
            for _ in range(repeats):
                results["raw"].append(_raw(client, engine.base_url))
                results["app"].append(_app(chat, config))
                results["gen"].append(_app_response_gen(chat, config))
    finally:
        engine.stop()
    figures = []
    rates = {}
    firsts = {}
    labels = (
        ("raw", "(a) engine direct"),
        ("app", "(b) through the app"),
        ("gen", "(c) app via response_gen"),
    )
    for path, label in labels:
        firsts[path] = [t * 1000 for t, _, _ in results[path]]
        rates[path] = [(n - 1) / span for _, n, span in results[path] if span > 0]
        figures.append(summarise(SECTION, f"{label}: time to first token", "ms", firsts[path]))
        figures.append(summarise(SECTION, f"{label}: tokens/s", "tok/s", rates[path]))
        tokens = sorted({n for _, n, _ in results[path]})
        figures.append(summarise(SECTION, f"{label}: tokens per reply", "tokens", tokens))
    for path, name, budgets in (("app", "b/a", ("≤ 1.10", "≥ 0.95")), ("gen", "c/a", ("", ""))):
        pairs = list(zip(results["raw"], results[path], strict=True))
        ratio_first = [a[0] / r[0] for r, a in pairs]
        ratio_rate = [((a[1] - 1) / a[2]) / ((r[1] - 1) / r[2]) for r, a in pairs]
        figures.append(summarise(SECTION, f"ratio {name}: time to first token", "×", ratio_first, budgets[0]))
        figures.append(summarise(SECTION, f"ratio {name}: tokens/s", "×", ratio_rate, budgets[1]))
    return figures


if __name__ == "__main__":
    for figure in run(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
        print(f"{figure.name:<45} median {figure.median:9.3f} {figure.unit:<6} p95 {figure.p95:9.3f}")
