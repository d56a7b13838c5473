"""User journeys through the real app, in-process with Streamlit's AppTest: on the real local engine where
the model answers, on the scripted provider where no answer is needed."""

from __future__ import annotations

import json

import pytest

from controller.local_models import CUSTOM, SMOLLM2
from model.message import Message, Role
from tests.conftest import (
    Scripted,
    chat_texts,
    new_app,
    read_conversation,
    read_document,
    saved_names,
    sidebar_names,
    stored_messages,
    wait_until,
)
from utils.local_server import LocalEngine, bundled_model_path


def session_engine(at) -> LocalEngine:
    """The local engine the tab uses."""
    return at.session_state["chat"].engine


@pytest.mark.parametrize(
    "page",
    ["pages/chat_page.py", "pages/assistants_page.py", "pages/library_page.py", "pages/settings_page.py"],
)
def test_every_page_opens(page):
    """Each page renders without an exception."""
    at = new_app()
    at.switch_page(page).run()
    assert not at.exception


@pytest.mark.engine
def test_send_streams_autosaves_and_lists(data_file, local_provider):
    """A message gets an answer, both are saved, and the chat appears in the sidebar with an auto name."""
    at = new_app()
    at.chat_input[0].set_value("Hello! What can you do?").run()
    assert not at.exception
    bubbles = chat_texts(at)
    assert bubbles[0] == ("user", "Hello! What can you do?")
    assert bubbles[1][0] == "assistant" and bubbles[1][1].strip()
    saved = stored_messages(data_file)
    assert [m[0] for m in saved] == ["user", "assistant"]
    assert saved[1][1].strip()
    assert saved_names(data_file) == ["Hello! What can you do?"]
    assert sidebar_names(at) == [r"Hello\! What can you do?"]  # escaped: shown as typed
    assert at.query_params["c"]


def test_blank_message_is_not_sent(data_file):
    """Spaces alone send nothing and save nothing."""
    at = new_app()
    at.chat_input[0].set_value("   \n  ").run()
    assert not at.exception
    assert chat_texts(at) == []
    assert not data_file.exists()


@pytest.mark.engine
def test_second_message_continues_the_same_conversation(data_file, local_provider):
    """Follow-ups go to the open conversation, not a new one."""
    at = new_app()
    at.chat_input[0].set_value("First message").run()
    at.chat_input[0].set_value("Second message").run()
    assert not at.exception
    assert len(read_document(data_file)["conversations"]) == 1
    assert [m[1] for m in stored_messages(data_file) if m[0] == "user"] == ["First message", "Second message"]


def test_open_from_sidebar_and_from_the_address(store):
    """Clicking a saved chat shows its messages; a reload with ?c= reopens it."""
    other = store.create("Other", [Message(Role.USER, "unrelated")])
    wanted = store.create(
        "Recipes",
        [
            Message(Role.USER, "How do I make pão de queijo?"),
            Message(Role.ASSISTANT, "With cheese."),
        ],
    )
    at = new_app()
    assert sidebar_names(at) == ["Recipes", "Other"]
    at.sidebar.button(key=f"open_{wanted.id}").click().run()
    assert chat_texts(at) == [("user", "How do I make pão de queijo?"), ("assistant", "With cheese.")]
    assert at.query_params["c"] == [wanted.id] or at.query_params["c"] == wanted.id
    reloaded = new_app(c=other.id)
    assert chat_texts(reloaded) == [("user", "unrelated")]


def test_rename_from_sidebar(store, data_file):
    """Rename through the sidebar form; a taken name is refused and nothing changes."""
    chat = store.create("Old name", [Message(Role.USER, "hi")])
    store.create("Taken")
    at = new_app()
    at.sidebar.button(key=f"rename_{chat.id}").click().run()
    at.sidebar.text_input(key=f"rename_input_{chat.id}").set_value("Taken")
    at.sidebar.button[[b.label for b in at.sidebar.button].index("Rename")].click().run()
    assert any("already exists" in e.value for e in at.sidebar.error)
    assert sorted(saved_names(data_file)) == ["Old name", "Taken"]

    at.sidebar.text_input(key=f"rename_input_{chat.id}").set_value("<b>New</b> 🦙 name")
    at.sidebar.button[[b.label for b in at.sidebar.button].index("Rename")].click().run()
    assert not at.exception
    assert sorted(saved_names(data_file)) == ["<b>New</b> 🦙 name", "Taken"]
    assert r"\<b\>New\</b\> 🦙 name" in sidebar_names(at)


def test_spaces_around_a_name_are_removed_and_the_user_told(store, data_file):
    """A name typed with spaces around it is stored without them, and the message says so."""
    chat = store.create("Old name", [Message(Role.USER, "hi")])
    at = new_app()
    at.sidebar.button(key=f"rename_{chat.id}").click().run()
    at.sidebar.text_input(key=f"rename_input_{chat.id}").set_value("  Trip plans ")
    at.sidebar.button[[b.label for b in at.sidebar.button].index("Rename")].click().run()
    assert not at.exception
    assert saved_names(data_file) == ["Trip plans"]
    assert any("Spaces at its start and end were left out" in s.value for s in at.success)


def test_delete_moves_to_the_trash_which_restores_and_empties(store, data_file):
    """Delete puts a chat in the trash (file kept); the Library restores it, and empties the trash after a
    confirmation, the one step that deletes for good."""
    doomed = store.create("Doomed", [Message(Role.USER, "bye")])
    at = new_app(c=doomed.id)
    at.sidebar.button(key=f"delete_{doomed.id}").click().run()
    assert not at.exception
    assert sidebar_names(at) == []
    assert "c" not in at.query_params and chat_texts(at) == []
    assert read_document(data_file)["conversations"][doomed.id]["trashed_at"]
    assert read_conversation(data_file, doomed.id)["messages"][0]["content"] == "bye"

    at.switch_page("pages/library_page.py").run()
    at.button(key=f"restore_{doomed.id}").click().run()
    assert "trashed_at" not in read_document(data_file)["conversations"][doomed.id]
    assert sidebar_names(at) == ["Doomed"]

    at.sidebar.button(key=f"delete_{doomed.id}").click().run()
    at.button(key="empty_trash").click().run()
    assert saved_names(data_file) == ["Doomed"]  # asked, not yet done
    at.button(key="empty_trash_no").click().run()
    at.button(key="empty_trash").click().run()
    at.button(key="empty_trash_yes").click().run()
    assert not at.exception
    assert saved_names(data_file) == []
    assert not (data_file.parent / "conversations" / f"{doomed.id}.json").exists()


def test_save_as_copies_the_chat_under_a_new_name(store, data_file):
    """Save as keeps the original and writes a copy under the typed name; a taken name is refused."""
    original = store.create("Draft", [Message(Role.USER, "keep me")])
    at = new_app(c=original.id)
    at.text_input(key="save_as_name").set_value("Draft")
    at.button[[b.label for b in at.button].index("Save")].click().run()
    assert any("already exists" in e.value for e in at.error)
    assert saved_names(data_file) == ["Draft"]

    at.text_input(key="save_as_name").set_value("Final")
    at.button[[b.label for b in at.button].index("Save")].click().run()
    assert not at.exception
    documents = read_document(data_file)["conversations"]
    assert sorted(c["name"] for c in documents.values()) == ["Draft", "Final"]
    assert all(
        [m["content"] for m in read_conversation(data_file, cid)["messages"]] == ["keep me"]
        for cid in documents
    )


def test_provider_failure_keeps_the_message_and_retry_answers(scripted_server, data_file):
    """A refused key shows a clear error with Retry; the message is saved; Retry then answers."""
    scripted_server.script = Scripted(401, {"error": {"message": "Invalid API Key"}})
    at = new_app()
    at.sidebar.selectbox(key="provider_label").set_value("OpenAI-compatible server").run()
    at.sidebar.text_input(key="openai_base_url").set_value(scripted_server.url)
    at.sidebar.text_input(key="openai_model").set_value("m")
    at.sidebar.text_input(key="openai_api_key").set_value("sk-wrong").run()
    at.chat_input[0].set_value("Are you there?").run()
    assert not at.exception
    assert any("refused the API key" in e.value for e in at.error)
    assert "sk-wrong" not in " ".join(e.value for e in at.error)
    assert stored_messages(data_file) == [("user", "Are you there?", "complete")]

    scripted_server.script = Scripted(stream_chunks=["Yes, ", "I am."])
    at.button(key="retry").click().run()
    assert not at.exception
    assert stored_messages(data_file)[-1] == ("assistant", "Yes, I am.", "complete")
    assert chat_texts(at)[-1] == ("assistant", "Yes, I am.")
    assert not at.error
    assert "sk-wrong" not in data_file.read_text()


def test_corrupt_data_file_is_reported_and_kept(data_file):
    """An unreadable conversations file is moved aside, the user sees where, and chatting still works."""
    data_file.write_text("{ not json", encoding="utf-8")
    at = new_app()
    assert not at.exception
    aside = list(data_file.parent.glob("conversations.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == "{ not json"
    shown = " ".join(w.value for w in at.warning)
    assert "could not be read" in shown and aside[0].name.replace("-", "\\-").replace(".", "\\.") in shown


@pytest.mark.engine
def test_settings_tests_the_local_engine(data_file, local_provider):
    """The Settings page reaches the local engine and shows its status and the data file."""
    at = new_app()
    at.switch_page("pages/settings_page.py").run()
    at.button(key="test_connection").click().run()
    assert not at.exception
    assert any("Connected to" in s.value for s in at.success)
    assert any(str(data_file) in md.value for md in at.markdown)


@pytest.mark.engine
def test_settings_switches_the_local_model_for_every_tab(data_file, local_provider, monkeypatch, tmp_path):
    """With a second model installed, Settings lists both, switches the running engine without a restart,
    and the choice holds for a new tab (it is saved beside the conversations)."""
    mine = tmp_path / "my-model.gguf"
    mine.symlink_to(bundled_model_path())
    monkeypatch.setenv("BNAGPT_LOCAL_MODEL", str(mine))
    at = new_app()
    at.switch_page("pages/settings_page.py").run()
    assert not at.exception
    choice = at.radio(key="local_model_choice")
    assert choice.value == CUSTOM  # BNAGPT_LOCAL_MODEL is the default until another is chosen
    assert session_engine(at).model_path == mine
    choice.set_value(SMOLLM2)
    at.button[[b.label for b in at.button].index("Use this model")].click().run()
    assert not at.exception
    assert any("now runs SmolLM2" in s.value for s in at.success)
    status = session_engine(at).status()
    assert status.model_path == bundled_model_path() and status.healthy
    assert json.loads((data_file.parent / "preferences.json").read_text())["values"] == {
        "local_model": SMOLLM2
    }
    again = new_app()
    again.switch_page("pages/settings_page.py").run()
    assert again.radio(key="local_model_choice").value == SMOLLM2
    again.switch_page("pages/chat_page.py").run()
    again.chat_input[0].set_value("Hello!").run()
    assert not again.exception
    assert chat_texts(again)[-1][0] == "assistant" and chat_texts(again)[-1][1].strip()


def test_settings_shows_where_the_key_comes_from_never_the_key(monkeypatch):
    """With GROQ_API_KEY set, Groq is the default and Settings says the key is set, without showing it."""
    monkeypatch.setenv("GROQ_API_KEY", "gsk-very-secret-123")
    monkeypatch.delenv("BNAGPT_PROVIDER")
    at = new_app()
    assert at.sidebar.selectbox(key="provider_label").value == "Groq"
    assert not [t for t in at.sidebar.text_input if t.key == "groq_api_key"]  # no need to type it
    at.switch_page("pages/settings_page.py").run()
    assert not at.exception
    page_text = " ".join(md.value for md in at.markdown)
    assert "from the environment or" in page_text
    assert "gsk-very-secret-123" not in repr(at)


def test_unsavable_message_is_shown_back_to_copy(tmp_path, monkeypatch):
    """If the data folder cannot be written, the user is told why and gets their text back."""
    blocker = tmp_path / "blocked"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BNAGPT_DATA_DIR", str(blocker))
    at = new_app()
    assert not at.exception
    at.chat_input[0].set_value("my carefully typed question").run()
    assert not at.exception
    assert any("BNAGPT" in e.value for e in at.error)
    assert [c.value for c in at.code] == ["my carefully typed question"]


@pytest.mark.engine
def test_article_era_file_opens_and_continues(data_file, local_provider):
    """Chats saved by the article's code show up, open, and continue; the original file is kept."""
    original = json.dumps(
        {
            "Receitas": [
                {"role": "user", "content": "Como fazer pão?"},
                {"role": "assistant", "content": "Com farinha."},
            ]
        }
    )
    data_file.write_text(original, encoding="utf-8")
    at = new_app()
    assert sidebar_names(at) == ["Receitas"]
    conversation_id = next(b.key for b in at.sidebar.button if b.key and b.key.startswith("open_"))[5:]
    at.sidebar.button(key=f"open_{conversation_id}").click().run()
    assert chat_texts(at) == [("user", "Como fazer pão?"), ("assistant", "Com farinha.")]
    at.chat_input[0].set_value("E o fermento?").run()
    assert not at.exception
    assert data_file.with_name("conversations.json.article-backup").read_text(encoding="utf-8") == original
    assert [m[1] for m in stored_messages(data_file)][:3] == [
        "Como fazer pão?",
        "Com farinha.",
        "E o fermento?",
    ]
    assert saved_names(data_file) == ["Receitas"]


@pytest.mark.engine
def test_two_tabs_on_one_chat_lose_nothing(data_file, local_provider):
    """Two tabs writing to the same conversation both keep their messages, and each sees the other's."""
    first = new_app()
    first.chat_input[0].set_value("From tab one").run()
    conversation_id = first.query_params["c"]
    conversation_id = conversation_id[0] if isinstance(conversation_id, list) else conversation_id
    second = new_app(c=conversation_id)
    second.chat_input[0].set_value("From tab two").run()
    first.run()
    assert not first.exception and not second.exception
    users = [m[1] for m in stored_messages(data_file) if m[0] == "user"]
    assert users == ["From tab one", "From tab two"]
    assert [text for role, text in chat_texts(first) if role == "user"] == users


def test_long_conversation_opens_at_its_newest_messages_and_pages_back(store):
    """A 100-message chat shows its newest page; earlier messages come a page at a time, on request."""
    messages = [
        Message(Role.USER if i % 2 == 0 else Role.ASSISTANT, f"message number {i}") for i in range(100)
    ]
    long_chat = store.create("Long", messages)
    at = new_app(c=long_chat.id)
    shown = [text for _, text in chat_texts(at)]
    assert shown == [f"message number {i}" for i in range(60, 100)]
    at.button(key="show_earlier").click().run()
    assert chat_texts(at)[0][1] == "message number 20"
    at.button(key="show_earlier").click().run()
    assert [text for _, text in chat_texts(at)] == [f"message number {i}" for i in range(100)]
    assert not [b for b in at.button if b.key == "show_earlier"]


def test_sidebar_lists_a_page_of_chats_and_searches_by_name(store):
    """With many chats the sidebar shows the newest 30, more on request, and a name search finds any."""
    for i in range(45):
        store.create(f"Chat {i:02d}" + (" about rivers" if i == 3 else ""))
    at = new_app()
    assert sidebar_names(at) == [f"Chat {i:02d}" for i in range(44, 14, -1)]
    at.sidebar.button(key="sidebar_more").click().run()
    assert len(sidebar_names(at)) == 45
    at.sidebar.text_input(key="conversation_search").set_value("RIVERS chat").run()
    assert sidebar_names(at) == ["Chat 03 about rivers"]
    at.sidebar.text_input(key="conversation_search").set_value("qzxv").run()
    assert sidebar_names(at) == []
    assert any("No conversation has those words" in c.value for c in at.sidebar.caption)


def test_sidebar_search_also_finds_chats_by_meaning(store):
    """A search with none of a chat's words still finds it when a message means the same (local
    embeddings, loaded in the background on the first search), ranked with the keyword hits."""
    store.create("Kitchen", [Message(Role.USER, "Give me a recipe for carrot cake with chocolate frosting")])
    store.create("Travel", [Message(Role.USER, "Plan a three-day trip to Lisbon and Sintra")])
    store.create("Code", [Message(Role.USER, "Why does my Python while loop never end?")])
    at = new_app()
    at.sidebar.text_input(key="conversation_search").set_value("dessert baking ideas").run()
    # The model loads in the background; the page says so and shows the chats found once it is ready.
    assert wait_until(lambda: "Kitchen" in sidebar_names(at.run()), 180)
    assert sidebar_names(at) == ["Kitchen"]
    at.sidebar.text_input(key="conversation_search").set_value("viagem a Portugal").run()
    assert wait_until(lambda: sidebar_names(at.run())[:1] == ["Travel"], 60)
    at.sidebar.text_input(key="conversation_search").set_value("python").run()
    assert sidebar_names(at)[0] == "Code"  # the keyword hit comes first
