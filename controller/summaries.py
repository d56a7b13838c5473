"""The running summary of what the model's window dropped, made after a reply for the next question.

A provider that writes well (Groq, an OpenAI-compatible server) folds the dropped messages into the
summary it had; the local engine's small model is not asked (its summaries invent, and it shares the CPU
with the page): its summary is extractive, each message's opening sentence. Either way the summary is
stored with the conversation (`Conversation.digests`) and shown on demand.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from controller import context
from controller.provider_errors import provider_errors
from controller.providers import LOCAL, ProviderConfig, connect, estimated_tokens
from errors import BnaGPTError
from model.conversation import Digest
from model.conversation_store import ConversationStore
from model.message import Message

EXTRACTIVE = "extractive"
MAX_CALLS = 4  # requests to the provider for one update
_log = logging.getLogger(__name__)

PROMPT = """You keep a running summary of a conversation between a user and an assistant. Below are the \
summary so far (it may be empty) and the messages that follow it. Write the updated summary in at most \
{words} words: the facts, names, numbers, decisions and open questions someone continuing the conversation \
needs. Write only the summary, as short lines.

Summary so far:
{summary}

Messages that follow:
{messages}"""


def update(
    store: ConversationStore,
    conversation_id: str,
    config: ProviderConfig,
    count: Callable[[str], int] | None = None,
) -> Digest | None:
    """Summarise what the next question's window will drop and is not summarised yet; store and return
    the summary (None if there was nothing to do). Never raises: a failure leaves the next question to
    send the dropped messages' opening sentences instead."""
    try:
        conversation = store.get(conversation_id)
        counter = count or estimated_tokens
        window = context.ahead(conversation, counter, config.context_window, config.max_tokens)
        if not window.unsummarised:
            return None
        connection = None if config.kind == LOCAL else connect(config)
        room = context.summary_room(context.memory_token_limit(config.context_window, config.max_tokens))
        summary = window.digest.text if window.digest else ""
        pending = list(window.unsummarised)
        made_by = EXTRACTIVE
        if connection is not None:
            # A provider reads about half its window at a time, the summary carried from one part to the
            # next; a backlog beyond MAX_CALLS parts (a long imported chat) is first folded in by its
            # messages' opening sentences.
            parts = _parts(pending, config.context_window * 2)
            older = [m for part in parts[:-MAX_CALLS] for m in part]
            summary = context.fold(summary, older, counter, room) if older else summary
            try:
                for part in parts[-MAX_CALLS:]:
                    summary = _written(connection.llm, summary, part, room)
                    made_by = f"{config.label} · {config.model}"
                pending = []
            except (*provider_errors(), ValueError) as error:
                _log.warning("The summary falls back to sentences picked from the messages: %s", error)
                summary, made_by = window.digest.text if window.digest else "", EXTRACTIVE
            finally:
                connection.close()
        text = context.fold(summary, pending, counter, room)
        digest = Digest(text, window.dropped[-1].id, len(window.dropped), made_by)
        store.add_digest(conversation_id, digest)
        return digest
    except BnaGPTError as error:  # deleted meanwhile, say
        _log.warning("No summary was made: %s", error)
        return None


def _parts(messages: Sequence[Message], chars: int) -> list[list[Message]]:
    """The messages in runs of about `chars` characters (a longer message is a run of its own)."""
    parts: list[list[Message]] = []
    size = chars
    for message in messages:
        length = len(context.model_text(message))
        if size + length > chars:
            parts.append([])
            size = 0
        parts[-1].append(message)
        size += length
    return parts


def _written(llm: object, previous: str, messages: Sequence[Message], room: int) -> str:
    """The provider's summary (cut to whole lines within `room` tokens by the caller); raise ValueError
    if it wrote none."""
    from llama_index.core.base.llms.types import ChatMessage, MessageRole

    listed = "\n\n".join(f"{m.role.value}: {context.model_text(m)}" for m in messages)
    prompt = PROMPT.format(words=room * 2 // 3, summary=previous or "(empty)", messages=listed)
    response = llm.chat([ChatMessage(role=MessageRole.USER, content=prompt)])  # type: ignore[attr-defined]
    text = (response.message.content or "").strip()
    if not text:
        raise ValueError("the provider wrote an empty summary")
    return text
