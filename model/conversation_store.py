"""The conversation store interface; `model/json_store.py` is the backend the app uses.

Every write is a small operation (append, rename, delete) rather than "save this whole conversation", so two
tabs or two server processes working on the same data never overwrite each other's messages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from model.assistant import Assistant
from model.attachment import Attachment
from model.conversation import Conversation, ConversationSummary, Digest
from model.message import Context, Message
from model.search import SearchHit
from model.step import Step


class ConversationStore(ABC):
    """Saves, lists, loads, renames and deletes named conversations."""

    #: Messages for the user about recoveries the store made (a corrupt file set aside, say).
    notices: list[str]

    @abstractmethod
    def list(self) -> list[ConversationSummary]:
        """All conversations, most recently updated first."""

    @abstractmethod
    def get(self, conversation_id: str) -> Conversation:
        """One conversation with its messages; raise ConversationNotFound."""

    @abstractmethod
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
        """Add a conversation; raise NameTaken, or pick a free ` (n)` name if `rename_if_taken`;
        `named_by_user`: automatic titles leave its name alone. The messages follow one another, or with
        `chosen` (a copy of a chat) they are a tree already, kept as it is."""

    @abstractmethod
    def set_assistant(self, conversation_id: str, assistant: Assistant | None) -> None:
        """Change the chat's copy of its assistant; raise ConversationNotFound."""

    @abstractmethod
    def set_files(self, conversation_id: str, files: Sequence[Attachment]) -> None:
        """Change the files attached to the chat; raise ConversationNotFound."""

    @abstractmethod
    def add_many(self, conversations: Sequence[Conversation], keep_ids: bool = False) -> list[Conversation]:
        """Store copies of whole conversations (an import) under new ids (or, with `keep_ids`, their own where
        free), renaming any whose name is taken with a ` (n)` suffix; never touches existing ones."""

    @abstractmethod
    def replace_all(self, conversations: Sequence[Conversation]) -> None:
        """Make these the only conversations, under their own ids (restoring a backup)."""

    @abstractmethod
    def append(self, conversation_id: str, *messages: Message) -> None:
        """Add messages at the end of the conversation as shown; raise ConversationNotFound."""

    @abstractmethod
    def add(self, conversation_id: str, parent: str | None, *messages: Message) -> None:
        """Add messages after `parent` (a new version beside its other children) and follow them; raise
        StoreError if `parent` is not in the chat."""

    @abstractmethod
    def update_reply(self, conversation_id: str, message: Message) -> None:
        """Replace a stored reply by this one of the same id (its text as it streams, then as it ended);
        raise StoreError if it is no longer in the chat."""

    @abstractmethod
    def choose(self, conversation_id: str, message_id: str) -> None:
        """Follow this version of a message; raise StoreError if it is not in the chat."""

    @abstractmethod
    def set_context(self, conversation_id: str, message_id: str, context: Context) -> None:
        """Whether the model is given the message always, never, or as the window allows."""

    @abstractmethod
    def set_keep_last(self, conversation_id: str, count: int) -> None:
        """Give the model only the last `count` messages (0: as many as fit)."""

    @abstractmethod
    def add_digest(self, conversation_id: str, digest: Digest) -> None:
        """Keep a summary of the messages the model's window dropped."""

    @abstractmethod
    def add_step(self, conversation_id: str, message_id: str, step: Step) -> None:
        """Add a step (a code run the user asked for) to a reply; raise ConversationNotFound, or StoreError
        if that message is not a reply."""

    @abstractmethod
    def rename(self, conversation_id: str, name: str, expected: str | None = None) -> str:
        """Give a conversation a new name and return it as stored; raise InvalidName or NameTaken, or
        ChangedMeanwhile if `expected` (the name the user was shown) is no longer its name."""

    @abstractmethod
    def auto_rename(self, conversation_id: str, name: str) -> str | None:
        """Give an automatic title (free ` (n)` name) unless the user named it; return it, or None."""

    @abstractmethod
    def place(self, conversation_id: str, **changes: Any) -> ConversationSummary:
        """Change its Placement fields (`pinned`, `archived`, `folder`, `trashed_at`); return its summary."""

    @abstractmethod
    def delete(self, conversation_id: str) -> None:
        """Remove a conversation for good; raise ConversationNotFound."""

    @abstractmethod
    def empty_trash(self, older_than: timedelta | None = None) -> int:
        """Delete for good what is in the trash (or went there over `older_than` ago); return how many."""

    @abstractmethod
    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Conversations whose name or messages contain every word of `query`, most recent first."""

    def prepare_search(self) -> None:  # noqa: B027 - optional: a backend that needs no warm-up skips it
        """Load what search needs, ahead of the first query."""

    @abstractmethod
    def everything(self) -> list[Conversation]:
        """Every conversation with its messages, trash and archive included."""

    @property
    @abstractmethod
    def location(self) -> Path:
        """Where the data lives, to show the user."""

    def describe(self) -> str:
        """Where the data lives, in words (Markdown), for Settings."""
        return f"`{self.location}` and the folder `{self.location.with_suffix('')}` beside it"

    @abstractmethod
    def set_aside_files(self) -> list[Path]:
        """Files that could not be read and were moved aside, untouched, for the user to recover."""
