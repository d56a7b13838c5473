"""The JSON-file backend: one human-readable `conversations.json`, safe across threads, processes and crashes.

- Every read-modify-write holds a cross-process `filelock` on `<file>.lock` and ends with an atomic replace
  (temp file in the same folder, fsync, `os.replace`): a reader sees the old file or the new one, never half.
- Reads take no lock: an atomic replace is all they need.
- A file that cannot be parsed is never overwritten and never read as empty: it is renamed aside with a
  timestamp, a notice says where, and a new file is started.
- A file in the article's format (`{"name": [{"role", "content"}]}`) is read as is; the first write
  converts it and keeps the original beside it as `<file>.article-backup`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from errors import ConversationNotFound, NameTaken, StoreError, UnsupportedDataFile
from model.conversation import Conversation, ConversationSummary, clean_name, unique_name
from model.conversation_store import ConversationStore
from model.message import Message, utc_now

FORMAT = "bnagpt-conversations"
VERSION = 1
# Article-era files have no ids; deriving them from the name keeps them stable until the first rewrite.
_ARTICLE_NAMESPACE = uuid.UUID("6f1c1f4e-3d1a-4a0e-9a43-6b2a5c0d7e11")


class _Unreadable(Exception):
    """The file's content is not a conversations document; the message says why."""


class JsonConversationStore(ConversationStore):
    """Conversations in one JSON file."""

    def __init__(self, path: Path, lock_timeout: float = 15.0) -> None:
        self._path = Path(path)
        self._lock = FileLock(str(self._path) + ".lock", timeout=lock_timeout)
        self.notices: list[str] = []

    @property
    def location(self) -> Path:
        """The data file."""
        return self._path

    # -- reading ---------------------------------------------------------------------------------

    def list(self) -> list[ConversationSummary]:
        """All conversations, most recently updated first."""
        conversations, _ = self._read_or_recover()
        summaries = [c.summary() for c in conversations.values()]
        summaries.sort(key=lambda s: s.updated_at, reverse=True)
        return summaries

    def get(self, conversation_id: str) -> Conversation:
        """One conversation with its messages."""
        conversations, _ = self._read_or_recover()
        try:
            return conversations[conversation_id]
        except KeyError:
            raise _not_found() from None

    # -- writing ---------------------------------------------------------------------------------

    def create(
        self, name: str, messages: Sequence[Message] = (), *, rename_if_taken: bool = False
    ) -> Conversation:
        """Add a conversation under a free name."""
        name = clean_name(name)
        with self._transaction() as conversations:
            taken = {c.name for c in conversations.values()}
            if name in taken:
                if not rename_if_taken:
                    raise _name_taken(name)
                name = unique_name(name, taken)
            now = utc_now()
            conversation = Conversation(name=name, messages=list(messages), created_at=now, updated_at=now)
            conversations[conversation.id] = conversation
        return conversation

    def append(self, conversation_id: str, *messages: Message) -> None:
        """Add messages at the end of a conversation."""
        with self._transaction() as conversations:
            conversation = conversations.get(conversation_id)
            if conversation is None:
                raise _not_found()
            conversation.messages.extend(messages)
            conversation.updated_at = utc_now()

    def rename(self, conversation_id: str, name: str) -> str:
        """Rename, refusing a name another conversation has."""
        name = clean_name(name)
        with self._transaction() as conversations:
            conversation = conversations.get(conversation_id)
            if conversation is None:
                raise _not_found()
            if any(c.name == name and c.id != conversation_id for c in conversations.values()):
                raise _name_taken(name)
            conversation.name = name
        return name

    def delete(self, conversation_id: str) -> None:
        """Remove a conversation."""
        with self._transaction() as conversations:
            if conversations.pop(conversation_id, None) is None:
                raise _not_found()

    # -- the file --------------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                yield
        except Timeout:
            raise StoreError(
                f"Another bnaGPT process has held {self._path.name} locked for over "
                f"{self._lock.timeout:.0f} s. Try again; if it persists, restart the app."
            ) from None
        except OSError as error:
            raise StoreError(
                f"Could not save to {self._path}: {error.strerror or error}. Check that the folder "
                "exists and is writable, or point BNAGPT_DATA_DIR at one that is."
            ) from None

    @contextmanager
    def _transaction(self) -> Iterator[dict[str, Conversation]]:
        """Yield the conversations under the lock; write them back if the block succeeds."""
        with self._locked():
            conversations, is_article_format = self._read_or_recover(locked=True)
            yield conversations
            if is_article_format:
                _keep_copy(self._path, ".article-backup")
            self._write(conversations)

    def _read_or_recover(self, locked: bool = False) -> tuple[dict[str, Conversation], bool]:
        try:
            return _parse(self._load_bytes())
        except _Unreadable as problem:
            if not locked:
                # Re-check under the lock: a writer may have replaced the file since we read it.
                with self._locked():
                    return self._read_or_recover(locked=True)
            self._set_aside(str(problem))
            return {}, False

    def _load_bytes(self) -> bytes | None:
        try:
            return self._path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(
                f"Could not read {self._path}: {error.strerror}. Check the file and its folder, or "
                "point BNAGPT_DATA_DIR at another folder."
            ) from None

    def _set_aside(self, reason: str) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        aside = self._path.with_name(f"{self._path.name}.corrupt-{stamp}")
        os.replace(self._path, aside)
        self.notices.append(
            f"{self._path.name} could not be read ({reason}). It was moved, untouched, to "
            f"{aside} and a new, empty conversations file was started. Your old chats are in "
            f"that file: fix it by hand, then put it back as {self._path.name}."
        )
        return aside

    def _write(self, conversations: dict[str, Conversation]) -> None:
        document = {
            "format": FORMAT,
            "version": VERSION,
            "conversations": {cid: _conversation_to_dict(c) for cid, c in conversations.items()},
        }
        data = json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")
        _atomic_write(self._path, data)


# -- format ----------------------------------------------------------------------------------------


def _parse(raw: bytes | None) -> tuple[dict[str, Conversation], bool]:
    """Conversations by id, and whether the file is in the article's format."""
    if raw is None:
        return {}, False
    try:
        document = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise _Unreadable(f"not UTF-8 text at byte {error.start}") from None
    except json.JSONDecodeError as error:
        raise _Unreadable(f"invalid JSON at line {error.lineno}, column {error.colno}") from None
    if not isinstance(document, dict):
        raise _Unreadable(f"expected a JSON object, found {type(document).__name__}")
    try:
        if document.get("format") == FORMAT:
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
            return {cid: _conversation_from_dict(cid, data) for cid, data in items.items()}, False
        return _parse_article_format(document), True
    except (ValueError, TypeError, KeyError) as error:
        raise _Unreadable(str(error) or type(error).__name__) from None


def _parse_article_format(document: dict[str, Any]) -> dict[str, Conversation]:
    if not all(isinstance(v, list) for v in document.values()):
        raise ValueError("neither a bnaGPT file nor the article's {name: [messages]} format")
    conversations = {}
    epoch = datetime.fromtimestamp(0, UTC)
    for name, messages in document.items():
        cid = uuid.uuid5(_ARTICLE_NAMESPACE, name).hex
        conversations[cid] = Conversation(
            id=cid,
            name=name,
            messages=[Message.from_dict(m, default_time=epoch) for m in messages],
            created_at=epoch,
            updated_at=epoch,
        )
    return conversations


def _conversation_to_dict(conversation: Conversation) -> dict[str, Any]:
    return {
        "name": conversation.name,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "messages": [m.to_dict() for m in conversation.messages],
    }


def _conversation_from_dict(cid: str, data: Any) -> Conversation:
    if not isinstance(data, dict):
        raise ValueError(f"conversation {cid!r} must be an object")
    name = data["name"]
    if not isinstance(name, str):
        raise ValueError(f"conversation {cid!r} has a name that is not text")
    messages = data.get("messages", [])
    if not isinstance(messages, list):
        raise ValueError(f"conversation {cid!r}: 'messages' must be a list")
    return Conversation(
        id=cid,
        name=name,
        messages=[Message.from_dict(m) for m in messages],
        created_at=datetime.fromisoformat(data["created_at"]),
        updated_at=datetime.fromisoformat(data["updated_at"]),
    )


# -- files -----------------------------------------------------------------------------------------


def _atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old file or the new one, never a mix."""
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)  # left by a writer killed mid-save; we hold the lock
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _keep_copy(path: Path, suffix: str) -> Path:
    backup = path.with_name(path.name + suffix)
    if backup.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        backup = path.with_name(f"{path.name}{suffix}-{stamp}")
    shutil.copy2(path, backup)
    return backup


def _not_found() -> ConversationNotFound:
    return ConversationNotFound(
        "That conversation is no longer saved (it may have been deleted in another tab)."
    )


def _name_taken(name: str) -> NameTaken:
    return NameTaken(f"A conversation named “{name}” already exists. Choose another name.")
