"""A conversation's messages as a tree: each message follows its parent, and where a message has several
children (an edited question, a regenerated reply) the conversation follows the chosen one.

Messages are kept in one list in the order they were written, parents before children. `chosen` maps a
parent's id (ROOT for the first messages) to the child the conversation follows; where it names none, the
newest child is followed, so a chat that never forked needs no entry at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from model.message import Message

ROOT = ""  # the key in `chosen` of the first messages' choice


def children(messages: Iterable[Message]) -> dict[str, list[Message]]:
    """Each parent's children (ROOT's: the first messages), oldest first."""
    found: dict[str, list[Message]] = {}
    for message in messages:
        found.setdefault(message.parent or ROOT, []).append(message)
    return found


def path(messages: Sequence[Message], chosen: Mapping[str, str]) -> list[Message]:
    """The messages the conversation shows and sends: from the first, each step the chosen child."""
    if not chosen and all(m.parent == (messages[i - 1].id if i else None) for i, m in enumerate(messages)):
        return list(messages)  # never forked: the list is the path (the common case, and the cheapest)
    below = children(messages)
    shown: list[Message] = []
    key = ROOT
    while key in below:
        options = below[key]
        wanted = chosen.get(key)
        step = next((m for m in options if m.id == wanted), options[-1])
        shown.append(step)
        key = step.id
    return shown


def path_to(messages: Sequence[Message], message_id: str) -> list[Message]:
    """The messages from the first down to `message_id`; [] if there is no such message."""
    by_id = {m.id: m for m in messages}
    line: list[Message] = []
    current = by_id.get(message_id)
    while current is not None:
        line.append(current)
        current = by_id.get(current.parent) if current.parent else None
    return line[::-1]


def choose(messages: Sequence[Message], chosen: Mapping[str, str], message_id: str) -> dict[str, str]:
    """`chosen` with the conversation following `message_id` (and every message above it)."""
    updated = dict(chosen)
    for message in path_to(messages, message_id):
        updated[message.parent or ROOT] = message.id
    return _pruned(messages, updated)


def linked(messages: Sequence[Message], parent: str | None = None) -> list[Message]:
    """Messages written one after the other, each made the child of the one before (the first of
    `parent`)."""
    chained = []
    for message in messages:
        chained.append(replace(message, parent=parent))
        parent = message.id
    return chained


def _pruned(messages: Sequence[Message], chosen: dict[str, str]) -> dict[str, str]:
    """Only the choices that matter: parents with more than one child."""
    below = children(messages)
    return {k: v for k, v in chosen.items() if len(below.get(k, ())) > 1}


def versions(messages: Sequence[Message]) -> dict[str, tuple[int, int, list[Message]]]:
    """For each message with siblings: (its number among them from 1, how many, the siblings)."""
    found = {}
    for options in children(messages).values():
        if len(options) > 1:
            for number, message in enumerate(options, 1):
                found[message.id] = (number, len(options), options)
    return found


def check(messages: Sequence[Message]) -> None:
    """Raise ValueError unless ids are unique and every parent is an earlier message."""
    seen: set[str] = set()
    for number, message in enumerate(messages, 1):
        if message.id in seen:
            raise ValueError(f"message {number} has the id {message.id!r} of an earlier message")
        if message.parent is not None and message.parent not in seen:
            raise ValueError(f"message {number} follows {message.parent!r}, which is not an earlier message")
        seen.add(message.id)
