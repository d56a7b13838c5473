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

import functools
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock

from errors import ConversationNotFound, NameTaken, StoreError
from model import tree
from model.assistant import Assistant
from model.attachment import Attachment
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
    MAX_DIGESTS,
    Conversation,
    ConversationSummary,
    Digest,
    Placement,
    clean_folder,
    clean_name,
    new_id,
    unique_name,
)
from model.conversation_store import ConversationStore
from model.message import Context, Message, Role, utc_now
from model.search import SearchCache, SearchHit
from model.step import Step
from utils.files import TEMP_PREFIX, TEMP_SUFFIX, atomic_write, locked, set_aside

_CACHED_CONVERSATIONS = 16

Signature = tuple[int, int, int]
T = TypeVar("T")


def _one_at_a_time(method: Callable[..., T]) -> Callable[..., T]:
    """Run a public method holding the store's own lock: its caches are shared by the threads of a tab
    (a stopped reply still saving while the next page run reads)."""

    @functools.wraps(method)
    def locked(self: JsonConversationStore, *args: Any, **kwargs: Any) -> T:
        with self._mutex:
            return method(self, *args, **kwargs)

    return locked


class JsonConversationStore(ConversationStore):
    """Conversations as an index file plus one JSON file each."""

    def __init__(
        self, path: Path, lock_timeout: float = 15.0, search_cache: SearchCache | None = None
    ) -> None:
        self._path = Path(path)
        self.search_cache = search_cache or SearchCache()
        self._folder = self._path.with_suffix("")
        self._lock = FileLock(str(self._path) + ".lock", timeout=lock_timeout)
        self.notices: list[str] = []
        self._signature: Signature | bool | None = False  # False: never read
        self._summaries: dict[str, ConversationSummary] = {}
        self._listed: list[ConversationSummary] | None = None
        self._legacy: tuple[dict[str, Conversation], str] | None = None
        self._version_2 = False  # the index on disk is version 2: back it up before the first write
        self._reconciled = False
        self._conversations: dict[str, tuple[Signature, Conversation]] = {}
        self._mutex = threading.RLock()
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

    @_one_at_a_time
    def set_aside_files(self) -> list[Path]:
        """Unreadable index and conversation files, moved aside untouched."""
        found = sorted(self._path.parent.glob(f"{self._path.name}.corrupt-*"))
        return found + sorted(self._folder.glob("*.corrupt-*"))

    # -- reading ---------------------------------------------------------------------------------

    @_one_at_a_time
    def list(self) -> list[ConversationSummary]:
        """All conversations, most recently updated first."""
        summaries = self._index()
        if self._listed is None:
            self._listed = sorted(summaries.values(), key=lambda s: s.updated_at, reverse=True)
        return list(self._listed)

    @_one_at_a_time
    def get(self, conversation_id: str) -> Conversation:
        """One conversation with its messages."""
        if not ID.fullmatch(conversation_id):
            raise _not_found()
        self._index()
        if self._legacy is not None:
            try:
                return _copy(self._legacy[0][conversation_id])
            except KeyError:
                raise _not_found() from None
        path = self._file(conversation_id)
        signature = _signature(path)
        if signature is None:
            raise _not_found()
        cached = self._conversations.get(conversation_id)
        if cached is not None and cached[0] == signature:
            return _copy(cached[1])
        try:
            conversation = decode_conversation(conversation_id, _read(path))
        except FileNotFoundError:
            raise _not_found() from None
        except Unreadable:
            with self._writing() as summaries:
                conversation = self._load_for_update(conversation_id, summaries)
            return _copy(conversation)
        self._remember(conversation, signature)
        return _copy(conversation)

    # -- writing ---------------------------------------------------------------------------------

    @_one_at_a_time
    def create(
        self,
        name: str,
        messages: Sequence[Message] = (),
        *,
        rename_if_taken: bool = False,
        assistant: Assistant | None = None,
        named_by_user: bool = False,
        chosen: dict[str, str] | None = None,
    ) -> Conversation:
        """Add a conversation under a free name."""
        name = clean_name(name)
        with self._writing() as summaries:
            taken = {s.name for s in summaries.values()}
            if name in taken:
                if not rename_if_taken:
                    raise _name_taken(name)
                name = unique_name(name, taken)
            now = utc_now()
            if chosen is None:
                messages = tree.linked(messages)  # a list of messages: each follows the one before
            tree.check(messages)
            conversation = Conversation(
                name=name,
                messages=list(messages),
                chosen=dict(chosen or {}),
                created_at=now,
                updated_at=now,
                placement=Placement(named_by_user=named_by_user),
                assistant=assistant,
            )
            self._write_conversation(conversation)
            summaries[conversation.id] = conversation.summary()
        return _copy(conversation)

    @_one_at_a_time
    def add_many(self, conversations: Sequence[Conversation], keep_ids: bool = False) -> list[Conversation]:
        """Store copies under free names, with one write of the index for all of them; ids are new, or
        with `keep_ids` kept where no conversation has them yet."""
        added = []
        with self._writing() as summaries:
            taken = {s.name for s in summaries.values()}
            for original in conversations:
                name = unique_name(clean_name(original.name), taken)
                taken.add(name)
                keep = keep_ids and ID.fullmatch(original.id) and original.id not in summaries
                # `replace` carries every field, so what a conversation gains later is imported too.
                conversation = replace(
                    original,
                    name=name,
                    messages=list(original.messages),
                    id=original.id if keep else new_id(),
                )
                self._write_conversation(conversation)
                summaries[conversation.id] = conversation.summary()
                added.append(_copy(conversation))
        return added

    @_one_at_a_time
    def replace_all(self, conversations: Sequence[Conversation]) -> None:
        """Make these the only conversations, under their own ids (restoring a backup)."""
        with self._writing() as summaries:
            for conversation_id in list(summaries):
                self._remove(conversation_id, summaries)
            for original in conversations:
                conversation = original if ID.fullmatch(original.id) else replace(original, id=new_id())
                self._write_conversation(conversation)
                summaries[conversation.id] = conversation.summary()

    @_one_at_a_time
    def append(self, conversation_id: str, *messages: Message) -> None:
        """Add messages at the end of the conversation as shown (its chosen path)."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            shown = conversation.path()
            self._add(conversation, shown[-1].id if shown else None, messages, summaries)

    @_one_at_a_time
    def add(self, conversation_id: str, parent: str | None, *messages: Message) -> None:
        """Add messages after `parent` (None: as a first message), the first a new version beside any
        child `parent` has; the conversation then follows them."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            if parent is not None:
                self._find(conversation, parent)
            self._add(conversation, parent, messages, summaries)

    def _add(
        self,
        conversation: Conversation,
        parent: str | None,
        messages: Sequence[Message],
        summaries: dict[str, ConversationSummary],
    ) -> None:
        added = tree.linked(messages, parent)
        conversation.messages.extend(added)
        tree.check(conversation.messages)
        if added:
            conversation.chosen = tree.choose(conversation.messages, conversation.chosen, added[-1].id)
        conversation.updated_at = utc_now()
        self._write_conversation(conversation)
        summaries[conversation.id] = conversation.summary()

    @_one_at_a_time
    def choose(self, conversation_id: str, message_id: str) -> None:
        """Follow this version of a message (and, below it, the versions last followed there)."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            self._find(conversation, message_id)
            conversation.chosen = tree.choose(conversation.messages, conversation.chosen, message_id)
            self._write_conversation(conversation)
            summaries[conversation_id] = conversation.summary()

    @_one_at_a_time
    def set_context(self, conversation_id: str, message_id: str, context: Context) -> None:
        """Whether the model is given a message always, never, or as the window allows. A summary that
        covers it is dropped (made again without it), so a message left out is not sent in one."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            index = self._find(conversation, message_id)
            conversation.messages[index] = replace(conversation.messages[index], context=context)
            conversation.digests = tuple(
                d
                for d in conversation.digests
                if all(m.id != message_id for m in tree.path_to(conversation.messages, d.through))
            )
            self._write_conversation(conversation)

    @_one_at_a_time
    def set_keep_last(self, conversation_id: str, count: int) -> None:
        """Give the model only the last `count` messages (0: as many as fit)."""
        if not isinstance(count, int) or count < 0:
            raise StoreError("The number of messages to send must be a whole number, 0 or more.")
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            conversation.keep_last = count
            self._write_conversation(conversation)

    @_one_at_a_time
    def add_digest(self, conversation_id: str, digest: Digest) -> None:
        """Keep a summary of what the window dropped (it replaces one ending at the same message)."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            self._find(conversation, digest.through)
            kept = tuple(d for d in conversation.digests if d.through != digest.through)
            conversation.digests = (*kept, digest)[-MAX_DIGESTS:]
            self._write_conversation(conversation)

    @_one_at_a_time
    def add_step(self, conversation_id: str, message_id: str, step: Step) -> None:
        """Add a step to a reply (its text unchanged)."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            index = self._find(conversation, message_id)
            message = conversation.messages[index]
            if message.role != Role.ASSISTANT:
                raise StoreError("That reply is no longer in the chat: reload the page.")
            conversation.messages[index] = replace(message, steps=(*message.steps, step))
            self._write_conversation(conversation)

    @staticmethod
    def _find(conversation: Conversation, message_id: str) -> int:
        index = conversation.index_of(message_id)
        if index is None:
            raise StoreError("That message is no longer in the chat: reload the page.")
        return index

    @_one_at_a_time
    def rename(self, conversation_id: str, name: str) -> str:
        """Rename, refusing a name another conversation has."""
        name = clean_name(name)
        with self._writing() as summaries:
            if any(s.name == name and s.id != conversation_id for s in summaries.values()):
                raise _name_taken(name)
            conversation = self._load_for_update(conversation_id, summaries)
            conversation.name = name
            conversation.placement = replace(conversation.placement, named_by_user=True)
            self._write_conversation(conversation)
            summaries[conversation_id] = conversation.summary()
        return name

    @_one_at_a_time
    def auto_rename(self, conversation_id: str, name: str) -> str | None:
        """Give an automatic title unless the user named the conversation; a taken name gets a suffix."""
        name = clean_name(name)
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            if conversation.placement.named_by_user:
                return None
            taken = {s.name for s in summaries.values() if s.id != conversation_id}
            conversation.name = unique_name(name, taken)
            self._write_conversation(conversation)
            summaries[conversation_id] = conversation.summary()
        return conversation.name

    @_one_at_a_time
    def set_assistant(self, conversation_id: str, assistant: Assistant | None) -> None:
        """Change the chat's copy of its assistant (its JSON mode, say); the assistant itself is untouched."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            conversation.assistant = assistant
            self._write_conversation(conversation)

    @_one_at_a_time
    def set_files(self, conversation_id: str, files: Sequence[Attachment]) -> None:
        """Change the files attached to the chat."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            conversation.files = tuple(files)
            self._write_conversation(conversation)

    @_one_at_a_time
    def place(self, conversation_id: str, **changes: Any) -> ConversationSummary:
        """Change where it shows: `pinned`, `archived`, `folder` or `trashed_at` (see Placement)."""
        if "folder" in changes:
            changes["folder"] = clean_folder(changes["folder"])
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            conversation.placement = replace(conversation.placement, **changes)
            self._write_conversation(conversation)
            summaries[conversation_id] = conversation.summary()
        return summaries[conversation_id]

    @_one_at_a_time
    def delete(self, conversation_id: str) -> None:
        """Remove a conversation for good."""
        with self._writing() as summaries:
            if conversation_id not in summaries:
                raise _not_found()
            self._remove(conversation_id, summaries)

    @_one_at_a_time
    def empty_trash(self, older_than: timedelta | None = None) -> int:
        """Delete for good what is in the trash (only what went there over `older_than` ago)."""
        cutoff = utc_now() - (older_than or timedelta(0))
        if not any(_trashed_by(s, cutoff) for s in self._index().values()):
            return 0  # nothing to do: the files are not touched
        with self._writing() as summaries:
            doomed = [s.id for s in summaries.values() if _trashed_by(s, cutoff)]
            for conversation_id in doomed:
                self._remove(conversation_id, summaries)
        return len(doomed)

    @_one_at_a_time
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

    @_one_at_a_time
    def everything(self) -> list[Conversation]:
        """Every conversation with its messages, trash and archive included (for exports and backups)."""
        return [self.get(s.id) for s in self.list()]

    def _remove(self, conversation_id: str, summaries: dict[str, ConversationSummary]) -> None:
        self._file(conversation_id).unlink(missing_ok=True)
        self._conversations.pop(conversation_id, None)
        self.search_cache.forget(conversation_id)
        del summaries[conversation_id]

    # -- the index -------------------------------------------------------------------------------

    def _index(self) -> dict[str, ConversationSummary]:
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

    def _set_summaries(self, summaries: dict[str, ConversationSummary], signature: Signature | None) -> None:
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

    def _differences(self, summaries: dict[str, ConversationSummary]) -> tuple[set[str], set[str]]:
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

    def _rebuild_index(self) -> dict[str, ConversationSummary]:
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

    def _write_index(self, summaries: dict[str, ConversationSummary]) -> None:
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
    def _writing(self) -> Iterator[dict[str, ConversationSummary]]:
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

    def _load_for_update(
        self, conversation_id: str, summaries: dict[str, ConversationSummary]
    ) -> Conversation:
        if conversation_id not in summaries:
            raise _not_found()
        try:
            return decode_conversation(conversation_id, _read(self._file(conversation_id)))
        except FileNotFoundError:
            raise _not_found() from None
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
            self._remember(_copy(conversation), signature)

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


def _trashed_by(summary: ConversationSummary, cutoff: datetime) -> bool:
    return summary.placement.trashed_at is not None and summary.placement.trashed_at <= cutoff


def _copy(conversation: Conversation) -> Conversation:
    """A copy the caller may change without changing the cache (messages are never changed in place)."""
    return replace(conversation, messages=list(conversation.messages), chosen=dict(conversation.chosen))


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


def _not_found() -> ConversationNotFound:
    return ConversationNotFound(
        "Conversation not found: it is not among your saved chats (deleted in another tab, perhaps)."
    )


def _name_taken(name: str) -> NameTaken:
    return NameTaken(f"A conversation named “{name}” already exists. Choose another name.")
