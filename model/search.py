"""Finding conversations by the words of their names and messages, and the passage to show for a match."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from model.conversation import ConversationSummary

SNIPPET_CHARS = 90


@dataclass(frozen=True, slots=True)
class SearchHit:
    """A conversation found, with the passage of a message that matched ("" if its name did)."""

    summary: ConversationSummary
    snippet: str


def query_words(query: str) -> list[str]:
    """The words to look for, case-folded so that "Lisboa" finds "LISBOA" and "straße" finds "STRASSE"."""
    return query.casefold().split()


def snippet(texts: Sequence[str], words: Sequence[str]) -> str:
    """About SNIPPET_CHARS characters of the first message containing one of `words`, around it."""
    patterns = [re.compile(re.escape(w), re.IGNORECASE) for w in words]
    for text in texts:
        for pattern in patterns:
            found = pattern.search(text)
            if found is None:
                continue
            start = max(0, found.start() - SNIPPET_CHARS // 3)
            end = min(len(text), start + SNIPPET_CHARS)
            passage = " ".join(text[start:end].split())
            return ("…" if start else "") + passage + ("…" if end < len(text) else "")
    return ""
