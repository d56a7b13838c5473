"""The one seam around llama-index's agent: build it, load a history into its memory, stream a reply.

Only this file knows `OpenAIAgent`; moving to llama-index's `FunctionAgent` later changes nothing else.

Streaming reads the agent's token queue with a blocking `get` instead of `response_gen`, which polls the
queue with `sleep(0)` in a tight loop: on a 2-core machine that spin takes CPU from the engine generating
the very tokens it waits for.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from queue import Empty

from llama_index.agent.openai import OpenAIAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.llms import LLM
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.tools import BaseTool

from model.assistant import GENERAL
from model.message import Message, Role

SYSTEM_PROMPT = GENERAL.instructions
# Room kept free for the system prompt and the user's new message.
_PROMPT_RESERVE = 256
_MESSAGE_OVERHEAD = 6  # the chat template around each message: <|im_start|>role\n … <|im_end|>\n
_POLL_SECONDS = 0.01  # how late we notice the end of a reply, at most


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


def stable_window(token_counts: Sequence[int], budget: int) -> int:
    """Where the history sent to the model starts, given each message's size in tokens.

    When the history outgrows the budget we drop the oldest messages down to half of it, not just enough
    to fit, and keep that start until the budget is exceeded again. The prompt then begins the same way
    for many turns, so llama.cpp reuses its cache of it instead of reading the whole window again every
    turn (about 5 s for 1,000 tokens with the bundled model on 2 cores, against 0.1 s when cached). The
    start depends only on the messages before it, so turns that add messages never move it back.
    """
    start, size = 0, 0
    for end, tokens in enumerate(token_counts):
        size += tokens
        if size > budget:
            while start < end and size > budget // 2:  # the newest message stays if it fits alone
                size -= token_counts[start]
                start += 1
            if size > budget:
                size, start = 0, end + 1
    return start


def to_chat_message(message: Message) -> ChatMessage:
    """A stored message in llama-index's form, for the agent's memory."""
    return ChatMessage(role=MessageRole(message.role.value), content=message.content)


def from_chat_message(message: ChatMessage) -> Message:
    """A llama-index message as ours; a missing content (a tool call) becomes empty text."""
    return Message(role=Role(message.role.value), content=message.content or "")


def memory_token_limit(context_window: int, max_reply_tokens: int) -> int:
    """How many tokens of history fit beside the reply and the new message."""
    return max(256, context_window - max_reply_tokens - _PROMPT_RESERVE)


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
        self._count = count_tokens
        self._llm = llm
        self._tools = list(tools)
        self._room = context_window - max_reply_tokens  # what the whole prompt may take
        self._memory = ChatMemoryBuffer.from_defaults(
            llm=llm,
            token_limit=memory_token_limit(context_window, max_reply_tokens),
            tokenizer_fn=lambda text: range(count_tokens(text)),  # only its length is used
        )
        self._system_prompt = ""
        self._agent: OpenAIAgent | None = None

    def _agent_for(self, system_prompt: str) -> OpenAIAgent:
        """The agent with this system prompt (an assistant's instructions), built again when it changes."""
        if self._agent is None or system_prompt != self._system_prompt:
            with warnings.catch_warnings():
                # OpenAIAgent is deprecated upstream in favour of FunctionAgent; this file is where we move.
                # The `deprecated` package forces its warnings past any filter, so silence their display
                # (catch_warnings restores it) instead of printing three notices for every new chat.
                warnings.showwarning = lambda *args, **kwargs: None
                self._agent = OpenAIAgent.from_tools(
                    tools=self._tools,
                    llm=self._llm,
                    memory=self._memory,
                    system_prompt=system_prompt,
                    verbose=False,
                )
            self._system_prompt = system_prompt
        return self._agent

    def stream(
        self, history: Sequence[Message], text: str, system_prompt: str = SYSTEM_PROMPT
    ) -> Iterator[str]:
        """Answer `text` after `history`; yield the reply in chunks; raise what the provider raised."""
        agent = self._agent_for(system_prompt)
        sizes = [self._count(m.content) + _MESSAGE_OVERHEAD for m in history]
        start = stable_window(sizes, self._memory.token_limit)
        # A new message longer than the room kept for it pushes out more history, this turn only.
        fixed = self._count(system_prompt) + self._count(text) + 2 * _MESSAGE_OVERHEAD
        while start < len(sizes) and sum(sizes[start:]) + fixed > self._room:
            start += 1
        self._memory.set([to_chat_message(m) for m in history[start:]])
        response = agent.stream_chat(text)
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
