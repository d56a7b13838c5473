"""Tool calls: a call the model writes as plain JSON runs the tool; everything else stays the reply's text."""

from __future__ import annotations

import json

import pytest
from llama_index.core.tools import FunctionTool

from controller.agent import Agent
from controller.providers import LOCAL, ProviderConfig, connect
from controller.tool_calls import could_be_call, parse
from model.message import Message, Role
from tests.conftest import Scripted
from utils.local_server import MODEL_ALIAS, LocalEngine
from utils.model_install import QWEN_CODER

WEATHER = ["get_weather"]


def weather_tool(seen: list[str]) -> FunctionTool:
    """A tool that records the cities it was asked about."""

    def get_weather(city: str) -> str:
        """The weather in a city."""
        seen.append(city)
        return f"sunny in {city}"

    return FunctionTool.from_defaults(get_weather)


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "get_weather", "arguments": {"city": "Lisbon"}}',
        '```json\n{"name": "get_weather", "parameters": {"city": "Lisbon"}}\n```',
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lisbon"}}\n</tool_call>',
        '{"function": {"name": "get_weather", "arguments": "{\\"city\\": \\"Lisbon\\"}"}}',
        '[{"name": "get_weather", "arguments": {"city": "Lisbon"}}]',
    ],
)
def test_the_shapes_models_write_a_call_in(text):
    (call,) = parse(text, WEATHER)
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Lisbon"}


@pytest.mark.parametrize(
    "text",
    [
        "The weather in Lisbon is sunny.",
        '{"name": "delete_everything", "arguments": {}}',  # not a tool that was offered
        '{"city": "Lisbon"}',  # JSON, but no call
        'Here you go: {"name": "get_weather", "arguments": {"city": "Lisbon"}}',  # prose around it
        '{"name": "get_weather", "arguments": "not json"}',
    ],
)
def test_anything_else_is_not_a_call(text):
    assert parse(text, WEATHER) is None


def test_a_reply_is_held_back_only_while_it_may_be_a_call():
    assert could_be_call("") and could_be_call("  {") and could_be_call("``") and could_be_call("<tool")
    assert not could_be_call("Sure") and not could_be_call("<b>")


def test_a_call_written_as_plain_json_runs_the_tool(scripted_server, scripted_config):
    """Streamed as text, the call is recognised at our HTTP seam: the tool runs with its arguments and the
    model's answer after it is the reply."""
    scripted_server.script = Scripted(
        sequence=[['{"name": "get_weather", ', '"arguments": {"city": "Lisbon"}}'], ["It is ", "sunny."]]
    )
    seen: list[str] = []
    connection = connect(scripted_config)
    agent = Agent(connection.llm, 4096, 48, connection.count_tokens, tools=[weather_tool(seen)])
    assert "".join(agent.stream([], "Weather in Lisbon?")) == "It is sunny."
    assert seen == ["Lisbon"]
    first, second = scripted_server.requests
    assert [t["function"]["name"] for t in first["tools"]] == WEATHER
    assert second["messages"][-1]["role"] == "tool"
    assert second["messages"][-1]["content"] == "sunny in Lisbon"


@pytest.mark.parametrize(
    "chunks",
    [
        ["{not json", " at all}"],
        ['{"name": "delete_everything", ', '"arguments": {}}'],
        ["Sunny", " today."],
    ],
)
def test_text_that_is_not_a_call_reaches_the_user_whole(scripted_server, scripted_config, chunks):
    scripted_server.script = Scripted(stream_chunks=chunks)
    seen: list[str] = []
    connection = connect(scripted_config)
    agent = Agent(connection.llm, 4096, 48, connection.count_tokens, tools=[weather_tool(seen)])
    assert "".join(agent.stream([], "Weather?")) == "".join(chunks)
    assert seen == [] and len(scripted_server.requests) == 1


def test_without_tools_json_replies_are_untouched(scripted_server, scripted_config):
    text = '{"name": "get_weather", "arguments": {"city": "Lisbon"}}'
    scripted_server.script = Scripted(stream_chunks=[text[:10], text[10:]])
    connection = connect(scripted_config)
    agent = Agent(connection.llm, 4096, 48, connection.count_tokens)
    assert "".join(agent.stream([], "Give me JSON")) == text


@pytest.mark.engine
def test_the_bundled_model_still_answers_in_text_when_tools_are_offered(engine, local_config):
    """Offered tools, llama.cpp formats them with the model's own template and leaves text replies free
    (llama-cpp-python's function-calling format used to force a function name into every reply)."""
    connection = connect(local_config.with_changes(base_url=engine.base_url), engine.count_tokens)
    seen: list[str] = []
    agent = Agent(connection.llm, 2048, 48, connection.count_tokens, tools=[weather_tool(seen)])
    reply = "".join(agent.stream([], "Hello! Who are you?"))
    assert len(reply.strip()) > 10 and not reply.startswith("functions.")


@pytest.mark.engine
@pytest.mark.skipif(not QWEN_CODER.file.is_file(), reason="the optional model: `make model` installs it")
def test_the_optional_qwen_model_calls_a_tool_and_remembers_the_chat():
    """Qwen2.5-Coder-1.5B writes its call as a ```json block, which the seam turns into the call; and it
    answers what the bundled model cannot (issue 11's first example)."""
    engine = LocalEngine(QWEN_CODER.file, context_size=2048, parallel=1)
    try:
        engine.ensure_running()
        config = ProviderConfig(
            kind=LOCAL, model=MODEL_ALIAS, base_url=engine.base_url, max_tokens=60, temperature=0
        )
        connection = connect(config, engine.count_tokens)
        seen: list[str] = []
        agent = Agent(connection.llm, 2048, 60, connection.count_tokens, tools=[weather_tool(seen)])
        "".join(agent.stream([], "What is the weather in Lisbon right now?"))
        assert seen and seen[0] == "Lisbon"
        plain = Agent(connection.llm, 2048, 60, connection.count_tokens)
        history = [Message(Role.USER, "Hello, who are you?"), Message(Role.ASSISTANT, "I am an assistant.")]
        assert "who" in "".join(plain.stream(history, "What did I just ask you?")).lower()
    finally:
        engine.stop()
