"""The conversation library: import and export files, and backups, between the pages and the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from model.assistant import Assistant
from model.backups import Backup, Backups
from model.codec import attached_files, encode_export
from model.conversation import TRASH_DAYS, Conversation
from model.conversation_store import ConversationStore
from model.exports import file_stem, to_markdown
from model.file_store import FileStore
from model.imports import read_import

JSON_MIME, MARKDOWN_MIME = "application/json", "text/markdown"


@dataclass
class ImportReport:
    """What an import did: the names given to what it added, and what it left out and why."""

    source: str
    imported: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def import_file(
    store: ConversationStore, raw: bytes, filename: str, files: FileStore | None = None
) -> ImportReport:
    """Add the conversations of an uploaded file (and their files); never changes an existing one. Raise
    ImportRefused."""
    plan = read_import(raw, filename)
    _keep_files(plan.files, files)
    added = store.add_many(plan.conversations) if plan.conversations else []
    return ImportReport(plan.source, [c.name for c in added], plan.skipped)


def export_file(
    conversations: Sequence[Conversation], kind: str, stem: str | None = None, files: FileStore | None = None
) -> tuple[bytes, str, str]:
    """(content, file name, MIME type) of a download: kind is "json" (with the attached files, when
    `files` is given) or "markdown"."""
    name, mime = export_name(conversations, kind, stem)
    if kind == "markdown":
        return to_markdown(conversations), name, mime
    return encode_export(conversations, blobs(conversations, files)), name, mime


def export_name(conversations: Sequence[Conversation], kind: str, stem: str | None = None) -> tuple[str, str]:
    """(file name, MIME type) of a download, without making it."""
    if stem is None:
        stem = file_stem(conversations[0].name) if len(conversations) == 1 else "bnagpt-conversations"
    return (f"{stem}.md", MARKDOWN_MIME) if kind == "markdown" else (f"{stem}.json", JSON_MIME)


def blobs(conversations: Sequence[Conversation], files: FileStore | None) -> dict[str, bytes]:
    """The bytes of the files attached to these conversations (those still stored)."""
    if files is None:
        return {}
    return {sha: files.read(sha) for sha in sorted(attached_files(conversations)) if files.has(sha)}


def _keep_files(found: dict[str, bytes], files: FileStore | None) -> None:
    if files is not None:
        for data in found.values():
            files.put(data)


def backup_if_due(
    store: ConversationStore, backups: Backups, files: FileStore | None = None
) -> Backup | None:
    """Take today's backup if there is none yet."""
    if not backups.due():
        return None
    return take_backup(store, backups, files)


def take_backup(
    store: ConversationStore, backups: Backups, files: FileStore | None = None, label: str = ""
) -> Backup:
    """Back up every conversation with its files now."""
    everything = store.everything()
    return backups.take(everything, label, blobs(everything, files))


def purge_trash(store: ConversationStore) -> int:
    """Delete for good what went to the trash over TRASH_DAYS ago; return how many."""
    return store.empty_trash(timedelta(days=TRASH_DAYS))


def daily_upkeep(
    store: ConversationStore,
    backups: Backups,
    files: FileStore | None = None,
    assistants: Sequence[Assistant] = (),
) -> None:
    """Today's backup, then the purge of old trash (so a purged chat is still in yesterday's backup), then
    the attached files nothing refers to any more."""
    backup_if_due(store, backups, files)
    purge_trash(store)
    if files is not None:
        forget_unused_files(store, assistants, files)


def forget_unused_files(store: ConversationStore, assistants: Sequence[Assistant], files: FileStore) -> int:
    """Remove stored files (and indexes) that no conversation, trash included, nor assistant refers to."""
    used = attached_files(store.everything()) | {f.sha256 for a in assistants for f in a.files}
    return files.keep_only(used)


def restore(
    store: ConversationStore, backups: Backups, backup: Backup, replace: bool, files: FileStore | None = None
) -> str:
    """Bring a backup back: only the conversations missing now, or (`replace`) exactly as it was.
    What is there now is backed up first. Return what was done, for the user."""
    conversations, found = backups.read(backup)
    safety = take_backup(store, backups, files, label="before-restore")
    _keep_files(found, files)
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
