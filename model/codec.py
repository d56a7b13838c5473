"""The conversation format: bytes <-> Conversation, every version bnaGPT has read or written, one place.

The JSON store, the export, the importer and the backups all go through here, so the shape of a
conversation on disk is written once. What is written:
- `conversations.json` (format `bnagpt-conversations`, version 3): the index, a line per conversation with
  its name, times, message count and placement;
- `conversations/<id>.json` (format `bnagpt-conversation`, version 3): one conversation, a message a line,
  every version of every message (the tree: each message's `id`, and its `parent` where that is not the
  line before), the `chosen` version at each fork, and the summaries of what the model's window dropped;
- exports and backups (format `bnagpt-export`, version 2): a list of whole conversations with their ids.
What is read besides: version 2 (the same files without the tree: each message follows the line before),
bnaGPT's single-file version 1 (`bnagpt-conversations` holding whole conversations) and the article's
`{"name": [{"role": …, "content": …}]}`, which has no ids or times.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from errors import UnsupportedDataFile
from model import tree
from model.assistant import Assistant
from model.attachment import Attachment
from model.conversation import MAX_DIGESTS, Conversation, ConversationSummary, Digest, Placement
from model.message import Message, utc_now

INDEX_FORMAT = "bnagpt-conversations"
CONVERSATION_FORMAT = "bnagpt-conversation"
EXPORT_FORMAT = "bnagpt-export"
VERSION = 3
EXPORT_VERSION = 2
# Ids become file names: anything else (from a hand-edited index or a URL) is refused, never a path.
ID = re.compile(r"[0-9a-f]{32}")
# Article-era files have no ids; deriving them from the name keeps them stable until the first rewrite.
_ARTICLE_NAMESPACE = uuid.UUID("6f1c1f4e-3d1a-4a0e-9a43-6b2a5c0d7e11")

IndexKind = Literal["index", "v2", "v1", "article"]


class Unreadable(ValueError):
    """The bytes are not what they should be; the message says why, in words."""


# -- one conversation ------------------------------------------------------------------------------


def conversation_to_dict(conversation: Conversation, with_id: bool = True) -> dict[str, Any]:
    """The JSON form of a conversation: everything we know of it."""
    data: dict[str, Any] = {"id": conversation.id} if with_id else {}
    data |= {
        "name": conversation.name,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        **conversation.placement.to_dict(),
    }
    if conversation.assistant is not None:
        data["assistant"] = conversation.assistant.to_dict()
    if conversation.files:
        data["files"] = [f.to_dict() for f in conversation.files]
    if conversation.chosen:
        data["chosen"] = dict(conversation.chosen)
    if conversation.keep_last:
        data["keep_last"] = conversation.keep_last
    if conversation.digests:
        data["digests"] = [d.to_dict() for d in conversation.digests]
    data["messages"] = messages_to_dicts(conversation.messages)
    return data


def messages_to_dicts(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages' JSON forms; a message that follows the line before it does not repeat its parent."""
    found, previous = [], None
    for message in messages:
        data = message.to_dict()
        if message.parent == previous:
            del data["parent"]
        found.append(data)
        previous = message.id
    return found


def messages_from_dicts(items: Sequence[Any], default_time: datetime | None = None) -> list[Message]:
    """Read what `messages_to_dicts` writes, or an older file's list (no ids: message n is "m<n>",
    following the one before); raise ValueError if an id repeats or a parent is not an earlier message."""
    messages: list[Message] = []
    for number, item in enumerate(items):
        message = Message.from_dict(item, default_time)
        if "id" not in item:
            message.id = f"m{number}"
        if "parent" not in item:
            message.parent = messages[-1].id if messages else None
        messages.append(message)
    tree.check(messages)
    return messages


def conversation_from_dict(cid: str, data: Any, default_time: datetime | None = None) -> Conversation:
    """Read what `conversation_to_dict` writes; raise ValueError (or InvalidAssistant) saying what.
    With `default_time` (a file people bring), a missing time is that and a time without a zone is UTC."""
    if default_time is not None and isinstance(data, dict):
        data = data | {k: _lenient_time(data.get(k), default_time) for k in ("created_at", "updated_at")}
    _require(cid, data, ("name", "created_at", "updated_at"))
    if not isinstance(data["name"], str):
        raise ValueError(f"conversation {cid!r} has a name that is not text")
    messages, files = data.get("messages", []), data.get("files", [])
    digests, chosen, keep_last = data.get("digests", []), data.get("chosen", {}), data.get("keep_last", 0)
    if not isinstance(messages, list) or not isinstance(files, list) or not isinstance(digests, list):
        raise ValueError(f"conversation {cid!r}: 'messages', 'files' and 'digests' must be lists")
    if not isinstance(chosen, dict) or not all(isinstance(v, str) for v in chosen.values()):
        raise ValueError(f"conversation {cid!r}: 'chosen' must map message ids to message ids")
    if not isinstance(keep_last, int) or isinstance(keep_last, bool) or keep_last < 0:
        raise ValueError(f"conversation {cid!r}: 'keep_last' must be a whole number, 0 or more")
    return Conversation(
        id=cid,
        name=data["name"],
        messages=messages_from_dicts(messages),
        chosen=chosen,
        keep_last=keep_last,
        digests=tuple(Digest.from_dict(d) for d in digests[-MAX_DIGESTS:]),
        created_at=_time(data["created_at"]),
        updated_at=_time(data["updated_at"]),
        placement=Placement.from_dict(data),
        assistant=Assistant.from_dict(data["assistant"]) if data.get("assistant") else None,
        files=tuple(Attachment.from_dict(f) for f in files),
    )


def encode_conversation(conversation: Conversation) -> bytes:
    """A conversation's own file: a readable header line, then one message per line."""
    head = {"format": CONVERSATION_FORMAT, "version": VERSION, **conversation_to_dict(conversation, False)}
    messages = ",\n".join(json.dumps(m, ensure_ascii=False) for m in head.pop("messages"))
    text = (
        json.dumps(head, ensure_ascii=False)[:-1]
        + ', "messages": ['
        + ("\n" + messages + "\n" if messages else "")
    )
    return (text + "]}\n").encode("utf-8")


def decode_conversation(cid: str, raw: bytes) -> Conversation:
    """A conversation's own file; raise Unreadable."""
    try:
        return conversation_from_dict(cid, json_object(raw))
    except (ValueError, TypeError, KeyError) as error:
        raise Unreadable(str(error) or type(error).__name__) from None


# -- the index -------------------------------------------------------------------------------------


def summary_to_dict(summary: ConversationSummary) -> dict[str, Any]:
    """What the index keeps of a conversation (its id is the key)."""
    return {
        "name": summary.name,
        "created_at": summary.created_at.isoformat(),
        "updated_at": summary.updated_at.isoformat(),
        "message_count": summary.message_count,
        **summary.placement.to_dict(),
    }


def index_line(cid: str, summary: ConversationSummary) -> str:
    """One conversation's line in the index."""
    return f" {json.dumps(cid)}: {json.dumps(summary_to_dict(summary), ensure_ascii=False)}"


def encode_index(lines: Iterable[str]) -> bytes:
    """The index file from `index_line`s."""
    body = ",\n".join(lines)
    head = f'{{"format": "{INDEX_FORMAT}", "version": {VERSION}, "conversations": {{'
    return (head + ("\n" + body + "\n" if body else "") + "}}\n").encode("utf-8")


def decode_index(raw: bytes | None, when: datetime) -> tuple[IndexKind, dict[str, Any]]:
    """("index" | "v2", summaries by id), or ("v1" | "article", conversations by id) for an older data
    file; the article's file has no times, so its chats take `when` (the file's modification time). Raise
    Unreadable, or UnsupportedDataFile for a file from a newer bnaGPT."""
    if raw is None:
        return "index", {}
    document = json_object(raw)
    try:
        if document.get("format") != INDEX_FORMAT:
            return "article", article_conversations(document, when)
        version = document.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise UnsupportedDataFile(
                f"The conversations file is version {version!r}, newer than this bnaGPT reads "
                f"({VERSION}). It was left untouched: update bnaGPT, or set BNAGPT_DATA_DIR "
                "to another folder."
            )
        items = document.get("conversations")
        if not isinstance(items, dict):
            raise ValueError("'conversations' must be an object")
        for cid in items:
            if not ID.fullmatch(cid):
                raise ValueError(f"{cid!r} is not a conversation id")
        if version == 1:
            return "v1", {cid: conversation_from_dict(cid, data) for cid, data in items.items()}
        summaries = {cid: summary_from_dict(cid, data) for cid, data in items.items()}
        return ("v2" if version == 2 else "index"), summaries
    except (ValueError, TypeError, KeyError) as error:
        raise Unreadable(str(error) or type(error).__name__) from None


def summary_from_dict(cid: str, data: Any) -> ConversationSummary:
    """A summary from what the index keeps; raise ValueError, KeyError or TypeError."""
    _require(cid, data, ("name", "message_count", "created_at", "updated_at"))
    name, count = data["name"], data["message_count"]
    if not isinstance(name, str) or not isinstance(count, int):
        raise ValueError(f"conversation {cid!r} has a malformed name or message count")
    return ConversationSummary(
        id=cid,
        name=name,
        updated_at=_time(data["updated_at"]),
        message_count=count,
        created_at=_time(data["created_at"]),
        placement=Placement.from_dict(data),
    )


# -- older files, exports --------------------------------------------------------------------------


def is_article_file(document: Any) -> bool:
    """Whether a parsed JSON document looks like the article's `{name: [messages]}` file."""
    return (
        isinstance(document, dict) and bool(document) and all(isinstance(v, list) for v in document.values())
    )


def article_conversations(document: Mapping[str, Any], when: datetime) -> dict[str, Conversation]:
    """The article's `{name: [messages]}`, dated `when`; raise ValueError if it is not that."""
    if not all(isinstance(v, list) for v in document.values()):
        raise ValueError("neither a bnaGPT file nor the article's {name: [messages]} format")
    conversations = {}
    for name, messages in document.items():
        cid = uuid.uuid5(_ARTICLE_NAMESPACE, name).hex
        conversations[cid] = Conversation(
            id=cid,
            name=name,
            messages=messages_from_dicts(messages, default_time=when),
            created_at=when,
            updated_at=when,
        )
    return conversations


def v1_items(document: Mapping[str, Any]) -> list[Any] | None:
    """The conversations of bnaGPT's single-file version 1 (each with its id), or None if it is not one."""
    items = document.get("conversations")
    if document.get("format") != INDEX_FORMAT or document.get("version") != 1 or not isinstance(items, dict):
        return None
    return [{"id": k, **v} if isinstance(v, dict) else v for k, v in items.items()]


def encode_export(conversations: Sequence[Conversation], files: Mapping[str, bytes] | None = None) -> bytes:
    """Our export document (also the backup format): import reads it back exactly. `files` are the
    attached files' bytes by SHA-256, carried in base64 so that one file holds everything."""
    document: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "exported_at": utc_now().isoformat(),
        "conversations": [conversation_to_dict(c) for c in conversations],
    }
    if files:
        document["files"] = {sha: base64.b64encode(data).decode("ascii") for sha, data in files.items()}
    return (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


# -- helpers ---------------------------------------------------------------------------------------


def attached_files(conversations: Iterable[Conversation]) -> set[str]:
    """The SHA-256 of every file attached to these conversations or to their assistants, of every image
    or sound of their messages, and of every file their steps made (figures, files code wrote)."""
    shas: set[str] = set()
    for c in conversations:
        shas.update(f.sha256 for f in (*c.files, *(c.assistant.files if c.assistant is not None else ())))
        for m in c.messages:
            shas.update(f.sha256 for f in m.media)
            shas.update(f.sha256 for s in m.steps for f in s.files)
    return shas


def decode_files(value: Any) -> tuple[dict[str, bytes], list[str]]:
    """An export's `files`: (bytes by SHA-256, what was left out and why). A file whose bytes do not
    match its hash is left out, never stored under a name that lies."""
    if value is None:
        return {}, []
    if not isinstance(value, dict):
        return {}, ["attached files: not an object, left out"]
    found, skipped = {}, []
    for sha, text in value.items():
        try:
            data = base64.b64decode(text, validate=True)
        except (TypeError, ValueError, binascii.Error):
            skipped.append(f"attached file {str(sha)[:12]}…: not base64, left out")
            continue
        if hashlib.sha256(data).hexdigest() != sha:
            skipped.append(f"attached file {str(sha)[:12]}…: its bytes do not match its hash, left out")
            continue
        found[sha] = data
    return found, skipped


def json_object(raw: bytes) -> dict[str, Any]:
    """Parse JSON that must be an object; raise Unreadable saying where it is broken."""
    try:
        document = json.loads(raw.decode("utf-8-sig"))  # a byte order mark, as some editors write
    except UnicodeDecodeError as error:
        raise Unreadable(f"not UTF-8 text at byte {error.start}") from None
    except json.JSONDecodeError as error:
        raise Unreadable(f"invalid JSON at line {error.lineno}, column {error.colno}") from None
    except RecursionError:
        raise Unreadable("nested too deeply") from None
    if not isinstance(document, dict):
        raise Unreadable(f"expected a JSON object, found {type(document).__name__}")
    return document


def _require(cid: str, data: Any, fields: Sequence[str]) -> None:
    """Raise ValueError naming what is missing, rather than a bare KeyError's field name."""
    if not isinstance(data, dict):
        raise ValueError(f"conversation {cid!r} must be an object")
    missing = [f for f in fields if f not in data]
    if missing:
        raise ValueError(f"conversation {cid!r} lacks the field {', '.join(map(repr, missing))}")


def _time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time")
    return datetime.fromisoformat(value)


def _lenient_time(value: Any, default: datetime) -> str:
    if not isinstance(value, str):
        return default.isoformat()
    when = datetime.fromisoformat(value)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
