"""Accounts: the real accounts file, real argon2 hashes, and the real app in AppTest with two users.

Browser journeys (cookies, reloads, every address while logged out, single sign-on through `st.login` with a
real OIDC provider) are in tests/test_accounts_browser.py.
"""

from __future__ import annotations

import json
import zipfile
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from controller.accounts import Accounts
from errors import AccountError, AccountsUnreadable, LoginFailed, TooManyAttempts
from model.account import ACTIVE, ADMIN, DISABLED, PENDING, now
from model.assistant import Assistant
from model.assistant_store import AssistantStore
from model.json_store import JsonConversationStore
from model.message import Message, Role
from tests.conftest import PROJECT, SCRIPTED, chat_texts, sidebar_names, wait_until

PASSWORD = "correct horse battery"


class Clock:
    """A clock the test moves forward."""

    def __init__(self) -> None:
        self.moment = now()

    def __call__(self):
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def keeper(tmp_path: Path, clock: Clock) -> Accounts:
    return Accounts(tmp_path, session_hours=2, clock=clock)


def test_the_first_account_is_the_admin_and_gets_the_chats_after_a_copy(tmp_path, keeper):
    """Turning accounts on: the single user's chats and assistants become the first account's, and a
    copy of them is kept first."""
    before = JsonConversationStore(tmp_path / "conversations.json")
    chat = before.create("Old chat", [Message(Role.USER, "from before accounts")])
    AssistantStore(tmp_path / "assistants.json").save(Assistant(id="a1", name="Tutor", instructions="Teach."))
    original = (tmp_path / "conversations.json").read_bytes()
    admin = keeper.sign_up("ana", "Ana", PASSWORD)
    assert (admin.role, admin.status) == (ADMIN, ACTIVE)
    mine = JsonConversationStore(keeper.folder(admin.id) / "conversations.json")
    assert [m.content for m in mine.get(chat.id).messages] == ["from before accounts"]
    assert [a.name for a in AssistantStore(keeper.folder(admin.id) / "assistants.json").list()][-1] == "Tutor"
    assert not (tmp_path / "conversations.json").exists()
    [aside] = tmp_path.glob("before-accounts-*")
    assert (aside / "conversations.json").read_bytes() == original
    second = keeper.sign_up("bia", "Bia", PASSWORD)
    assert (second.role, second.status) == ("user", PENDING)
    assert not keeper.folder(second.id).exists()


def test_a_wrong_name_and_a_wrong_password_read_the_same(keeper):
    """No user enumeration: an unknown name and a wrong password give one message."""
    keeper.sign_up("ana", "Ana", PASSWORD)
    with pytest.raises(LoginFailed) as unknown:
        keeper.log_in("nobody", PASSWORD)
    with pytest.raises(LoginFailed) as wrong:
        keeper.log_in("ana", "not the password")
    assert str(unknown.value) == str(wrong.value) == "Wrong name or password."
    account, token = keeper.log_in("ANA", PASSWORD)
    assert keeper.session(token) == account


def test_password_guessing_is_slowed_down_per_name_and_per_address(keeper, clock):
    """Five failures under a name from one address are free; then that address is refused even the right
    password until the wait is over, and the wait doubles; the owner elsewhere is not held up."""
    keeper.sign_up("ana", "Ana", PASSWORD)
    keeper.sign_up("bia", "Bia", PASSWORD)  # pending: its failures are counted the same
    for _ in range(5):
        with pytest.raises(LoginFailed):
            keeper.log_in("ana", "guess", address="10.0.0.9")
    with pytest.raises(TooManyAttempts) as slowed:
        keeper.log_in("ana", PASSWORD, address="10.0.0.9")
    assert "Try again in 1 minute" in str(slowed.value)
    assert 29 <= slowed.value.retry_after <= 30
    clock.advance(seconds=31)
    with pytest.raises(LoginFailed):
        keeper.log_in("ana", "guess again", address="10.0.0.9")
    clock.advance(seconds=31)
    with pytest.raises(TooManyAttempts) as longer:
        keeper.log_in("ana", PASSWORD, address="10.0.0.9")
    assert 29 <= longer.value.retry_after <= 30  # 60 s after the sixth failure, 31 gone
    with pytest.raises(LoginFailed, match="approval"):
        keeper.log_in("bia", PASSWORD, address="10.0.0.2")
    clock.advance(minutes=16)
    account, _ = keeper.log_in("ana", PASSWORD, address="10.0.0.9")
    assert account.login == "ana"
    # Many names tried from one address: that address is slowed down too.
    for number in range(20):
        with pytest.raises(LoginFailed):
            keeper.log_in(f"guess{number}", "x" * 8, address="10.6.6.6")
    with pytest.raises(TooManyAttempts):
        keeper.log_in("ana", PASSWORD, address="10.6.6.6")


def test_a_stranger_guessing_cannot_lock_the_owner_out(keeper):
    """Wrong passwords for the admin's name, from another address, even from many: the admin still logs
    in from where they logged in before, and from a new address while the guessing stays under the
    name's overall allowance."""
    keeper.sign_up("ana", "Ana", PASSWORD)
    keeper.log_in("ana", PASSWORD, address="192.0.2.10")  # the owner's usual address
    for _ in range(5):
        with pytest.raises(LoginFailed):
            keeper.log_in("ana", "guess", address="203.0.113.66")
    with pytest.raises(TooManyAttempts):
        keeper.log_in("ana", "guess", address="203.0.113.66")
    assert keeper.log_in("ana", PASSWORD, address="192.0.2.10")[0].login == "ana"
    assert keeper.log_in("ana", PASSWORD, address="198.51.100.7")[0].login == "ana"  # a new place
    # A botnet: 45 more addresses, one guess each, reach the name's overall allowance (50 failures with
    # the 5 above). New addresses wait; the owner's known ones do not.
    for number in range(45):
        with pytest.raises(LoginFailed):
            keeper.log_in("ana", "guess", address=f"203.0.113.{number}")
    with pytest.raises(TooManyAttempts):
        keeper.log_in("ana", PASSWORD, address="198.18.0.1")
    assert keeper.log_in("ana", PASSWORD, address="192.0.2.10")[0].login == "ana"
    assert keeper.log_in("ana", PASSWORD, address="198.51.100.7")[0].login == "ana"


def test_logins_sent_at_once_get_no_more_checks_than_the_allowance(tmp_path, clock):
    """12 wrong logins at the same moment, each through its own Accounts (as separate processes have):
    each try is counted before its password is checked, so 5 are checked and 7 refused unchecked."""
    import threading

    Accounts(tmp_path, clock=clock).sign_up("ana", "Ana", PASSWORD)
    start = threading.Barrier(12)
    outcomes: list[str] = []

    def guess() -> None:
        keeper = Accounts(tmp_path, clock=clock)
        start.wait()
        try:
            keeper.log_in("ana", "a wrong guess", address="203.0.113.5")
        except TooManyAttempts:
            outcomes.append("refused")
        except LoginFailed:
            outcomes.append("checked")

    threads = [threading.Thread(target=guess) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == ["checked"] * 5 + ["refused"] * 7


def test_sessions_expire_and_end_on_logout_disable_and_password_change(keeper, clock):
    """A session lasts BNAGPT_SESSION_HOURS; logging out, being disabled or a new password ends it."""
    admin = keeper.sign_up("ana", "Ana", PASSWORD)
    _, token = keeper.log_in("ana", PASSWORD)
    clock.advance(hours=1, minutes=59)
    assert keeper.session(token) is not None
    clock.advance(minutes=2)
    assert keeper.session(token) is None
    _, token = keeper.log_in("ana", PASSWORD)
    keeper.log_out(token)
    assert keeper.session(token) is None
    invite = keeper.invite(admin)
    bia = keeper.sign_up("bia", "Bia", PASSWORD, invite=invite)
    assert bia.status == ACTIVE
    _, first = keeper.log_in("bia", PASSWORD)
    _, second = keeper.log_in("bia", PASSWORD)
    keeper.change_password(bia.id, PASSWORD, "a new long password")
    assert keeper.session(first) is None and keeper.session(second) is None
    _, third = keeper.log_in("bia", "a new long password")
    keeper.set_status(admin, bia.id, DISABLED)
    assert keeper.session(third) is None
    with pytest.raises(LoginFailed, match="disabled"):
        keeper.log_in("bia", "a new long password")


def test_invites_and_requests(keeper, clock):
    """An invite makes an active account once; a request waits for approval; a request under a taken
    name answers the same and makes nothing; weak passwords and bad names are refused."""
    admin = keeper.sign_up("ana", "Ana", PASSWORD)
    invite = keeper.invite(admin)
    with pytest.raises(AccountError, match="taken"):
        keeper.sign_up("Ana", "Someone", PASSWORD, invite=invite)
    keeper.sign_up("caio", "Caio", PASSWORD, invite=invite)
    with pytest.raises(AccountError, match="expired or was already used"):
        keeper.sign_up("dora", "Dora", PASSWORD, invite=invite)
    late = keeper.invite(admin)
    clock.advance(days=8)
    with pytest.raises(AccountError, match="expired"):
        keeper.sign_up("dora", "Dora", PASSWORD, invite=late)
    asked = keeper.sign_up("dora", "Dora", PASSWORD)
    again = keeper.sign_up("dora", "Impostor", "another password")
    assert asked.status == PENDING and again is None  # the page says the same to both
    assert [a.name for a in keeper.list()].count("Impostor") == 0
    keeper.set_status(admin, asked.id, ACTIVE)
    assert keeper.log_in("dora", PASSWORD)[0].status == ACTIVE
    for login, password, says in [
        ("eva", "short", "at least 8"),
        ("eva lima", PASSWORD, "no spaces"),
        ("evaevaeva", "EVAEVAEVA", "cannot be the name"),
    ]:
        with pytest.raises(AccountError, match=says):
            keeper.sign_up(login, "Eva", password)


def test_admin_rules_export_and_delete(keeper, tmp_path):
    """Only admins manage; the last admin stays; export has the data and no hash; delete removes it all."""
    admin = keeper.sign_up("ana", "Ana", PASSWORD)
    bia = keeper.sign_up("bia", "Bia", PASSWORD, invite=keeper.invite(admin))
    with pytest.raises(AccountError, match="Only an admin"):
        keeper.set_status(bia, admin.id, DISABLED)
    with pytest.raises(AccountError, match="last admin"):
        keeper.set_role(admin, admin.id, "user")
    store = JsonConversationStore(keeper.folder(bia.id) / "conversations.json")
    store.create("Bia's plans", [Message(Role.USER, "a private plan")])
    archive = zipfile.ZipFile(BytesIO(keeper.export(admin, bia.id)))
    names = archive.namelist()
    assert "account.json" in names and "data/conversations.json" in names
    everything = b"".join(archive.read(name) for name in names)
    assert b"a private plan" in everything and b"argon2" not in everything
    assert json.loads(archive.read("account.json"))["login"] == "bia"
    keeper.delete(admin, bia.id)
    assert not keeper.folder(bia.id).exists()
    assert [a.login for a in keeper.list()] == ["ana"]


def test_the_accounts_file_keeps_no_password_or_token(keeper, tmp_path):
    """Only argon2 hashes and token digests are written."""
    keeper.sign_up("ana", "Ana", PASSWORD)
    _, token = keeper.log_in("ana", PASSWORD)
    raw = (tmp_path / "accounts.json").read_text()
    assert PASSWORD not in raw and token not in raw
    assert "$argon2id$" in raw
    assert "argon2" not in repr(keeper.list()) and "argon2" not in repr(keeper.store.read().accounts)


def test_an_unreadable_accounts_file_locks_everyone_out_and_is_kept(tmp_path, keeper):
    """Never start afresh (the next visitor would become admin) and never overwrite it."""
    keeper.sign_up("ana", "Ana", PASSWORD)
    path = tmp_path / "accounts.json"
    broken = path.read_bytes()[:-40]
    path.write_bytes(broken)
    for attempt in (
        lambda: keeper.log_in("ana", PASSWORD),
        lambda: keeper.sign_up("mallory", "M", PASSWORD),
        keeper.exists,
    ):
        with pytest.raises(AccountsUnreadable, match="left untouched"):
            attempt()
    assert path.read_bytes() == broken


# -- The app, in-process -----------------------------------------------------------------------------


@pytest.fixture
def accounts_on(monkeypatch, tmp_path) -> Accounts:
    monkeypatch.setenv("BNAGPT_ACCOUNTS", "local")
    return Accounts(tmp_path)


def tab(token: str = "", **query: str) -> AppTest:
    """A browser tab holding this session (as its cookie would), with `?key=value` in the address."""
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=120)
    if token:
        at.session_state["session_token"] = token
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def two_users(keeper: Accounts) -> tuple[str, str, str]:
    """Ana (admin) with a chat, Bia (user) with another; their session tokens and Ana's chat id."""
    admin = keeper.sign_up("ana", "Ana", PASSWORD)
    bia = keeper.sign_up("bia", "Bia", PASSWORD, invite=keeper.invite(admin))
    ana_chats = JsonConversationStore(keeper.folder(admin.id) / "conversations.json")
    secret = ana_chats.create("Ana's diary", [Message(Role.USER, "the secret word is heron")])
    bia_chats = JsonConversationStore(keeper.folder(bia.id) / "conversations.json")
    bia_chats.create("Bia's list", [Message(Role.USER, "buy heron stamps")])
    return keeper.log_in("ana", PASSWORD)[1], keeper.log_in("bia", PASSWORD)[1], secret.id


def shown(at: AppTest) -> str:
    """Every text the page shows: Markdown, text, captions, alerts, and the labels of its buttons."""
    texts = [
        e.value for kind in ("markdown", "text", "caption", "info", "warning", "error") for e in at.get(kind)
    ]
    return " ".join(texts + [b.label for b in at.button])


def test_a_logged_out_tab_gets_only_the_login_page(accounts_on, tmp_path):
    """No sidebar, no chat, no page but the login, whatever the address asks."""
    ana, _, secret = two_users(accounts_on)
    assert "heron" in shown(tab(ana, c=secret)) and "diary" in shown(tab(ana))  # what is kept from others
    for query in ({}, {"c": secret}):
        at = tab(**query)
        assert not at.exception
        assert [b.label for b in at.button if b.key == "new_chat"] == []
        assert "Log in" in [t.label for t in at.tabs]
        assert sidebar_names(at) == [] and chat_texts(at) == []
        assert "heron" not in shown(at) and "diary" not in shown(at)
    expired = Accounts(tmp_path, session_hours=1, clock=lambda: now() - timedelta(hours=2))
    _, old_token = expired.log_in("ana", PASSWORD)
    at = tab(old_token)
    assert "Log in" in [t.label for t in at.tabs] and sidebar_names(at) == []


def test_each_user_reaches_only_their_own_chats_by_every_path(accounts_on, tmp_path):
    """Sidebar, keyword search, ?c= with the other's id, the library's export, assistants and the
    admin page: Bia sees only what is hers."""
    ana, bia, secret = two_users(accounts_on)
    at = tab(bia)
    assert sidebar_names(at) == ["Bia's list"]
    at.sidebar.text_input(key="conversation_search").set_value("heron").run()
    assert sidebar_names(at) == ["Bia's list"]
    other = tab(bia, c=secret)
    assert chat_texts(other) == []
    assert any("not found" in w.value.lower() or "no longer" in w.value.lower() for w in other.warning)
    library = tab(bia)
    library.switch_page("pages/library_page.py").run()
    assert not library.exception
    # What the library exports, backs up and restores is this tab's store: Bia's chats alone.
    assert [c.name for c in library.session_state["store"].everything()] == ["Bia's list"]
    assert library.session_state["settings"].backups_dir.parent.name == library.session_state["account"].id
    admin_tab = tab(ana)
    assert sidebar_names(admin_tab) == ["Ana's diary"]
    admin_tab.switch_page("pages/admin_page.py").run()
    assert not admin_tab.exception
    assert [c.value for c in admin_tab.get("dataframe")] != []
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        tab(bia).switch_page("pages/admin_page.py")  # not among a user's pages at all


def test_an_admin_approves_and_limits_providers_for_users(accounts_on, tmp_path, monkeypatch):
    """A pending account waits; the admin approves it on the admin page; the providers the admin allows
    are the only ones a user can choose."""
    admin = accounts_on.sign_up("ana", "Ana", PASSWORD)
    accounts_on.sign_up("caio", "Caio", PASSWORD)
    with pytest.raises(LoginFailed, match="approval"):
        accounts_on.log_in("caio", PASSWORD)
    at = tab(accounts_on.log_in("ana", PASSWORD)[1])
    at.switch_page("pages/admin_page.py").run()
    assert any("1 waiting for approval" in i.value for i in at.info)
    at.selectbox(key="admin_account").select_index(0).run()
    at.button(key="approve").click().run()
    assert wait_until(lambda: accounts_on.list()[1].status == ACTIVE, 10)
    at.multiselect(key="allowed_providers").set_value(["Scripted (tests)"])
    next(b for b in at.button if b.label == "Save").click().run()
    assert accounts_on.providers() == [SCRIPTED]
    caio = tab(accounts_on.log_in("caio", PASSWORD)[1])
    assert caio.sidebar.selectbox(key="provider_label").options == ["Scripted (tests)"]
    ana = tab(accounts_on.log_in("ana", PASSWORD)[1])
    assert len(ana.sidebar.selectbox(key="provider_label").options) > 1
    assert admin.admin


def test_search_by_meaning_finds_only_the_users_own_chats(accounts_on):
    """The other user's chat that means what was asked is never among the results, once the search by
    meaning has read every chat it may."""
    admin = accounts_on.sign_up("ana", "Ana", PASSWORD)
    bia = accounts_on.sign_up("bia", "Bia", PASSWORD, invite=accounts_on.invite(admin))
    JsonConversationStore(accounts_on.folder(admin.id) / "conversations.json").create(
        "Kitchen", [Message(Role.USER, "Give me a recipe for carrot cake with chocolate frosting")]
    )
    JsonConversationStore(accounts_on.folder(bia.id) / "conversations.json").create(
        "Travel", [Message(Role.USER, "Plan a three-day trip to Lisbon and Sintra")]
    )
    at = tab(accounts_on.log_in("bia", PASSWORD)[1])
    at.sidebar.text_input(key="conversation_search").set_value("dessert baking ideas").run()
    nothing_close = "No conversation has those words, or means something close."
    assert wait_until(lambda: nothing_close in [c.value for c in at.run().sidebar.caption], 180)
    assert sidebar_names(at) == []
    at.sidebar.text_input(key="conversation_search").set_value("viagem a Portugal").run()
    assert wait_until(lambda: sidebar_names(at.run()) == ["Travel"], 60)


def test_asking_for_an_account_on_the_login_page_answers_alike_for_a_taken_name(accounts_on):
    """The request form: a new name waits for approval; a taken one gets the very same answer, and
    nothing is made."""
    accounts_on.sign_up("ana", "Ana", PASSWORD)
    answers = []
    for login in ("caio", "ana"):
        at = tab()
        at.text_input(key="new_login_request").set_value(login)
        at.text_input(key="new_name_request").set_value("Someone")
        at.text_input(key="new_password_request").set_value("another long password")
        at.text_input(key="new_again_request").set_value("another long password")
        next(b for b in at.button if b.label == "Ask for the account").click().run()
        assert not at.exception and not at.error
        answers.append([s.value for s in at.success])
    assert answers[0] == answers[1] == ["Asked. You can log in once an admin approves the account."]
    assert sorted((a.login, a.status) for a in accounts_on.list()) == [("ana", ACTIVE), ("caio", PENDING)]
