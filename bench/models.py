"""The local models side by side: generation speed, first token on a long prompt, memory.

Run: .venv/bin/python -m bench.models
Every installed model of Settings' list (the bundled SmolLM2; Qwen2.5-Coder-1.5B after `make model`) on the
app's engine settings: a 200-token reply at temperature 0 (tokens/s from the engine's own timings), the time
to the first token of a ~1,500-token prompt never seen before (prompt reading dominates), and the engine's
resident memory idle after loading and after the long prompt.
"""

from __future__ import annotations

import json
import time

import httpx

from bench.stats import Figure, summarise
from controller.local_models import catalogue
from settings import load_settings
from utils.local_server import MODEL_ALIAS, LocalEngine

SECTION = "8 local models"
REPLIES = 3
LONG_PROMPTS = 2
_PARAGRAPH = (
    "The harbour wakes before dawn: fishermen check their nets, gulls circle the boats, and the smell of "
    "salt and diesel drifts over the quay while the first trams climb the hill towards the old castle. "
)


def _long_prompt(engine: LocalEngine, tokens: int, seed: int) -> str:
    """A prompt of about `tokens` tokens that starts differently each time, so no cache helps."""
    text = f"Note {seed}. "
    while engine.count_tokens(text) < tokens:
        text += _PARAGRAPH
    return text + "\nSummarise the text above in one sentence."


def _stream(engine: LocalEngine, prompt: str, max_tokens: int) -> tuple[float, float]:
    """(seconds to the first token, generation tokens/s by the engine's timings)."""
    body = {
        "model": MODEL_ALIAS,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "ignore_eos": True,
        "timings_per_token": True,
    }
    started = time.perf_counter()
    first = None
    speed = 0.0
    with httpx.stream("POST", f"{engine.base_url}/chat/completions", json=body, timeout=600) as response:
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line.removeprefix("data: "))
            if first is None and any(c["delta"].get("content") for c in chunk.get("choices", [])):
                first = time.perf_counter() - started
            speed = chunk.get("timings", {}).get("predicted_per_second", speed)
    return (first if first is not None else time.perf_counter() - started), speed


def run(replies: int = REPLIES, long_prompts: int = LONG_PROMPTS) -> list[Figure]:
    """Each installed model in turn."""
    settings = load_settings()
    figures: list[Figure] = []
    for model in catalogue(settings):
        if not model.installed or model.path is None:
            continue
        name = model.label.split(" (")[0]
        engine = LocalEngine(model.path, 2048, settings.local_parallel, settings.local_threads)
        started = time.perf_counter()
        engine.ensure_running()
        load = time.perf_counter() - started
        try:
            idle = engine.status().memory_bytes or 0
            _stream(engine, "Hello!", 16)  # warm-up
            speeds = [_stream(engine, f"Story number {i}: tell me a story.", 200)[1] for i in range(replies)]
            firsts = [_stream(engine, _long_prompt(engine, 1500, i), 8)[0] for i in range(long_prompts)]
            busy = engine.status().memory_bytes or 0
        finally:
            engine.stop()
        figures += [
            summarise(SECTION, f"{name}: start (load the file, answer /health)", "s", [load]),
            summarise(SECTION, f"{name}: generation speed, 200-token reply", "tokens/s", speeds),
            summarise(SECTION, f"{name}: first token, new 1,500-token prompt", "s", firsts),
            summarise(SECTION, f"{name}: engine memory idle", "MB", [idle / 2**20]),
            summarise(SECTION, f"{name}: engine memory after the long prompt", "MB", [busy / 2**20]),
        ]
    return figures


if __name__ == "__main__":
    for figure in run():
        print(f"{figure.name:<60} median {figure.median:8.2f} {figure.unit:<9} p95 {figure.p95:8.2f}")
