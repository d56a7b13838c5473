"""One chat message, and its JSON form; `controller/agent.py` converts it for llama-index."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from model.attachment import Source
from model.media import Media
from model.step import Step


class Role(StrEnum):
    """Who wrote a message; the values are the OpenAI protocol's (and llama-index's) role names.

    Tool traffic lives only in the agent's memory, so a stored conversation holds these three.
    """

    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


def utc_now() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


def new_message_id() -> str:
    """A fresh message id, unique within its conversation."""
    return uuid.uuid4().hex[:16]


# Ids are ours (16 hex digits), "m<n>" given to older files' messages, or an import's own (ChatGPT's UUIDs).
MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Context(StrEnum):
    """Whether the model is given a message: as the window allows, always, or never."""

    AUTO = "auto"
    ALWAYS = "always"  # pinned into what the model reads, even where the window would drop it
    NEVER = "never"  # left out of what the model reads; shown dimmed


class MessageStatus(StrEnum):
    """How a reply ended."""

    COMPLETE = "complete"
    STOPPED = "stopped"  # the user pressed Stop; the text is what had arrived
    FAILED = "failed"  # the provider failed midway; the text is what had arrived
    INVALID = "invalid"  # complete, but not the JSON the chat's JSON mode asks for (kept as written)


@dataclass(slots=True)
class Message:
    """A message of a conversation as the user saw it."""

    role: Role
    content: str
    created_at: datetime = field(default_factory=utc_now)
    status: MessageStatus = MessageStatus.COMPLETE
    # The file passages given to the model with this reply, numbered as it may cite them.
    sources: tuple[Source, ...] = ()
    # The tools run for this reply (by the model, or by the user's Run button), in order.
    steps: tuple[Step, ...] = ()
    # Images and sounds that came with it (attached, recorded, or made for a reply).
    media: tuple[Media, ...] = ()
    id: str = field(default_factory=new_message_id)
    # The message it answers or follows (None: a first message). Siblings are versions: an edited
    # question, a regenerated reply; `Conversation.chosen` says which one the conversation follows.
    parent: str | None = None
    context: Context = Context.AUTO
    model: str = ""  # which provider and model wrote a reply, as the user chose them

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: `role` and `content` first, so article-era readers still understand it."""
        data: dict[str, Any] = {
            "role": self.role.value,
            "content": self.content,
            "created_at": self.created_at.isoformat(),
            "id": self.id,
            "parent": self.parent,
        }
        if self.context is not Context.AUTO:
            data["context"] = self.context.value
        if self.model:
            data["model"] = self.model
        if self.status is not MessageStatus.COMPLETE:
            data["status"] = self.status.value
        if self.sources:
            data["sources"] = [s.to_dict() for s in self.sources]
        if self.steps:
            data["steps"] = [s.to_dict() for s in self.steps]
        if self.media:
            data["media"] = [m.to_dict() for m in self.media]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], default_time: datetime | None = None) -> Message:
        """Parse the JSON form (ours or the article's `{role, content}`); raise ValueError if malformed.
        A missing id is a new one and a missing parent None: `codec` links older files' messages."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a message must be an object, not {type(data).__name__}")
        try:
            role = Role(data.get("role"))
        except ValueError:
            raise ValueError(f"message role {data.get('role')!r} cannot be stored") from None
        content = data.get("content", "")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise ValueError("message content must be text")
        created = data.get("created_at")
        if created is None:
            created_at = default_time or utc_now()
        else:
            created_at = datetime.fromisoformat(created)
            if created_at.tzinfo is None:
                created_at = created_at.replace(tzinfo=UTC)
        sources = data.get("sources", [])
        steps = data.get("steps", [])
        media = data.get("media", [])
        if not isinstance(sources, list) or not isinstance(steps, list) or not isinstance(media, list):
            raise ValueError("message sources, steps and media must be lists")
        message_id, parent = data.get("id"), data.get("parent")
        for value in (message_id, parent):
            if value is not None and (not isinstance(value, str) or not MESSAGE_ID.fullmatch(value)):
                raise ValueError(f"{value!r} is not a message id")
        return cls(
            role=role,
            content=content,
            created_at=created_at,
            status=MessageStatus(data.get("status", MessageStatus.COMPLETE)),
            sources=tuple(Source.from_dict(s) for s in sources),
            steps=tuple(Step.from_dict(s) for s in steps),
            media=tuple(Media.from_dict(m) for m in media),
            id=message_id or new_message_id(),
            parent=parent,
            context=Context(data.get("context", Context.AUTO)),
            model=str(data.get("model", "")),
        )
