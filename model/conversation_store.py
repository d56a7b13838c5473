"""The conversation store interface; `model/json_store.py` is the backend the app uses.

Every write is a small operation (append, rename, delete) rather than "save this whole conversation", so two
tabs or two server processes working on the same data never overwrite each other's messages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from model.conversation import Conversation, ConversationSummary
from model.message import Message


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
        self, name: str, messages: Sequence[Message] = (), *, rename_if_taken: bool = False
    ) -> Conversation:
        """Add a conversation; raise NameTaken, or pick a free ` (n)` name if `rename_if_taken`."""

    @abstractmethod
    def add_many(self, conversations: Sequence[Conversation]) -> list[Conversation]:
        """Store copies of whole conversations (an import) under new ids, renaming any whose name is
        taken with a ` (n)` suffix; never touches existing ones. Return them as stored."""

    @abstractmethod
    def append(self, conversation_id: str, *messages: Message) -> None:
        """Add messages at the end of a conversation; raise ConversationNotFound."""

    @abstractmethod
    def rename(self, conversation_id: str, name: str) -> str:
        """Give a conversation a new name and return it as stored; raise InvalidName or NameTaken."""

    @abstractmethod
    def delete(self, conversation_id: str) -> None:
        """Remove a conversation; raise ConversationNotFound."""

    @property
    @abstractmethod
    def location(self) -> Path:
        """Where the data lives, to show the user."""

    @abstractmethod
    def set_aside_files(self) -> list[Path]:
        """Files that could not be read and were moved aside, untouched, for the user to recover."""
