"""A ChatGPT "Export data" conversations.json, shaped like the real thing: each conversation is a tree of
nodes (`mapping`) whose `current_node` marks the branch the user last saw. This one has an edited question
(two branches), a hidden system message, a tool call and its result, null messages and an image part."""

from __future__ import annotations

from typing import Any

T0 = 1_717_000_000.0


def _node(node_id: str, parent: str | None, children: list[str], message: dict[str, Any] | None) -> dict:
    return {"id": node_id, "message": message, "parent": parent, "children": children}


def _message(
    node_id: str, role: str, parts: list[Any], at: float, content_type: str = "text", **extra: Any
) -> dict[str, Any]:
    message = {
        "id": node_id,
        "author": {"role": role, "name": None, "metadata": {}},
        "create_time": at,
        "update_time": None,
        "content": {"content_type": content_type, "parts": parts},
        "status": "finished_successfully",
        "end_turn": True,
        "weight": 1.0,
        "metadata": extra.pop("metadata", {}),
        "recipient": extra.pop("recipient", "all"),
    }
    message.update(extra)
    return message


def branching_conversation() -> dict[str, Any]:
    """A trip question edited once; the current branch is the edited one, with a web search on it."""
    mapping = {
        "root": _node("root", None, ["sys"], None),
        "sys": _node(
            "sys",
            "root",
            ["q1", "q1b"],
            _message("sys", "system", [""], T0, metadata={"is_visually_hidden_from_conversation": True}),
        ),
        # The first version of the question and its answer: not on the current branch.
        "q1": _node("q1", "sys", ["a1"], _message("q1", "user", ["Plan a trip to Lisbon"], T0 + 1)),
        "a1": _node("a1", "q1", [], _message("a1", "assistant", ["Old answer about Lisbon."], T0 + 2)),
        # The edited question, with a tool call on the way to the answer.
        "q1b": _node("q1b", "sys", ["call"], _message("q1b", "user", ["Plan 3 days in Porto"], T0 + 10)),
        "call": _node(
            "call",
            "q1b",
            ["tool"],
            _message("call", "assistant", ['search("Porto weather")'], T0 + 11, "code", recipient="browser"),
        ),
        "tool": _node("tool", "call", ["a1b"], _message("tool", "tool", ["Sunny, 24 °C"], T0 + 12)),
        "a1b": _node(
            "a1b", "tool", ["q2"], _message("a1b", "assistant", ["Day 1: Ribeira. Day 2: Foz."], T0 + 13)
        ),
        "q2": _node(
            "q2",
            "a1b",
            ["a2"],
            _message(
                "q2",
                "user",
                [
                    {"content_type": "image_asset_pointer", "asset_pointer": "file-service://x"},
                    "And this bridge?",
                ],
                T0 + 20,
                "multimodal_text",
            ),
        ),
        "a2": _node("a2", "q2", [], _message("a2", "assistant", ["That is the Dom Luís I bridge."], T0 + 21)),
    }
    return {
        "title": "Porto trip",
        "create_time": T0,
        "update_time": T0 + 21,
        "mapping": mapping,
        "current_node": "a2",
        "conversation_id": "c-1",
        "id": "c-1",
    }


def plain_conversation() -> dict[str, Any]:
    """A short chat without branches, with a null message node and no current_node."""
    mapping = {
        "r": _node("r", None, ["u"], None),
        "u": _node("u", "r", ["gone"], _message("u", "user", ["Olá! Tudo bem?"], T0 + 100)),
        "gone": _node("gone", "u", ["a"], None),
        "a": _node("a", "gone", [], _message("a", "assistant", ["Tudo ótimo, e contigo?"], T0 + 101)),
    }
    return {"title": "Saudação", "create_time": T0 + 100, "update_time": T0 + 101, "mapping": mapping}


def empty_conversation() -> dict[str, Any]:
    """Only a system message: nothing to import."""
    mapping = {
        "r": _node("r", None, ["s"], None),
        "s": _node("s", "r", [], _message("s", "system", ["You are ChatGPT"], T0 + 200)),
    }
    return {
        "title": "Nothing",
        "create_time": T0 + 200,
        "update_time": T0 + 200,
        "mapping": mapping,
        "current_node": "s",
    }


def export() -> list[dict[str, Any]]:
    """The whole conversations.json."""
    return [branching_conversation(), plain_conversation(), empty_conversation()]
