"""Accounts in a real browser: the session cookie across reloads and tabs, every address while logged out,
password guessing slowed down, and single sign-on through Streamlit's `st.login` against a real OpenID
Connect provider on loopback (oidc-provider-mock)."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from controller.accounts import Accounts
from model.json_store import JsonConversationStore
from model.message import Message, Role
from tests.conftest import serve_app, wait_until
from utils.local_server import free_port

pytestmark = [pytest.mark.browser]

PASSWORD = "correct horse battery"
# Every path a tab could ask for: the app's pages by address and by script name, and a chat by id.
ADDRESSES = ("/", "/chat", "/assistants", "/library", "/settings", "/admin", "/admin_page", "/library_page")


def log_in(page, name: str, password: str) -> None:
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()


def make_account(page, name: str, shown: str = "") -> None:
    """Fill the account form (the first account's, or an invite's) and send it."""
    page.get_by_label("Name (to log in with)").fill(name)
    if shown:
        page.get_by_label("Your name").fill(shown)
    page.get_by_label("Password (8 characters or more)").fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create the account").click()


def guess_anas_password(page, keeper: Accounts) -> None:
    """Five wrong passwords for Ana, one for an unknown name, then the right one: refused."""
    # Guessing Ana's password: the sixth try is refused, whatever is typed. Each try is waited for
    # where it is counted (the accounts file), as one message looks like the one before.
    expect(page.get_by_role("tab", name="Log in")).to_be_visible()

    def failures(key: str) -> int:
        return len(keeper.store.read().failures.get(key, []))

    for tries in range(1, 6):
        log_in(page, "ana", f"wrong guess {tries}")
        assert wait_until(lambda tries=tries: failures("name:ana") == tries, 60)
        expect(page.get_by_text("Wrong name or password.")).to_be_visible()
    log_in(page, "nobody-here", "a wrong guess")
    assert wait_until(lambda: failures("name:nobody-here") == 1, 60)
    expect(page.get_by_text("Wrong name or password.")).to_be_visible()
    log_in(page, "ana", PASSWORD)
    expect(page.get_by_text("Too many failed logins")).to_be_visible()
    expect(page.get_by_role("button", name="Ana's diary")).to_have_count(0)


def test_local_accounts_keep_each_user_to_their_own(page, tmp_path: Path):
    """The first visitor makes the admin account (and gets the old chats); a reload keeps them in; a
    logged-out tab gets the login page at every address; another user never sees the admin's chat, even
    by its address; guessing is slowed down; nothing secret reaches a page or the log."""
    before = JsonConversationStore(tmp_path / "conversations.json")
    diary = before.create("Ana's diary", [Message(Role.USER, "the secret word is heron")])
    env = {"BNAGPT_ACCOUNTS": "local", "BNAGPT_PROVIDER": "groq"}
    with serve_app(tmp_path, env) as url:
        page.goto(url)
        expect(page.get_by_text("Create the admin account")).to_be_visible()
        make_account(page, "ana", "Ana")
        expect(page.get_by_role("button", name="Ana's diary")).to_be_visible()

        def cookie() -> dict | None:
            return next((c for c in page.context.cookies() if c["name"] == "bnagpt_session"), None)

        assert wait_until(lambda: cookie() is not None, 30)
        session = cookie()
        assert session["sameSite"] == "Strict" and session["expires"] > 0
        assert session["value"] not in page.content()  # the script that set it is gone
        page.reload()
        expect(page.get_by_role("button", name="Ana's diary")).to_be_visible()
        # A new tab of the same browser is logged in too.
        other_tab = page.context.new_page()
        other_tab.goto(f"{url}/?c={diary.id}")
        expect(other_tab.get_by_text("the secret word is heron")).to_be_visible()
        other_tab.close()

        keeper = Accounts(tmp_path)
        admin = keeper.list()[0]
        invite = keeper.invite(admin)
        page.get_by_role("button", name="Log out").first.click()
        expect(page.get_by_role("tab", name="Log in")).to_be_visible()
        assert keeper.session(session["value"]) is None
        for address in (*ADDRESSES, f"/?c={diary.id}"):
            page.goto(url + address)
            expect(page.get_by_role("tab", name="Log in")).to_be_visible()
            expect(page.get_by_text("heron")).to_have_count(0)
            expect(page.get_by_role("button", name="New chat")).to_have_count(0)

        # Bia accepts the invite and sees only her own (empty) list, and not Ana's chat by its id.
        page.goto(f"{url}/?invite={invite}")
        make_account(page, "bia")
        expect(page.get_by_text("No saved conversations yet")).to_be_visible()
        page.goto(f"{url}/?c={diary.id}")
        expect(page.get_by_text("not found", exact=False).first).to_be_visible()
        expect(page.get_by_text("heron")).to_have_count(0)
        page.goto(f"{url}/admin")
        expect(page.get_by_role("link", name="Admin")).to_have_count(0)
        expect(page.get_by_text("Accounts", exact=True)).to_have_count(0)
        page.goto(url)
        page.get_by_role("button", name="Log out").first.click()

        guess_anas_password(page, keeper)

    log = (tmp_path / "streamlit.log").read_text(errors="replace")
    secrets = [PASSWORD, invite, session["value"], "$argon2"]
    assert not [s for s in secrets if s in log]


def test_single_sign_on_through_st_login(page, tmp_path: Path):
    """st.login against a real OIDC provider: the first person in is the admin; the second waits until
    the admin approves them, then sees an empty list, never the admin's chat."""
    from oidc_provider_mock import run_server_in_thread

    port = free_port()
    with run_server_in_thread(port=0) as provider:
        secrets = tmp_path / "secrets.toml"
        secrets.write_text(
            "[auth]\n"
            f'redirect_uri = "http://localhost:{port}/oauth2callback"\n'
            'cookie_secret = "a-test-cookie-secret-0123456789abcdef"\n'
            'client_id = "bnagpt"\n'
            'client_secret = "test-client-secret"\n'
            f'server_metadata_url = "http://localhost:{provider.server_port}/.well-known/openid-configuration"\n'
        )
        env = {"BNAGPT_ACCOUNTS": "sso", "BNAGPT_PROVIDER": "groq"}
        with serve_app(tmp_path, env, ("--secrets.files", str(secrets)), port=port, host="localhost") as url:
            page.goto(url)
            page.get_by_role("button", name="Log in").click()
            page.locator("input[name=sub]").fill("ana@example.org")
            page.get_by_role("button", name="Authorize").click()
            expect(page.get_by_role("link", name="Admin")).to_be_visible()
            keeper = Accounts(tmp_path)
            [ana] = keeper.list()
            assert (ana.role, ana.kind, ana.login) == ("admin", "sso", "ana@example.org")
            JsonConversationStore(keeper.folder(ana.id) / "conversations.json").create(
                "Ana's diary", [Message(Role.USER, "the secret word is heron")]
            )
            page.reload()
            expect(page.get_by_role("button", name="Ana's diary")).to_be_visible()

            second = page.context.browser.new_context().new_page()
            second.goto(url)
            second.get_by_role("button", name="Log in").click()
            second.locator("input[name=sub]").fill("bia@example.org")
            second.get_by_role("button", name="Authorize").click()
            expect(second.get_by_text("waiting for an admin's approval")).to_be_visible()
            expect(second.get_by_role("button", name="New chat")).to_have_count(0)

            page.goto(f"{url}/admin")
            page.get_by_role("button", name="Approve").click()
            expect(page.get_by_role("button", name="Disable")).to_be_visible()
            second.reload()
            expect(second.get_by_text("No saved conversations yet")).to_be_visible()
            expect(second.get_by_text("heron")).to_have_count(0)
            # Logging out also ends the session at the provider (its end_session page), then comes back.
            second.get_by_role("button", name="Log out").first.click()
            second.get_by_role("button", name="End session").click()
            expect(second.get_by_role("button", name="Log in")).to_be_visible()
            expect(second.get_by_role("button", name="New chat")).to_have_count(0)
