"""Finding conversations by the words of their names and messages, and the passage to show for a match."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

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


class SearchCache:
    """Each conversation's message texts, read once and kept while its update time and message count hold.

    A store owns one; the app gives every store on one data folder the same one (every tab), so the texts
    are read once per process. Thread-safe.
    """

    def __init__(self) -> None:
        self._texts: dict[str, tuple[tuple[datetime, int], list[str], str]] = {}
        self._lock = threading.Lock()

    def find(
        self,
        summaries: Iterable[ConversationSummary],
        query: str,
        read: Callable[[str], list[str]],
        limit: int = 50,
    ) -> list[SearchHit]:
        """Conversations whose name or messages contain every word of `query`, in the order given (trash
        left out); `read(id)` gives a conversation's message texts when they are not cached."""
        words = query_words(query)
        if not words:
            return []
        hits = []
        for summary in summaries:
            if summary.placement.trashed_at is not None:
                continue
            name = summary.name.casefold()
            if all(w in name for w in words):
                hits.append(SearchHit(summary, ""))
            else:
                texts, folded = self.texts(summary, read)
                if all(w in folded or w in name for w in words):
                    hits.append(SearchHit(summary, snippet(texts, words)))
            if len(hits) >= limit:
                break
        return hits

    def texts(self, summary: ConversationSummary, read: Callable[[str], list[str]]) -> tuple[list[str], str]:
        """Its message texts, and all of them case-folded in one string."""
        key = (summary.updated_at, summary.message_count)
        with self._lock:
            cached = self._texts.get(summary.id)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        texts = read(summary.id)
        folded = "\n".join(texts).casefold()
        with self._lock:
            self._texts[summary.id] = (key, texts, folded)
        return texts, folded

    def forget(self, conversation_id: str) -> None:
        """Drop a deleted conversation's texts."""
        with self._lock:
            self._texts.pop(conversation_id, None)

    def clear(self) -> None:
        """Drop every cached text."""
        with self._lock:
            self._texts.clear()
