"""The JSON conversation store: round trips, names, old and broken files, concurrency and crashes."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from errors import ConversationNotFound, InvalidName, NameTaken, StoreError, UnsupportedDataFile
from model.conversation import MAX_NAME_LENGTH, Conversation
from model.json_store import JsonConversationStore
from model.message import Message, MessageStatus, Role
from tests.conftest import PROJECT, check_concurrent_saves, read_conversation, read_document, wait_until


def user(text: str) -> Message:
    return Message(Role.USER, text)


def test_round_trip(store, data_file):
    """What is saved is what is loaded, through a new store object reading the file."""
    created = store.create("Trip", [user("hello")])
    store.append(created.id, Message(Role.ASSISTANT, "partial", status=MessageStatus.STOPPED))
    loaded = JsonConversationStore(data_file).get(created.id)
    assert loaded.name == "Trip"
    assert [(m.role, m.content, m.status) for m in loaded.messages] == [
        (Role.USER, "hello", MessageStatus.COMPLETE),
        (Role.ASSISTANT, "partial", MessageStatus.STOPPED),
    ]
    assert loaded.messages[0].created_at == created.messages[0].created_at


def test_list_is_most_recent_first(store):
    """The sidebar shows the conversation touched last at the top."""
    first = store.create("first")
    second = store.create("second")
    assert [s.name for s in store.list()] == ["second", "first"]
    store.append(first.id, user("bump"))
    assert [(s.name, s.message_count) for s in store.list()] == [("first", 1), ("second", 0)]
    assert second.id in {s.id for s in store.list()}


def test_rename_and_delete(store, data_file):
    """Rename changes only the name; delete removes the conversation from the file."""
    kept = store.create("keep", [user("a")])
    gone = store.create("gone", [user("b")])
    assert store.rename(kept.id, "  kept  ") == "kept"
    store.delete(gone.id)
    document = read_document(data_file)
    assert [c["name"] for c in document["conversations"].values()] == ["kept"]
    with pytest.raises(ConversationNotFound):
        store.get(gone.id)
    with pytest.raises(ConversationNotFound):
        store.delete(gone.id)


@pytest.mark.parametrize(
    "name",
    [
        "<script>alert(1)</script>",
        "../../etc/passwd",
        "C:\\Windows\\system32",
        "conversations.json",
        "🦙 llama talk 👩‍💻",
        "\u202eevil\u202c name",  # right-to-left override
        "שלום עולם",
        "**bold** :material/home: [link](http://x)",
        "x" * MAX_NAME_LENGTH,
    ],
)
def test_odd_names_round_trip_exactly(store, data_file, name):
    """Names are data: HTML, paths, emoji and RTL marks come back exactly, and name no files."""
    created = store.create(name)
    assert JsonConversationStore(data_file).get(created.id).name == name
    assert sorted(p.name for p in data_file.parent.iterdir()) == [
        "conversations",
        "conversations.json",
        "conversations.json.lock",
    ]
    assert [p.name for p in (data_file.parent / "conversations").iterdir()] == [f"{created.id}.json"]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "cannot be empty"),
        ("   \t ", "cannot be empty"),
        ("x" * (MAX_NAME_LENGTH + 1), "at most"),
        ("two\nlines", "one line"),
        ("bell\x07", "one line"),
        ("broken \ud800", "lone surrogate"),
    ],
)
def test_bad_names_are_refused(store, data_file, name, says):
    """A name that cannot round-trip is refused with a message, and nothing is written."""
    with pytest.raises(InvalidName, match=says):
        store.create(name)
    assert not data_file.exists()


def test_existing_name_is_never_overwritten(store):
    """Save-as and rename refuse a taken name; automatic names get a suffix instead."""
    first = store.create("Plans", [user("one")])
    other = store.create("Other")
    with pytest.raises(NameTaken):
        store.create("Plans", [user("two")])
    with pytest.raises(NameTaken):
        store.rename(other.id, "Plans")
    assert store.create("Plans", rename_if_taken=True).name == "Plans (2)"
    assert store.create("Plans", rename_if_taken=True).name == "Plans (3)"
    assert [m.content for m in store.get(first.id).messages] == ["one"]


def test_article_format_file_is_read_then_converted_with_a_backup(data_file):
    """A file written by the article's code opens; the first write keeps the original beside it."""
    original = {
        "Receitas": [{"role": "user", "content": "Oi"}, {"role": "assistant", "content": "Olá!"}],
        "Viagem": [{"role": "user", "content": "Lisboa?"}],
    }
    raw = json.dumps(original).encode()
    data_file.write_bytes(raw)
    store = JsonConversationStore(data_file)
    names = {s.name: s for s in store.list()}
    assert set(names) == {"Receitas", "Viagem"}
    assert [m.content for m in store.get(names["Receitas"].id).messages] == ["Oi", "Olá!"]
    assert data_file.read_bytes() == raw  # reading never rewrites

    store.append(names["Viagem"].id, Message(Role.ASSISTANT, "Sim!"))
    backup = data_file.with_name("conversations.json.article-backup")
    assert backup.read_bytes() == raw
    document = read_document(data_file)
    assert document["format"] == "bnagpt-conversations"
    assert document["version"] == 3
    assert [m["content"] for m in read_conversation(data_file, names["Viagem"].id)["messages"]] == [
        "Lisboa?",
        "Sim!",
    ]
    assert [m.content for m in JsonConversationStore(data_file).get(names["Receitas"].id).messages] == [
        "Oi",
        "Olá!",
    ]


@pytest.mark.parametrize(
    "raw",
    [
        b'{"format": "bnagpt-conversations", "version": 1, "conversations": {',
        b"\xff\xfe not utf-8",
        b"[1, 2, 3]",
        b'{"format": "bnagpt-conversations", "version": 1, "conversations": []}',
        b'{"format": "bnagpt-conversations", "version": 1, "conversations": {"a": {"name": 5}}}',
        b'{"some": "thing else"}',
        b"",
    ],
)
def test_corrupt_file_is_set_aside_untouched(data_file, raw):
    """An unreadable file is moved aside byte for byte, the user is told where, and the app goes on."""
    data_file.write_bytes(raw)
    store = JsonConversationStore(data_file)
    assert store.list() == []
    aside = list(data_file.parent.glob("conversations.json.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes() == raw
    assert len(store.notices) == 1
    assert str(aside[0]) in store.notices[0]
    created = store.create("fresh start", [user("still works")])
    assert [s.id for s in store.list()] == [created.id]
    assert aside[0].read_bytes() == raw


def test_newer_file_is_left_alone(data_file):
    """A file from a newer bnaGPT is neither read as empty nor overwritten."""
    raw = b'{"format": "bnagpt-conversations", "version": 99, "conversations": {}}'
    data_file.write_bytes(raw)
    store = JsonConversationStore(data_file)
    with pytest.raises(UnsupportedDataFile, match="newer"):
        store.list()
    with pytest.raises(UnsupportedDataFile):
        store.create("x")
    assert data_file.read_bytes() == raw


def test_concurrent_saves_lose_nothing(store, data_file):
    """8 processes x 4 threads x 50 saves into one conversation: all 1,600 messages are there."""
    check_concurrent_saves(str(data_file), store)


def test_writer_killed_mid_save_leaves_a_parseable_file(store, data_file):
    """SIGKILL at random moments during saves: the file always parses, and the store keeps working."""
    conversation = store.create("crash test")
    conversation_file = data_file.parent / "conversations" / f"{conversation.id}.json"
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    rng = random.Random(7)
    seen = 0
    for _ in range(8):
        before = conversation_file.stat().st_size
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.store_worker", str(data_file), conversation.id],
            cwd=PROJECT,
            env=env,
        )
        assert wait_until(lambda size=before: conversation_file.stat().st_size > size, 60)  # saving
        time.sleep(rng.random() * 0.5)
        child.send_signal(signal.SIGKILL)
        child.wait()
        messages = JsonConversationStore(data_file).get(conversation.id).messages
        assert len(messages) >= seen
        seen = len(messages)
    assert seen > 0
    store.append(conversation.id, user("after the crashes"))
    assert store.get(conversation.id).messages[-1].content == "after the crashes"
    assert not list(data_file.parent.rglob("*.tmp"))
    assert not list(data_file.parent.rglob("*.corrupt-*"))
    assert read_document(data_file)["conversations"][conversation.id]["message_count"] == seen + 1


def test_unwritable_data_folder_is_explained(tmp_path):
    """A data folder that cannot be created gives a StoreError saying what to fix."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder should be")
    store = JsonConversationStore(blocker / "conversations.json")
    with pytest.raises(StoreError, match="BNAGPT_DATA_DIR"):
        store.list()
    with pytest.raises(StoreError, match="BNAGPT_DATA_DIR"):
        store.create("x")
    assert blocker.read_text() == "a file where the folder should be"


def test_version_1_file_is_split_with_a_backup(data_file):
    """bnaGPT's earlier single-file format opens as is; the first write splits it and keeps the original."""
    created = "2026-11-01T10:00:00+00:00"
    original = {
        "format": "bnagpt-conversations",
        "version": 1,
        "conversations": {
            "a" * 32: {
                "name": "Old chat",
                "created_at": created,
                "updated_at": created,
                "messages": [{"role": "user", "content": "still here?", "created_at": created}],
            }
        },
    }
    raw = json.dumps(original).encode()
    data_file.write_bytes(raw)
    store = JsonConversationStore(data_file)
    assert [(s.name, s.message_count) for s in store.list()] == [("Old chat", 1)]
    assert data_file.read_bytes() == raw
    store.append("a" * 32, Message(Role.ASSISTANT, "Yes."))
    assert data_file.with_name("conversations.json.v1-backup").read_bytes() == raw
    assert [m["content"] for m in read_conversation(data_file, "a" * 32)["messages"]] == [
        "still here?",
        "Yes.",
    ]
    assert read_document(data_file)["conversations"]["a" * 32]["message_count"] == 2


def test_broken_index_is_rebuilt_from_the_conversation_files(store, data_file):
    """The index is only a summary: a broken one is set aside and rebuilt, and no chat is lost."""
    kept = [store.create(f"chat {i}", [user(f"message {i}")]) for i in range(3)]
    data_file.write_bytes(b'{"format": "bnagpt-conversations", "version": 2, "conversations": {')
    fresh = JsonConversationStore(data_file)
    assert sorted(s.name for s in fresh.list()) == ["chat 0", "chat 1", "chat 2"]
    assert "rebuilt from the 3 conversation files" in fresh.notices[0]
    assert [m.content for m in fresh.get(kept[1].id).messages] == ["message 1"]
    assert len(list(data_file.parent.glob("conversations.json.corrupt-*"))) == 1


def test_index_and_files_are_reconciled_after_a_crash_between_writes(store, data_file):
    """A conversation file without an index entry is listed; an entry without a file is dropped."""
    kept = store.create("kept", [user("one")])
    orphan = store.create("orphan", [user("two")])
    gone = store.create("gone", [user("three")])
    document = read_document(data_file)
    del document["conversations"][orphan.id]  # as if killed after writing the file, before the index
    data_file.write_text(json.dumps(document))
    (data_file.parent / "conversations" / f"{gone.id}.json").unlink()  # killed mid-delete
    fresh = JsonConversationStore(data_file)
    assert sorted(s.name for s in fresh.list()) == ["kept", "orphan"]
    assert set(read_document(data_file)["conversations"]) == {kept.id, orphan.id}


def test_broken_conversation_file_is_set_aside_and_the_others_stay(store, data_file):
    """One unreadable conversation file costs that conversation's listing only, and is kept aside."""
    good = store.create("good", [user("fine")])
    bad = store.create("bad", [user("soon broken")])
    path = data_file.parent / "conversations" / f"{bad.id}.json"
    path.write_bytes(b'{"name": "bad", "messages": [')
    fresh = JsonConversationStore(data_file)
    with pytest.raises(ConversationNotFound, match="moved, untouched"):
        fresh.get(bad.id)
    assert [s.name for s in fresh.list()] == ["good"]
    assert [p.read_bytes() for p in path.parent.glob("*.corrupt-*")] == [b'{"name": "bad", "messages": [']
    assert [m.content for m in fresh.get(good.id).messages] == ["fine"]


@pytest.mark.parametrize("conversation_id", ["../conversations", "../../etc/passwd", "A" * 32, "", "x"])
def test_ids_that_are_not_ids_never_reach_the_file_system(store, conversation_id):
    """Ids arrive from URLs: anything but a store id is simply not found."""
    store.create("real")
    with pytest.raises(ConversationNotFound):
        store.get(conversation_id)


def test_index_with_path_like_ids_is_set_aside(data_file):
    """A hand-edited index naming files outside the folder is not followed."""
    raw = (
        b'{"format": "bnagpt-conversations", "version": 2, "conversations": {"../../secret": '
        b'{"name": "x", "created_at": "2026-01-01T00:00:00+00:00", '
        b'"updated_at": "2026-01-01T00:00:00+00:00", "message_count": 0}}}'
    )
    data_file.write_bytes(raw)
    store = JsonConversationStore(data_file)
    assert store.list() == []
    assert [p.read_bytes() for p in data_file.parent.glob("conversations.json.corrupt-*")] == [raw]


def test_another_process_changes_are_seen(store, data_file):
    """Reads are cached, but a change made by another store (another tab or process) shows at once."""
    created = store.create("shared", [user("one")])
    assert [m.content for m in store.get(created.id).messages] == ["one"]
    other = JsonConversationStore(data_file)
    other.append(created.id, user("two"))
    other.rename(created.id, "renamed")
    assert [(s.name, s.message_count) for s in store.list()] == [("renamed", 2)]
    assert [m.content for m in store.get(created.id).messages] == ["one", "two"]
    other.delete(created.id)
    assert store.list() == []
    with pytest.raises(ConversationNotFound):
        store.get(created.id)


def test_returned_conversations_do_not_change_the_store(store):
    """Callers may change what they get back; the cached copy stays as saved."""
    created = store.create("mine", [user("one")])
    loaded = store.get(created.id)
    loaded.messages.append(user("not saved"))
    loaded.name = "not saved either"
    again = store.get(created.id)
    assert (again.name, [m.content for m in again.messages]) == ("mine", ["one"])


def test_add_many_never_overwrites_and_keeps_times(store, data_file):
    """Importing keeps messages and times, gives clashing names a suffix, and leaves existing chats alone."""
    existing = store.create("Recipes", [user("mine")])
    old = datetime(2024, 5, 1, tzinfo=UTC)
    incoming = [
        Conversation(name="Recipes", messages=[user("imported")], created_at=old, updated_at=old),
        Conversation(name="Recipes", messages=[user("imported too")], created_at=old, updated_at=old),
        Conversation(name="Travel", messages=[], created_at=old, updated_at=old),
    ]
    added = store.add_many(incoming)
    assert [c.name for c in added] == ["Recipes (2)", "Recipes (3)", "Travel"]
    assert existing.id not in {c.id for c in added}
    fresh = JsonConversationStore(data_file)
    assert [m.content for m in fresh.get(existing.id).messages] == ["mine"]
    assert [m.content for m in fresh.get(added[1].id).messages] == ["imported too"]
    assert [s.name for s in fresh.list()] == ["Recipes", "Recipes (2)", "Recipes (3)", "Travel"]
    assert fresh.get(added[2].id).updated_at == old


def test_a_byte_order_mark_is_read_not_set_aside(data_file):
    """A data file saved by an editor that writes a UTF-8 byte order mark opens with all its chats."""
    article = {"Receitas": [{"role": "user", "content": "Oi"}]}
    data_file.write_bytes(b"\xef\xbb\xbf" + json.dumps(article).encode())
    store = JsonConversationStore(data_file)
    assert [s.name for s in store.list()] == ["Receitas"]
    assert not store.notices
    assert not list(data_file.parent.glob("conversations.json.corrupt-*"))


def test_a_set_aside_index_says_how_to_bring_chats_back(data_file):
    """The notice for an unreadable index points to the Library's backups and import."""
    data_file.write_bytes(b"{ not json")
    store = JsonConversationStore(data_file)
    store.list()
    assert "Bring back missing chats" in store.notices[0] and "Import" in store.notices[0]


def test_an_index_entry_without_a_field_says_which(data_file):
    """A hand-edited index missing a field is reported by the field's name, in words."""
    store = JsonConversationStore(data_file)
    kept = store.create("kept", [user("hello")])
    document = read_document(data_file)
    del document["conversations"][kept.id]["message_count"]
    data_file.write_text(json.dumps(document), encoding="utf-8")
    fresh = JsonConversationStore(data_file)
    assert [s.name for s in fresh.list()] == ["kept"]  # rebuilt from the conversation file
    assert "lacks the field 'message_count'" in fresh.notices[0]


def test_the_articles_chats_take_the_files_time_not_1970(data_file):
    """The article's file has no times: its chats show when the file was last written."""
    data_file.write_text(json.dumps({"Receitas": [{"role": "user", "content": "Oi"}]}), encoding="utf-8")
    modified = datetime.fromtimestamp(data_file.stat().st_mtime, UTC)
    (summary,) = JsonConversationStore(data_file).list()
    assert abs(summary.updated_at - modified) < timedelta(seconds=1)
