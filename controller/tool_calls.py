"""Tool calls that a model wrote as plain JSON text instead of its chat template's tool-call markers.

llama.cpp turns a call written in the model's own template format (Qwen's `<tool_call>` tags, for one) into
OpenAI `tool_calls`; small models often write the same call as bare JSON, or inside a ```json fence, which
would reach the user as text. A reply that is nothing but calls to the tools offered is one; anything else
(prose, JSON naming no offered tool) is left as text.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Collection

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
_TAGGED = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)
_OPENINGS = ("{", "[", "```", "<tool_call>")


def could_be_call(text: str) -> bool:
    """Whether a reply beginning with `text` may still turn out to be a tool call (so hold it back)."""
    start = text.lstrip()
    return not start or any(start.startswith(o) or o.startswith(start) for o in _OPENINGS)


def tool_names(request_body: object) -> list[str]:
    """The names of the functions offered in an OpenAI chat request."""
    if not isinstance(request_body, dict) or not isinstance(request_body.get("tools"), list):
        return []
    names = []
    for tool in request_body["tools"]:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def parse(text: str, names: Collection[str]) -> list[dict] | None:
    """OpenAI `tool_calls` for a reply that is only calls to the tools `names`; None for anything else."""
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    tagged = _TAGGED.findall(body)
    documents = tagged if tagged and not _TAGGED.sub("", body).strip() else [body]
    calls: list[dict] = []
    for document in documents:
        values = _json_values(document)
        if values is None:
            return None
        for value in values:
            for item in value if isinstance(value, list) else [value]:
                call = _call(item, names)
                if call is None:
                    return None
                calls.append(call)
    return calls or None


def _json_values(text: str) -> list[object] | None:
    """The JSON values `text` holds one after another (models put several calls on separate lines), or
    None if anything else is in it."""
    decoder = json.JSONDecoder()
    values, position = [], 0
    try:
        while position < len(text):
            value, position = decoder.raw_decode(text, position)
            values.append(value)
            while position < len(text) and text[position].isspace():
                position += 1
    except (ValueError, RecursionError):
        return None
    return values


def _call(item: object, names: Collection[str]) -> dict | None:
    """One call in any of the shapes models write: {name, arguments|parameters}, {function: {...}},
    {tool_call: {...}}."""
    if not isinstance(item, dict):
        return None
    for wrapper in ("function", "tool_call"):
        if isinstance(item.get(wrapper), dict) and "name" not in item:
            item = item[wrapper]
    name = item.get("name")
    arguments = item.get("arguments", item.get("parameters", {}))
    if not isinstance(name, str) or name not in names:
        return None
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return {
        "id": f"call_{uuid.uuid4().hex[:12]}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments, ensure_ascii=False)},
    }
