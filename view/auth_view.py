"""The login page's forms (local accounts or single sign-on) and the account's own box in Settings.

Everything a logged-out tab can reach is here: it gets no sidebar, no store and no other page.
"""

from __future__ import annotations

import streamlit as st

from errors import AccountError, BnaGPTError
from model.account import PENDING
from utils.markdown import escape
from view import session

INVITE = "invite"


def login_page() -> None:
    """Log in, make the first (admin) account, accept an invite, or ask for an account."""
    st.title("bnaGPT")
    session.show_flashes()
    try:
        if session.settings().accounts == "sso":
            _single_sign_on()
        else:
            _local()
    except BnaGPTError as error:
        session.show_error(error)


def _single_sign_on() -> None:
    waiting = st.session_state.get("waiting")
    if waiting is not None:
        if waiting.status == PENDING:
            st.info(
                f"Welcome, {escape(waiting.name)}. Your account is waiting for an admin's approval; "
                "reload this page once they have approved it.",
                icon=":material/hourglass_top:",
            )
        else:
            st.warning("This account is disabled; ask an admin.", icon=":material/block:")
        st.button("Log out", key="sso_logout", on_click=st.logout)
        return
    st.write("Log in with your organisation's account to see your chats.")
    if not session.accounts().exists():
        st.caption("The first person to log in becomes the admin.")
    st.button("Log in", type="primary", icon=":material/login:", key="sso_login", on_click=st.login)


def _local() -> None:
    keeper = session.accounts()
    invite = st.query_params.get(INVITE, "")
    if not keeper.exists():
        st.subheader("Create the admin account")
        st.caption(
            "This is the first account: it manages the others. Chats already saved here become its own (a "
            "copy is kept first in a before-accounts folder beside them)."
        )
        _account_form("first", invite="")
        return
    if invite:
        st.subheader("Create your account")
        st.caption("You were invited: you can use bnaGPT as soon as the account is made.")
        _account_form("invited", invite=invite)
        return
    log_in, ask = st.tabs(["Log in", "Ask for an account"])
    with log_in, st.form("login_form"):
        login = st.text_input("Name", key="login_name", autocomplete="username")
        password = st.text_input(
            "Password", type="password", key="login_password", autocomplete="current-password"
        )
        if st.form_submit_button("Log in", type="primary", icon=":material/login:"):
            _log_in(login, password)
    with ask:
        st.caption("An admin approves new accounts. You can log in once they have.")
        _account_form("request", invite="")


def _log_in(login: str, password: str) -> None:
    try:
        _, token = session.accounts().log_in(login, password, st.context.ip_address or "")
    except AccountError as error:  # a wrong password, or too many tries
        session.show_error(error)
        return
    session.remember(token)
    st.rerun()


def _account_form(purpose: str, invite: str) -> None:
    with st.form(f"account_form_{purpose}"):
        login = st.text_input("Name (to log in with)", key=f"new_login_{purpose}", autocomplete="username")
        name = st.text_input("Your name (shown to you and the admin)", key=f"new_name_{purpose}")
        password = st.text_input(
            "Password (8 characters or more)",
            type="password",
            key=f"new_password_{purpose}",
            autocomplete="new-password",
        )
        again = st.text_input(
            "Password again", type="password", key=f"new_again_{purpose}", autocomplete="new-password"
        )
        label = "Ask for the account" if purpose == "request" else "Create the account"
        if not st.form_submit_button(label, type="primary"):
            return
    if password != again:
        session.show_error("The two passwords differ; type them again.")
        return
    keeper = session.accounts()
    try:
        made = keeper.sign_up(login, name, password, invite=invite)
    except AccountError as error:
        session.show_error(error)
        return
    if made is None or made.status == PENDING:
        st.success(
            "Asked. You can log in once an admin approves the account.", icon=":material/hourglass_top:"
        )
        return
    _, token = keeper.log_in(login, password, st.context.ip_address or "")
    st.query_params.pop(INVITE, None)
    session.remember(token)
    st.rerun()


def account_section() -> None:
    """Settings: who is logged in, their password, and logging out."""
    person = session.account()
    if person is None:
        return
    st.subheader("Account")
    role = "admin" if person.admin else "user"
    st.markdown(f"Logged in as **{escape(person.name)}** (`{escape(person.login)}`, {role}).")
    if person.kind == "local":
        with st.expander("Change password"), st.form("password_form", clear_on_submit=True):
            old = st.text_input("Current password", type="password", key="old_password")
            new = st.text_input("New password", type="password", key="new_password")
            again = st.text_input("New password again", type="password", key="new_password_again")
            if st.form_submit_button("Change password"):
                _change_password(old, new, again)
    st.button("Log out", icon=":material/logout:", key="settings_logout", on_click=log_out)


def _change_password(old: str, new: str, again: str) -> None:
    person = session.account()
    if person is None:
        return
    if new != again:
        session.show_error("The two new passwords differ; type them again.")
        return
    try:
        session.accounts().change_password(person.id, old, new)
        _, token = session.accounts().log_in(person.login, new, st.context.ip_address or "")
    except AccountError as error:
        session.show_error(error)
        return
    session.remember(token)
    st.success("Password changed. Other browsers logged in to this account were logged out.")


def log_out() -> None:
    """Callback: log this tab out."""
    sso = session.settings().accounts == "sso"
    session.forget()
    if sso:
        st.logout()
