"""Assistants and JSON mode: schemas checked when saved, JSON enforced on the real local engine and on
OpenAI-compatible servers, a retry for an invalid reply, and the page journeys."""

from __future__ import annotations

import json
from dataclasses import replace

import jsonschema
import pytest

from controller import json_mode
from controller.chat import ChatSession
from errors import BnaGPTError, InvalidAssistant, InvalidJsonReply
from model.assistant import GENERAL, JSON_EXTRACTOR, Assistant, JsonMode, check_schema
from model.assistant_store import AssistantStore
from model.message import Message, MessageStatus, Role
from tests.conftest import Scripted, new_app, read_conversation, read_document


def schema_assistant(schema: dict, instructions: str = "Reply only with JSON.") -> Assistant:
    return Assistant(
        name="Extractor",
        instructions=instructions,
        temperature=0.0,
        json_mode=JsonMode.SCHEMA,
        json_schema=json.dumps(schema),
    )


# -- schemas and the store -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "Paste a JSON Schema"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"type": "array"}', "top-level type must be"),
        ('{"type": "object", "properties": {"a": {"type": "strnig"}}}', "not a valid JSON Schema at"),
        ('{"type": "object", "required": "name"}', "not a valid JSON Schema"),
    ],
)
def test_invalid_schemas_are_refused_with_a_reason(text, says):
    """A schema is checked when it is saved, and the message says what is wrong."""
    with pytest.raises(InvalidAssistant, match=says):
        check_schema(text)


def test_assistants_are_saved_versioned_and_builtins_stay(tmp_path):
    """Saving bumps the version; built-ins cannot be changed or deleted; a broken file is set aside."""
    store = AssistantStore(tmp_path / "assistants.json")
    assert [a.name for a in store.list()] == ["General assistant", "JSON extractor"]
    mine = store.save(Assistant(name="  Poet  ", instructions="Answer in verse.", starters=("A haiku", " ")))
    assert (mine.name, mine.version, mine.starters) == ("Poet", 1, ("A haiku",))
    again = store.save(replace(mine, instructions="Answer in rhyme."))
    assert again.version == 2
    assert AssistantStore(tmp_path / "assistants.json").get(mine.id).instructions == "Answer in rhyme."
    with pytest.raises(InvalidAssistant, match="cannot be deleted"):
        store.delete(GENERAL.id)
    with pytest.raises(InvalidAssistant, match="cannot be changed"):
        store.save(replace(JSON_EXTRACTOR, name="Mine now"))
    (tmp_path / "assistants.json").write_text("{ broken")
    fresh = AssistantStore(tmp_path / "assistants.json")
    assert [a.id for a in fresh.list()] == [GENERAL.id, JSON_EXTRACTOR.id]
    assert "moved, untouched" in fresh.notices[0]
    (aside,) = tmp_path.glob("assistants.json.corrupt-*")
    assert aside.read_text() == "{ broken"


def test_check_reads_fenced_json_and_names_what_is_wrong():
    """Replies wrapped in a code fence are read; a mismatch says where."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    assert json_mode.check('```json\n{"n": 3}\n```', JsonMode.SCHEMA, schema) == ({"n": 3}, None)
    assert "at n" in json_mode.check('{"n": "three"}', JsonMode.SCHEMA, schema)[1]
    assert "'n' is a required property" in json_mode.check("{}", JsonMode.SCHEMA, schema)[1]
    assert "not an object" in json_mode.check("[1]", JsonMode.OBJECT, None)[1]
    assert "not valid JSON" in json_mode.check("Sure! Here it is", JsonMode.OBJECT, None)[1]


# -- JSON on the real local engine ---------------------------------------------------------------------

SCHEMAS = {
    "nested objects": {
        "type": "object",
        "properties": {
            "person": {
                "type": "object",
                "properties": {
                    "name": {"type": "string", "maxLength": 40},
                    "address": {
                        "type": "object",
                        "properties": {"city": {"type": "string", "maxLength": 30}},
                        "required": ["city"],
                    },
                },
                "required": ["name", "address"],
            }
        },
        "required": ["person"],
    },
    "arrays": {
        "type": "object",
        "properties": {
            "ingredients": {
                "type": "array",
                "items": {"type": "string", "maxLength": 20},
                "minItems": 1,
                "maxItems": 4,
            }
        },
        "required": ["ingredients"],
    },
    "enums": {
        "type": "object",
        "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]}},
        "required": ["sentiment"],
    },
    "required fields": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 40},
            "done": {"type": "boolean"},
            "notes": {"type": "string", "maxLength": 40},
        },
        "required": ["title", "done"],
    },
    "numbers": {
        "type": "object",
        "properties": {
            "age": {"type": "integer", "minimum": 0, "maximum": 130},
            "height_m": {"type": "number"},
        },
        "required": ["age", "height_m"],
    },
}


@pytest.mark.engine
@pytest.mark.parametrize("name", list(SCHEMAS))
def test_local_engine_replies_with_json_matching_the_schema(store, engine, local_config, name):
    """The bundled 135M model, held to the schema by llama.cpp's grammar, gives valid JSON; it is stored."""
    schema = SCHEMAS[name]
    chat = ChatSession(store, engine)
    reply = chat.send(
        "Ana is 34, 1.68 m tall, lives in Porto, loves bread, and her task 'buy flour' is done. Happy day!",
        local_config.with_changes(max_tokens=200),
        schema_assistant(schema),
    )
    text = "".join(reply)
    assert reply.status == MessageStatus.COMPLETE, reply.error
    jsonschema.validate(json.loads(text), schema)
    stored = store.get(chat.conversation_id)
    assert stored.messages[-1].content == text and stored.messages[-1].status == MessageStatus.COMPLETE
    assert stored.assistant.schema() == schema


# -- JSON on OpenAI-compatible servers -----------------------------------------------------------------


def _completion(text: str) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}


def test_remote_server_gets_the_schema_and_an_invalid_reply_one_retry(
    store, scripted_server, scripted_config
):
    """json_schema goes out as response_format; an invalid reply is asked again once, then kept with a
    clear message and a Retry."""
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    scripted_server.script = Scripted(stream_chunks=['{"n": ', '"three"}'], body=_completion("Title"))
    chat = ChatSession(store)
    reply = chat.send("Count to three", scripted_config, schema_assistant(schema))
    assert "".join(reply) == '{"n": "three"}'
    assert isinstance(reply.error, InvalidJsonReply) and "even after a second try" in str(reply.error)
    streamed = [r for r in scripted_server.requests if r.get("stream")]
    assert len(streamed) == 2
    assert streamed[0]["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema},
    }
    assert "JSON Schema" in streamed[0]["messages"][0]["content"]
    last = store.get(chat.conversation_id).messages[-1]
    assert (last.content, last.status) == ('{"n": "three"}', MessageStatus.INVALID)
    assert chat.needs_reply(store.get(chat.conversation_id))

    scripted_server.script = Scripted(stream_chunks=['{"n": 3}'], body=_completion("Title"))
    assert json.loads("".join(chat.retry(scripted_config))) == {"n": 3}
    assert store.get(chat.conversation_id).messages[-1].status == MessageStatus.COMPLETE


def test_server_without_json_schema_falls_back_to_json_object(store, scripted_server, scripted_config):
    """A server that refuses json_schema (400) is asked for any JSON object, and the reply validated."""
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    scripted_server.script = Scripted(
        400, {"error": {"message": "response_format json_schema not supported"}}
    )
    chat = ChatSession(store)
    reply = chat.send("Are you ok?", scripted_config, schema_assistant(schema))
    with pytest.raises(BnaGPTError):  # this scripted server refuses json_object too
        "".join(reply)
    formats = [r.get("response_format") for r in scripted_server.requests if r.get("stream")]
    assert formats == [
        {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}},
        {"type": "json_object"},
    ]


# -- pages ---------------------------------------------------------------------------------------------


def test_make_an_assistant_and_chat_with_it_then_edit_and_delete_it(data_file, scripted_server):
    """The Assistants page saves an assistant; a chat records its version; editing or deleting the
    assistant leaves the chat as it was."""
    at = new_app()
    at.switch_page("pages/assistants_page.py").run()
    at.button(key="assistant_new").click().run()
    form = {k: v for k, v in ((t.key, t) for t in at.text_input)}
    name_key = next(k for k in form if k.startswith("assistant_name_"))
    suffix = name_key.removeprefix("assistant_name_")
    form[name_key].set_value("Pirate")
    at.text_area(key=f"assistant_instructions_{suffix}").set_value("Talk like a pirate.")
    at.text_area(key=f"assistant_starters_{suffix}").set_value("Say ahoy")
    at.button[[b.label for b in at.button].index("Save")].click().run()
    assert not at.exception
    saved = json.loads((data_file.parent / "assistants.json").read_text())["assistants"]
    assert [(a["name"], a["instructions"], a["version"]) for a in saved] == [
        ("Pirate", "Talk like a pirate.", 1)
    ]
    pirate_id = saved[0]["id"]

    scripted_server.script = Scripted(stream_chunks=["Ahoy!"], body=_completion("Pirate greeting"))
    at.switch_page("pages/chat_page.py").run()
    at.sidebar.selectbox(key="provider_label").set_value("OpenAI-compatible server").run()
    at.sidebar.text_input(key="openai_base_url").set_value(scripted_server.url)
    at.sidebar.text_input(key="openai_model").set_value("m").run()
    at.selectbox(key="assistant_choice").set_value(pirate_id).run()
    at.button(key="starter_0").click().run()
    assert not at.exception
    (conversation_id,) = read_document(data_file)["conversations"]
    recorded = read_conversation(data_file, conversation_id)["assistant"]
    assert (recorded["id"], recorded["version"], recorded["instructions"]) == (
        pirate_id,
        1,
        "Talk like a pirate.",
    )
    replies = [r for r in scripted_server.requests if r.get("stream")]
    assert [m["content"] for m in replies[0]["messages"]] == ["Talk like a pirate.", "Say ahoy"]

    at.switch_page("pages/assistants_page.py").run()
    at.button(key=f"delete_assistant_{pirate_id}").click().run()
    assert json.loads((data_file.parent / "assistants.json").read_text())["assistants"] == []
    at.switch_page("pages/chat_page.py").run()
    at.chat_input[0].set_value("And again?").run()
    assert not at.exception
    replies = [r for r in scripted_server.requests if r.get("stream")]
    assert replies[-1]["messages"][0]["content"] == "Talk like a pirate."
    assert replies[-1]["messages"][-1]["content"] == "And again?"


def test_builtin_assistants_cannot_be_deleted_but_can_be_duplicated(data_file):
    """Built-ins have no Edit or Delete; Duplicate makes an editable copy."""
    at = new_app()
    at.switch_page("pages/assistants_page.py").run()
    keys = {b.key for b in at.button}
    assert f"delete_assistant_{GENERAL.id}" not in keys and f"edit_{JSON_EXTRACTOR.id}" not in keys
    at.button(key=f"duplicate_{JSON_EXTRACTOR.id}").click().run()
    saved = json.loads((data_file.parent / "assistants.json").read_text())["assistants"]
    assert [a["name"] for a in saved] == ["JSON extractor (copy)"]
    assert saved[0]["json_mode"] == "schema" and json.loads(saved[0]["json_schema"])["required"]


def test_invalid_schema_on_the_page_is_explained_and_nothing_saved(data_file):
    """A broken schema gets a message naming the problem; the file is not written."""
    at = new_app()
    at.switch_page("pages/assistants_page.py").run()
    at.button(key="assistant_new").click().run()
    name_key = next(t.key for t in at.text_input if t.key.startswith("assistant_name_"))
    suffix = name_key.removeprefix("assistant_name_")
    at.text_input(key=name_key).set_value("Broken")
    at.radio(key=f"assistant_json_mode_{suffix}").set_value(JsonMode.SCHEMA)
    at.text_area(key=f"assistant_schema_{suffix}").set_value(
        '{"type": "object", "properties": {"a": {"type": 5}}}'
    )
    at.button[[b.label for b in at.button].index("Save")].click().run()
    assert any("not a valid JSON Schema" in e.value for e in at.error)
    assert not (data_file.parent / "assistants.json").exists()


def test_json_chat_shows_replies_as_json_and_per_chat_mode_changes(store, data_file, scripted_server):
    """A JSON reply is shown as formatted JSON (a code block with a copy button); the chat's own JSON mode
    can be changed from its menu without touching the assistant."""
    chat = store.create("Data", assistant=replace(GENERAL, json_mode=JsonMode.OBJECT))
    store.append(chat.id, Message(Role.USER, "give"), Message(Role.ASSISTANT, '{"a": [1, 2]}'))
    at = new_app(c=chat.id)
    codes = [c for c in at.code if c.language == "json"]
    assert codes and json.loads(codes[0].value) == {"a": [1, 2]}
    at.radio(key=f"json_mode_{chat.id}").set_value(JsonMode.OFF)
    at.button[[b.label for b in at.button].index("Save JSON mode")].click().run()
    assert not at.exception
    assert read_conversation(data_file, chat.id)["assistant"]["json_mode"] == "off"
