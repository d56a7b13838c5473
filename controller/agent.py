"""The one seam around llama-index's agent: build it, load a history into its memory, stream a reply.

Only this file knows `OpenAIAgent`; moving to llama-index's `FunctionAgent` later changes nothing else.

Streaming reads the agent's token queue with a blocking `get` instead of `response_gen`, which polls the
queue with `sleep(0)` in a tight loop: on a 2-core machine that spin takes CPU from the engine generating
the very tokens it waits for.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from queue import Empty, Queue
from typing import Any

from llama_index.agent.openai import OpenAIAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms import LLM
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.tools import BaseTool, FunctionTool
from pydantic import Field, create_model

from controller.context import model_text
from controller.tools import Outcome, Running, Tool
from model.assistant import GENERAL
from model.message import Message, Role

SYSTEM_PROMPT = GENERAL.instructions
_POLL_SECONDS = 0.01  # how late we notice the end of a reply, at most
MAX_TOOL_CALLS = 4  # per turn; then the model is told to answer with what it has
REPEATED = (
    "You already made this exact call in this turn; its result is above. Do not call it again: "
    "answer the user now from the results you have."
)
ENOUGH = f"No more tool calls in this turn (the limit is {MAX_TOOL_CALLS}): answer the user now."
# When the model ends its turn on a tool call with no text (small models do), it is asked once more,
# with tools off, to answer from what the tools returned.
ANSWER_NOW = "Answer my question now, from the tool results above."


def _quiet_stream_writer(args: threading.ExceptHookArgs) -> None:
    """Drop the traceback of llama-index's stream-writer thread: `stream` re-raises the same error to
    the caller, which shows it to the user, so printing it again only puts noise in the server log."""
    frame = args.exc_traceback
    while frame is not None:
        if frame.tb_frame.f_code.co_name == "write_response_to_history":
            return
        frame = frame.tb_next
    _default_excepthook(args)


_default_excepthook = threading.excepthook
threading.excepthook = _quiet_stream_writer


def to_chat_message(message: Message) -> ChatMessage:
    """A stored message in llama-index's form, for the agent's memory."""
    return ChatMessage(role=MessageRole(message.role.value), content=model_text(message))


def from_chat_message(message: ChatMessage) -> Message:
    """A llama-index message as ours; a missing content (a tool call) becomes empty text."""
    return Message(role=Role(message.role.value), content=message.content or "")


class _Calls:
    """The tool calls of one turn: repeats and calls past the limit are refused, and Stop ends them."""

    def __init__(self, events: Queue) -> None:
        self.events = events
        self.seen: set[str] = set()
        self.cancelled = False

    def wrap(self, tool: Tool) -> BaseTool:
        """The tool as llama-index calls it, reporting its start and outcome to `events`."""

        def call(**arguments: Any) -> str:
            texts = {k: str(v) for k, v in arguments.items() if k in tool.parameters}
            key = json.dumps([tool.name, texts], sort_keys=True)
            if self.cancelled:
                return "Stopped by the user."
            missing = [n for n in tool.parameters if not texts.get(n, "").strip()]
            if missing:  # small models guess argument names: say the right one instead of running nothing
                return (
                    f"Call {tool.name} again with the argument `{missing[0]}`: {tool.parameters[missing[0]]}"
                )
            if key in self.seen:
                return REPEATED
            if len(self.seen) >= MAX_TOOL_CALLS:
                return ENOUGH
            self.seen.add(key)
            self.events.put(Running(tool.name, tool.shown_input(texts)))
            outcome = tool.run(**texts)
            self.events.put(outcome)
            return outcome.for_model

        fields: dict[str, Any] = {n: (str, Field(description=d)) for n, d in tool.parameters.items()}
        schema = create_model(f"{tool.name}_arguments", **fields)
        return FunctionTool.from_defaults(
            fn=call, name=tool.name, description=tool.description, fn_schema=schema
        )


class Agent:
    """A chat agent with memory, for one browser session."""

    def __init__(
        self,
        llm: LLM,
        context_window: int,
        max_reply_tokens: int,
        count_tokens: Callable[[str], int],
        tools: Sequence[BaseTool] = (),
    ) -> None:
        self._llm = llm
        self._tools = list(tools)
        # The history is chosen before it reaches the memory (controller/context.py: the window, pinned
        # messages, the summary), so the buffer's own trimming must never drop any of it.
        self._memory = ChatMemoryBuffer.from_defaults(
            llm=llm,
            token_limit=context_window,
            tokenizer_fn=lambda text: range(count_tokens(text)),  # only its length is used
        )
        self._system_prompt = ""
        self._agent: OpenAIAgent | None = None
        self._agent_tools: list[BaseTool] = []

    def _agent_for(self, system_prompt: str, tools: list[BaseTool] | None = None) -> OpenAIAgent:
        """The agent with this system prompt (an assistant's instructions) and tools, built again when
        either changes (tools are bound to a turn, so a turn with tools gets a new one)."""
        tools = self._tools + (tools or [])
        if self._agent is None or system_prompt != self._system_prompt or tools or self._agent_tools:
            with warnings.catch_warnings():
                # OpenAIAgent is deprecated upstream in favour of FunctionAgent; this file is where we move.
                # The `deprecated` package forces its warnings past any filter, so silence their display
                # (catch_warnings restores it) instead of printing three notices for every new chat.
                warnings.showwarning = lambda *args, **kwargs: None
                self._agent = OpenAIAgent.from_tools(
                    tools=tools,
                    llm=self._llm,
                    memory=self._memory,
                    system_prompt=system_prompt,
                    verbose=False,
                )
            self._system_prompt = system_prompt
            self._agent_tools = tools
        return self._agent

    def stream(
        self,
        history: Sequence[Message],
        text: str,
        system_prompt: str = SYSTEM_PROMPT,
        tools: Sequence[Tool] = (),
        images: Sequence[tuple[bytes, str]] = (),
    ) -> Iterator[str | Running | Outcome]:
        """Answer `text` after `history` (what the model is given of the conversation, chosen by
        `controller.context.plan`); yield the reply in chunks, and each tool's start (`Running`) and
        `Outcome` as they happen; raise what the provider raised. `images` (bytes, MIME type) go with
        `text` as image parts, for a model that sees them (no tools in that turn)."""
        events: Queue = Queue()
        calls = _Calls(events)
        agent = self._agent_for(system_prompt, [calls.wrap(t) for t in tools])
        self._memory.set([to_chat_message(m) for m in history])
        if images:
            yield from self._with_images(text, system_prompt, images)
            return
        if not tools:
            yield from _tokens(agent.stream_chat(text))
            return
        try:
            wrote = False
            for item in _with_tools(agent, text, events):
                wrote = wrote or (isinstance(item, str) and bool(item.strip()))
                yield item
            if not wrote and calls.seen:
                yield from _tokens(agent.stream_chat(ANSWER_NOW, tool_choice="none"))
        finally:
            calls.cancelled = True

    def _with_images(
        self, text: str, system_prompt: str, images: Sequence[tuple[bytes, str]]
    ) -> Iterator[str]:
        """A turn with image parts: `OpenAIAgent.stream_chat` takes text only, so the model is asked
        directly with the same memory window and system prompt."""
        from llama_index.core.base.llms.types import ImageBlock, TextBlock

        messages = [ChatMessage(role=MessageRole.SYSTEM, content=system_prompt)] if system_prompt else []
        messages += self._memory.get_all()
        parts = [TextBlock(text=text or "What is in this image?")]
        parts += [ImageBlock(image=data, image_mimetype=mime) for data, mime in images]
        messages.append(ChatMessage(role=MessageRole.USER, blocks=parts))
        for chunk in self._llm.stream_chat(messages):
            if chunk.delta:
                yield chunk.delta


def _with_tools(agent: OpenAIAgent, text: str, events: Queue) -> Iterator[str | Running | Outcome]:
    """Run the turn in a thread (llama-index runs tools inside `stream_chat`, before it returns), passing
    on tool events while it works, then the reply's chunks."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["response"] = agent.stream_chat(text)
        except BaseException as error:  # re-raised in the caller's thread
            box["error"] = error
        events.put(None)

    threading.Thread(target=work, name="agent-turn", daemon=True).start()
    while True:
        try:
            event = events.get(timeout=0.1)
        except Empty:
            yield ""  # the page may redraw, and Stop still works
            continue
        if event is None:
            break
        yield event
    while not events.empty():
        event = events.get()
        if event is not None:
            yield event
    if "error" in box:
        raise box["error"]
    yield from _tokens(box["response"])


def _tokens(response: Any) -> Iterator[str]:
    """The chunks of a streaming response, read with a blocking `get` (see the module's docstring)."""
    queue = response.queue
    while True:
        try:
            delta = queue.get(timeout=_POLL_SECONDS)
        except Empty:
            if response.exception is not None:
                raise response.exception from None
            if response.is_done and queue.empty():
                return
            continue
        if delta:
            yield delta
        elif response.exception is not None:  # the writer's "" after a failure
            raise response.exception from None
