"""The local engine on llama.cpp's prebuilt server: several replies at once, model switching, its log."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from errors import EngineFailed
from utils.local_server import MODEL_ALIAS, LocalEngine, bundled_model_path

pytestmark = pytest.mark.engine


def stream_reply(engine: LocalEngine, prompt: str, events: list[tuple[str, str]], name: str) -> None:
    """Stream a long reply, noting when its first text and its end arrive."""
    body = {
        "model": MODEL_ALIAS,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 120,
        "temperature": 0,
        "stream": True,
        "ignore_eos": True,  # a reply long enough to overlap the other
    }
    with httpx.stream("POST", f"{engine.base_url}/chat/completions", json=body, timeout=120) as response:
        for line in response.iter_lines():
            if '"content":"' in line and (name, "first") not in events:
                events.append((name, "first"))
    events.append((name, "end"))


def test_two_chats_are_answered_at_once_not_in_turn(engine):
    """A second tab's reply starts while the first is still streaming (parallel slots), instead of
    waiting for it to end."""
    events: list[tuple[str, str]] = []
    first = threading.Thread(target=stream_reply, args=(engine, "Tell me about the sea.", events, "a"))
    first.start()
    deadline = time.monotonic() + 60
    while ("a", "first") not in events and time.monotonic() < deadline:
        time.sleep(0.01)
    stream_reply(engine, "Tell me about mountains.", events, "b")
    first.join(120)
    assert ("a", "first") in events and ("b", "end") in events and ("a", "end") in events
    assert events.index(("b", "first")) < events.index(("a", "end")), events


def test_a_model_that_cannot_load_is_refused_and_the_engine_goes_back(tmp_path):
    """Switching to a broken file says why, and the engine runs the model it had."""
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not a model")
    engine = LocalEngine(bundled_model_path(), context_size=512, parallel=1)
    try:
        engine.ensure_running()
        with pytest.raises(EngineFailed, match="went back to") as refused:
            engine.switch(broken)
        assert "broken.gguf" in str(refused.value)
        status = engine.status()
        assert status.model_path == bundled_model_path() and status.healthy
    finally:
        engine.stop()


def test_status_reports_memory_and_speed_once_it_has_replied(engine):
    body = {"model": MODEL_ALIAS, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 16}
    httpx.post(f"{engine.base_url}/chat/completions", json=body, timeout=60).raise_for_status()
    status = engine.status()
    assert status.healthy and status.parallel >= 2
    assert status.memory_bytes is not None and status.memory_bytes > 50 * 2**20  # the model is loaded
    assert status.tokens_per_second is not None and status.tokens_per_second > 0
