"""Rolling backups of all conversations: one file a day in `backups/` beside the data, the newest N kept.

A backup is our export document (`model/codec.py`), so it is plain JSON a person can read, and the same
reader imports it. Restoring one first backs up what is there now, so a restore can itself be undone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from model.codec import encode_export
from model.conversation import Conversation
from model.imports import read_import
from model.message import utc_now
from utils.files import atomic_write

_PREFIX, _SUFFIX = "conversations-", ".json"
_STAMP = "%Y%m%dT%H%M%S%fZ"


@dataclass(frozen=True, slots=True)
class Backup:
    """A backup file and when it was taken."""

    path: Path
    taken_at: datetime
    label: str
    size: int


class Backups:
    """The backups folder: take, list, read and rotate backups."""

    def __init__(self, folder: Path, keep: int) -> None:
        self.folder = Path(folder)
        self.keep = keep

    def list(self) -> list[Backup]:
        """The backups, newest first."""
        found = []
        try:
            entries = list(self.folder.glob(f"{_PREFIX}*{_SUFFIX}"))
        except OSError:
            return []
        for path in entries:
            stamp, _, label = path.name[len(_PREFIX) : -len(_SUFFIX)].partition("-")
            try:
                taken = datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
                found.append(Backup(path, taken, label, path.stat().st_size))
            except (ValueError, OSError):
                continue  # not one of ours, or gone meanwhile
        return sorted(found, key=lambda b: b.taken_at, reverse=True)

    def take(
        self, conversations: Sequence[Conversation], label: str = "", files: Mapping[str, bytes] | None = None
    ) -> Backup:
        """Write a backup of `conversations` (and their attached `files`, by SHA-256) now, then drop daily
        backups beyond the newest `keep`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        now = utc_now()
        name = f"{_PREFIX}{now.strftime(_STAMP)}{'-' + label if label else ''}{_SUFFIX}"
        path = self.folder / name
        atomic_write(path, encode_export(conversations, files))
        self._rotate()
        return Backup(path, now, label, path.stat().st_size)

    def due(self) -> bool:
        """Whether today (UTC) has no daily backup yet."""
        today = utc_now().date()
        return self.keep > 0 and not any(b.taken_at.date() == today and not b.label for b in self.list())

    def read(self, backup: Backup) -> tuple[list[Conversation], dict[str, bytes]]:
        """The conversations in a backup, with their ids, and their files' bytes; raise ImportRefused if it
        cannot be read."""
        plan = read_import(backup.path.read_bytes(), backup.path.name, max_bytes=None)
        return plan.conversations, plan.files

    def _rotate(self) -> None:
        daily = [b for b in self.list() if not b.label]
        labelled = [b for b in self.list() if b.label]
        for old in daily[self.keep :] + labelled[self.keep :]:
            old.path.unlink(missing_ok=True)
