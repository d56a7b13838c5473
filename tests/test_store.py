"""The JSON conversation store: round trips, names, old and broken files, concurrency and crashes."""

import json
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from llama_index.core.base.llms.types import MessageRole

from errors import ConversationNotFound, InvalidName, NameTaken, StoreError, UnsupportedDataFile
from model.conversation import MAX_NAME_LENGTH
from model.json_store import JsonConversationStore
from model.message import Message, MessageStatus
from tests import store_worker
from tests.conftest import PROJECT, read_document, wait_until


def user(text: str) -> Message:
    return Message(MessageRole.USER, text)


def test_round_trip(store, data_file):
    """What is saved is what is loaded, through a new store object reading the file."""
    created = store.create("Trip", [user("hello")])
    store.append(created.id, Message(MessageRole.ASSISTANT, "partial", status=MessageStatus.STOPPED))
    loaded = JsonConversationStore(data_file).get(created.id)
    assert loaded.name == "Trip"
    assert [(m.role, m.content, m.status) for m in loaded.messages] == [
        (MessageRole.USER, "hello", MessageStatus.COMPLETE),
        (MessageRole.ASSISTANT, "partial", MessageStatus.STOPPED),
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
    """Names are data: HTML, paths, emoji and RTL marks come back exactly, and create no files."""
    created = store.create(name)
    assert JsonConversationStore(data_file).get(created.id).name == name
    assert sorted(p.name for p in data_file.parent.iterdir() if not p.name.startswith(".")) == [
        "conversations.json",
        "conversations.json.lock",
    ]


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

    store.append(names["Viagem"].id, Message(MessageRole.ASSISTANT, "Sim!"))
    backup = data_file.with_name("conversations.json.article-backup")
    assert backup.read_bytes() == raw
    document = read_document(data_file)
    assert document["format"] == "bnagpt-conversations"
    assert [m["content"] for m in document["conversations"][names["Viagem"].id]["messages"]] == [
        "Lisboa?",
        "Sim!",
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
    processes, threads, saves = 8, 4, 50
    conversation = store.create("busy")
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(
            target=store_worker.append_many,
            args=(str(data_file), conversation.id, w, threads, saves),
        )
        for w in range(processes)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
        assert worker.exitcode == 0
    contents = [m.content for m in JsonConversationStore(data_file).get(conversation.id).messages]
    expected = {f"{w}-{t}-{i}" for w in range(processes) for t in range(threads) for i in range(saves)}
    assert len(contents) == processes * threads * saves
    assert set(contents) == expected
    for w in range(processes):  # each thread's saves keep their order
        for t in range(threads):
            mine = [c for c in contents if c.startswith(f"{w}-{t}-")]
            assert mine == [f"{w}-{t}-{i}" for i in range(saves)]


def test_writer_killed_mid_save_leaves_a_parseable_file(store, data_file):
    """SIGKILL at random moments during saves: the file always parses, and the store keeps working."""
    conversation = store.create("crash test")
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    rng = random.Random(7)
    seen = 0
    for _ in range(8):
        before = data_file.stat().st_size
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.store_worker", str(data_file), conversation.id],
            cwd=PROJECT,
            env=env,
        )
        assert wait_until(lambda size=before: data_file.stat().st_size > size, 60)  # it is saving
        time.sleep(rng.random() * 0.5)
        child.send_signal(signal.SIGKILL)
        child.wait()
        messages = JsonConversationStore(data_file).get(conversation.id).messages
        assert len(messages) >= seen
        seen = len(messages)
    assert seen > 0
    store.append(conversation.id, user("after the crashes"))
    assert store.get(conversation.id).messages[-1].content == "after the crashes"
    assert not list(data_file.parent.glob(".conversations.json.*.tmp"))
    assert not list(data_file.parent.glob("conversations.json.corrupt-*"))


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
