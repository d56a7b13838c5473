"""The Library page: import and export, archived chats, the trash, and backups."""

from __future__ import annotations

import functools

import streamlit as st

from controller import library
from errors import BnaGPTError
from model.backups import Backup
from model.conversation import TRASH_DAYS, ConversationSummary
from model.imports import MAX_FILE_BYTES
from utils.markdown import escape
from view import downloads, navigation, session

LIST_LIMIT = 50


def import_section() -> None:
    """Upload a file of conversations; report what was imported and what was skipped."""
    st.subheader("Import")
    st.caption(
        "A bnaGPT export or backup, the article's conversations.json, or ChatGPT's data export (the zip, or "
        f"the conversations.json inside it), up to {MAX_FILE_BYTES // 2**20} MB. Existing chats are never "
        "changed: a name already taken gets a number."
    )
    upload = st.file_uploader("File to import", type=["json", "zip"], key="import_file")
    if upload is not None and st.button("Import", type="primary", key="import_go"):
        try:
            report = library.import_file(
                session.chat().store, upload.getvalue(), upload.name, session.file_store()
            )
        except BnaGPTError as error:
            session.show_error(error)
            return
        st.session_state["import_report"] = report
    report = st.session_state.get("import_report")
    if report is not None:
        st.success(f"Imported {len(report.imported)} conversations from the {report.source}.")
        if report.skipped:
            with st.expander(f"Left out: {len(report.skipped)}"):
                for line in report.skipped[:200]:
                    st.text(line)


def export_section() -> None:
    """Download every conversation (trash left out) as JSON or Markdown."""
    st.subheader("Export")
    st.caption("JSON keeps everything and can be imported again; Markdown is for reading.")
    store, files = session.chat().store, session.file_store()

    def everything(kind: str) -> bytes:
        conversations = [c for c in store.everything() if c.placement.trashed_at is None]
        return library.export_file(conversations, kind, files=files)[0]

    left, right = st.columns(2)
    for column, kind, label in ((left, "json", "JSON"), (right, "markdown", "Markdown")):
        name, mime = library.export_name([], kind)
        with column:
            downloads.offer(
                f"Download {label}",
                functools.partial(everything, kind),
                name,
                mime,
                key=f"dl_{kind}",
                icon=":material/download:",
            )


def archive_section(summaries: list[ConversationSummary]) -> None:
    """Archived chats: open or unarchive them."""
    archived = [s for s in summaries if s.placement.archived and s.placement.trashed_at is None]
    st.subheader(f"Archived ({len(archived)})")
    if not archived:
        st.caption(
            "Archive a chat from its Conversation menu to hide it from the list; search still finds it."
        )
    for summary in archived[:LIST_LIMIT]:
        name_col, open_col, back_col = st.columns([0.6, 0.2, 0.2])
        name_col.markdown(escape(summary.name))
        if open_col.button("Open", key=f"lib_open_{summary.id}"):
            navigation.open_chat(summary.id)
            st.switch_page("pages/chat_page.py")
        back_col.button(
            "Unarchive", key=f"lib_unarchive_{summary.id}", on_click=_unarchive, args=(summary.id,)
        )


def trash_section(summaries: list[ConversationSummary]) -> None:
    """The trash: restore, delete for good, empty it (with a confirmation)."""
    trashed = [s for s in summaries if s.placement.trashed_at is not None]
    st.subheader(f"Trash ({len(trashed)})")
    st.caption(f"Chats stay here {TRASH_DAYS} days, then are deleted for good.")
    for summary in trashed[:LIST_LIMIT]:
        name_col, restore_col = st.columns([0.75, 0.25])
        when = summary.placement.trashed_at
        name_col.markdown(f"{escape(summary.name)}  \n:gray[trashed {when:%Y-%m-%d %H:%M} UTC]")
        restore_col.button(
            "Restore", key=f"restore_{summary.id}", on_click=_restore, args=(summary.id, summary.name)
        )
    if not trashed:
        return
    if not st.session_state.get("confirm_empty_trash"):
        st.button("Empty the trash…", key="empty_trash", on_click=_ask_empty)
        return
    with st.container(border=True):
        st.markdown(f"Delete the {len(trashed)} chats in the trash **for good**? This cannot be undone.")
        yes, no = st.columns(2)
        yes.button("Delete for good", type="primary", key="empty_trash_yes", on_click=_empty)
        no.button("Cancel", key="empty_trash_no", on_click=_cancel_empty)


def backups_section() -> None:
    """Daily backups: list, take one now, bring back missing chats or restore one exactly."""
    s = session.settings()
    st.subheader("Backups")
    if s.backups_kept == 0:
        st.caption("Backups are off (BNAGPT_BACKUPS=0).")
    else:
        st.caption(
            f"One a day in {s.backups_dir}, the newest {s.backups_kept} kept (BNAGPT_BACKUPS). "
            "A restore backs up what is there first."
        )
    backups = session.backups()
    store = session.chat().store
    broken = store.set_aside_files()
    if broken and backups.list():
        st.warning(
            f"{len(broken)} file(s) could not be read and were set aside (see Settings). The newest backup "
            "may hold the chats they had: “Bring back missing chats” adds them without changing any other."
        )
    st.button("Back up now", key="backup_now", on_click=_backup_now)
    for index, backup in enumerate(backups.list()[:LIST_LIMIT]):
        label = f" ({backup.label})" if backup.label else ""
        with st.container(border=True):
            st.markdown(f"**{backup.taken_at:%Y-%m-%d %H:%M} UTC**{label} · {backup.size / 2**20:.1f} MB")
            merge, exact = st.columns(2)
            merge.button(
                "Bring back missing chats",
                key=f"merge_{index}",
                on_click=_restore_backup,
                args=(backup, False),
            )
            if st.session_state.get("confirm_restore") == backup.path.name:
                exact.button(
                    "Replace all chats with it",
                    type="primary",
                    key=f"exact_yes_{index}",
                    on_click=_restore_backup,
                    args=(backup, True),
                )
            else:
                exact.button("Restore exactly…", key=f"exact_{index}", on_click=_ask_restore, args=(backup,))


def _unarchive(conversation_id: str) -> None:
    _safely(lambda: session.chat().store.place(conversation_id, archived=False))


def _restore(conversation_id: str, name: str) -> None:
    if _safely(lambda: session.chat().restore(conversation_id)):
        session.flash("success", f"Restored “{name}”.")


def _ask_empty() -> None:
    st.session_state["confirm_empty_trash"] = True


def _cancel_empty() -> None:
    st.session_state.pop("confirm_empty_trash", None)


def _empty() -> None:
    st.session_state.pop("confirm_empty_trash", None)
    count = []
    if _safely(lambda: count.append(session.chat().store.empty_trash())):
        session.forget_unused_files()
        session.flash("success", f"Deleted {count[0]} chats for good.")


def _backup_now() -> None:
    store = session.chat().store
    if _safely(lambda: library.take_backup(store, session.backups(), session.file_store(), "manual")):
        session.flash("success", "Backed up.")


def _ask_restore(backup: Backup) -> None:
    st.session_state["confirm_restore"] = backup.path.name


def _restore_backup(backup: Backup, replace: bool) -> None:
    st.session_state.pop("confirm_restore", None)
    said = []
    if _safely(
        lambda: said.append(
            library.restore(session.chat().store, session.backups(), backup, replace, session.file_store())
        )
    ):
        session.flash("success", said[0])


def _safely(action) -> bool:
    try:
        action()
    except (BnaGPTError, OSError) as error:
        session.flash("error", str(error))
        return False
    return True
