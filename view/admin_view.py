"""The admin page: the accounts (approve, disable, make admin, export, delete) and what users may use."""

from __future__ import annotations

import streamlit as st

from errors import BnaGPTError
from model.account import ACTIVE, ADMIN, DISABLED, PENDING, USER, Account
from utils.markdown import escape
from view import downloads, session

_DELETING = "deleting_account"


def accounts_section() -> None:
    """Every account, and the actions on the one chosen."""
    st.subheader("Accounts")
    keeper = session.accounts()
    people = keeper.list()
    pending = sum(p.status == PENDING for p in people)
    if pending:
        st.info(f"{pending} waiting for approval.", icon=":material/hourglass_top:")
    st.dataframe(
        {
            "Name": [p.name for p in people],
            "Logs in as": [p.login for p in people],
            "How": ["single sign-on" if p.kind == "sso" else "password" for p in people],
            "Role": [p.role for p in people],
            "Status": [p.status for p in people],
            "Since": [p.created_at.strftime("%Y-%m-%d") for p in people],
        },
        hide_index=True,
        width="stretch",
    )
    me = session.account()
    others = [p for p in people if me is None or p.id != me.id]
    if not others:
        st.caption("Nobody else has an account yet: invite someone below.")
        return
    chosen = st.selectbox(
        "Account",
        others,
        format_func=lambda p: f"{p.name} ({p.login}) · {p.status}",
        key="admin_account",
    )
    if chosen is not None:
        _actions(chosen)


def _actions(person: Account) -> None:
    columns = st.columns(4)
    if person.status == PENDING:
        columns[0].button("Approve", key="approve", type="primary", on_click=_status, args=(person, ACTIVE))
    elif person.status == ACTIVE:
        columns[0].button("Disable", key="disable", on_click=_status, args=(person, DISABLED))
    else:
        columns[0].button("Enable", key="enable", on_click=_status, args=(person, ACTIVE))
    other = USER if person.role == ADMIN else ADMIN
    columns[1].button(
        "Make admin" if other == ADMIN else "Make user", key="role", on_click=_role, args=(person, other)
    )
    keeper, me = session.accounts(), _me()
    with columns[2]:
        downloads.offer(
            "Export data",
            lambda: keeper.export(me, person.id),  # made when clicked: a zip of all their files
            f"bnagpt-{person.login}.zip",
            "application/zip",
            key="export_account",
        )
    columns[3].button("Delete…", key="delete_account", on_click=_ask_delete, args=(person.id,))
    if st.session_state.get(_DELETING) == person.id:
        with st.form("delete_account_form"):
            st.warning(
                f"Delete {escape(person.name)} and all their chats, assistants, files and backups, for good? "
                f"Type their login name ({escape(person.login)}) to confirm."
            )
            typed = st.text_input("Login name", key="delete_confirm")
            confirmed = st.form_submit_button("Delete for good", type="primary")
        if confirmed:
            if typed.strip() != person.login:
                session.show_error("The name typed is not theirs: nothing was deleted.")
            else:
                _delete(person)


def _me() -> Account:
    me = session.account()
    if me is None:
        raise BnaGPTError("Log in again.")
    return me


def _status(person: Account, status: str) -> None:
    try:
        session.accounts().set_status(_me(), person.id, status)
    except BnaGPTError as error:
        session.flash("error", str(error))


def _role(person: Account, role: str) -> None:
    try:
        session.accounts().set_role(_me(), person.id, role)
    except BnaGPTError as error:
        session.flash("error", str(error))


def _ask_delete(account_id: str) -> None:
    st.session_state[_DELETING] = account_id


def _delete(person: Account) -> None:
    try:
        session.accounts().delete(_me(), person.id)
    except BnaGPTError as error:
        session.show_error(error)
        return
    st.session_state.pop(_DELETING, None)
    session.flash("success", f"{person.name} and their data were deleted.")
    st.rerun()


def invite_section() -> None:
    """A link that lets one person make an account without waiting for approval."""
    st.subheader("Invite")
    if st.button("Make an invite link", icon=":material/link:", key="make_invite"):
        try:
            token = session.accounts().invite(_me())
        except BnaGPTError as error:
            session.show_error(error)
            return
        base = st.context.url.split("?")[0].rsplit("/", 1)[0]
        st.code(f"{base}/?invite={token}", language=None)
        st.caption("Valid for 7 days, for one account. Send it to the person only.")


def providers_section() -> None:
    """Which providers users may choose (admins may use every one). Keys set in .env are never shown."""
    st.subheader("Providers users may use")
    allowed = session.accounts().providers()
    options = [p.label for p in session.PROVIDERS]
    current = [p.label for p in session.PROVIDERS if allowed is None or p.kind in allowed]
    with st.form("providers_form"):
        picked = st.multiselect("Providers", options, default=current, key="allowed_providers")
        saved = st.form_submit_button("Save")
    if saved:
        kinds = [p.kind for p in session.PROVIDERS if p.label in picked]
        try:
            session.accounts().set_providers(_me(), None if len(kinds) == len(options) else kinds)
        except BnaGPTError as error:
            session.show_error(error)
            return
        st.success("Saved: users see only these in the sidebar and the assistants.")
    st.caption("Keys configured in the environment or .env are used for everyone and never shown to users.")
