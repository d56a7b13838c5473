"""JSON mode: how each provider is told to answer in JSON, and checking that a reply really is.

Groq and OpenAI-compatible servers get `response_format` (`json_schema` when there is a schema,
`json_object` otherwise); the local llama.cpp engine gets `json_object` with the schema, which it turns into
a grammar, so even the 135M-parameter model can only produce JSON of that shape. Every reply is parsed and
validated anyway (`jsonschema`), since a server may ignore `response_format` or stop mid-object.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema.validators import validator_for

from controller.providers import LOCAL
from model.assistant import JsonMode

_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*)\n\s*```\s*$", re.DOTALL)


def response_format(mode: JsonMode, schema: dict[str, Any] | None, kind: str, strict: bool = True) -> str:
    """The `response_format` to send, as JSON text ("" for none); `strict=False` drops to json_object."""
    if mode == JsonMode.OFF:
        return ""
    if kind == LOCAL:
        return json.dumps({"type": "json_object", **({"schema": schema} if schema else {})})
    if schema and strict:
        return json.dumps({"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}})
    return json.dumps({"type": "json_object"})


def instructions(mode: JsonMode, schema: dict[str, Any] | None) -> str:
    """What to add to the system prompt (OpenAI's json_object mode wants the word JSON there)."""
    if mode == JsonMode.OFF:
        return ""
    if schema:
        return "Reply only with one JSON object matching this JSON Schema:\n" + json.dumps(schema)
    return "Reply only with one JSON object."


def check(text: str, mode: JsonMode, schema: dict[str, Any] | None) -> tuple[Any, str | None]:
    """(the parsed reply, None) if it is what the mode asks for, else (None, what is wrong)."""
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text
    try:
        value = json.loads(body)
    except json.JSONDecodeError as error:
        return None, f"the reply is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
    except RecursionError:
        return None, "the reply is nested too deeply"
    if not isinstance(value, dict):
        return None, f"the reply is JSON but not an object ({type(value).__name__})"
    if mode == JsonMode.SCHEMA and schema:
        error = next(iter(validator_for(schema)(schema).iter_errors(value)), None)
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "the top level"
            return None, f"the reply does not match the schema at {where}: {error.message}"
    return value, None
