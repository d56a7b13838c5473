"""What every conversation store does to a conversation, written once over a few primitives a backend
gives: the JSON files (`model/json_store.py`) and PostgreSQL (`model/postgres_store.py`).

A backend provides `_writing()` (a write transaction, exclusive across threads and processes, yielding the
conversations' summaries by id), `_load_for_update`, `_write_conversation` and `_remove`, and its own
reading (`list`, `get`, `search`). Every change is then the same code in both: load, change, write.
"""

from __future__ import annotations

import functools
import threading
from abc import abstractmethod
from collections.abc import Callable, MutableMapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from errors import ChangedMeanwhile, ConversationNotFound, NameTaken, StoreError
from model import tree
from model.assistant import Assistant
from model.attachment import Attachment
from model.codec import ID
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
from model.step import Step

T = TypeVar("T")
Summaries = MutableMapping[str, ConversationSummary]


def one_at_a_time(method: Callable[..., T]) -> Callable[..., T]:
    """Run a public method holding the store's own lock: its caches are shared by the threads of a tab
    (a stopped reply still saving while the next page run reads)."""

    @functools.wraps(method)
    def locked(self: TreeStore, *args: Any, **kwargs: Any) -> T:
        with self._mutex:
            return method(self, *args, **kwargs)

    return locked


class TreeStore(ConversationStore):
    """The changes to conversations, over a backend's primitives."""

    def __init__(self) -> None:
        self._mutex = threading.RLock()
        self.notices: list[str] = []

    @abstractmethod
    def _writing(self) -> AbstractContextManager[Summaries]:
        """A write: exclusive, the summaries as stored now, saved if the block ends without an error."""

    @abstractmethod
    def _load_for_update(self, conversation_id: str, summaries: Summaries) -> Conversation:
        """The conversation as stored now, inside `_writing()`; raise ConversationNotFound."""

    @abstractmethod
    def _write_conversation(self, conversation: Conversation) -> None:
        """Save a conversation inside `_writing()` (its summary is set by the caller)."""

    @abstractmethod
    def _remove(self, conversation_id: str, summaries: Summaries) -> None:
        """Delete a conversation inside `_writing()`."""

    def _names(self, summaries: Summaries, but: str = "") -> set[str]:
        """The names taken, inside `_writing()`, by every conversation but `but`."""
        return {s.name for s in summaries.values() if s.id != but}

    # -- writing ---------------------------------------------------------------------------------

    @one_at_a_time
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
            taken = self._names(summaries)
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
        return copy_conversation(conversation)

    @one_at_a_time
    def add_many(self, conversations: Sequence[Conversation], keep_ids: bool = False) -> list[Conversation]:
        """Store copies under free names, with one write of the index for all of them; ids are new, or
        with `keep_ids` kept where no conversation has them yet."""
        added = []
        with self._writing() as summaries:
            taken = self._names(summaries)
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
                added.append(copy_conversation(conversation))
        return added

    @one_at_a_time
    def replace_all(self, conversations: Sequence[Conversation]) -> None:
        """Make these the only conversations, under their own ids (restoring a backup)."""
        with self._writing() as summaries:
            for conversation_id in list(summaries):
                self._remove(conversation_id, summaries)
            for original in conversations:
                conversation = original if ID.fullmatch(original.id) else replace(original, id=new_id())
                self._write_conversation(conversation)
                summaries[conversation.id] = conversation.summary()

    @one_at_a_time
    def append(self, conversation_id: str, *messages: Message) -> None:
        """Add messages at the end of the conversation as shown (its chosen path)."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            shown = conversation.path()
            self._add(conversation, shown[-1].id if shown else None, messages, summaries)

    @one_at_a_time
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
        summaries: Summaries,
    ) -> None:
        added = tree.linked(messages, parent)
        conversation.messages.extend(added)
        tree.check(conversation.messages)
        if added:
            conversation.chosen = tree.choose(conversation.messages, conversation.chosen, added[-1].id)
        conversation.updated_at = utc_now()
        self._write_conversation(conversation)
        summaries[conversation.id] = conversation.summary()

    @one_at_a_time
    def choose(self, conversation_id: str, message_id: str) -> None:
        """Follow this version of a message (and, below it, the versions last followed there)."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            self._find(conversation, message_id)
            conversation.chosen = tree.choose(conversation.messages, conversation.chosen, message_id)
            self._write_conversation(conversation)
            summaries[conversation_id] = conversation.summary()

    @one_at_a_time
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

    @one_at_a_time
    def set_keep_last(self, conversation_id: str, count: int) -> None:
        """Give the model only the last `count` messages (0: as many as fit)."""
        if not isinstance(count, int) or count < 0:
            raise StoreError("The number of messages to send must be a whole number, 0 or more.")
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            conversation.keep_last = count
            self._write_conversation(conversation)

    @one_at_a_time
    def add_digest(self, conversation_id: str, digest: Digest) -> None:
        """Keep a summary of what the window dropped (it replaces one ending at the same message)."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            self._find(conversation, digest.through)
            kept = tuple(d for d in conversation.digests if d.through != digest.through)
            conversation.digests = (*kept, digest)[-MAX_DIGESTS:]
            self._write_conversation(conversation)

    @one_at_a_time
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

    @one_at_a_time
    def update_reply(self, conversation_id: str, message: Message) -> None:
        """Replace a reply by this one of the same id, keeping its place in the tree."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            index = self._find(conversation, message.id)
            stored = conversation.messages[index]
            if stored.role != Role.ASSISTANT:
                raise StoreError("That reply is no longer in the chat: reload the page.")
            conversation.messages[index] = replace(message, parent=stored.parent)
            conversation.updated_at = utc_now()
            self._write_conversation(conversation)
            summaries[conversation.id] = conversation.summary()

    @staticmethod
    def _find(conversation: Conversation, message_id: str) -> int:
        index = conversation.index_of(message_id)
        if index is None:
            raise StoreError("That message is no longer in the chat: reload the page.")
        return index

    @one_at_a_time
    def rename(self, conversation_id: str, name: str, expected: str | None = None) -> str:
        """Rename, refusing a name another conversation has, or (with `expected`, the name the user saw)
        a chat renamed meanwhile in another tab."""
        name = clean_name(name)
        with self._writing() as summaries:
            if name in self._names(summaries, but=conversation_id):
                raise _name_taken(name)
            conversation = self._load_for_update(conversation_id, summaries)
            if expected is not None and conversation.name != expected:
                raise ChangedMeanwhile(
                    f"This chat was renamed “{conversation.name}” in another tab meanwhile, so your name "
                    "was not saved. Rename it again if you still want to."
                )
            conversation.name = name
            conversation.placement = replace(conversation.placement, named_by_user=True)
            self._write_conversation(conversation)
            summaries[conversation_id] = conversation.summary()
        return name

    @one_at_a_time
    def auto_rename(self, conversation_id: str, name: str) -> str | None:
        """Give an automatic title unless the user named the conversation; a taken name gets a suffix."""
        name = clean_name(name)
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            if conversation.placement.named_by_user:
                return None
            taken = self._names(summaries, but=conversation_id)
            conversation.name = unique_name(name, taken)
            self._write_conversation(conversation)
            summaries[conversation_id] = conversation.summary()
        return conversation.name

    @one_at_a_time
    def set_assistant(self, conversation_id: str, assistant: Assistant | None) -> None:
        """Change the chat's copy of its assistant (its JSON mode, say); the assistant itself is untouched."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            conversation.assistant = assistant
            self._write_conversation(conversation)

    @one_at_a_time
    def set_files(self, conversation_id: str, files: Sequence[Attachment]) -> None:
        """Change the files attached to the chat."""
        with self._writing() as summaries:
            conversation = self._load_for_update(conversation_id, summaries)
            conversation.files = tuple(files)
            self._write_conversation(conversation)

    @one_at_a_time
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

    @one_at_a_time
    def delete(self, conversation_id: str) -> None:
        """Remove a conversation for good."""
        with self._writing() as summaries:
            if conversation_id not in summaries:
                raise not_found()
            self._remove(conversation_id, summaries)

    @one_at_a_time
    def empty_trash(self, older_than: timedelta | None = None) -> int:
        """Delete for good what is in the trash (only what went there over `older_than` ago)."""
        cutoff = utc_now() - (older_than or timedelta(0))
        if not any(_trashed_by(s, cutoff) for s in self.list()):
            return 0  # nothing to do: the files are not touched
        with self._writing() as summaries:
            doomed = [s.id for s in summaries.values() if _trashed_by(s, cutoff)]
            for conversation_id in doomed:
                self._remove(conversation_id, summaries)
        return len(doomed)

    @one_at_a_time
    def everything(self) -> list[Conversation]:
        """Every conversation with its messages, trash and archive included (for exports and backups)."""
        return [self.get(s.id) for s in self.list()]


def _trashed_by(summary: ConversationSummary, cutoff: datetime) -> bool:
    return summary.placement.trashed_at is not None and summary.placement.trashed_at <= cutoff


def copy_conversation(conversation: Conversation) -> Conversation:
    """A copy the caller may change without changing a cache (messages are never changed in place)."""
    return replace(conversation, messages=list(conversation.messages), chosen=dict(conversation.chosen))


def not_found() -> ConversationNotFound:
    """The error for a conversation that is not in the store."""
    return ConversationNotFound(
        "Conversation not found: it is not among your saved chats (deleted in another tab, perhaps)."
    )


def _name_taken(name: str) -> NameTaken:
    return NameTaken(f"A conversation named “{name}” already exists. Choose another name.")
