"""Streaming overhead: the same reply straight from the local engine and through the app.

Run: .venv/bin/python -m bench.streaming
(a) posts the exact request the agent sends (system prompt, user message, temperature 0, fixed seed,
200 tokens) to the llama.cpp server with a bare httpx stream; (b) sends the same message through
`ChatSession.send` (store, agent, memory, transport), as the chat page does; (c) does the same but reads
the reply with llama-index's own `response_gen`, as the agent seam did before: that generator polls its
queue with `sleep(0)` in a loop, taking a core from the engine. Runs alternate so all see the same engine
state. Time to first token is measured from the moment the message is handed over.

Two cases: the same prompt every time, as the issue asks (llama.cpp then finds the whole prompt in its
cache and answers in ~20 ms, so any fixed cost of the app weighs heavily), and a new prompt every time, as
when a user sends a new message (the engine reads the new words first).
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
from utils.local_server import MODEL_ALIAS, LocalEngine, bundled_model_path

SECTION = "1 streaming"
PROMPT = "Write a long story about a lighthouse keeper, a storm and a lost ship. Describe every detail."
TOKENS = 200
SEED = 42

Sample = tuple[float, int, float]  # seconds to first token, tokens, seconds from first to last token


def engine_reply(client: httpx.Client, base_url: str, prompt: str) -> Sample:
    """(seconds to first token, tokens, seconds from first to last token) straight from the engine."""
    body = {
        "model": MODEL_ALIAS,
        "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}],
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


def _app(chat: ChatSession, config: ProviderConfig, prompt: str) -> Sample:
    """The same through the app's controller; a fresh chat each time, as a user starting one."""
    chat.new()
    started = time.perf_counter()
    first = last = 0.0
    tokens = 0
    reply = chat.send(prompt, config)
    try:
        for _chunk in reply:
            last = time.perf_counter()
            if not tokens:
                first = last
            tokens += 1
    finally:
        reply.close()
    return first - started, tokens, last - first


def _with_response_gen(
    self: Agent, history, text: str, system_prompt: str = SYSTEM_PROMPT, tools=(), images=()
):
    """Agent.stream as it was before reading the queue itself (the whole history fits here; no tools or
    images: the bench's chat has neither), taking every argument `Agent.stream` takes."""
    self._memory.set([to_chat_message(m) for m in history])
    yield from self._agent_for(system_prompt).stream_chat(text).response_gen


def _app_response_gen(chat: ChatSession, config: ProviderConfig, prompt: str) -> Sample:
    ours = Agent.stream
    Agent.stream = _with_response_gen
    try:
        return _app(chat, config, prompt)
    finally:
        Agent.stream = ours


PATHS = (
    ("a", "engine direct", lambda client, url, chat, config, prompt: engine_reply(client, url, prompt)),
    ("b", "through the app", lambda client, url, chat, config, prompt: _app(chat, config, prompt)),
    (
        "c",
        "app via response_gen",
        lambda client, url, chat, config, prompt: _app_response_gen(chat, config, prompt),
    ),
)
CASES = (("same prompt", lambda n: PROMPT), ("new prompt", lambda n: f"Story number {1000 + n}. {PROMPT}"))


def run(repeats: int = 5) -> list[Figure]:
    """Measure every path in both cases `repeats` times after one warm-up each."""
    engine = LocalEngine(bundled_model_path(), context_size=2048)
    engine.ensure_running()
    results: dict[tuple[str, str], list[Sample]] = {}
    try:
        with tempfile.TemporaryDirectory() as folder, httpx.Client(timeout=120) as client:
            chat = ChatSession(JsonConversationStore(Path(folder) / "conversations.json"), engine)
            config = ProviderConfig(
                kind=LOCAL, model=MODEL_ALIAS, context_window=2048, max_tokens=TOKENS, temperature=0
            )
            number = 0
            for case, prompt in CASES:
                for _, _, measure in PATHS:  # warm-up: caches, connections, imports
                    measure(client, engine.base_url, chat, config, prompt(number))
                    number += 1
                for _ in range(repeats):
                    for key, _, measure in PATHS:
                        sample = measure(client, engine.base_url, chat, config, prompt(number))
                        results.setdefault((case, key), []).append(sample)
                        number += 1
    finally:
        engine.stop()
    return _figures(results)


def _figures(results: dict[tuple[str, str], list[Sample]]) -> list[Figure]:
    figures = []
    for case, _ in CASES:
        for key, label, _ in PATHS:
            samples = results[(case, key)]
            firsts = [t * 1000 for t, _, _ in samples]
            rates = [(n - 1) / span for _, n, span in samples if span > 0]
            figures.append(summarise(SECTION, f"{case}, ({key}) {label}: time to first token", "ms", firsts))
            figures.append(summarise(SECTION, f"{case}, ({key}) {label}: tokens/s", "tok/s", rates))
        for key, budgets in (("b", ("≤ 1.10", "≥ 0.95")), ("c", ("", ""))):
            pairs = list(zip(results[(case, "a")], results[(case, key)], strict=True))
            first = [s[0] / r[0] for r, s in pairs]
            rate = [((s[1] - 1) / s[2]) / ((r[1] - 1) / r[2]) for r, s in pairs]
            figures.append(
                summarise(SECTION, f"{case}, ratio {key}/a: time to first token", "×", first, budgets[0])
            )
            figures.append(summarise(SECTION, f"{case}, ratio {key}/a: tokens/s", "×", rate, budgets[1]))
    tokens = [n for samples in results.values() for _, n, _ in samples]
    figures.append(summarise(SECTION, "tokens per reply, fewest of all runs", "tokens", [min(tokens)]))
    return figures


if __name__ == "__main__":
    for figure in run(int(sys.argv[1]) if len(sys.argv) > 1 else 5):
        print(f"{figure.name:<60} median {figure.median:9.3f} {figure.unit:<6} p95 {figure.p95:9.3f}")
