"""The Message dataclass, its JSON form, and its llama-index form at the agent seam."""

from datetime import UTC, datetime

import pytest
from llama_index.core.base.llms.types import ChatMessage

from controller.agent import from_chat_message, to_chat_message
from model.message import Message, MessageStatus, Role


@pytest.mark.parametrize("role", [Role.USER, Role.ASSISTANT, Role.SYSTEM])
def test_chat_message_round_trip(role):
    """A message survives the trip to llama-index and back."""
    message = Message(role, "Olá, *mundo* <b>!</b> 🌍")
    chat = to_chat_message(message)
    assert isinstance(chat, ChatMessage)
    assert (chat.role, chat.content) == (role, "Olá, *mundo* <b>!</b> 🌍")
    back = from_chat_message(chat)
    assert (back.role, back.content) == (role, message.content)


def test_chat_message_without_content_becomes_empty_text():
    """An assistant tool-call message has no text; we keep it as empty, not None."""
    assert from_chat_message(ChatMessage(role="assistant", content=None)).content == ""


@pytest.mark.parametrize("status", list(MessageStatus))
def test_dict_round_trip(status):
    """The JSON form keeps role, content, time and status."""
    message = Message(Role.ASSISTANT, "line 1\nline 2", status=status)
    assert Message.from_dict(message.to_dict()) == message


def test_complete_status_is_not_written():
    """The common case stays as small as the article's format."""
    assert "status" not in Message(Role.USER, "hi").to_dict()


def test_article_dict_is_read():
    """The article's {role, content} messages load, with the fallback time."""
    when = datetime(2024, 6, 17, tzinfo=UTC)
    message = Message.from_dict({"role": "user", "content": "oi"}, default_time=when)
    assert (message.role, message.content, message.created_at) == (Role.USER, "oi", when)


@pytest.mark.parametrize(
    "data",
    [
        "not an object",
        {"role": "wizard", "content": "x"},
        {"role": "tool", "content": "x"},
        {"role": "user", "content": 42},
        {"role": "user", "content": "x", "created_at": "yesterday"},
        {"role": "user", "content": "x", "status": "exploded"},
    ],
)
def test_malformed_dict_is_refused(data):
    """Anything that is not a message raises ValueError, which the store reports."""
    with pytest.raises(ValueError):
        Message.from_dict(data)
