"""The JSON-file backend: plain, human-readable files, safe across threads, processes and crashes.

Layout in the data folder:
- `conversations.json`, the index: each conversation's name, times and message count (what the sidebar
  lists), one conversation per line;
- `conversations/<id>.json`: one file per conversation with its messages, one message per line.
A turn rewrites one conversation's file and the small index, never every conversation, so a save costs the
same at 10 or 10,000 conversations. Reads are cached and a file is parsed again only when it changed on disk
(inode, size and modification time), so a rerun that changed nothing costs a `stat`.

- Every write holds a cross-process `filelock` on `conversations.json.lock`, re-reads what it changes from
  disk, and ends with atomic replaces (temp file, `os.replace`): a reader sees an old file or a new one,
  never half of one. Conversation files are also flushed to disk (fsync) before a save returns; the index,
  which can be rebuilt from them, is not.
- Conversation files are the record; the index can be rebuilt from them. Writes keep it so: a
  conversation's file is written before the index on create and save, removed before it on delete, and a
  store reconciles the two when it first reads them (a crash between the two writes loses nothing).
- A file that cannot be parsed is never overwritten and never read as empty: it is renamed aside with a
  timestamp and a notice says where. A broken index is rebuilt from the conversation files.
- Older files, the article's `{"name": [messages]}` and bnaGPT's single-file version 1, are read as they
  are; the first write splits them into this layout and keeps the original beside it as
  `conversations.json.article-backup` or `conversations.json.v1-backup`. Version 2's layout (no message
  tree) is read as it is; the first write keeps it beside as `conversations.json.v2-backup` and
  `conversations.v2-backup/` (hard links: files are replaced, never changed in place, so a link is a copy).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from filelock import FileLock

from errors import ConversationNotFound, StoreError
from model.codec import (
    ID,
    Unreadable,
    decode_conversation,
    decode_index,
    encode_conversation,
    encode_index,
    index_line,
)
from model.conversation import (
    Conversation,
    ConversationSummary,
)
from model.message import utc_now
from model.search import SearchCache, SearchHit
from model.tree_store import Summaries, TreeStore, copy_conversation, not_found, one_at_a_time
from utils.files import TEMP_PREFIX, TEMP_SUFFIX, atomic_write, locked, set_aside

_CACHED_CONVERSATIONS = 16

Signature = tuple[int, int, int]
T = TypeVar("T")


class JsonConversationStore(TreeStore):
    """Conversations as an index file plus one JSON file each."""

    def __init__(
        self, path: Path, lock_timeout: float = 15.0, search_cache: SearchCache | None = None
    ) -> None:
        super().__init__()
        self._path = Path(path)
        self.search_cache = search_cache or SearchCache()
        self._folder = self._path.with_suffix("")
        self._lock = FileLock(str(self._path) + ".lock", timeout=lock_timeout)
        self._signature: Signature | bool | None = False  # False: never read
        self._summaries: Summaries = {}
        self._listed: list[ConversationSummary] | None = None
        self._legacy: tuple[dict[str, Conversation], str] | None = None
        self._version_2 = False  # the index on disk is version 2: back it up before the first write
        self._reconciled = False
        self._conversations: dict[str, tuple[Signature, Conversation]] = {}
        self._raw_index: bytes | None = None  # the index as last read or written, to skip re-parsing it
        self._lines: dict[str, tuple[ConversationSummary, str]] = {}  # each summary's line in the index

    @property
    def location(self) -> Path:
        """The index file; conversation files are in the folder of the same name beside it."""
        return self._path

    @property
    def folder(self) -> Path:
        """Where the conversation files are."""
        return self._folder

    @one_at_a_time
    def set_aside_files(self) -> list[Path]:
        """Unreadable index and conversation files, moved aside untouched."""
        found = sorted(self._path.parent.glob(f"{self._path.name}.corrupt-*"))
        return found + sorted(self._folder.glob("*.corrupt-*"))

    # -- reading ---------------------------------------------------------------------------------

    @one_at_a_time
    def list(self) -> list[ConversationSummary]:
        """All conversations, most recently updated first."""
        summaries = self._index()
        if self._listed is None:
            self._listed = sorted(summaries.values(), key=lambda s: s.updated_at, reverse=True)
        return list(self._listed)

    @one_at_a_time
    def get(self, conversation_id: str) -> Conversation:
        """One conversation with its messages."""
        if not ID.fullmatch(conversation_id):
            raise not_found()
        self._index()
        if self._legacy is not None:
            try:
                return copy_conversation(self._legacy[0][conversation_id])
            except KeyError:
                raise not_found() from None
        path = self._file(conversation_id)
        signature = _signature(path)
        if signature is None:
            raise not_found()
        cached = self._conversations.get(conversation_id)
        if cached is not None and cached[0] == signature:
            return copy_conversation(cached[1])
        try:
            conversation = decode_conversation(conversation_id, _read(path))
        except FileNotFoundError:
            raise not_found() from None
        except Unreadable:
            with self._writing() as summaries:
                conversation = self._load_for_update(conversation_id, summaries)
            return copy_conversation(conversation)
        self._remember(conversation, signature)
        return copy_conversation(conversation)

    @one_at_a_time
    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Conversations whose name or messages contain every word of `query` (trash left out)."""
        return self.search_cache.find(self.list(), query, self._texts, limit)

    def prepare_search(self) -> None:
        """Read every chat's messages into the search cache (0.2 s for 1,000 chats, once per process)."""
        for summary in self.list():
            with self._mutex:
                self.search_cache.texts(summary, self._texts)

    def _texts(self, conversation_id: str) -> list[str]:
        try:
            return [m.content for m in self.get(conversation_id).messages]
        except ConversationNotFound:
            return []

    def _remove(self, conversation_id: str, summaries: Summaries) -> None:
        self._file(conversation_id).unlink(missing_ok=True)
        self._conversations.pop(conversation_id, None)
        self.search_cache.forget(conversation_id)
        del summaries[conversation_id]

    # -- the index -------------------------------------------------------------------------------

    def _index(self) -> Summaries:
        """The summaries, read again only if the index file changed since the last read."""
        signature = _signature(self._path)
        if signature != self._signature or signature is None:
            self._read_index(locked=False)
        if not self._reconciled and self._legacy is None:
            self._reconcile()
        return self._summaries

    def _read_index(self, locked: bool) -> None:
        signature = _signature(self._path)
        raw = self._load_bytes(self._path)
        if raw is not None and raw == self._raw_index:
            self._signature = signature  # unchanged: comparing bytes is far cheaper than parsing
            return
        try:
            modified = datetime.fromtimestamp(signature[2] / 1e9, UTC) if signature else utc_now()
            kind, parsed = decode_index(raw, modified)
        except Unreadable as problem:
            if not locked:
                # Re-check under the lock: a writer may have replaced the file since we read it.
                with self._locked():
                    self._read_index(locked=True)
                return
            aside = set_aside(self._path)
            summaries = self._rebuild_index()
            self._write_index(summaries)
            self.notices.append(
                f"{self._path.name} could not be read ({problem}). It was moved, untouched, to {aside}, "
                f"and the list was rebuilt from the {len(summaries)} conversation files in "
                f"{self._folder}. To bring back chats missing from the list: Library → Backups → “Bring "
                "back missing chats”, or Library → Import the moved file if it holds conversations."
            )
            return
        if kind in ("index", "v2"):
            self._legacy = None
            self._version_2 = kind == "v2"
            self._set_summaries(parsed, signature)
            self._raw_index = raw
        else:
            self._legacy = (parsed, kind)
            self._set_summaries({c.id: c.summary() for c in parsed.values()}, signature)

    def _set_summaries(self, summaries: Summaries, signature: Signature | None) -> None:
        self._summaries = summaries
        self._signature = signature
        self._listed = None
        self._raw_index = None

    def _reconcile(self) -> None:
        """Bring the index in line with the conversation files: a crash between the two writes, or files
        copied in by hand, leave one without the other."""
        if any(self._differences(self._summaries)):
            with self._writing() as summaries:
                extra, missing = self._differences(summaries)
                for conversation_id in missing:
                    del summaries[conversation_id]
                for conversation_id in extra:
                    conversation = self._read_for_rebuild(conversation_id)
                    if conversation is not None:
                        summaries[conversation_id] = conversation.summary()
        self._reconciled = True

    def _differences(self, summaries: Summaries) -> tuple[set[str], set[str]]:
        on_disk = self._conversation_ids()
        return on_disk - summaries.keys(), summaries.keys() - on_disk

    def _conversation_ids(self) -> set[str]:
        try:
            with os.scandir(self._folder) as entries:
                return {
                    e.name[:-5] for e in entries if e.name.endswith(".json") and ID.fullmatch(e.name[:-5])
                }
        except FileNotFoundError:
            return set()
        except NotADirectoryError:
            raise StoreError(
                f"{self._folder} should be the folder of conversation files but is a file. Move it "
                "away, or point BNAGPT_DATA_DIR at another folder."
            ) from None

    def _rebuild_index(self) -> Summaries:
        summaries = {}
        for conversation_id in sorted(self._conversation_ids()):
            conversation = self._read_for_rebuild(conversation_id)
            if conversation is not None:
                summaries[conversation_id] = conversation.summary()
        return summaries

    def _read_for_rebuild(self, conversation_id: str) -> Conversation | None:
        try:
            return decode_conversation(conversation_id, _read(self._file(conversation_id)))
        except FileNotFoundError:
            return None
        except Unreadable as problem:
            self._set_aside_conversation(conversation_id, str(problem))
            return None

    def _write_index(self, summaries: Summaries) -> None:
        # Only the lines of conversations that changed are serialised again.
        lines, cached = {}, self._lines
        for cid, summary in summaries.items():
            line = cached.get(cid)
            if line is None or line[0] is not summary:
                line = (summary, index_line(cid, summary))
            lines[cid] = line
        self._lines = lines
        raw = encode_index(text for _, text in lines.values())
        # The index is not flushed to disk: it can be rebuilt from the conversation files, which are.
        atomic_write(self._path, raw, durable=False)
        self._set_summaries(summaries, _signature(self._path))
        self._raw_index = raw

    # -- writing helpers -------------------------------------------------------------------------

    def _locked(self) -> AbstractContextManager[None]:
        return locked(self._lock, self._path)

    @contextmanager
    def _writing(self) -> Iterator[Summaries]:
        """Yield the index as it is on disk now, under the lock; write it back if the block succeeds."""
        with self._locked():
            for stale in self._path.parent.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
                stale.unlink(missing_ok=True)  # left by a writer killed mid-save; we hold the lock
            self._read_index(locked=True)
            if self._legacy is not None:
                self._split_legacy()
            if self._version_2:
                self._keep_version_2()
            summaries = dict(self._summaries)
            yield summaries
            self._write_index(summaries)

    def _split_legacy(self) -> None:
        """Write an older single file out as this layout, keeping the original beside it."""
        assert self._legacy is not None
        conversations, kind = self._legacy
        _keep_copy(self._path, f".{kind}-backup")
        for conversation in conversations.values():
            self._write_conversation(conversation)
        self._legacy = None
        self._write_index({c.id: c.summary() for c in conversations.values()})

    def _keep_version_2(self) -> None:
        """Keep version 2's files as they are before the first write in version 3 (which it cannot read)."""
        _keep_copy(self._path, ".v2-backup")
        folder = self._folder.with_name(self._folder.name + ".v2-backup")
        if folder.exists():
            folder = folder.with_name(f"{folder.name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
        if self._folder.is_dir():
            shutil.copytree(self._folder, folder, copy_function=_link_or_copy)
        self._version_2 = False

    def _load_for_update(self, conversation_id: str, summaries: Summaries) -> Conversation:
        if conversation_id not in summaries:
            raise not_found()
        try:
            return decode_conversation(conversation_id, _read(self._file(conversation_id)))
        except FileNotFoundError:
            raise not_found() from None
        except Unreadable as problem:
            aside = self._set_aside_conversation(conversation_id, str(problem))
            del summaries[conversation_id]
            self._write_index(summaries)
            raise ConversationNotFound(
                f"That conversation's file could not be read ({problem}). It was moved, untouched, to "
                f"{aside}; nothing was changed in it."
            ) from None

    def _write_conversation(self, conversation: Conversation) -> None:
        self._folder.mkdir(exist_ok=True)
        path = self._file(conversation.id)
        # Temp files go in the data folder (small, unlike the conversations folder), where every write
        # looks for ones a killed writer left; os.replace across folders of one file system is atomic.
        atomic_write(path, encode_conversation(conversation), temp_folder=self._path.parent)
        signature = _signature(path)
        if signature is not None:
            self._remember(copy_conversation(conversation), signature)

    def _remember(self, conversation: Conversation, signature: Signature) -> None:
        self._conversations.pop(conversation.id, None)
        self._conversations[conversation.id] = (signature, conversation)
        while len(self._conversations) > _CACHED_CONVERSATIONS:
            del self._conversations[next(iter(self._conversations))]

    def _file(self, conversation_id: str) -> Path:
        return self._folder / f"{conversation_id}.json"

    def _load_bytes(self, path: Path) -> bytes | None:
        try:
            return _read(path)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(
                f"Could not read {path}: {error.strerror}. Check the file and its folder, or "
                "point BNAGPT_DATA_DIR at another folder."
            ) from None

    def _set_aside_conversation(self, conversation_id: str, reason: str) -> Path:
        """Move a broken conversation file aside (the caller holds the lock); the index drops it."""
        aside = set_aside(self._file(conversation_id))
        self._conversations.pop(conversation_id, None)
        self.notices.append(
            f"A conversation file could not be read ({reason}). It was moved, untouched, to {aside}. "
            "Its chat may be in a backup: Library → Backups → “Bring back missing chats”; or fix the file "
            "by hand and put it back without the .corrupt-… ending."
        )
        return aside


# -- files -----------------------------------------------------------------------------------------


def _signature(path: Path) -> Signature | None:
    """What changes whenever the file is replaced or written: inode, size, modification time."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StoreError(
            f"Could not read {path}: {error.strerror}. Check the file and its folder, or point "
            "BNAGPT_DATA_DIR at another folder."
        ) from None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _read(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # a file system without hard links
        shutil.copy2(source, target)


def _keep_copy(path: Path, suffix: str) -> Path:
    backup = path.with_name(path.name + suffix)
    if backup.exists():
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        backup = path.with_name(f"{path.name}{suffix}-{stamp}")
    shutil.copy2(path, backup)
    return backup
