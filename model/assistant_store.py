"""Assistants in `assistants.json` beside the conversations, with the store's safety: a cross-process lock,
atomic replace, and a file that cannot be read set aside untouched. The built-in assistants live in code."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

from filelock import FileLock

from errors import AssistantNotFound, InvalidAssistant, StoreError
from model.assistant import BUILTINS, Assistant, clean_assistant
from model.database import Database
from utils.files import atomic_write, locked, set_aside

FORMAT = "bnagpt-assistants"
VERSION = 1


class AssistantStore:
    """Saves, lists, loads and deletes assistants."""

    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._lock = FileLock(str(self._path) + ".lock", timeout=15)
        self.notices: list[str] = []

    @property
    def path(self) -> Path:
        """The assistants file."""
        return self._path

    def list(self) -> list[Assistant]:
        """Built-in assistants first, then the user's by name."""
        return [*BUILTINS, *sorted(self._read().values(), key=lambda a: a.name.casefold())]

    def get(self, assistant_id: str) -> Assistant:
        """One assistant; raise AssistantNotFound."""
        for assistant in self.list():
            if assistant.id == assistant_id:
                return assistant
        raise AssistantNotFound(
            "That assistant is no longer saved (it may have been deleted in another tab)."
        )

    def save(self, assistant: Assistant) -> Assistant:
        """Add or update an assistant (its version goes up by one); built-ins are copied, never changed."""
        if any(b.id == assistant.id for b in BUILTINS):
            raise InvalidAssistant("Built-in assistants cannot be changed: duplicate it and edit the copy.")
        assistant = clean_assistant(replace(assistant, builtin=False))
        with self._locked():
            assistants = self._read(locked=True)
            previous = assistants.get(assistant.id)
            saved = replace(assistant, version=previous.version + 1 if previous else 1)
            assistants[saved.id] = saved
            self._write(assistants)
        return saved

    def delete(self, assistant_id: str) -> None:
        """Remove one of the user's assistants; chats started with it keep their copy of it."""
        if any(b.id == assistant_id for b in BUILTINS):
            raise InvalidAssistant("Built-in assistants cannot be deleted.")
        with self._locked():
            assistants = self._read(locked=True)
            if assistants.pop(assistant_id, None) is None:
                raise AssistantNotFound("That assistant is no longer saved.")
            self._write(assistants)

    def document(self) -> bytes | None:
        """The saved assistants exactly as stored (None: none saved yet), to copy elsewhere."""
        return self._raw()

    def replace_document(self, raw: bytes) -> None:
        """Make a copied document the saved assistants; raise InvalidAssistant if it is not one."""
        try:
            _parse(raw)
        except (ValueError, KeyError, TypeError, RecursionError) as problem:
            raise InvalidAssistant(f"Not a bnaGPT assistants document ({problem}).") from None
        with self._locked():
            self._save(raw)

    def _read(self, locked: bool = False) -> dict[str, Assistant]:
        raw = self._raw()
        if raw is None:
            return {}
        try:
            return _parse(raw)
        except (ValueError, KeyError, TypeError, InvalidAssistant, RecursionError) as problem:
            if not locked:
                with self._locked():
                    return self._read(locked=True)
            return self._unreadable(str(problem))

    def _write(self, assistants: dict[str, Assistant]) -> None:
        document = {
            "format": FORMAT,
            "version": VERSION,
            "assistants": [a.to_dict() for a in assistants.values()],
        }
        self._save((json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))

    # -- where the document lives: a file here, a row in PostgresAssistantStore ---------------------

    def _raw(self) -> bytes | None:
        try:
            return self._path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreError(f"Could not read {self._path}: {error.strerror}.") from None

    def _save(self, raw: bytes) -> None:
        atomic_write(self._path, raw)

    def _unreadable(self, problem: str) -> dict[str, Assistant]:
        aside = set_aside(self._path)
        self.notices.append(
            f"{self._path.name} could not be read ({problem}). It was moved, untouched, to {aside}; "
            "your assistants are in it."
        )
        return {}

    def _locked(self) -> AbstractContextManager[None]:
        return locked(self._lock, self._path)


class PostgresAssistantStore(AssistantStore):
    """One owner's assistants as a document in the database (BNAGPT_DATABASE_URL)."""

    def __init__(self, database: Database, owner: str = "") -> None:
        super().__init__(Path(database.label) / owner / "assistants")
        self.owner = owner
        self._document = database.document(owner, "assistants")

    def _raw(self) -> bytes | None:
        return self._document.read()

    def _save(self, raw: bytes) -> None:
        self._document.write(raw)

    def _unreadable(self, problem: str) -> dict[str, Assistant]:
        raise StoreError(
            f"The assistants in the database could not be read ({problem}); nothing was changed."
        )

    def _locked(self) -> AbstractContextManager[None]:
        return self._document.locked()


def _parse(raw: bytes) -> dict[str, Assistant]:
    document = json.loads(raw.decode("utf-8"))
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError("not a bnaGPT assistants file")
    return {a.id: a for a in (Assistant.from_dict(item) for item in document["assistants"])}
