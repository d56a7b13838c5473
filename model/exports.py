"""Conversations as Markdown to download; the loss-free JSON export is `codec.encode_export`."""

from __future__ import annotations

from collections.abc import Sequence

from model.conversation import Conversation
from model.message import MessageStatus, Role

_SPEAKERS = {Role.USER: "You", Role.ASSISTANT: "Assistant", Role.SYSTEM: "System"}
_NOTES = {MessageStatus.STOPPED: " *(stopped)*", MessageStatus.FAILED: " *(interrupted by an error)*"}


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
        if conversation.files:
            lines += ["", "*Files: " + ", ".join(f.name for f in conversation.files) + "*"]
        for message in conversation.messages:
            speaker = _SPEAKERS.get(message.role, message.role.value)
            note = _NOTES.get(message.status, "")
            lines += ["", f"**{speaker}** · {message.created_at:%Y-%m-%d %H:%M}{note}", "", message.content]
            if message.sources:
                lines += [""] + [
                    f"- [{s.number}] {s.name}{', ' + s.location if s.location else ''}: "
                    + " ".join(s.passage.split())
                    for s in message.sources
                ]
        parts.append("\n".join(lines))
    return ("\n\n---\n\n".join(parts) + "\n").encode("utf-8")


def file_stem(name: str) -> str:
    """A safe download file name for a conversation name."""
    words = "".join(c if c.isalnum() or c in "-_" else " " for c in name).split()
    return "-".join(words)[:60].strip("-") or "conversation"
