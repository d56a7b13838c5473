"""Conversations as files to download: our loss-free JSON export (which import reads back) and Markdown."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from model.conversation import Conversation
from model.message import MessageStatus, Role, utc_now

EXPORT_FORMAT = "bnagpt-export"
EXPORT_VERSION = 1
_SPEAKERS = {Role.USER: "You", Role.ASSISTANT: "Assistant", Role.SYSTEM: "System"}
_NOTES = {MessageStatus.STOPPED: " *(stopped)*", MessageStatus.FAILED: " *(interrupted by an error)*"}


def conversation_to_dict(conversation: Conversation) -> dict[str, Any]:
    """One conversation with everything we know of it."""
    return {
        "id": conversation.id,
        "name": conversation.name,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        **conversation.placement.to_dict(),
        **({"assistant": conversation.assistant.to_dict()} if conversation.assistant else {}),
        "messages": [m.to_dict() for m in conversation.messages],
    }


def to_json(conversations: Sequence[Conversation]) -> bytes:
    """Our export document: import reads it back exactly (under new ids)."""
    document = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": utc_now().isoformat(),
        "conversations": [conversation_to_dict(c) for c in conversations],
    }
    return (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def to_markdown(conversations: Sequence[Conversation]) -> bytes:
    """Readable Markdown: a heading per conversation, each message under who wrote it and when."""
    parts = []
    for conversation in conversations:
        lines = [
            f"# {conversation.name}",
            "",
            f"*{len(conversation.messages)} messages, {conversation.created_at:%Y-%m-%d %H:%M} to "
            f"{conversation.updated_at:%Y-%m-%d %H:%M} UTC*",
        ]
        for message in conversation.messages:
            speaker = _SPEAKERS.get(message.role, message.role.value)
            note = _NOTES.get(message.status, "")
            lines += ["", f"**{speaker}** · {message.created_at:%Y-%m-%d %H:%M}{note}", "", message.content]
        parts.append("\n".join(lines))
    return ("\n\n---\n\n".join(parts) + "\n").encode("utf-8")


def file_stem(name: str) -> str:
    """A safe download file name for a conversation name."""
    words = "".join(c if c.isalnum() or c in "-_" else " " for c in name).split()
    return "-".join(words)[:60].strip("-") or "conversation"
