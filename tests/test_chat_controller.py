"""The chat controller against the real local engine, and against HTTP failures the engine cannot script."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import psutil
import pytest
from llama_index.core.base.llms.types import ChatMessage

from controller.chat import ChatSession
from controller.providers import OPENAI, ProviderConfig, connect
from errors import (
    AuthenticationFailed,
    BnaGPTError,
    ContextTooLong,
    EngineFailed,
    ModelNotFound,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    StreamInterrupted,
)
from model.json_store import JsonConversationStore
from model.message import Message, MessageStatus, Role
from tests.conftest import PROJECT, Scripted, stored_messages, wait_until
from utils.local_server import LocalEngine, bundled_model_path, free_port

pytestmark = pytest.mark.engine


def test_reply_streams_and_is_saved(store, data_file, engine, local_config):
    """The reply arrives in several chunks, and both sides of the turn are in the file."""
    chat = ChatSession(store, engine)
    reply = chat.send("Write two sentences about the sea.", local_config)
    assert stored_messages(data_file) == [("user", "Write two sentences about the sea.", "complete")]
    chunks = list(reply)
    assert len(chunks) > 3
    assert reply.status == MessageStatus.COMPLETE
    assert stored_messages(data_file)[-1] == ("assistant", "".join(chunks), "complete")
    assert "".join(chunks).strip()


@pytest.fixture
def recording_proxy(engine: LocalEngine) -> Iterator[tuple[str, list[dict]]]:
    """A loopback proxy in front of the real engine that records each request body."""
    bodies: list[dict] = []

    class Proxy(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers["content-length"]))
            bodies.append(json.loads(raw))
            headers = {"content-type": "application/json"}
            with httpx.stream(
                "POST", engine.base_url + self.path.removeprefix("/v1"), content=raw, headers=headers
            ) as upstream:
                self.send_response(upstream.status_code)
                self.send_header("content-type", upstream.headers["content-type"])
                self.end_headers()
                for chunk in upstream.iter_raw():
                    self.wfile.write(chunk)
                    self.wfile.flush()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", bodies
    server.shutdown()
    server.server_close()


def test_memory_rebuilt_from_a_loaded_conversation_reaches_the_model(store, recording_proxy):
    """Opening a saved chat and asking again sends its whole history to the real engine."""
    url, bodies = recording_proxy
    saved = store.create(
        "Ana's chat",
        [
            Message(Role.USER, "My name is Ana and I live in Porto."),
            Message(Role.ASSISTANT, "Nice to meet you, Ana!"),
            Message(Role.ASSISTANT, "half an answ", status=MessageStatus.FAILED),
        ],
    )
    chat = ChatSession(store)  # a new browser session
    chat.open(saved.id)
    config = ProviderConfig(kind=OPENAI, model="local", base_url=url, max_tokens=24, temperature=0)
    reply = "".join(chat.send("Where do I live?", config))
    assert reply.strip()
    sent = [(m["role"], m["content"]) for m in bodies[-1]["messages"]]
    assert sent[0][0] == "system"
    assert sent[1:] == [
        ("user", "My name is Ana and I live in Porto."),
        ("assistant", "Nice to meet you, Ana!"),
        ("user", "Where do I live?"),
    ]


def test_stop_keeps_the_partial_reply_and_stops_the_engine(store, data_file, engine, local_config):
    """Stopping midway saves what arrived, marked stopped; the engine drops the request."""
    chat = ChatSession(store, engine)
    config = local_config.with_changes(max_tokens=400)
    predicted_before = engine.metrics()["tokens_predicted_total"]
    reply = chat.send("Tell me a very long story about a dragon and a knight.", config)
    received = []
    for chunk in reply:
        received.append(chunk)
        if len(received) == 5:
            break
    reply.close()
    assert reply.status == MessageStatus.STOPPED
    assert stored_messages(data_file)[-1] == ("assistant", "".join(received), "stopped")
    # The engine ends the request when the connection closes, long before its 400 tokens.
    assert wait_until(lambda: engine.metrics()["requests_processing"] == 0, 10)
    assert engine.metrics()["tokens_predicted_total"] - predicted_before < 200
    follow_up = "".join(chat.send("Thanks. Say OK.", local_config))
    assert follow_up.strip()
    roles = [m[0] for m in stored_messages(data_file)]
    assert roles == ["user", "assistant", "user", "assistant"]


def test_missing_model_file_is_explained_and_the_message_kept(store, data_file, local_config, tmp_path):
    """With no model file the user is told how to fix it; their message stays saved."""
    chat = ChatSession(store, LocalEngine(tmp_path / "missing.gguf"))
    reply = chat.send("Are you there?", local_config)
    with pytest.raises(EngineFailed, match="BNAGPT_LOCAL_MODEL"):
        list(reply)
    assert stored_messages(data_file) == [("user", "Are you there?", "complete")]
    assert chat.needs_reply(chat.conversation())


def test_dead_engine_is_restarted_with_a_notice(store, data_file, local_config):
    """If the engine process dies, the next message restarts it, says so, and is answered."""
    engine = LocalEngine(bundled_model_path(), context_size=1024)
    try:
        engine.ensure_running()
        os.kill(engine.pid, signal.SIGKILL)
        assert wait_until(lambda: not engine.status().running, 10)
        chat = ChatSession(store, engine)
        reply = chat.send("Hello again", local_config)
        assert "".join(reply).strip()
        assert reply.notice is not None and "restarted" in reply.notice
        assert engine.status().healthy and engine.restarts == 1
    finally:
        engine.stop()


def test_the_engine_dies_with_a_killed_app(tmp_path):
    """kill -9 of the app process takes its engine with it at once, instead of leaving it orphaned."""
    script = (
        "import sys, time\n"
        "from utils.local_server import LocalEngine, bundled_model_path\n"
        "engine = LocalEngine(bundled_model_path(), context_size=512)\n"
        "engine.ensure_running()\n"
        "print(engine.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    app = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    try:
        engine = psutil.Process(int(app.stdout.readline()))
        app.send_signal(signal.SIGKILL)
        app.wait(10)

        def gone() -> bool:
            try:
                return engine.status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        assert wait_until(gone, 3), "the engine outlived the app"
    finally:
        app.kill()


def test_a_tool_call_in_the_history_is_accepted_by_the_engine(engine):
    """After a tool call llama-index sends the assistant's turn with `content: null` and the tool's answer
    as a `tool` message; the engine takes both and answers."""
    # Greedy: at 0.7 the model's first sampled token was sometimes the end (an empty answer, once in CI).
    config = ProviderConfig(
        kind="local", model="local", base_url=engine.base_url, max_tokens=8, temperature=0.0
    )
    tool_call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "lookup", "arguments": "{}"},
    }
    history = [
        ChatMessage(role="user", content="Look it up."),
        ChatMessage(role="assistant", content=None, additional_kwargs={"tool_calls": [tool_call]}),
        ChatMessage(role="tool", content="42", additional_kwargs={"tool_call_id": "call_1"}),
        ChatMessage(role="user", content="And?"),
    ]
    response = connect(config).llm.chat(history)
    assert response.raw.choices[0].finish_reason in ("stop", "length")
    assert response.message.content


# -- failures a real server does not produce on demand: a scripted HTTP server --------------------------


@pytest.mark.parametrize(
    ("script", "error", "says"),
    [
        (
            Scripted(401, {"error": {"message": "Invalid API Key"}}),
            AuthenticationFailed,
            "refused the API key",
        ),
        (Scripted(404, {"error": {"message": "model not found"}}), ModelNotFound, "does not know the model"),
        (Scripted(429, {"error": {"message": "slow"}}, {"retry-after": "7"}), RateLimited, "Wait 7 s"),
        (Scripted(413, {"error": {"message": "too large"}}), RateLimited, "too large"),
        (
            Scripted(400, {"error": {"message": "This model's maximum context length is 8192 tokens"}}),
            ContextTooLong,
            "context window",
        ),
        (Scripted(500, {"error": {"message": "boom"}}), ProviderUnavailable, "internal error"),
        (Scripted(delay=3.0, stream_chunks=["late"]), ProviderTimeout, "did not answer within"),
    ],
)
def test_provider_failures_are_explained(
    store, data_file, scripted_server, scripted_config, script, error, says
):
    """Each failure gets its own actionable message; the user's message stays; the key is never shown."""
    scripted_server.script = script
    chat = ChatSession(store)
    reply = chat.send("Hello?", scripted_config)
    with pytest.raises(error, match=says) as raised:
        list(reply)
    assert "sk-test-secret" not in str(raised.value)
    assert stored_messages(data_file) == [("user", "Hello?", "complete")]
    assert chat.needs_reply(chat.conversation())
    if error is RateLimited and script.headers:
        assert raised.value.retry_after == 7


def test_stream_cut_halfway_keeps_what_arrived_and_retry_answers(
    store, data_file, scripted_server, scripted_config
):
    """A stream that breaks off keeps its partial text as failed; Retry answers without it."""
    scripted_server.script = Scripted(stream_chunks=["Hello", " wor"], cut_stream=True)
    chat = ChatSession(store)
    reply = chat.send("Greet me", scripted_config)
    with pytest.raises(StreamInterrupted, match="broke off"):
        list(reply)
    assert stored_messages(data_file)[-1] == ("assistant", "Hello wor", "failed")
    assert chat.needs_reply(chat.conversation())

    scripted_server.script = Scripted(stream_chunks=["Hello", " world!"])
    assert "".join(chat.retry(scripted_config)) == "Hello world!"
    assert stored_messages(data_file)[-1] == ("assistant", "Hello world!", "complete")
    replies = [r for r in scripted_server.requests if r.get("stream")]  # not the title's request
    sent = [(m["role"], m["content"]) for m in replies[-1]["messages"]]
    assert sent[1:] == [("user", "Greet me")]
    assert not chat.needs_reply(chat.conversation())


def test_server_not_running_is_explained(store, data_file):
    """Connection refused names the server and says what to check."""
    config = ProviderConfig(kind=OPENAI, model="m", base_url=f"http://127.0.0.1:{free_port()}/v1")
    chat = ChatSession(store)
    with pytest.raises(ProviderUnavailable, match="Could not connect"):
        list(chat.send("Anyone?", config))
    assert stored_messages(data_file) == [("user", "Anyone?", "complete")]


def test_missing_groq_key_is_explained(store):
    """Groq without a key says where to put one."""
    config = ProviderConfig(kind="groq", model="llama-3.3-70b-versatile")
    with pytest.raises(ProviderError, match="GROQ_API_KEY"):
        list(ChatSession(store).send("hi", config))


def test_unknown_provider_is_refused(store):
    """A typo in BNAGPT_PROVIDER gives the list of valid names."""
    with pytest.raises(ProviderError, match="local, groq, openai"):
        list(ChatSession(store).send("hi", ProviderConfig(kind="gpt5", model="x")))


def test_message_longer_than_the_context_is_explained(store, data_file, engine, local_config):
    """A message that cannot fit the local model's window says so and how to fix it; it stays saved."""
    huge = "Please summarise this. " + "The quick brown fox jumps over the lazy dog. " * 400
    chat = ChatSession(store, engine)
    with pytest.raises(ContextTooLong, match="Shorten the message"):
        list(chat.send(huge, local_config))
    assert stored_messages(data_file) == [("user", huge, "complete")]


def test_long_chat_keeps_being_answered(store, data_file, engine, local_config):
    """A Portuguese chat far longer than the window keeps getting answers, turn after turn.

    Portuguese takes about 25 % more SmolLM2 tokens than tiktoken counts, so a budget kept in tiktoken's
    tokens would overflow the 2,048-token window here.
    """
    sentence = "Conversamos sobre rios, montanhas, pão de queijo e a história de cidades pequenas. "
    history = []
    for turn in range(40):
        history += [
            Message(Role.USER, f"Vez {turn}: " + sentence * 3),
            Message(Role.ASSISTANT, sentence * 3),
        ]
    long_chat = store.create("Longa", history)
    chat = ChatSession(store, engine)
    chat.open(long_chat.id)
    for question in ("Diga OK.", "E agora?", "Mais uma?", "Última?"):
        assert "".join(chat.send(question, local_config)).strip()
    saved = stored_messages(data_file)
    assert len(saved) == 88
    assert [status for _, _, status in saved[-8:]] == ["complete"] * 8


def test_two_tabs_replying_at_once_both_get_their_whole_reply(data_file, engine, local_config):
    """A second tab's message waits its turn instead of cutting the first tab's reply short."""
    prompt_a, prompt_b = "Describe a forest in detail.", "Describe the sea in detail."
    alone = "".join(ChatSession(JsonConversationStore(data_file), engine).send(prompt_a, local_config))
    first_chunk = threading.Event()
    replies: dict[str, str] = {}

    def tab(name: str, prompt: str) -> None:
        parts = []
        try:
            for chunk in ChatSession(JsonConversationStore(data_file), engine).send(prompt, local_config):
                parts.append(chunk)
                first_chunk.set()
        except BnaGPTError as error:
            parts.append(f"[{type(error).__name__}: {error}]")
        replies[name] = "".join(parts)

    a = threading.Thread(target=tab, args=("a", prompt_a))
    a.start()
    assert first_chunk.wait(30)
    b = threading.Thread(target=tab, args=("b", prompt_b))
    b.start()
    a.join(60)
    b.join(60)
    assert replies["a"] == alone
    assert replies["b"].strip()


def test_a_killed_app_keeps_the_part_of_the_reply_the_user_saw(data_file, tmp_path):
    """kill -9 of the app while a reply streams: what had arrived a second before is in the chat, kept
    as a failed reply (with Retry), not lost with the process."""
    from tests.conftest import _chunk

    class Slow(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            try:
                for number in range(200):
                    self.wfile.write(_chunk(f"word{number} "))
                    self.wfile.flush()
                    time.sleep(0.1)
                self.wfile.write(b"data: [DONE]\n\n")
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from controller.chat import ChatSession\n"
        "from controller.providers import OPENAI, ProviderConfig\n"
        "from model.json_store import JsonConversationStore\n"
        "chat = ChatSession(JsonConversationStore(Path(sys.argv[1])))\n"
        "config = ProviderConfig(kind=OPENAI, model='m', base_url=sys.argv[2], timeout=30)\n"
        "for chunk in chat.send('Count for me.', config):\n"
        "    print(chunk, flush=True)\n"
    )
    url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    app = subprocess.Popen(
        [sys.executable, "-c", script, str(data_file), url], cwd=PROJECT, stdout=subprocess.PIPE, text=True
    )
    try:
        seen = []
        while len(seen) < 30:  # about 3 seconds of reply on the screen
            seen.append(app.stdout.readline().strip())
        app.send_signal(signal.SIGKILL)
        app.wait(10)
    finally:
        app.kill()
        server.shutdown()
        server.server_close()
    (question, reply) = stored_messages(data_file)
    assert question == ("user", "Count for me.", "complete")
    assert reply[0] == "assistant" and reply[2] == "failed"
    kept = reply[1].split()
    assert len(kept) >= 15 and kept == [f"word{n}" for n in range(len(kept))]
