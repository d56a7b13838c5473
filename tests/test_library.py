"""Finding, organising, moving and recovering chats: search, pin/archive/folders, trash, export/import, backups."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from controller import library
from controller.chat import ChatSession
from errors import ImportRefused
from model import tree
from model.backups import Backups
from model.conversation import Conversation
from model.imports import MAX_FILE_BYTES, read_import
from model.json_store import JsonConversationStore
from model.message import Message, Role
from tests import chatgpt_export
from tests.conftest import (
    Scripted,
    click,
    new_app,
    read_conversation,
    read_document,
    saved_names,
    sidebar_names,
)


def user(text: str) -> Message:
    return Message(Role.USER, text)


def bot(text: str) -> Message:
    return Message(Role.ASSISTANT, text)


# -- search --------------------------------------------------------------------------------------------


def test_search_finds_names_and_message_text_with_a_snippet(store):
    """Words are found in names and messages, any case, all words required; the passage is shown."""
    store.create("Holiday plans", [user("Where should we go?"), bot("Lisbon has great pastéis de nata.")])
    store.create("Work", [user("Fix the LISBON server config"), bot("Done.")])
    store.create("Other", [user("Nothing here")])
    hits = {h.summary.name: h.snippet for h in store.search("lisbon")}
    assert set(hits) == {"Holiday plans", "Work"}
    assert "pastéis de nata" in hits["Holiday plans"]
    assert [h.summary.name for h in store.search("holiday")] == ["Holiday plans"]
    assert [h.summary.name for h in store.search("lisbon server")] == ["Work"]
    assert store.search("   ") == []


def test_search_sees_new_messages_includes_archived_and_leaves_out_the_trash(store):
    """The search cache follows appends; archived chats are found, trashed ones are not."""
    kept = store.create("Kept", [user("alpha")])
    hidden = store.create("Hidden", [user("alpha")])
    gone = store.create("Gone", [user("alpha")])
    store.place(hidden.id, archived=True)
    store.place(gone.id, trashed_at=datetime.now(UTC))
    assert sorted(h.summary.name for h in store.search("alpha")) == ["Hidden", "Kept"]
    store.append(kept.id, bot("now with omega"))
    assert [h.summary.name for h in store.search("omega")] == ["Kept"]


def test_sidebar_search_shows_matches_with_their_passage(store):
    """Typing in the sidebar box lists the chats whose messages match, with the matching passage."""
    store.create("Recipes", [user("How do I bake sourdough bread?"), bot("Feed the starter first.")])
    store.create("Travel", [user("Trains in Portugal")])
    at = new_app()
    at.sidebar.text_input(key="conversation_search").set_value("starter").run()
    assert sidebar_names(at) == ["Recipes"]
    assert any("Feed the starter first" in c.value for c in at.sidebar.caption)


# -- organise ------------------------------------------------------------------------------------------


def test_sidebar_groups_by_date_with_pinned_first(store):
    """Pinned chats come first, then Today, Yesterday, Previous 7 days and Older."""
    now = datetime.now(UTC)
    ages = {"Ancient": 40, "Last week": 4, "Yesterday's": 1}
    store.add_many(
        [
            Conversation(
                name=name,
                messages=[user("x")],
                created_at=now - timedelta(days=d),
                updated_at=now - timedelta(days=d),
            )
            for name, d in ages.items()
        ]
    )
    fresh = store.create("Fresh", [user("x")])
    old = next(s for s in store.list() if s.name == "Ancient")
    store.place(old.id, pinned=True)
    at = new_app()
    assert sidebar_names(at) == [":material/keep: Ancient", "Fresh", "Yesterday's", "Last week"]
    headings = [c.value for c in at.sidebar.caption]
    for heading in ("Pinned", "Today", "Yesterday", "Previous 7 days"):
        assert heading in headings
    assert fresh.id in read_document(store.location)["conversations"]


def test_pin_archive_and_folder_from_the_conversation_menu(store, data_file):
    """The open chat's menu pins it, archives it (hidden, still searchable, restorable) and files it."""
    chat = store.create("Taxes", [user("2025 return")])
    store.create("Other", [user("y")])
    at = new_app(c=chat.id)
    at.button(key="action_pin").click().run()
    assert read_document(data_file)["conversations"][chat.id]["pinned"] is True
    assert sidebar_names(at)[0] == ":material/keep: Taxes"

    at.text_input(key=f"folder_input_{chat.id}").set_value("Home admin")
    at.button[[b.label for b in at.button].index("Move to folder")].click().run()
    assert read_conversation(data_file, chat.id)["folder"] == "Home admin"
    at.sidebar.selectbox(key="folder_filter").set_value("Home admin").run()
    assert sidebar_names(at) == [":material/keep: Taxes"]
    at.sidebar.selectbox(key="folder_filter").set_value("All folders").run()

    at.button(key="action_archive").click().run()
    assert read_document(data_file)["conversations"][chat.id]["archived"] is True
    assert sidebar_names(at) == ["Other"]
    at.sidebar.text_input(key="conversation_search").set_value("2025").run()
    assert sidebar_names(at) == [":material/keep: :material/inventory_2: Taxes"]

    at.switch_page("pages/library_page.py").run()
    at.button(key=f"lib_unarchive_{chat.id}").click().run()
    assert "archived" not in read_document(data_file)["conversations"][chat.id]


def test_daily_upkeep_backs_up_then_empties_trash_older_than_30_days(store, data_file, tmp_path):
    """The daily step deletes a chat trashed over 30 days ago for good, after today's backup kept it;
    listing alone never deletes anything."""
    old = store.create("Old", [user("x")])
    recent = store.create("Recent", [user("y")])
    store.place(old.id, trashed_at=datetime.now(UTC) - timedelta(days=31))
    store.place(recent.id, trashed_at=datetime.now(UTC) - timedelta(days=29))
    assert sorted(s.name for s in JsonConversationStore(data_file).list()) == ["Old", "Recent"]
    backups = Backups(tmp_path / "backups", 7)
    library.daily_upkeep(JsonConversationStore(data_file), backups)
    assert [s.name for s in JsonConversationStore(data_file).list()] == ["Recent"]
    assert not (data_file.parent / "conversations" / f"{old.id}.json").exists()
    (backup,) = backups.list()
    assert sorted(c.name for c in backups.read(backup)[0]) == ["Old", "Recent"]


# -- titles --------------------------------------------------------------------------------------------


def test_capable_provider_titles_a_new_chat(store, scripted_server, scripted_config):
    """After the first exchange the model proposes a short title, cleaned of quotes and punctuation."""
    scripted_server.script = Scripted(
        stream_chunks=["Porto is lovely ", "in spring."],
        body={
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": '"Title: Spring in Porto."'}}
            ]
        },
    )
    chat = ChatSession(store)
    reply = chat.send("When should I visit Porto, and what should I see there first of all?", scripted_config)
    assert "".join(reply) == "Porto is lovely in spring."
    assert store.get(chat.conversation_id).name == "Spring in Porto"
    assert scripted_server.requests[-1]["max_tokens"] == 24


def test_the_users_name_always_wins_over_a_title(store):
    """Once the user renamed a chat, automatic titles leave it alone."""
    created = store.create("first words")
    store.rename(created.id, "My name")
    assert store.auto_rename(created.id, "Model title") is None
    assert store.get(created.id).name == "My name"
    other = store.create("Model title")
    auto = store.create("first words too")
    assert store.auto_rename(auto.id, "Model title") == "Model title (2)"
    assert other.name == "Model title"


def test_local_model_keeps_the_first_words(store, engine, local_config):
    """The bundled model is not asked for a title: the chat keeps the first words of its first message."""
    chat = ChatSession(store, engine)
    reply = chat.send("Tell me one fact about the moon please", local_config)
    "".join(reply)
    assert store.get(chat.conversation_id).name == "Tell me one fact about the moon please"


# -- export and import ---------------------------------------------------------------------------------


def test_json_export_imports_back_loss_free(store, tmp_path):
    """Everything exported as JSON comes back: names, times, statuses, placement; under new ids."""
    created = store.create("Round trip 🌍", [user("<b>hi</b>"), bot("partial")])
    store.place(created.id, pinned=True, folder="Trips")
    original = store.get(created.id)
    data, name, mime = library.export_file([original], "json")
    assert (name, mime) == ("Round-trip.json", "application/json")
    other = JsonConversationStore(tmp_path / "elsewhere" / "conversations.json")
    report = library.import_file(other, data, name)
    assert report.imported == ["Round trip 🌍"] and report.skipped == []
    (copy,) = other.everything()
    assert copy.id != original.id
    assert (copy.name, copy.created_at, copy.updated_at, copy.placement) == (
        original.name,
        original.created_at,
        original.updated_at,
        original.placement,
    )
    assert [(m.role, m.content, m.created_at, m.status) for m in copy.messages] == [
        (m.role, m.content, m.created_at, m.status) for m in original.messages
    ]


def test_markdown_export_reads_as_a_transcript(store):
    """Markdown has the name as a heading and each message under who wrote it."""
    created = store.create("Notes", [user("What is 2+2?"), bot("**4**")])
    data, name, _ = library.export_file([store.get(created.id)], "markdown")
    text = data.decode()
    assert name == "Notes.md"
    assert text.startswith("# Notes\n")
    assert "**You** · " in text and "What is 2+2?" in text and "**Assistant** · " in text and "**4**" in text


def test_chatgpt_export_keeps_its_branches_and_shows_the_current_one(store):
    """Every version ChatGPT kept is imported (the edited question's first version with its answer, as
    a branch); the branch the user last saw is the one shown; system, tool, hidden and null messages are
    left out."""
    raw = json.dumps(chatgpt_export.export()).encode()
    report = library.import_file(store, raw, "conversations.json")
    assert report.source == "ChatGPT export"
    assert report.imported == ["Porto trip", "Saudação"]
    assert any("Nothing" in line and "no user or assistant text" in line for line in report.skipped)
    assert any("Porto trip" in line and "left out" in line for line in report.skipped)
    by_name = {c.name: c for c in store.everything()}
    porto = by_name["Porto trip"]
    assert [(m.role.value, m.content) for m in porto.path()] == [
        ("user", "Plan 3 days in Porto"),
        ("assistant", "Day 1: Ribeira. Day 2: Foz."),
        ("user", "*[attachment not imported]*\n\nAnd this bridge?"),
        ("assistant", "That is the Dom Luís I bridge."),
    ]
    assert porto.created_at == datetime.fromtimestamp(chatgpt_export.T0, UTC)
    first, old_answer = porto.messages[0], porto.messages[1]  # the question before it was edited
    assert (first.content, old_answer.content) == ("Plan a trip to Lisbon", "Old answer about Lisbon.")
    assert first.parent is None and old_answer.parent == first.id
    assert tree.versions(porto.messages)[porto.path()[0].id][:2] == (2, 2)
    store.choose(porto.id, first.id)  # back to the first version: its answer follows it
    assert [m.content for m in store.get(porto.id).path()] == [first.content, old_answer.content]
    assert [m.content for m in by_name["Saudação"].messages] == ["Olá! Tudo bem?", "Tudo ótimo, e contigo?"]


def test_chatgpt_zip_and_the_articles_file_import_without_overwriting(store):
    """The export zip is read for its conversations.json; names already taken get a suffix."""
    store.create("Porto trip", [user("mine, keep it")])
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("conversations.json", json.dumps(chatgpt_export.export()))
        z.writestr("chat.html", "<html></html>")
        z.writestr("file-abc.png", b"\x89PNG")
    report = library.import_file(store, archive.getvalue(), "export.zip")
    assert report.imported == ["Porto trip (2)", "Saudação"]
    article = json.dumps({"Receitas": [{"role": "user", "content": "Oi"}], "Porto trip": []}).encode()
    assert library.import_file(store, article, "old.json").imported == ["Receitas", "Porto trip (3)"]
    mine = next(c for c in store.everything() if c.name == "Porto trip")
    assert [m.content for m in mine.messages] == ["mine, keep it"]


def _zip(members: dict[str, bytes]) -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return archive.getvalue()


HOSTILE = [
    ("a list of numbers", b"[1, 2, 3]", "not ChatGPT's"),
    ("a JSON string", b'"hello"', "not a conversations file"),
    ("an empty object", b"{}", "not a conversations file"),
    ("another app's object", b'{"users": {"a": 1}}', "not a conversations file"),
    ("broken JSON", b'{"Receitas": [', "not valid JSON"),
    ("bad UTF-8", b'{"na\xffme": []}', "not UTF-8"),
    ("deeply nested", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("too big", b" " * (MAX_FILE_BYTES + 1), "MB"),
    ("our index file", b'{"format": "bnagpt-conversations", "version": 2, "conversations": {}}', "index"),
    ("a broken zip", b"PK\x03\x04 not really a zip", "not a readable zip"),
    ("a zip without conversations.json", _zip({"chat.html": b"<html>"}), "no conversations.json"),
    ("a zip of 6,000 files", _zip({f"f{i}.txt": b"" for i in range(6000)}), "6000 files"),
    ("a zip bomb", _zip({"conversations.json": b" " * (201 * 2**20)}), "unpacks to"),
]


@pytest.mark.parametrize(("what", "raw", "says"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_files_are_refused_and_change_nothing(store, data_file, what, raw, says):
    """Whatever the file, a clear message and an unchanged store."""
    store.create("Existing", [user("safe")])
    before = (data_file.read_bytes(), sorted(p.name for p in (data_file.parent / "conversations").iterdir()))
    with pytest.raises(ImportRefused, match=says):
        library.import_file(store, raw, "upload.json")
    after = (data_file.read_bytes(), sorted(p.name for p in (data_file.parent / "conversations").iterdir()))
    assert after == before


def test_malformed_entries_are_skipped_and_reported(store):
    """Inside a readable file, what cannot be used is listed with the reason; the rest is imported."""
    document = {
        "format": "bnagpt-export",
        "version": 1,
        "conversations": [
            {"name": "Good", "messages": [{"role": "user", "content": "ok"}]},
            {"name": "Bad role", "messages": [{"role": "wizard", "content": "x"}]},
            "not an object",
            {"name": "Line\nbreak\tname", "messages": []},
        ],
    }
    report = library.import_file(store, json.dumps(document).encode(), "mine.json")
    assert report.imported == ["Good", "Line break name"]
    assert len(report.skipped) == 2 and "wizard" in report.skipped[0]


# -- backups -------------------------------------------------------------------------------------------


def test_one_backup_a_day_and_the_newest_kept(store, tmp_path):
    """A backup is taken once a day; rotation keeps the newest N."""
    store.create("Chat", [user("x")])
    backups = Backups(tmp_path / "backups", keep=2)
    assert library.backup_if_due(store, backups) is not None
    assert library.backup_if_due(store, backups) is None  # already one today
    for _ in range(3):
        backups.take(store.everything(), label="manual")
    assert len([b for b in backups.list() if b.label == "manual"]) == 2
    (daily,) = [b for b in backups.list() if not b.label]
    assert [c.name for c in backups.read(daily)[0]] == ["Chat"]


def test_restore_brings_back_missing_chats_or_everything_with_a_safety_copy(store, tmp_path):
    """Merge adds back what is gone and changes nothing else; an exact restore replaces, after a backup."""
    kept = store.create("Kept", [user("v1")])
    lost = store.create("Lost", [user("precious")])
    backups = Backups(tmp_path / "backups", keep=5)
    snapshot = backups.take(store.everything())
    store.delete(lost.id)
    store.append(kept.id, user("v2"))
    said = library.restore(store, backups, snapshot, replace=False)
    assert "Brought back 1" in said
    assert [m.content for m in store.get(lost.id).messages] == ["precious"]
    assert [m.content for m in store.get(kept.id).messages] == ["v1", "v2"]
    library.restore(store, backups, snapshot, replace=True)
    assert [m.content for m in store.get(kept.id).messages] == ["v1"]
    safety = next(b for b in backups.list() if b.label == "before-restore")
    assert any(len(c.messages) == 2 for c in backups.read(safety)[0])


def test_library_page_backs_up_and_brings_a_deleted_chat_back(store, data_file):
    """From the app: back up now, lose a chat, bring it back from the backup."""
    chat = store.create("Important", [user("do not lose me")])
    at = new_app()
    at.switch_page("pages/library_page.py").run()
    at.button(key="backup_now").click().run()
    assert not at.exception
    assert list((data_file.parent / "backups").glob("conversations-*.json"))
    store.delete(chat.id)
    at.run()
    at.button(key="merge_0").click().run()
    assert not at.exception
    assert [m["content"] for m in read_conversation(data_file, chat.id)["messages"]] == ["do not lose me"]


def test_a_corrupt_file_points_to_the_newest_backup(store, data_file):
    """A conversation file that cannot be read is set aside, and the Library offers the backup."""
    chat = store.create("Fragile", [user("in the backup")])
    Backups(data_file.parent / "backups", keep=3).take(store.everything())
    (data_file.parent / "conversations" / f"{chat.id}.json").write_text("{ broken")
    at = new_app(c=chat.id)
    at.switch_page("pages/library_page.py").run()
    assert any("could not be read" in w.value for w in at.warning)
    at.button(key="merge_0").click().run()
    assert [m["content"] for m in read_conversation(data_file, chat.id)["messages"]] == ["in the backup"]


def test_importing_twice_never_overwrites(store):
    """The same import twice gives two copies, never a replaced chat."""
    raw = json.dumps(chatgpt_export.export()).encode()
    library.import_file(store, raw, "c.json")
    library.import_file(store, raw, "c.json")
    assert sorted(s.name for s in store.list()) == [
        "Porto trip",
        "Porto trip (2)",
        "Saudação",
        "Saudação (2)",
    ]


def test_read_import_knows_our_own_data_file_version_1(tmp_path):
    """bnaGPT's single-file format (version 1) imports like an export."""
    document = {
        "format": "bnagpt-conversations",
        "version": 1,
        "conversations": {
            "a" * 32: {
                "name": "Old",
                "created_at": "2026-01-01T00:00:00+00:00",
                "updated_at": "2026-01-01T00:00:00+00:00",
                "messages": [{"role": "user", "content": "hi"}],
            }
        },
    }
    plan = read_import(json.dumps(document).encode(), "conversations.json")
    assert [c.name for c in plan.conversations] == ["Old"]


def _app_on_a_titling_server(server) -> AppTest:
    """The app on an OpenAI-compatible server that replies, then proposes "Baking sourdough bread"."""
    server.script = Scripted(
        stream_chunks=["Bake it ", "at 220 °C."],
        body={
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Baking sourdough bread"}}]
        },
    )
    at = new_app()
    at.sidebar.selectbox(key="provider_label").set_value("OpenAI-compatible server").run()
    at.sidebar.text_input(key="openai_base_url").set_value(server.url)
    at.sidebar.text_input(key="openai_model").set_value("m").run()
    return at


def test_a_new_chat_gets_the_models_title_in_the_sidebar(scripted_server, data_file):
    """Through the app: with an OpenAI-compatible server, the first exchange names the chat."""
    at = _app_on_a_titling_server(scripted_server)
    at.chat_input[0].set_value("how hot should the oven be for my sourdough loaf tonight?").run()
    assert not at.exception
    assert sidebar_names(at) == ["Baking sourdough bread"]
    assert saved_names(data_file) == ["Baking sourdough bread"]


def test_a_name_given_with_save_as_on_a_new_chat_survives_the_title(scripted_server, data_file):
    """Save as… on a new chat, then the first exchange: the user's name stays, no automatic title."""
    at = _app_on_a_titling_server(scripted_server)
    at.text_input(key="save_as_name").set_value("Oven notes")
    click(at, "Save")
    at.chat_input[0].set_value("how hot should the oven be for my sourdough loaf tonight?").run()
    assert not at.exception
    assert sidebar_names(at) == ["Oven notes"]
    assert saved_names(data_file) == ["Oven notes"]


def test_save_as_keeps_the_chats_assistant(store, data_file):
    """A copy made with Save as… answers with the same assistant (instructions, JSON mode, schema)."""
    from model.assistant import JSON_EXTRACTOR

    original = store.create("Extract", [user("Ana, 31")], assistant=JSON_EXTRACTOR)
    chat = ChatSession(store)
    chat.open(original.id)
    copy = chat.save_as("Extract copy")
    stored = read_conversation(data_file, copy.id)
    assert stored["assistant"] == JSON_EXTRACTOR.to_dict()
    assert stored["named_by_user"] is True
    assert store.get(copy.id).assistant == JSON_EXTRACTOR


def test_the_articles_file_imports_named_once_and_dated_today():
    """The report names the article's file without a doubled article; its chats are dated now, not 1970."""
    before = datetime.now(UTC)
    plan = read_import(json.dumps({"Receitas": [{"role": "user", "content": "Oi"}]}).encode(), "c.json")
    assert f"from the {plan.source}" == "from the article's conversations file"
    (chat,) = plan.conversations
    assert chat.updated_at >= before and chat.messages[0].created_at >= before
