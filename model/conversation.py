"""A named conversation, its summary for the sidebar, and the rules for names.

Names are data shown to the user, never file paths: any text is allowed but for what cannot be shown on one
line (control characters) or stored as UTF-8 (lone surrogates).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from errors import InvalidName
from model import tree
from model.assistant import Assistant
from model.attachment import Attachment
from model.message import Message, utc_now

MAX_NAME_LENGTH = 100
AUTO_NAME_LENGTH = 48
DEFAULT_NAME = "New chat"


def new_id() -> str:
    """A fresh conversation id."""
    return uuid.uuid4().hex


TRASH_DAYS = 30
MAX_FOLDER_LENGTH = 40


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a conversation shows: pinned, archived, in a folder, in the trash; and who named it."""

    pinned: bool = False
    archived: bool = False  # hidden from the list, still found by search
    folder: str = ""  # "" for none
    trashed_at: datetime | None = None  # in the trash since then; deleted for good after TRASH_DAYS
    named_by_user: bool = False  # an automatic title never replaces a name the user gave

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: only what differs from the default, so most files stay as small as before."""
        data: dict[str, Any] = {}
        if self.pinned:
            data["pinned"] = True
        if self.archived:
            data["archived"] = True
        if self.folder:
            data["folder"] = self.folder
        if self.trashed_at is not None:
            data["trashed_at"] = self.trashed_at.isoformat()
        if self.named_by_user:
            data["named_by_user"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Placement:
        """Read the fields `to_dict` writes; raise ValueError if one is malformed."""
        pinned, archived, named = (data.get(k, False) for k in ("pinned", "archived", "named_by_user"))
        folder = data.get("folder", "")
        if not all(isinstance(v, bool) for v in (pinned, archived, named)) or not isinstance(folder, str):
            raise ValueError("malformed pinned, archived, named_by_user or folder")
        trashed = data.get("trashed_at")
        return cls(
            pinned=pinned,
            archived=archived,
            folder=folder,
            trashed_at=datetime.fromisoformat(trashed) if trashed is not None else None,
            named_by_user=named,
        )


@dataclass(frozen=True, slots=True)
class Digest:
    """A summary of the messages that no longer fit the model's window, sent ahead of it."""

    text: str
    through: str  # the last message it covers; it covers what the model was given before it on its path
    count: int  # how many messages it covers
    made_by: str  # "extractive" (sentences picked from the messages) or the provider's model
    made_at: datetime = field(default_factory=utc_now)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "text": self.text,
            "through": self.through,
            "count": self.count,
            "made_by": self.made_by,
            "made_at": self.made_at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Digest:
        """Read what `to_dict` writes; raise ValueError if it is malformed."""
        if not isinstance(data, Mapping):
            raise ValueError("a summary must be an object")
        text, through, count, made_by = (data.get(k) for k in ("text", "through", "count", "made_by"))
        if not all(isinstance(v, str) for v in (text, through, made_by)) or not isinstance(count, int):
            raise ValueError("a summary needs text, through, count and made_by")
        return cls(text, through, count, made_by, datetime.fromisoformat(data["made_at"]))


MAX_DIGESTS = 8  # summaries kept per chat: one per branch recently answered in


@dataclass(slots=True)
class Conversation:
    """A conversation with all its messages."""

    name: str
    messages: list[Message] = field(default_factory=list)
    id: str = field(default_factory=new_id)
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime = field(default_factory=utc_now)
    placement: Placement = field(default_factory=Placement)
    # A copy of the assistant it was started with (None: the general one), kept as it was then.
    assistant: Assistant | None = None
    files: tuple[Attachment, ...] = ()  # attached to this chat (an assistant's own are in `assistant`)
    # `messages` holds every version of every message (see model/tree.py); `path()` is the conversation
    # the user follows. `chosen`: which child each forking message's conversation goes on with.
    chosen: dict[str, str] = field(default_factory=dict)
    keep_last: int = 0  # only the last N messages are given to the model (0: as many as fit)
    digests: tuple[Digest, ...] = ()  # summaries of what the window dropped, newest last

    def path(self) -> list[Message]:
        """The messages shown and sent: the chosen version at every fork."""
        return tree.path(self.messages, self.chosen)

    def index_of(self, message_id: str) -> int | None:
        """Where a message is in `messages`, or None if it is not in the chat."""
        return next((n for n, m in enumerate(self.messages) if m.id == message_id), None)

    def summary(self) -> ConversationSummary:
        """What the sidebar needs to list it."""
        return ConversationSummary(
            self.id, self.name, self.updated_at, len(self.path()), self.created_at, self.placement
        )


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A conversation as listed, without its messages."""

    id: str
    name: str
    updated_at: datetime
    message_count: int
    created_at: datetime
    placement: Placement = Placement()

    @property
    def listed(self) -> bool:
        """Whether it shows in the sidebar's list (not archived, not in the trash)."""
        return not self.placement.archived and self.placement.trashed_at is None


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


def clean_folder(folder: str) -> str:
    """A folder name without surrounding white space ("" for none), or raise InvalidName."""
    if not isinstance(folder, str):
        raise InvalidName("A folder name must be text.")
    folder = folder.strip()
    if len(folder) > MAX_FOLDER_LENGTH:
        raise InvalidName(f"That folder name has {len(folder)} characters; use at most {MAX_FOLDER_LENGTH}.")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in folder):
        raise InvalidName("A folder name must fit on one line and have no broken characters.")
    return folder


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


def date_group(when: datetime, now: datetime) -> str:
    """The sidebar heading for a conversation last updated at `when`, in the time zone of `now`."""
    day, today = when.astimezone(now.tzinfo).date(), now.date()
    if day >= today:
        return "Today"
    if day == today - timedelta(days=1):
        return "Yesterday"
    if day > today - timedelta(days=7):
        return "Previous 7 days"
    return "Older"


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
