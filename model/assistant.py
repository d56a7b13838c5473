"""Assistants ("GPTs"): instructions, model settings, a JSON mode and starter prompts, under a name.

A conversation keeps a copy of the assistant it was started with (`Assistant` with its `version`), so that
editing or deleting the assistant later never changes how an existing chat answers.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from errors import InvalidAssistant
from model.attachment import Attachment

MAX_NAME = 60
MAX_INSTRUCTIONS = 8000
# A provider's kind ("" uses the one chosen in the sidebar). Which kinds exist is the registry's business
# (controller/providers.py): a chat whose provider is gone says so when it is answered.
_LANGUAGE = re.compile(r"[a-z]{2}")
_PROVIDER_KIND = re.compile(r"[a-z0-9_-]{0,40}")
# The agent's tools by name (controller/tools/ has one file each); an assistant has all of them unless
# switched off, and a chat's copy of it can switch them again.
TOOLS = ("run_python", "web_search", "make_image")


class JsonMode(StrEnum):
    """Whether replies must be JSON, and how strictly."""

    OFF = "off"
    OBJECT = "object"  # any JSON object
    SCHEMA = "schema"  # a JSON object matching `json_schema`

    @property
    def label(self) -> str:
        """How the user knows this mode."""
        return {"off": "Off", "object": "Any JSON object", "schema": "Matching a schema"}[self.value]


@dataclass(frozen=True, slots=True)
class Assistant:
    """An assistant's settings; `version` grows by one with each saved edit."""

    name: str
    description: str = ""
    instructions: str = ""
    provider: str = ""
    model: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    json_mode: JsonMode = JsonMode.OFF
    json_schema: str = ""  # the schema as the user pasted it; parsed by `schema()`
    starters: tuple[str, ...] = ()
    files: tuple[Attachment, ...] = ()  # its knowledge: every chat with it can draw on them
    tools: tuple[str, ...] = TOOLS  # the tools the model may call
    voice: str = ""  # the voice replies are read with ("" picks one for the reply's language)
    language: str = ""  # what users speak and replies are read in: "en", "pt"; "" to detect it
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    version: int = 1
    builtin: bool = False

    def schema(self) -> dict[str, Any] | None:
        """The JSON Schema replies must match, in schema mode."""
        if self.json_mode != JsonMode.SCHEMA:
            return None
        return json.loads(self.json_schema)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        data = asdict(self)
        data["json_mode"] = self.json_mode.value
        data["starters"] = list(self.starters)
        data["files"] = [f.to_dict() for f in self.files]
        data["tools"] = list(self.tools)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Assistant:
        """Read `to_dict`'s form; raise InvalidAssistant if it is not valid."""
        if not isinstance(data, Mapping):
            raise InvalidAssistant("An assistant must be a JSON object.")
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            known["json_mode"] = JsonMode(known.get("json_mode", "off"))
            known["starters"] = tuple(known.get("starters", ()))
            known["files"] = tuple(Attachment.from_dict(f) for f in known.get("files", ()))
            known["tools"] = tuple(known.get("tools", TOOLS))
            return clean_assistant(cls(**known))
        except (TypeError, ValueError) as error:
            raise InvalidAssistant(f"An assistant could not be read: {error}") from None


def clean_assistant(assistant: Assistant) -> Assistant:
    """The assistant with tidy fields, or raise InvalidAssistant saying what to change."""
    name = " ".join(str(assistant.name).split())
    if not name:
        raise InvalidAssistant("Give the assistant a name.")
    if len(name) > MAX_NAME:
        raise InvalidAssistant(f"Use at most {MAX_NAME} characters for the name.")
    if len(assistant.instructions) > MAX_INSTRUCTIONS:
        raise InvalidAssistant(f"Instructions are limited to {MAX_INSTRUCTIONS} characters.")
    if not isinstance(assistant.provider, str) or not _PROVIDER_KIND.fullmatch(assistant.provider):
        raise InvalidAssistant(f"Unknown provider {assistant.provider!r}.")
    temperature = assistant.temperature
    if temperature is not None and not 0 <= float(temperature) <= 2:
        raise InvalidAssistant("Temperature goes from 0 (focused) to 2 (random).")
    max_tokens = assistant.max_tokens
    if max_tokens is not None and not 1 <= int(max_tokens) <= 32768:
        raise InvalidAssistant("The longest reply must be between 1 and 32,768 tokens.")
    schema_text = assistant.json_schema.strip()
    if assistant.json_mode == JsonMode.SCHEMA:
        check_schema(schema_text)
    starters = tuple(s.strip() for s in assistant.starters if s and s.strip())[:6]
    return replace(
        assistant,
        name=name,
        description=assistant.description.strip(),
        instructions=assistant.instructions.strip(),
        model=assistant.model.strip(),
        temperature=None if temperature is None else float(temperature),
        max_tokens=None if max_tokens is None else int(max_tokens),
        json_schema=schema_text,
        starters=starters,
        tools=tuple(t for t in TOOLS if t in set(assistant.tools)),
        voice=str(assistant.voice or "").strip()[:80],
        language=_language(assistant.language),
    )


def _language(code: object) -> str:
    """A two-letter language code, or "" (detect it)."""
    text = str(code or "").strip().lower()
    if text and not _LANGUAGE.fullmatch(text):
        raise InvalidAssistant(f"Unknown language {text!r}: use a two-letter code such as en or pt.")
    return text


def check_schema(text: str) -> dict[str, Any]:
    """Parse and check a JSON Schema; raise InvalidAssistant with what is wrong and where."""
    if not text:
        raise InvalidAssistant("Paste a JSON Schema for the replies to match, or choose another JSON mode.")
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidAssistant(
            f"The schema is not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}."
        ) from None
    if not isinstance(schema, dict):
        raise InvalidAssistant('The schema must be a JSON object, such as {"type": "object", …}.')
    if schema.get("type") not in ("object", None):
        raise InvalidAssistant('Replies are JSON objects: the schema\'s top-level type must be "object".')
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as error:
        where = "/".join(str(p) for p in error.path) or "the top level"
        raise InvalidAssistant(f"The schema is not a valid JSON Schema at {where}: {error.message}") from None
    return schema


GENERAL = Assistant(
    id="general",
    name="General assistant",
    description="Answers anything, in the language you write in.",
    instructions=(
        "You are bnaGPT, a helpful assistant. Answer clearly and concisely, in the language the user "
        "writes in. Use Markdown for lists, tables and code."
    ),
    starters=("Explain a concept simply", "Help me write an e-mail", "Plan a weekend trip"),
    builtin=True,
)

_CONTACT_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 80},
        "email": {"type": ["string", "null"], "maxLength": 120},
        "city": {"type": ["string", "null"], "maxLength": 80},
        "topics": {"type": "array", "items": {"type": "string", "maxLength": 40}, "maxItems": 5},
    },
    "required": ["name", "email", "city", "topics"],
}

JSON_EXTRACTOR = Assistant(
    id="json-extractor",
    name="JSON extractor",
    description="Pulls a contact (name, e-mail, city, topics) out of any text, as JSON.",
    instructions=(
        "Extract the person described in the user's text. Reply only with a JSON object with the keys "
        "name, email, city and topics (a list of short subjects they mention). Use null when unknown."
    ),
    temperature=0.0,
    json_mode=JsonMode.SCHEMA,
    json_schema=json.dumps(_CONTACT_SCHEMA, indent=2),
    starters=("Ana Souza (ana@example.com) from Porto wants to talk about surfing and bread.",),
    builtin=True,
)

BUILTINS = (GENERAL, JSON_EXTRACTOR)
