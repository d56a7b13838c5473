"""The conversation library: import and export files, and backups, between the pages and the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from model.backups import Backup, Backups
from model.codec import encode_export
from model.conversation import TRASH_DAYS, Conversation
from model.conversation_store import ConversationStore
from model.exports import file_stem, to_markdown
from model.imports import read_import

JSON_MIME, MARKDOWN_MIME = "application/json", "text/markdown"


@dataclass
class ImportReport:
    """What an import did: the names given to what it added, and what it left out and why."""

    source: str
    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def import_file(store: ConversationStore, raw: bytes, filename: str) -> ImportReport:
    """Add the conversations of an uploaded file; never changes an existing one. Raise ImportRefused."""
    plan = read_import(raw, filename)
    added = store.add_many(plan.conversations) if plan.conversations else []
    return ImportReport(plan.source, [c.name for c in added], plan.skipped)


def export_file(
    conversations: Sequence[Conversation], kind: str, stem: str | None = None
) -> tuple[bytes, str, str]:
    """(content, file name, MIME type) of a download: kind is "json" or "markdown"."""
    if stem is None:
        stem = file_stem(conversations[0].name) if len(conversations) == 1 else "bnagpt-conversations"
    if kind == "markdown":
        return to_markdown(conversations), f"{stem}.md", MARKDOWN_MIME
    return encode_export(conversations), f"{stem}.json", JSON_MIME


def backup_if_due(store: ConversationStore, backups: Backups) -> Backup | None:
    """Take today's backup if there is none yet."""
    if not backups.due():
        return None
    return backups.take(store.everything())


def purge_trash(store: ConversationStore) -> int:
    """Delete for good what went to the trash over TRASH_DAYS ago; return how many."""
    return store.empty_trash(timedelta(days=TRASH_DAYS))


def daily_upkeep(store: ConversationStore, backups: Backups) -> None:
    """Today's backup, then the purge of old trash (so a purged chat is still in yesterday's backup)."""
    backup_if_due(store, backups)
    purge_trash(store)


def restore(store: ConversationStore, backups: Backups, backup: Backup, replace: bool) -> str:
    """Bring a backup back: only the conversations missing now, or (`replace`) exactly as it was.
    What is there now is backed up first. Return what was done, for the user."""
    conversations = backups.read(backup)
    safety = backups.take(store.everything(), label="before-restore")
    when = f"{backup.taken_at:%Y-%m-%d %H:%M} UTC"
    if replace:
        store.replace_all(conversations)
        return (
            f"Restored the backup of {when}: {len(conversations)} conversations. What was there before is "
            f"in {safety.path.name}."
        )
    present = {s.id for s in store.list()}
    missing = [c for c in conversations if c.id not in present]
    store.add_many(missing, keep_ids=True)
    return f"Brought back {len(missing)} conversations from the backup of {when}; none was changed."
