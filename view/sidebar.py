"""The sidebar every page shares: new chat, provider choice, save-as and the saved conversations.

Actions run as widget callbacks, before the page script, so the page that follows already shows their
result; what they have to say goes through `session.flash`.
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from controller import chat_search
from controller.providers import provider
from errors import BnaGPTError
from model.conversation import MAX_NAME_LENGTH, ConversationSummary, date_group
from utils.markdown import escape
from view import navigation, session
from view.auth_view import log_out

SIDEBAR_PAGE = 30
ALL_FOLDERS = "All folders"


def render() -> None:
    """Draw the sidebar."""
    with st.sidebar:
        st.button(
            "New chat",
            icon=":material/edit_square:",
            type="primary",
            width="stretch",
            on_click=navigation.new_chat,
            key="new_chat",
        )
        _provider_controls()
        _save_as()
        _conversations()
        _account()


def _account() -> None:
    person = session.account()
    if person is None:
        return
    st.divider()
    left, right = st.columns([3, 2], vertical_alignment="center")
    left.caption(f":material/person: {escape(person.name)}")
    right.button("Log out", key="sidebar_logout", icon=":material/logout:", on_click=log_out)


def _provider_controls() -> None:
    # The labels are the options; session.provider_kind() maps the chosen one back to its kind.
    st.selectbox(
        "Model provider", options=[p.label for p in session.allowed_providers()], key="provider_label"
    )
    record = provider(session.provider_kind())
    environment = session.settings().environment
    fixed = (
        bool(session.settings().accounts) and not session.is_admin() and not session.settings().user_endpoints
    )
    for setting in record.fields:
        key = record.field_key(setting)
        if setting.name == "base_url" and fixed:
            st.caption(f"{setting.label}: the server the admin configured.")
        elif not setting.secret:
            st.text_input(setting.label, key=key, placeholder=setting.placeholder)
        elif not environment.get(setting.env):  # a configured key is used, never shown
            st.text_input(
                setting.label,
                type="password",
                key=key,
                help=f"Kept in this browser tab only; never saved. To keep it, set {setting.env} in .env.",
            )
    if record.local and (running := session.local_model()) is not None:
        st.caption(f"Model: {escape(running.label)} (Settings changes it)")
    if record.note:
        st.caption(record.note)


def _save_as() -> None:
    with (
        st.popover("Save as…", icon=":material/save:", width="stretch"),
        st.form("save_as_form", border=False),
    ):
        st.text_input("Name", key="save_as_name", max_chars=MAX_NAME_LENGTH)
        if st.form_submit_button("Save", type="primary"):
            _do_save_as()


def _do_save_as() -> None:
    typed = st.session_state.get("save_as_name", "")
    try:
        copy = session.chat().save_as(typed)
    except BnaGPTError as error:
        session.show_error(error)
        return
    navigation.saved_as(copy)
    session.flash("success", f"Saved as “{copy.name}”.{trimmed_note(typed, copy.name)}")
    st.session_state.pop("save_as_name", None)
    st.rerun()


def _conversations() -> None:
    st.subheader("Conversations", divider="gray")
    chat = session.chat()
    try:
        summaries = chat.store.list()
    except BnaGPTError as error:
        session.show_error(error)
        return
    if not summaries:
        st.caption("No saved conversations yet: send a message to start one.")
        return
    query = st.text_input(
        "Search conversations",
        key="conversation_search",
        placeholder="Search names and messages",
        label_visibility="collapsed",
        max_chars=200,
        icon=":material/search:",
    )
    folders = sorted({s.placement.folder for s in summaries if s.placement.folder}, key=str.casefold)
    folder = ALL_FOLDERS
    if folders:
        folder = st.selectbox(
            "Folder", [ALL_FOLDERS, *folders], key="folder_filter", label_visibility="collapsed"
        )
    rows = _search(chat.store, query, folder) if query.strip() else _grouped(summaries, folder, session.now())
    # Only a page of rows is drawn: with 1,000 chats, drawing them all made every rerun take 0.6 s.
    limit = st.session_state.get("sidebar_limit", SIDEBAR_PAGE)
    editing = st.session_state.get("sidebar_action")
    # The page opens the chat in the address after the sidebar is drawn: mark that one from the first run.
    current = navigation.current_id()
    for heading, summary, snippet in rows[:limit]:
        if heading:
            st.caption(heading)
        if editing == ("rename", summary.id):
            _rename_form(summary)
        else:
            _row(summary, current=summary.id == current, snippet=snippet)
    if len(rows) > limit:
        st.button(
            f"Show more ({len(rows) - limit} more)",
            key="sidebar_more",
            type="tertiary",
            width="stretch",
            on_click=_show_more,
        )


Row = tuple[str, ConversationSummary, str]  # (heading to show above it, or "", summary, snippet)


def _search(store, query: str, folder: str) -> list[Row]:
    try:
        hits = store.search(query)
        meaning = session.meaning_search().find(query, store.list(), _reader(store))
    except BnaGPTError as error:
        session.show_error(error)
        return []
    if meaning is not None:
        hits = chat_search.fuse(hits, meaning)
    hits = [h for h in hits if folder in (ALL_FOLDERS, h.summary.placement.folder)]
    if not hits:
        st.caption(
            "No conversation has those words in its name or messages."
            if meaning is None
            else "No conversation has those words, or means something close."
        )
    if meaning is None:
        _meaning_on_its_way()
    return [("Found" if i == 0 else "", h.summary, h.snippet) for i, h in enumerate(hits)]


def _reader(store):
    """A conversation's message texts (none if it is gone meanwhile), for the search by meaning."""

    def read(conversation_id: str) -> list[str]:
        try:
            return [m.content for m in store.get(conversation_id).messages]
        except BnaGPTError:
            return []

    return read


def _meaning_on_its_way() -> None:
    """While the search by meaning gets ready: say so, and redraw with its results once it is."""
    search = session.meaning_search()
    if search.error:
        st.caption(escape(f"The search by meaning is not available: {search.error}"))
        return
    if navigation.reply_pending():
        st.caption("Searching by meaning too, after this reply.")
        return

    def progress() -> None:
        state = search.progress()
        if state is None:
            st.rerun()  # ready: the whole page again, now with the chats found by meaning
        done, total = state
        st.caption(f"Searching by meaning too… ({done} of {total} chats read)")

    st.fragment(progress, run_every=1.0)()


def _grouped(summaries: list[ConversationSummary], folder: str, now: datetime) -> list[Row]:
    """Pinned first, then by date; archived and trashed chats are not listed (search still finds
    archived ones)."""
    listed = [s for s in summaries if s.listed and (folder in (ALL_FOLDERS, s.placement.folder))]
    ordered = [s for s in listed if s.placement.pinned] + [s for s in listed if not s.placement.pinned]
    rows, last = [], None
    for summary in ordered:
        heading = "Pinned" if summary.placement.pinned else date_group(summary.updated_at, now)
        rows.append((heading if heading != last else "", summary, ""))
        last = heading
    return rows


def _show_more() -> None:
    st.session_state["sidebar_limit"] = st.session_state.get("sidebar_limit", SIDEBAR_PAGE) + SIDEBAR_PAGE


def _row(summary: ConversationSummary, current: bool, snippet: str = "") -> None:
    name_col, rename_col, delete_col = st.columns([0.72, 0.14, 0.14], gap="small")
    marks = (":material/keep: " if summary.placement.pinned else "") + (
        ":material/inventory_2: " if summary.placement.archived else ""
    )
    name_col.button(
        marks + escape(summary.name),
        key=f"open_{summary.id}",
        type="primary" if current else "tertiary",
        width="stretch",
        on_click=navigation.open_chat,
        args=(summary.id,),
        help=f"{summary.message_count} messages, updated {summary.updated_at:%Y-%m-%d %H:%M} UTC",
    )
    rename_col.button(
        ":material/edit:",
        key=f"rename_{summary.id}",
        help="Rename",
        type="tertiary",
        on_click=_set_action,
        args=("rename", summary.id),
    )
    delete_col.button(
        ":material/delete:",
        key=f"delete_{summary.id}",
        help="Move to the trash (kept 30 days; restore it from the Library)",
        type="tertiary",
        on_click=navigation.trash_chat,
        args=(summary.id, summary.name),
    )
    if snippet:
        st.caption(escape(snippet))


def trimmed_note(typed: str, stored: str) -> str:
    """Say so when a name was stored without the spaces typed around it."""
    return " Spaces at its start and end were left out." if typed != stored else ""


def _set_action(action: str, conversation_id: str) -> None:
    st.session_state["sidebar_action"] = (action, conversation_id)


def _clear_action() -> None:
    action = st.session_state.pop("sidebar_action", None)
    if action:
        st.session_state.pop(f"rename_seen_{action[1]}", None)


def _rename_form(summary: ConversationSummary) -> None:
    # The name this tab showed when the form opened: a rename made meanwhile elsewhere is not overwritten.
    seen = st.session_state.setdefault(f"rename_seen_{summary.id}", summary.name)
    with st.form(f"rename_form_{summary.id}"):
        new_name = st.text_input(
            "New name",
            value=summary.name,
            key=f"rename_input_{summary.id}",
            max_chars=MAX_NAME_LENGTH,
        )
        save_col, cancel_col = st.columns(2)
        saved = save_col.form_submit_button("Rename", type="primary")
        cancelled = cancel_col.form_submit_button("Cancel")
    if cancelled:
        _clear_action()
        st.rerun()
    if saved:
        try:
            stored = session.chat().rename(summary.id, new_name, expected=seen)
        except BnaGPTError as error:
            session.show_error(error)
            st.session_state.pop(f"rename_seen_{summary.id}", None)
            return
        _clear_action()
        session.flash("success", f"Renamed to “{stored}”.{trimmed_note(new_name, stored)}")
        st.rerun()
