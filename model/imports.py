"""Reading conversations from files people bring: our export, bnaGPT's and the article's data files, and a
ChatGPT "Export data" (its `conversations.json`, alone or in the zip).

Files come from outside and are treated as hostile: size, zip members and nesting are bounded, and any
file that is not one of these gets an `ImportRefused` saying why, before anything is stored. Inside a
readable file, a conversation or message that cannot be used is skipped and reported, not fatal.
"""

from __future__ import annotations

import io
import json
import unicodedata
import zipfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from errors import ImportRefused, InvalidAssistant
from model import codec, tree
from model.conversation import MAX_NAME_LENGTH, Conversation, new_id
from model.message import MESSAGE_ID, Message, Role, utc_now

MAX_FILE_BYTES = 50 * 2**20
MAX_ZIP_MEMBERS = 5000
MAX_MEMBER_BYTES = 200 * 2**20  # conversations.json inside a zip, uncompressed
MAX_CONVERSATIONS = 20_000
IMPORTED_NAME = "Imported chat"


@dataclass
class ImportPlan:
    """What a file holds: the conversations to add, and what was left out and why."""

    source: str
    conversations: list[Conversation] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # attached files' bytes, by SHA-256


def read_import(raw: bytes, filename: str, max_bytes: int | None = MAX_FILE_BYTES) -> ImportPlan:
    """Parse an uploaded file; raise ImportRefused if it is not a conversations file we read."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise ImportRefused(
            f"{filename} is {len(raw) / 2**20:.0f} MB; files up to {MAX_FILE_BYTES // 2**20} MB "
            "can be imported."
        )
    if raw[:4] == b"PK\x03\x04":
        raw = _conversations_from_zip(raw, filename)
    document = _parse_json(raw, filename)
    if isinstance(document, list):
        return _chatgpt(document, filename)
    if isinstance(document, dict):
        if document.get("format") == codec.EXPORT_FORMAT:
            items = document.get("conversations")
            if not isinstance(items, list):
                raise ImportRefused(f"{filename} is a bnaGPT export whose 'conversations' is not a list.")
            plan = _ours(items, "bnaGPT export")
            plan.files, skipped = codec.decode_files(document.get("files"))
            plan.skipped += skipped
            return plan
        if document.get("format") == codec.INDEX_FORMAT:
            items = codec.v1_items(document)
            if items is None:
                raise ImportRefused(
                    f"{filename} is a bnaGPT index file: it lists conversations but holds no messages. "
                    "Export from the Library page instead, or import a backup."
                )
            return _ours(items, "bnaGPT data file")
        if codec.is_article_file(document):
            return _article(document)
    raise ImportRefused(
        f"{filename} is JSON but not a conversations file bnaGPT knows: import a bnaGPT export, a "
        "conversations.json from the article's app, or ChatGPT's conversations.json (or its export zip)."
    )


def _conversations_from_zip(raw: bytes, filename: str) -> bytes:
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as error:
        raise ImportRefused(f"{filename} is not a readable zip file ({error}).") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise ImportRefused(
            f"{filename} has {len(members)} files inside; a ChatGPT export has far fewer than "
            f"{MAX_ZIP_MEMBERS}. It was not read."
        )
    wanted = [m for m in members if m.filename.rsplit("/", 1)[-1] == "conversations.json" and not m.is_dir()]
    if not wanted:
        raise ImportRefused(f"{filename} has no conversations.json inside: is it a ChatGPT data export?")
    member = min(wanted, key=lambda m: m.filename.count("/"))
    if member.file_size > MAX_MEMBER_BYTES:
        raise ImportRefused(
            f"conversations.json in {filename} unpacks to {member.file_size / 2**20:.0f} MB; at most "
            f"{MAX_MEMBER_BYTES // 2**20} MB can be imported."
        )
    try:
        with archive.open(member) as stream:
            data = stream.read(MAX_MEMBER_BYTES + 1)  # the size in the header may lie
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError, EOFError) as error:
        raise ImportRefused(f"conversations.json in {filename} could not be unpacked ({error}).") from None
    if len(data) > MAX_MEMBER_BYTES:
        raise ImportRefused(
            f"conversations.json in {filename} unpacks to more than it says; it was not read."
        )
    return data


def _parse_json(raw: bytes, filename: str) -> Any:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ImportRefused(
            f"{filename} is not UTF-8 text (byte {error.start}): export it again, or check it is the "
            "right file."
        ) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ImportRefused(
            f"{filename} is not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}."
        ) from None
    except RecursionError:
        raise ImportRefused(f"{filename} is nested too deeply to be a conversations file.") from None


def _ours(items: list[Any], source: str) -> ImportPlan:
    plan = ImportPlan(source)
    now = utc_now()
    for number, item in enumerate(items[:MAX_CONVERSATIONS], start=1):
        try:
            if not isinstance(item, dict):
                raise ValueError("not an object")
            cid = item["id"] if isinstance(item.get("id"), str) else new_id()
            # Lenient where a hand-made file may be: a missing or odd name or time is repaired.
            named = {**item, "name": _name(item.get("name"))}
            plan.conversations.append(codec.conversation_from_dict(cid, named, default_time=now))
        except (ValueError, TypeError, InvalidAssistant) as error:
            plan.skipped.append(f"conversation {number}: {error}")
    _too_many(items, plan)
    return plan


def _article(document: dict[str, list[Any]]) -> ImportPlan:
    plan = ImportPlan("article's conversations file")
    now = utc_now()  # the article's file has no times: its chats arrive now
    for name, messages in list(document.items())[:MAX_CONVERSATIONS]:
        try:
            (parsed,) = codec.article_conversations({_name(name): messages}, now).values()
        except (ValueError, TypeError) as error:
            plan.skipped.append(f"“{_name(name)}”: {error}")
            continue
        plan.conversations.append(replace(parsed, id=new_id()))
    _too_many(document, plan)
    return plan


def _chatgpt(items: list[Any], filename: str) -> ImportPlan:
    if items and not all(isinstance(i, dict) and "mapping" in i for i in items[:50]):
        raise ImportRefused(
            f"{filename} is a JSON list but not ChatGPT's conversations.json (no 'mapping' in its items)."
        )
    plan = ImportPlan("ChatGPT export")
    for number, item in enumerate(items[:MAX_CONVERSATIONS], start=1):
        title = _name(item.get("title") if isinstance(item, dict) else None)
        try:
            messages, chosen, hidden = _chatgpt_tree(item)
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            plan.skipped.append(f"conversation {number} (“{title}”): {error or type(error).__name__}")
            continue
        if not messages:
            plan.skipped.append(f"conversation {number} (“{title}”): no user or assistant text in it")
            continue
        if hidden:
            plan.skipped.append(f"“{title}”: {hidden} system, tool or hidden messages left out")
        created = _epoch(item.get("create_time")) or min(m.created_at for m in messages)
        updated = _epoch(item.get("update_time")) or max(m.created_at for m in messages)
        plan.conversations.append(
            Conversation(name=title, messages=messages, chosen=chosen, created_at=created, updated_at=updated)
        )
    _too_many(items, plan)
    return plan


def _chatgpt_tree(item: dict[str, Any]) -> tuple[list[Message], dict[str, str], int]:
    """Every version of every message ChatGPT kept (an edited question, a regenerated answer), parents
    first, with the branch the user last saw (`current_node`) chosen; and how many were left out (system,
    tool and hidden messages: their children follow the nearest message kept above them)."""
    mapping = item["mapping"]
    if not isinstance(mapping, dict):
        raise ValueError("'mapping' is not an object")
    node_id = item.get("current_node")
    if node_id not in mapping:  # no current node: take the newest leaf
        leaves = [k for k, v in mapping.items() if isinstance(v, dict) and not v.get("children")]
        if not leaves:
            raise ValueError("it has no messages")
        node_id = max(leaves, key=lambda k: _epoch((mapping[k].get("message") or {}).get("create_time")) or 0)
    roots = [k for k, v in mapping.items() if isinstance(v, dict) and v.get("parent") not in mapping]
    messages: list[Message] = []
    kept: dict[str, str] = {}  # ChatGPT's node id -> the id of the message shown for it (or above it)
    hidden = 0
    seen: set[str] = set()
    stack: list[tuple[str, str | None]] = [(root, None) for root in reversed(roots)]
    while stack:  # depth first, parents before children; a cycle in a malformed file ends here
        key, above = stack.pop()
        node = mapping.get(key)
        if key in seen or not isinstance(node, dict):
            continue
        seen.add(key)
        raw = node.get("message")
        converted = _chatgpt_message(raw) if isinstance(raw, dict) else None
        if converted is not None:
            if MESSAGE_ID.fullmatch(key):
                converted.id = key
            converted.parent = above
            messages.append(converted)
            above = converted.id
        elif raw is not None:
            hidden += 1
        kept[key] = above or ""
        children = node.get("children") or []
        stack.extend((c, above) for c in reversed(children) if isinstance(c, str))
    chosen = tree.choose(messages, {}, kept[node_id]) if kept.get(node_id) else {}
    return messages, chosen, hidden


def _chatgpt_message(message: dict[str, Any]) -> Message | None:
    role = (message.get("author") or {}).get("role")
    metadata = message.get("metadata") or {}
    if role not in ("user", "assistant") or metadata.get("is_visually_hidden_from_conversation"):
        return None
    if role == "assistant" and message.get("recipient", "all") != "all":
        return None  # a call to one of ChatGPT's tools, not text for the user
    content = message.get("content") or {}
    kind = content.get("content_type")
    if kind in ("text", "multimodal_text"):
        parts = content.get("parts") or []
        text = "\n\n".join(p if isinstance(p, str) else "*[attachment not imported]*" for p in parts)
    elif kind == "code":
        text = f"```\n{content.get('text', '')}\n```"
    else:
        return None
    if not text.strip():
        return None
    return Message(Role(role), text, created_at=_epoch(message.get("create_time")) or utc_now())


def _name(value: Any) -> str:
    """A usable conversation name from whatever the file has."""
    if not isinstance(value, str):
        return IMPORTED_NAME
    cleaned = "".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in value)
    cleaned = " ".join(cleaned.split())[:MAX_NAME_LENGTH].strip()
    return cleaned or IMPORTED_NAME


def _epoch(value: Any) -> datetime | None:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _too_many(items: Any, plan: ImportPlan) -> None:
    if len(items) > MAX_CONVERSATIONS:
        plan.skipped.append(
            f"{len(items) - MAX_CONVERSATIONS} conversations beyond the first {MAX_CONVERSATIONS:,}"
        )
