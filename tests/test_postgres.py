"""The PostgreSQL backend on a real, throwaway PostgreSQL: the same behaviour as the JSON files (each
contract test runs on both), full-text search, migrations, owners kept apart, many processes at once, and
two app processes on one database."""

from __future__ import annotations

import io
import multiprocessing
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import expect

from controller.accounts import Accounts
from errors import ChangedMeanwhile, ConversationNotFound, NameTaken, StoreError
from model import database as database_module
from model.assistant import Assistant
from model.assistant_store import AssistantStore, PostgresAssistantStore
from model.codec import encode_conversation
from model.conversation import Conversation
from model.conversation_store import ConversationStore
from model.database import Database, migrate
from model.json_store import JsonConversationStore
from model.message import Message, Role
from model.postgres_store import PostgresConversationStore
from tests import store_worker
from tests.conftest import (
    PROJECT,
    Scripted,
    chat_texts,
    check_concurrent_saves,
    new_app,
    serve_app,
    sidebar_names,
    wait_until,
)
from tests.test_browser import bubbles, send

Opener = Callable[[], ConversationStore]


def user(text: str) -> Message:
    return Message(Role.USER, text)


@pytest.fixture(params=["files", "postgres"])
def open_store(request, tmp_path) -> Opener:
    """Opens a new store object on one set of data (a new object is another tab or process)."""
    if request.param == "files":
        return lambda: JsonConversationStore(tmp_path / "conversations.json")
    database = Database(request.getfixturevalue("database_url"))
    request.addfinalizer(database.close)
    return lambda: PostgresConversationStore(database, owner="u1")


def test_what_is_saved_is_what_another_process_reads(open_store):
    """Create, append, rename, place and delete are seen by another store object at once."""
    store, other = open_store(), open_store()
    created = store.create("Trip", [user("hello")])
    store.append(created.id, Message(Role.ASSISTANT, "hi"))
    assert [m.content for m in other.get(created.id).messages] == ["hello", "hi"]
    other.append(created.id, user("more"))
    other.rename(created.id, "Renamed")
    assert [(s.name, s.message_count) for s in store.list()] == [("Renamed", 3)]
    assert [m.content for m in store.get(created.id).messages] == ["hello", "hi", "more"]
    second = store.create("second")
    assert [s.name for s in other.list()] == ["second", "Renamed"]
    store.place(second.id, pinned=True, folder="Work")
    assert other.list()[0].placement.folder == "Work"
    other.delete(second.id)
    with pytest.raises(ConversationNotFound):
        store.get(second.id)
    loaded = store.get(created.id)
    loaded.messages.append(user("not saved"))
    assert len(store.get(created.id).messages) == 3


def test_names_versions_trash_and_imports_behave_alike(open_store):
    """A taken name is refused or suffixed; a new version of a question is chosen and can be left; the
    trash empties; an import keeps times and never overwrites."""
    store = open_store()
    first = store.create("Plans", [user("one")])
    other = store.create("Other")
    with pytest.raises(NameTaken):
        store.create("Plans")
    with pytest.raises(NameTaken):
        store.rename(other.id, "Plans")
    assert store.create("Plans", rename_if_taken=True).name == "Plans (2)"
    question = store.get(first.id).messages[0]
    store.add(first.id, None, user("one, edited"))
    assert [m.content for m in open_store().get(first.id).path()] == ["one, edited"]
    store.choose(first.id, question.id)
    assert [m.content for m in open_store().get(first.id).path()] == ["one"]
    old = datetime(2024, 5, 1, tzinfo=UTC)
    added = store.add_many(
        [Conversation(name="Plans", messages=[user("imported")], created_at=old, updated_at=old)]
    )
    assert added[0].name == "Plans (3)" and open_store().get(added[0].id).updated_at == old
    store.place(other.id, trashed_at=datetime.now(UTC) - timedelta(days=40))
    assert store.empty_trash(timedelta(days=30)) == 1
    assert sorted(s.name for s in open_store().list()) == ["Plans", "Plans (2)", "Plans (3)"]
    assert len(open_store().everything()) == 3


def test_a_chat_restored_under_its_own_id_is_read_afresh(open_store):
    """A backup restored in another process replaces a chat under the same id: a store that had read it
    shows the restored one, not what it kept."""
    store = open_store()
    chat = store.create("Notes", [user("before")])
    assert [m.content for m in store.get(chat.id).messages] == ["before"]
    open_store().replace_all([replace(chat, messages=[user("from the backup")])])
    assert [m.content for m in store.get(chat.id).messages] == ["from the backup"]


def test_a_rename_over_another_tabs_rename_is_refused(open_store):
    """Two tabs rename one chat: the second, which saw the old name, is told and saves nothing."""
    store = open_store()
    chat = store.create("Old name")
    open_store().rename(chat.id, "First tab's name", expected="Old name")
    with pytest.raises(ChangedMeanwhile, match="First tab's name"):
        open_store().rename(chat.id, "Second tab's name", expected="Old name")
    assert store.get(chat.id).name == "First tab's name"


def test_search_finds_every_word_with_a_snippet_and_leaves_out_the_trash(open_store):
    """Keyword search: words of the name or messages (any case, word starts on PostgreSQL), the passage
    that matched, the trash left out."""
    store = open_store()
    store.create("Lisbon trip", [user("Book the train to Sintra on Friday")])
    cake = store.create("Kitchen", [user("Carrot cake with CHOCOLATE frosting, please")])
    gone = store.create("Old cake", [user("chocolate cake from last year")])
    store.place(gone.id, trashed_at=datetime.now(UTC))
    hits = store.search("chocolate carrot")
    assert [(h.summary.id, "CHOCOLATE" in h.snippet) for h in hits] == [(cake.id, True)]
    assert [h.summary.name for h in store.search("lisbon")] == ["Lisbon trip"]
    assert store.search("lisbon")[0].snippet == ""
    assert store.search("sintra friday")[0].summary.name == "Lisbon trip"
    assert store.search("nothing-like-this") == []
    store.append(cake.id, Message(Role.ASSISTANT, "Add a pinch of cinnamon"))
    assert [h.summary.name for h in open_store().search("cinnamon carrot")] == ["Kitchen"]
    store.rename(cake.id, "Baking")
    assert open_store().search("kitchen") == []
    assert [h.summary.name for h in open_store().search("baking cinnamon")] == ["Baking"]


def test_owners_never_see_each_other(database_url):
    """Two owners on one database: lists, reads, search and deletes stay within each."""
    database = Database(database_url)
    ana, bia = PostgresConversationStore(database, "ana"), PostgresConversationStore(database, "bia")
    secret = ana.create("Diary", [user("the secret word is heron")])
    bia.create("Diary", [user("mine")])  # the same name is free for another owner
    assert [s.name for s in bia.list()] == ["Diary"]
    with pytest.raises(ConversationNotFound):
        bia.get(secret.id)
    with pytest.raises(ConversationNotFound):
        bia.delete(secret.id)
    assert bia.search("heron") == []
    assert [m.content for m in ana.get(secret.id).messages] == ["the secret word is heron"]
    database.close()


def test_migrations_run_once_and_a_newer_schema_is_left_alone(database_url, monkeypatch):
    """The schema comes up on first use; several processes migrating at once apply it once; a schema
    from a newer bnaGPT is refused without a change."""
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        versions = pool.map(store_worker.migrate_database, [database_url] * 4)
    assert versions == [database_module.MIGRATIONS[-1][0]] * 4
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM bnagpt_schema").fetchone()[0] == len(
            database_module.MIGRATIONS
        )
        conn.execute("INSERT INTO bnagpt_schema (version) VALUES (999)")
        conn.commit()
        with pytest.raises(StoreError, match="newer than this bnaGPT"):
            migrate(conn)


def test_an_unreachable_database_is_explained():
    """A wrong address says which database and what to check, and does not hang."""
    store = PostgresConversationStore(Database("postgresql://nobody@127.0.0.1:9/none", timeout=3))
    with pytest.raises(StoreError, match=r"Could not reach the database at 127\.0\.0\.1:9/none"):
        store.list()


def test_concurrent_saves_on_postgres_lose_nothing(database_url):
    """8 processes x 4 threads x 50 saves into one conversation, as on the files: all 1,600 messages, each
    thread's in order."""
    database = Database(database_url)
    check_concurrent_saves(database_url, PostgresConversationStore(database))
    database.close()


def test_assistants_live_in_the_database_for_each_owner(database_url):
    """Saved, listed, changed and deleted through the database; another store object (process) sees it;
    another owner has none of them."""
    database = Database(database_url)
    mine = PostgresAssistantStore(database, "ana")
    saved = mine.save(Assistant(id="a1", name="Tutor", instructions="Teach step by step."))
    mine.save(replace(saved, instructions="Teach slowly."))
    again = PostgresAssistantStore(database, "ana")
    tutor = again.get("a1")
    assert (tutor.instructions, tutor.version) == ("Teach slowly.", 2)
    assert "a1" not in {a.id for a in PostgresAssistantStore(database, "bia").list()}
    again.delete("a1")
    assert "a1" not in {a.id for a in mine.list()}
    database.close()


def test_the_app_keeps_chats_in_the_database(database_url, scripted_server, monkeypatch, tmp_path):
    """With BNAGPT_DATABASE_URL the app writes a chat and its reply to PostgreSQL, not to the files; a
    second tab (a new session) lists and opens it."""
    monkeypatch.setenv("BNAGPT_DATABASE_URL", database_url)
    monkeypatch.setenv("BNAGPT_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", scripted_server.url)
    monkeypatch.setenv("BNAGPT_OPENAI_MODEL", "m")
    scripted_server.script = Scripted(stream_chunks=["Stored ", "in PostgreSQL."])
    at = new_app()
    at.chat_input[0].set_value("Where do you keep this?").run()
    assert not at.exception
    database = Database(database_url)
    store = PostgresConversationStore(database, "")
    assert wait_until(lambda: [s.message_count for s in store.list()] == [2], 30)
    [summary] = store.list()
    assert [m.content for m in store.get(summary.id).messages] == [
        "Where do you keep this?",
        "Stored in PostgreSQL.",
    ]
    assert not (tmp_path / "conversations.json").exists()
    second = new_app(c=summary.id)
    assert sidebar_names(second) == [summary.name]
    assert chat_texts(second)[-1] == ("assistant", "Stored in PostgreSQL.")
    database.close()


def test_accounts_on_the_database_adopt_export_and_delete(database_url, tmp_path):
    """The single user's chats in the database become the first account's; an admin's export of another
    account carries their chats; deleting the account deletes them."""
    database = Database(database_url)
    single = PostgresConversationStore(database, "")
    single.create("Before accounts", [user("old chat")])
    keeper = Accounts(tmp_path, database=database)
    admin = keeper.sign_up("ana", "Ana", "correct horse battery")
    assert single.list() == []
    assert [s.name for s in PostgresConversationStore(database, admin.id).list()] == ["Before accounts"]
    bia = keeper.sign_up("bia", "Bia", "correct horse battery", invite=keeper.invite(admin))
    PostgresConversationStore(database, bia.id).create("Bia's plans", [user("a private plan")])
    archive = zipfile.ZipFile(io.BytesIO(keeper.export(admin, bia.id)))
    assert b"a private plan" in archive.read("data/conversations-export.json")
    keeper.delete(admin, bia.id)
    assert PostgresConversationStore(database, bia.id).list() == []
    database.close()


def _fingerprint(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _migrate(*args: str, data_dir: Path, url: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "BNAGPT_DATA_DIR": str(data_dir), "BNAGPT_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "utils.migrate", *args],
        check=False,
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
    )


def test_the_migrate_command_copies_both_ways_checked_and_leaves_the_source(database_url, tmp_path):
    """Files → PostgreSQL → new files: every owner's chats (versions, times, placement) and assistants
    arrive identical; the source folder is byte for byte unchanged; a target with data is refused."""
    source = tmp_path / "source"
    single = JsonConversationStore(source / "conversations.json")
    chat = single.create("Plans", [user("one"), Message(Role.ASSISTANT, "two")])
    single.add(chat.id, None, user("one, edited"))
    single.place(chat.id, pinned=True, folder="Work")
    single.create("Old", [user("archived")])
    AssistantStore(source / "assistants.json").save(Assistant(id="a1", name="Tutor", instructions="Teach."))
    account = source / "users" / "0123456789abcdef"
    JsonConversationStore(account / "conversations.json").create("Bia's", [user("a private plan")])
    before = _fingerprint(source)

    done = _migrate("to-postgres", data_dir=source, url=database_url)
    assert done.returncode == 0, done.stderr
    assert "the single user: 2 chats and 1 assistants copied and checked" in done.stdout
    assert "account 0123456789abcdef: 1 chats and 0 assistants copied and checked" in done.stdout
    assert _fingerprint(source) == before
    database = Database(database_url)
    assert [m.content for m in PostgresConversationStore(database, "").get(chat.id).path()] == ["one, edited"]
    database.close()

    again = _migrate("to-postgres", data_dir=source, url=database_url)
    assert again.returncode == 1 and "already has chats" in again.stderr

    back = tmp_path / "back"
    done = _migrate("to-files", data_dir=back, url=database_url)
    assert done.returncode == 0, done.stderr
    for store in ("conversations.json", "users/0123456789abcdef/conversations.json"):
        original, returned = JsonConversationStore(source / store), JsonConversationStore(back / store)
        assert [encode_conversation(c) for c in original.everything()] == [
            encode_conversation(c) for c in returned.everything()
        ]
    assert (back / "assistants.json").read_bytes() == (source / "assistants.json").read_bytes()


@pytest.mark.browser
@pytest.mark.engine
def test_two_app_processes_on_one_database_work_as_one(database_url, page, tmp_path):
    """Two `streamlit run` processes on different ports and one database: a chat answered by the local
    engine in the first shows, with its reply, in the second after a reload, and a rename made in the
    second shows in the first."""
    first_dir, second_dir = tmp_path / "a", tmp_path / "b"
    first_dir.mkdir()
    second_dir.mkdir()
    shared = {"BNAGPT_DATABASE_URL": database_url}
    with (
        serve_app(first_dir, {**shared, "BNAGPT_PROVIDER": "local"}) as first,
        serve_app(second_dir, {**shared, "BNAGPT_PROVIDER": "groq"}) as second,
    ):
        page.goto(first)
        send(page, "Name three colours of the rainbow.")
        expect(page.locator('[data-testid="stChatMessage"] button', has_text="Stop")).to_have_count(0)
        database = Database(database_url)
        store = PostgresConversationStore(database, "")
        assert wait_until(lambda: [s.message_count for s in store.list()] == [2], 120)
        [summary] = store.list()
        reply = store.get(summary.id).messages[1].content
        other = page.context.new_page()
        other.goto(second)
        other.get_by_role("button", name=summary.name).first.click()
        expect(bubbles(other).first).to_contain_text("Name three colours of the rainbow.")
        expect(bubbles(other).nth(1)).to_contain_text(reply.split()[0])
        store.rename(summary.id, "Colours, renamed elsewhere")
        other.reload()
        expect(other.get_by_role("button", name="Colours, renamed elsewhere")).to_be_visible()
        page.reload()
        expect(page.get_by_role("button", name="Colours, renamed elsewhere")).to_be_visible()
        assert (
            not (first_dir / "conversations.json").exists()
            and not (second_dir / "conversations.json").exists()
        )
        database.close()


def test_two_tabs_renaming_one_chat_never_overwrite_each_other(database_url, monkeypatch):
    """Both tabs open the rename form on the same chat; the second to save is told, and keeps nothing
    of its own over the first's."""
    monkeypatch.setenv("BNAGPT_DATABASE_URL", database_url)
    database = Database(database_url)
    chat = PostgresConversationStore(database, "").create("Old name", [user("hi")])
    tabs = [new_app(), new_app()]
    for tab in tabs:
        tab.sidebar.button(key=f"rename_{chat.id}").click().run()
    tabs[0].sidebar.text_input(key=f"rename_input_{chat.id}").set_value("First tab's name")
    next(b for b in tabs[0].sidebar.button if b.label == "Rename").click().run()
    tabs[1].sidebar.text_input(key=f"rename_input_{chat.id}").set_value("Second tab's name")
    next(b for b in tabs[1].sidebar.button if b.label == "Rename").click().run()
    assert any("in another tab meanwhile" in e.value for e in tabs[1].error)
    assert PostgresConversationStore(database, "").get(chat.id).name == "First tab's name"
    database.close()
