"""Conversations as Markdown to download; the loss-free JSON export is `codec.encode_export`."""

from __future__ import annotations

from collections.abc import Sequence

from model.conversation import Conversation
from model.media import Kind, Media, Reading
from model.message import MessageStatus, Role
from model.step import Step

_SPEAKERS = {Role.USER: "You", Role.ASSISTANT: "Assistant", Role.SYSTEM: "System"}
_NOTES = {MessageStatus.STOPPED: " *(stopped)*", MessageStatus.FAILED: " *(interrupted by an error)*"}


def to_markdown(conversations: Sequence[Conversation]) -> bytes:
    """Readable Markdown: a heading per conversation, each message of the conversation as shown (the
    chosen version at every fork) under who wrote it and when."""
    parts = []
    for conversation in conversations:
        shown = conversation.path()
        lines = [
            f"# {conversation.name}",
            "",
            f"*{len(shown)} messages, {conversation.created_at:%Y-%m-%d %H:%M} to "
            f"{conversation.updated_at:%Y-%m-%d %H:%M} UTC*",
        ]
        if conversation.files:
            lines += ["", "*Files: " + ", ".join(f.name for f in conversation.files) + "*"]
        for message in shown:
            speaker = _SPEAKERS.get(message.role, message.role.value)
            note = _NOTES.get(message.status, "")
            lines += ["", f"**{speaker}** · {message.created_at:%Y-%m-%d %H:%M}{note}", "", message.content]
            for item in message.media:
                lines += ["", *_media(item)]
            for step in message.steps:
                lines += ["", *_step(step)]
            if message.sources:
                lines += [""] + [
                    f"- [{s.number}] {s.name}{', ' + s.location if s.location else ''}"
                    + (f" <{s.url}>" if s.url else "")
                    + ": "
                    + " ".join(s.passage.split())
                    for s in message.sources
                ]
        parts.append("\n".join(lines))
    return ("\n\n---\n\n".join(parts) + "\n").encode("utf-8")


_TOOL_NAMES = {"run_python": "Ran Python", "web_search": "Searched the web", "make_image": "Made an image"}
_READINGS = {Reading.OCR: "text read with OCR", Reading.TRANSCRIPT: "transcript"}


def _media(item: Media) -> list[str]:
    """An image or a sound: its name, and what was read from it, fenced."""
    kind = "Image" if item.kind is Kind.IMAGE else "Sound"
    lines = [f"> *{kind}: {item.name}*" + (f" ({_READINGS[item.reading]})" if item.text else "")]
    if item.text:
        fence = "`" * max(3, _longest_backticks(item.text) + 1)
        lines += ["", fence, item.text, fence]
    return lines


def _step(step: Step) -> list[str]:
    """A tool step: what it was given, what it gave back, in fences long enough for any backticks."""
    title = _TOOL_NAMES.get(step.tool, step.tool)
    who = " (by you)" if step.by_user else ""
    lines = [f"> **{title}**{who} · {step.seconds:.1f} s" + (" · failed" if step.error else "")]
    language = "python" if step.tool == "run_python" else ""
    for body, lang in ((step.input, language), (step.output, ""), (step.error, "")):
        if body:
            fence = "`" * max(3, _longest_backticks(body) + 1)
            lines += ["", f"{fence}{lang}", body, fence]
    if step.files:
        lines += ["", "Files: " + ", ".join(f.name for f in step.files)]
    return lines


def _longest_backticks(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def file_stem(name: str) -> str:
    """A safe download file name for a conversation name."""
    words = "".join(c if c.isalnum() or c in "-_" else " " for c in name).split()
    return "-".join(words)[:60].strip("-") or "conversation"
