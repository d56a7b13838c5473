"""Message actions and what the model is given: edit and regenerate as versions (a tree), switching
between them, pinned and left-out messages, the chat's last-N limit, the running summary; the tree through
reload, older files, export, import and backups."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from controller import context, library
from controller.chat import ChatSession
from controller.providers import ProviderConfig
from errors import BnaGPTError
from model import codec, tree
from model.backups import Backups
from model.imports import read_import
from model.json_store import JsonConversationStore
from model.message import Context, Message, Role
from tests.conftest import Scripted, chat_texts, new_app, read_document, wait_until


def user(text: str) -> Message:
    return Message(Role.USER, text)


def bot(text: str) -> Message:
    return Message(Role.ASSISTANT, text)


def streamed(server) -> list[dict]:
    """The messages of the last streamed request the scripted server got (the title request is not)."""
    return [r for r in server.requests if r.get("stream")][-1]["messages"]


def conversation_sent(server) -> list[tuple[str, str]]:
    """(role, text) of the user and assistant messages of the last streamed request."""
    return [(m["role"], m["content"]) for m in streamed(server) if m["role"] in ("user", "assistant")]


def system_sent(server) -> str:
    return "\n".join(m["content"] for m in streamed(server) if m["role"] == "system")


def answer(chat: ChatSession, text: str, config: ProviderConfig) -> str:
    reply = chat.send(text, config)
    return "".join(reply)


def contents(messages) -> list[str]:
    return [m.content for m in messages]


@pytest.fixture
def chat(store) -> ChatSession:
    return ChatSession(store)


# -- the tree ---------------------------------------------------------------------------------------


def test_the_path_follows_the_chosen_version_at_each_fork():
    q1, a1, q2, a2 = user("q1"), bot("a1"), user("q2"), bot("a2")
    messages = tree.linked([q1, a1, q2, a2])
    assert tree.path(messages, {}) == messages  # never forked
    q2b = Message(Role.USER, "q2b", parent=a1.id)
    a2b = Message(Role.ASSISTANT, "a2b", parent=q2b.id)
    messages += [q2b, a2b]
    assert contents(tree.path(messages, {})) == ["q1", "a1", "q2b", "a2b"]  # the newest by default
    chosen = tree.choose(messages, {}, q2.id)
    assert contents(tree.path(messages, chosen)) == ["q1", "a1", "q2", "a2"]
    assert chosen == {a1.id: q2.id}  # only forks are recorded
    assert tree.versions(messages)[q2.id][:2] == (1, 2) and tree.versions(messages)[q2b.id][:2] == (2, 2)
    assert contents(tree.path_to(messages, a2b.id)) == ["q1", "a1", "q2b", "a2b"]
    with pytest.raises(ValueError, match="not an earlier message"):
        tree.check([Message(Role.USER, "x", parent="nowhere")])


# -- the controller, at the scripted provider: exactly what the model is given ------------------------


def test_edit_forks_the_chat_and_switching_back_sends_the_old_branch(
    chat, store, data_file, scripted_server, scripted_config
):
    scripted_server.script = Scripted(sequence=[["A1"], ["A2"], ["A2, edited"], ["A3"]])
    answer(chat, "Q1", scripted_config)
    answer(chat, "Q2", scripted_config)
    q2 = chat.conversation().path()[2]

    reply = chat.edit(q2.id, "Q2, edited", scripted_config)
    assert "".join(reply) == "A2, edited"
    assert conversation_sent(scripted_server) == [
        ("user", "Q1"),
        ("assistant", "A1"),
        ("user", "Q2, edited"),
    ]
    conversation = chat.conversation()
    assert contents(conversation.path()) == ["Q1", "A1", "Q2, edited", "A2, edited"]
    assert contents(conversation.messages) == ["Q1", "A1", "Q2", "A2", "Q2, edited", "A2, edited"]
    assert tree.versions(conversation.messages)[conversation.path()[2].id][:2] == (2, 2)

    chat.choose(q2.id)  # "<": back to the first version, and its answer
    reopened = JsonConversationStore(data_file).get(conversation.id)  # a reload reads the file
    assert contents(reopened.path()) == ["Q1", "A1", "Q2", "A2"]
    assert answer(chat, "Q3", scripted_config) == "A3"
    assert conversation_sent(scripted_server) == [
        ("user", "Q1"),
        ("assistant", "A1"),
        ("user", "Q2"),
        ("assistant", "A2"),
        ("user", "Q3"),
    ]
    # The edited branch is still there, and choosing it again brings back its answer.
    edited = next(m for m in store.get(conversation.id).messages if m.content == "Q2, edited")
    chat.choose(edited.id)
    assert contents(chat.conversation().path()) == ["Q1", "A1", "Q2, edited", "A2, edited"]


def test_an_edit_that_cannot_be_sent_keeps_everything(chat, scripted_server, scripted_config):
    scripted_server.script = Scripted(sequence=[["A1"]])
    answer(chat, "Q1", scripted_config)
    first, reply = chat.conversation().path()
    with pytest.raises(Exception, match="empty"):
        chat.edit(first.id, "   ", scripted_config)
    with pytest.raises(Exception, match="Only your own messages"):
        chat.edit(reply.id, "new", scripted_config)
    assert contents(chat.conversation().messages) == ["Q1", "A1"]


def test_regenerate_with_another_model_adds_a_version_and_keeps_the_old(
    chat, scripted_server, scripted_config
):
    scripted_server.script = Scripted(sequence=[["Paris."], ["Paris, on the Seine."]])
    answer(chat, "Capital of France?", scripted_config)
    old = chat.conversation().path()[1]

    reply = chat.regenerate(old.id, scripted_config, model="bigger-model")
    assert "".join(reply) == "Paris, on the Seine."
    request = [r for r in scripted_server.requests if r.get("stream")][-1]
    assert request["model"] == "bigger-model"
    assert conversation_sent(scripted_server) == [("user", "Capital of France?")]  # not the old reply
    conversation = chat.conversation()
    question, new = conversation.path()
    assert new.content == "Paris, on the Seine." and new.parent == question.id == old.parent
    assert new.model.endswith("bigger-model") and old.model.endswith("· m")
    siblings = tree.versions(conversation.messages)[new.id]
    assert siblings[:2] == (2, 2) and siblings[2][0].content == "Paris."


def test_regenerate_with_the_local_engine_instead_of_the_server(
    store, engine, scripted_server, scripted_config, local_config
):
    chat = ChatSession(store, engine)
    scripted_server.script = Scripted(sequence=[["Blue."]])
    answer(chat, "What colour is the sky? One word.", scripted_config)
    old = chat.conversation().path()[1]
    text = "".join(chat.regenerate(old.id, local_config))
    assert text.strip()
    conversation = chat.conversation()
    new = conversation.path()[1]
    assert new.id != old.id and new.content == text and new.model.startswith("Local")
    assert [m.content for m in conversation.messages if m.role == Role.ASSISTANT] == ["Blue.", text]


def test_a_failed_reply_retried_becomes_an_earlier_version(chat, scripted_server, scripted_config):
    scripted_server.script = Scripted(stream_chunks=["Half"], cut_stream=True)
    with pytest.raises(BnaGPTError):
        answer(chat, "Tell me", scripted_config)
    assert chat.needs_reply(chat.conversation())
    scripted_server.script = Scripted(stream_chunks=["Whole."])
    assert "".join(chat.retry(scripted_config)) == "Whole."
    conversation = chat.conversation()
    assert contents(conversation.path()) == ["Tell me", "Whole."]
    assert not chat.needs_reply(conversation)
    assert tree.versions(conversation.messages)[conversation.path()[1].id][:2] == (2, 2)


def long_history(exchanges: int, fact_at: int = -1) -> list[Message]:
    """A chat of `exchanges` questions and answers of about 70 tokens each."""
    history = []
    for n in range(exchanges):
        fact = " Remember: the locker code is 4417." if n == fact_at else ""
        history += [
            user(f"Question {n}: tell me about river number {n} and its bridges.{fact}"),
            bot(f"Answer {n}: " + f"River number {n} has old stone bridges, mills and quiet towns. " * 4),
        ]
    return history


def test_pinned_messages_are_sent_and_left_out_ones_are_not(store, chat, scripted_server, scripted_config):
    config = scripted_config.with_changes(context_window=1200, max_tokens=100)
    conversation = store.create("Rivers", long_history(30, fact_at=0))
    chat.open(conversation.id)
    first, second = conversation.messages[0], conversation.messages[1]
    latest = conversation.messages[-1]
    chat.set_context(first.id, Context.ALWAYS)
    chat.set_context(latest.id, Context.NEVER)
    scripted_server.script = Scripted(stream_chunks=["4417."])
    reply = chat.send("What is the locker code?", config)
    "".join(reply)
    sent = conversation_sent(scripted_server)
    assert sent[0] == ("user", first.content)  # pinned: sent ahead of the window
    assert ("assistant", second.content) not in sent  # the window dropped its neighbour
    assert ("assistant", latest.content) not in sent  # left out, though the newest
    assert ("assistant", conversation.messages[-3].content) in sent
    assert sent[-1] == ("user", "What is the locker code?")
    # What the window dropped is not lost: the summary ahead of it names it.
    assert context.SUMMARY_HEADING in system_sent(scripted_server)
    assert reply.window is not None and second in reply.window.dropped
    assert "The assistant: " + reply.window.dropped[-1].content[:30] in system_sent(scripted_server)


def test_only_the_last_n_messages_are_sent_when_the_chat_says_so(
    store, chat, scripted_server, scripted_config
):
    conversation = store.create("Rivers", long_history(6))
    chat.open(conversation.id)
    store.set_keep_last(conversation.id, 4)
    scripted_server.script = Scripted(stream_chunks=["OK."])
    answer(chat, "And now?", scripted_config)
    sent = conversation_sent(scripted_server)
    assert [text for _, text in sent[:-1]] == contents(conversation.messages[-4:])
    assert context.SUMMARY_HEADING not in system_sent(scripted_server)  # left out, not summarised
    window, _ = chat.window(chat.conversation(), scripted_config)
    assert window.beyond_last == 12 + 2 - 4  # the new question and its reply pushed two more out


def test_a_chat_twice_the_window_is_summarised_by_the_provider_after_the_reply(
    store, chat, scripted_server, scripted_config
):
    config = scripted_config.with_changes(context_window=1200, max_tokens=100)
    conversation = store.create("Rivers", long_history(30, fact_at=0))
    chat.open(conversation.id)
    summary = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "- The locker code is 4417.\n- Rivers 0-20."},
                "finish_reason": "stop",
            }
        ],
    }
    scripted_server.script = Scripted(stream_chunks=["Noted."], body=summary)
    reply = chat.send("Go on.", config)
    "".join(reply)
    assert reply.window is not None and reply.window.digest is None
    # No summary yet: the dropped messages' openings (the newest, as many as fit its room) are sent.
    assert "The assistant: " + reply.window.dropped[-1].content[:30] in system_sent(scripted_server)
    assert wait_until(lambda: bool(store.get(conversation.id).digests), 30)
    (digest,) = store.get(conversation.id).digests
    assert digest.made_by.endswith("· m") and "4417" in digest.text
    # The provider read every dropped message, in parts, the summary carried from one to the next.
    asked = [r["messages"][-1]["content"] for r in scripted_server.requests if not r.get("stream")]
    assert "Question 0" in asked[0] and len(asked) > 1 and "4417" in asked[-1]
    assert all(
        any(m.content in text for text in asked) for m in store.get(conversation.id).path()[: digest.count]
    )

    answer(chat, "What is the locker code?", config)
    assert "The locker code is 4417." in system_sent(scripted_server)
    assert "Answer 0:" not in system_sent(scripted_server)
    window, _ = chat.window(store.get(conversation.id), config)
    assert window.digest is not None and len(window.dropped) >= digest.count


def test_a_long_chat_on_the_local_engine_is_summarised_and_answered(store, engine, local_config):
    chat = ChatSession(store, engine)
    conversation = store.create("Long", long_history(40))  # about 5,600 tokens: over twice the window
    chat.open(conversation.id)
    reply = chat.send("Say OK.", local_config)
    assert "".join(reply).strip()
    assert reply.window is not None and len(reply.window.dropped) > 40
    assert wait_until(lambda: bool(store.get(conversation.id).digests), 60)
    (digest,) = store.get(conversation.id).digests
    assert digest.made_by == "extractive" and digest.count == len(reply.window.dropped)
    assert "- The user: Question" in digest.text or "- The assistant: Answer" in digest.text
    window, exact = chat.window(store.get(conversation.id), local_config)
    assert exact and window.meter.used <= window.meter.window
    assert window.digest == digest and not window.unsummarised


def test_leaving_out_a_summarised_message_drops_the_summary(store, chat):
    conversation = store.create("Rivers", long_history(3))
    from model.conversation import Digest

    store.add_digest(conversation.id, Digest("- secret", conversation.messages[3].id, 4, "extractive"))
    store.set_context(conversation.id, conversation.messages[1].id, Context.NEVER)
    assert store.get(conversation.id).digests == ()


# -- the store format, exports and imports -------------------------------------------------------------


def branched(store) -> str:
    """A chat with an edited question and a regenerated reply; the first question's branch is chosen."""
    conversation = store.create("Trip", [user("Plan Lisbon"), bot("Day 1: Alfama.")])
    q1, a1 = conversation.messages
    store.add(conversation.id, a1.id, user("And Sintra?"), bot("Pena Palace."))
    store.add(conversation.id, q1.parent, user("Plan Porto"), bot("Day 1: Ribeira."))
    porto = store.get(conversation.id).messages[-2]
    store.add(conversation.id, porto.id, bot("Day 1: Foz."))  # regenerated
    store.choose(conversation.id, q1.id)
    return conversation.id


def test_a_branched_chat_round_trips_through_json_export_import_and_backups(store, tmp_path):
    cid = branched(store)
    original = store.get(cid)
    assert contents(original.path()) == ["Plan Lisbon", "Day 1: Alfama.", "And Sintra?", "Pena Palace."]

    data, _, _ = library.export_file([original], "json")
    assert json.loads(data)["version"] == codec.EXPORT_VERSION == 2
    other = JsonConversationStore(tmp_path / "other" / "conversations.json")
    (imported,) = other.add_many(read_import(data, "export.json").conversations)
    assert [(m.id, m.parent, m.role, m.content) for m in imported.messages] == [
        (m.id, m.parent, m.role, m.content) for m in original.messages
    ]
    assert imported.chosen == original.chosen and contents(imported.path()) == contents(original.path())

    markdown = library.export_file([original], "markdown")[0].decode()
    assert "Pena Palace." in markdown and "Plan Porto" not in markdown and "*4 messages" in markdown

    backups = Backups(tmp_path / "backups", 3)
    conversations, _ = backups.read(backups.take(store.everything()))
    restored = JsonConversationStore(tmp_path / "restored" / "conversations.json")
    restored.replace_all(conversations)
    again = restored.get(cid)
    assert contents(again.messages) == contents(original.messages) and again.chosen == original.chosen


def test_a_version_2_data_folder_opens_and_is_upgraded_on_first_write_with_a_backup(tmp_path):
    folder = tmp_path / "data"
    (folder / "conversations").mkdir(parents=True)
    cid = "0123456789abcdef0123456789abcdef"
    index = {
        "format": "bnagpt-conversations",
        "version": 2,
        "conversations": {
            cid: {
                "name": "Old",
                "created_at": "2026-01-01T10:00:00+00:00",
                "updated_at": "2026-01-01T10:05:00+00:00",
                "message_count": 2,
            }
        },
    }
    chat_file = {
        "format": "bnagpt-conversation",
        "version": 2,
        "name": "Old",
        "created_at": "2026-01-01T10:00:00+00:00",
        "updated_at": "2026-01-01T10:05:00+00:00",
        "messages": [
            {"role": "user", "content": "Olá", "created_at": "2026-01-01T10:00:00+00:00"},
            {"role": "assistant", "content": "Oi!", "created_at": "2026-01-01T10:00:01+00:00"},
        ],
    }
    (folder / "conversations.json").write_text(json.dumps(index))
    (folder / "conversations" / f"{cid}.json").write_text(json.dumps(chat_file))
    raw_index = (folder / "conversations.json").read_bytes()
    raw_chat = (folder / "conversations" / f"{cid}.json").read_bytes()

    store = JsonConversationStore(folder / "conversations.json")
    old = store.get(cid)
    assert [(m.id, m.parent) for m in old.messages] == [("m0", None), ("m1", "m0")]
    assert (folder / "conversations.json").read_bytes() == raw_index  # reading never rewrites

    store.add(cid, "m0", bot("Olá! Tudo bem?"))  # a regenerated reply
    assert read_document(folder / "conversations.json")["version"] == 3
    assert (folder / "conversations.json.v2-backup").read_bytes() == raw_index
    assert (folder / "conversations.v2-backup" / f"{cid}.json").read_bytes() == raw_chat
    upgraded = JsonConversationStore(folder / "conversations.json").get(cid)
    assert contents(upgraded.path()) == ["Olá", "Olá! Tudo bem?"]
    assert contents(upgraded.messages) == ["Olá", "Oi!", "Olá! Tudo bem?"]
    shutil.rmtree(folder / "conversations.v2-backup")  # later writes make no more backups
    store.append(cid, user("Sim"))
    assert not (folder / "conversations.v2-backup").exists()


def test_a_file_whose_tree_is_broken_is_set_aside_not_overwritten(store, data_file):
    conversation = store.create("Fine", [user("hi")])
    path = data_file.with_suffix("") / f"{conversation.id}.json"
    raw = path.read_bytes().replace(b'"id": "', b'"parent": "elsewhere", "id": "', 1)
    path.write_bytes(raw)
    fresh = JsonConversationStore(data_file)
    with pytest.raises(Exception, match="not an earlier message"):
        fresh.append(conversation.id, user("more"))
    assert [p.read_bytes() for p in fresh.set_aside_files()] == [raw]


# -- the app ---------------------------------------------------------------------------------------------


def _on_the_scripted_server(monkeypatch, server) -> None:
    monkeypatch.setenv("BNAGPT_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("BNAGPT_OPENAI_MODEL", "m")


def _button(at, key: str):
    return next(b for b in at.button if b.key == key)


def test_edit_branch_switch_back_and_reload_in_the_app(scripted_server, monkeypatch, store):
    _on_the_scripted_server(monkeypatch, scripted_server)
    scripted_server.script = Scripted(sequence=[["A1"], ["A2"], ["A2, edited"], ["A3"]])
    at = new_app()
    at = at.chat_input[0].set_value("Q1").run()
    at = at.chat_input[0].set_value("Q2").run()
    assert [t for _, t in chat_texts(at)] == ["Q1", "A1", "Q2", "A2"]
    (summary,) = store.list()
    q2 = store.get(summary.id).messages[2]
    # Copy shows the raw Markdown; Edit opens the question in a box.
    assert any(c.value == "A1" and c.language == "markdown" for c in at.code)
    at = _button(at, f"edit_{q2.id}").click().run()
    at.text_area(key=f"edit_text_{q2.id}").set_value("Q2, edited")
    at = next(b for b in at.button if b.label == "Send").click().run()
    assert not at.exception
    assert [t for _, t in chat_texts(at)] == ["Q1", "A1", "Q2, edited", "A2, edited"]
    assert "2/2" in [c.value for c in at.caption]
    edited = store.get(summary.id).path()[2]
    at = _button(at, f"prev_{edited.id}").click().run()  # "<"
    assert [t for _, t in chat_texts(at)] == ["Q1", "A1", "Q2", "A2"]
    assert "1/2" in [c.value for c in at.caption]

    at = new_app(c=summary.id)  # a reload
    assert [t for _, t in chat_texts(at)] == ["Q1", "A1", "Q2", "A2"]
    at = at.chat_input[0].set_value("Q3").run()
    assert conversation_sent(scripted_server) == [
        ("user", "Q1"),
        ("assistant", "A1"),
        ("user", "Q2"),
        ("assistant", "A2"),
        ("user", "Q3"),
    ]


def test_regenerate_pin_and_leave_out_in_the_app(scripted_server, monkeypatch, store):
    _on_the_scripted_server(monkeypatch, scripted_server)
    scripted_server.script = Scripted(sequence=[["A1"], ["A2"], ["A2 again"], ["A3"]])
    at = new_app()
    at = at.chat_input[0].set_value("Q1").run()
    at = at.chat_input[0].set_value("Q2").run()
    (summary,) = store.list()
    q1, a1, _, a2 = store.get(summary.id).messages
    at = _button(at, f"regen_with_{a2.id}").click().run()  # opens the choice of provider and model
    at.text_input(key=f"regen_model_{a2.id}").set_value("other-model")
    at = next(b for b in at.button if b.label == "Regenerate").click().run()
    assert not at.exception
    assert [t for _, t in chat_texts(at)] == ["Q1", "A1", "Q2", "A2 again"]
    assert [r for r in scripted_server.requests if r.get("stream")][-1]["model"] == "other-model"

    at = _button(at, f"pin_{q1.id}").click().run()
    at = _button(at, f"leave_{a1.id}").click().run()
    assert any("Always given" in c.value for c in at.caption)
    assert any("Left out" in c.value for c in at.caption)
    assert any("1 message left out" in c.value for c in at.caption)  # the meter says so
    assert at.get("progress") and "Context:" in at.get("progress")[0].proto.text
    at = at.chat_input[0].set_value("Q3").run()
    sent = conversation_sent(scripted_server)
    assert ("user", "Q1") in sent and ("assistant", "A1") not in sent
    assert ("assistant", "A2 again") in sent and ("assistant", "A2") not in sent


def test_the_app_says_what_was_summarised_and_shows_the_summary(scripted_server, monkeypatch, store):
    _on_the_scripted_server(monkeypatch, scripted_server)
    conversation = store.create("Long", long_history(150))  # about 14,000 tokens: the window is 8,192
    at = new_app(c=conversation.id)
    notes = [c.value for c in at.caption if "earlier messages summarised" in c.value]
    assert len(notes) == 1, [c.value for c in at.caption]
    dropped = int(notes[0].split()[0])
    assert 150 < dropped < 300
    (meter,) = at.get("progress")
    used, room = (int(n.replace(",", "")) for n in re.findall(r"[\d,]+(?= (?:of|tokens))", meter.proto.text))
    assert room > used > room // 2  # the window is full again, the summary ahead of it
    summary = [t.value for t in at.text if t.value.startswith("- The ")]
    last_dropped = conversation.messages[dropped - 1].content  # the newest message the window dropped
    assert summary and last_dropped[:40] in summary[0].splitlines()[-1]
