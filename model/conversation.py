"""A named conversation, its summary for the sidebar, and the rules for names.

Names are data shown to the user, never file paths: any text is allowed but for what cannot be shown on one
line (control characters) or stored as UTF-8 (lone surrogates).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from errors import InvalidName
from model.message import Message, utc_now

MAX_NAME_LENGTH = 100
AUTO_NAME_LENGTH = 48
DEFAULT_NAME = "New chat"


def new_id() -> str:
    """A fresh conversation id."""
    return uuid.uuid4().hex


@dataclass(slots=True)
class Conversation:
    """A conversation with all its messages."""

    name: str
    messages: list[Message] = field(default_factory=list)
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)

    def summary(self) -> ConversationSummary:
        """What the sidebar needs to list it."""
        return ConversationSummary(self.id, self.name, self.updated_at, len(self.messages), self.created_at)


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A conversation as listed, without its messages."""

    id: str
    name: str
    updated_at: datetime
    message_count: int
    created_at: datetime


def clean_name(name: str) -> str:
    """Return the name without surrounding white space, or raise InvalidName saying what to change."""
    if not isinstance(name, str):
        raise InvalidName("A conversation name must be text.")
    name = name.strip()
    if not name:
        raise InvalidName("Type a name for the conversation: it cannot be empty.")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidName(f"That name has {len(name)} characters; use at most {MAX_NAME_LENGTH}.")
    for char in name:
        category = unicodedata.category(char)
        if category == "Cc":
            raise InvalidName("A name must fit on one line: remove line breaks and tabs.")
        if category == "Cs":
            raise InvalidName("That name has a broken character (a lone surrogate); retype it.")
    return name


def auto_name(first_message: str) -> str:
    """A short name from the first words of the first message."""
    words = " ".join(first_message.split())
    if not words:
        return DEFAULT_NAME
    if len(words) <= AUTO_NAME_LENGTH:
        return words
    cut = words[:AUTO_NAME_LENGTH]
    if " " in cut[AUTO_NAME_LENGTH // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,.;:-") + "…"


def filter_by_name(summaries: list[ConversationSummary], query: str) -> list[ConversationSummary]:
    """The conversations whose name contains every word of `query`, ignoring case; all if it is blank."""
    words = query.casefold().split()
    if not words:
        return summaries
    return [s for s in summaries if all(w in s.name.casefold() for w in words)]


_SUFFIX = re.compile(r" \((\d+)\)$")


def unique_name(name: str, taken: set[str]) -> str:
    """The name itself if free, else the name with the first free ` (n)` suffix."""
    if name not in taken:
        return name
    base = _SUFFIX.sub("", name)
    n = 2
    while f"{base} ({n})" in taken:
        n += 1
    return f"{base} ({n})"
