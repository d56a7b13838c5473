"""The PostgreSQL backend (BNAGPT_DATABASE_URL): the same conversations as the JSON files, for several app
processes, or servers, on one database.

Each conversation is one row: its file's bytes as the JSON backend writes them (one format, one codec), its
summary for the sidebar, and a `tsvector` of its name and messages for full-text search. Every write runs
in one transaction that first bumps the owner's row in `owners`: that row lock makes one user's writes
take turns across every process, as the file lock does for the files, and its `generation` tells readers
whether anything changed, so a rerun that changed nothing costs one small query.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

from psycopg import Connection, errors
from psycopg_pool import ConnectionPool

from errors import StoreError
from model.codec import (
    ID,
    Unreadable,
    decode_conversation,
    encode_conversation,
    summary_from_dict,
    summary_to_dict,
)
from model.conversation import Conversation, ConversationSummary
from model.database import Database
from model.search import SearchHit, snippet
from model.tree_store import Summaries, TreeStore, copy_conversation, not_found, one_at_a_time

# A tsvector holds at most 1 MB; positions are dropped (`strip`) and the text capped well below it.
SEARCHABLE_CHARS = 400_000
_WORD = re.compile(r"\w+")


class PostgresConversationStore(TreeStore):
    """One owner's conversations in PostgreSQL ("" for the single user of an install without accounts)."""

    def __init__(self, database: Database, owner: str = "") -> None:
        super().__init__()
        self.database = database
        self.owner = owner
        self._conn: Connection | None = None  # the write transaction's, inside `_writing()`
        self._loaded: tuple[str, str, int] | None = None  # (id, name, messages) read for this write
        self._generation: int | None = None
        self._listed: list[ConversationSummary] = []
        self._cached: dict[str, tuple[int, Conversation]] = {}

    @property
    def pool(self) -> ConnectionPool:
        """The process's connections to the database."""
        return self.database.pool

    @property
    def location(self) -> Path:
        """The database, as a path-like name to show (no password)."""
        return Path(self.database.label)

    def describe(self) -> str:
        """Where the data lives, in words."""
        return f"the PostgreSQL database `{self.database.label}`"

    def set_aside_files(self) -> list[Path]:
        """None: the database never holds a half-written conversation."""
        return []

    # -- reading ---------------------------------------------------------------------------------

    @one_at_a_time
    def list(self) -> list[ConversationSummary]:
        """All conversations, most recently updated first."""
        with self.pool.connection() as conn:
            row = conn.execute("SELECT generation FROM owners WHERE owner = %s", (self.owner,)).fetchone()
            generation = row[0] if row else 0
            if generation != self._generation:
                rows = conn.execute(
                    "SELECT id, summary FROM conversations WHERE owner = %s ORDER BY updated_at DESC, id",
                    (self.owner,),
                ).fetchall()
                self._listed = [summary_from_dict(cid, json.loads(summary)) for cid, summary in rows]
                self._generation = generation
        return list(self._listed)

    @one_at_a_time
    def get(self, conversation_id: str) -> Conversation:
        """One conversation with its messages (read again only if it changed)."""
        if not ID.fullmatch(conversation_id):
            raise not_found()
        cached = self._cached.get(conversation_id)
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT revision, CASE WHEN revision = %s THEN NULL ELSE body END FROM conversations "
                "WHERE owner = %s AND id = %s",
                (cached[0] if cached else -1, self.owner, conversation_id),
            ).fetchone()
        if row is None:
            self._cached.pop(conversation_id, None)
            raise not_found()
        revision, body = row
        if body is None and cached is not None:
            return copy_conversation(cached[1])
        conversation = _decode(conversation_id, body)
        self._cached[conversation_id] = (revision, conversation)
        while len(self._cached) > 16:
            del self._cached[next(iter(self._cached))]
        return copy_conversation(conversation)

    @one_at_a_time
    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Conversations whose name or messages have words starting with every word of `query` (full-text
        search, trash left out), most recent first; each with the passage that matched."""
        words = _WORD.findall(query.casefold())
        if not words:
            return []
        terms = " & ".join(f"'{w}':*" for w in words)
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT id, summary, body FROM conversations WHERE owner = %s AND NOT trashed "
                "AND words @@ to_tsquery('simple', %s) ORDER BY updated_at DESC, id LIMIT %s",
                (self.owner, terms, limit),
            ).fetchall()
        hits = []
        for cid, summary, body in rows:
            found = summary_from_dict(cid, json.loads(summary))
            if all(w in found.name.casefold() for w in words):
                hits.append(SearchHit(found, ""))
            else:
                texts = [m.content for m in _decode(cid, body).messages]
                hits.append(SearchHit(found, snippet(texts, words)))
        return hits

    # -- the primitives of TreeStore ---------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[Summaries]:
        with self.pool.connection() as conn, conn.transaction():
            # The owner's row, locked until commit: this user's writes take turns in every process.
            conn.execute(
                "INSERT INTO owners (owner, generation) VALUES (%s, 1) "
                "ON CONFLICT (owner) DO UPDATE SET generation = owners.generation + 1",
                (self.owner,),
            )
            self._conn = conn
            try:
                yield _Summaries(conn, self.owner)
            except errors.UniqueViolation:
                raise StoreError(
                    "Another tab saved a chat of that name at the same moment; try again."
                ) from None
            finally:
                self._conn = None

    def _load_for_update(self, conversation_id: str, summaries: Summaries) -> Conversation:
        row = (
            self._writer()
            .execute(
                "SELECT body FROM conversations WHERE owner = %s AND id = %s", (self.owner, conversation_id)
            )
            .fetchone()
        )
        if row is None:
            raise not_found()
        conversation = _decode(conversation_id, row[0])
        self._loaded = (conversation_id, conversation.name, len(conversation.messages))
        return conversation

    def _write_conversation(self, conversation: Conversation) -> None:
        summary = conversation.summary()
        # A turn only adds messages (their text is never changed in place): only theirs is indexed then,
        # not the whole chat again, which at 50 messages tripled the time a write holds the owner's turn.
        loaded, self._loaded = self._loaded, None
        messages = conversation.messages
        if (
            loaded is not None
            and loaded[:2] == (conversation.id, conversation.name)
            and loaded[2] <= len(messages)
        ):
            texts, words = [m.content for m in messages[loaded[2] :]], "conversations.words || excluded.words"
        else:
            texts, words = [conversation.name, *(m.content for m in messages)], "excluded.words"
        searchable = "\n".join(texts)
        self._writer().execute(
            "INSERT INTO conversations (owner, id, name, updated_at, trashed, summary, body, words) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, strip(to_tsvector('simple', %s))) "
            "ON CONFLICT (owner, id) DO UPDATE SET name = excluded.name, updated_at = excluded.updated_at, "
            f"trashed = excluded.trashed, summary = excluded.summary, body = excluded.body, words = {words}, "
            "revision = nextval('revisions')",
            (
                self.owner,
                conversation.id,
                conversation.name,
                conversation.updated_at,
                summary.placement.trashed_at is not None,
                json.dumps(summary_to_dict(summary), ensure_ascii=False),
                encode_conversation(conversation),
                searchable[:SEARCHABLE_CHARS],
            ),
        )

    def _remove(self, conversation_id: str, summaries: Summaries) -> None:
        self._writer().execute(
            "DELETE FROM conversations WHERE owner = %s AND id = %s", (self.owner, conversation_id)
        )
        self._cached.pop(conversation_id, None)
        del summaries[conversation_id]

    def _names(self, summaries: Summaries, but: str = "") -> set[str]:
        rows = (
            self._writer()
            .execute("SELECT name FROM conversations WHERE owner = %s AND id <> %s", (self.owner, but))
            .fetchall()
        )
        assert isinstance(summaries, _Summaries)
        return summaries.names({row[0] for row in rows}, but)

    def _writer(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("a write outside _writing()")
        return self._conn


class _Summaries(MutableMapping[str, ConversationSummary]):
    """The owner's summaries inside a write, read from the database only when all of them are needed (a
    name check); what the write changes is kept here, as its rows are written by the store."""

    def __init__(self, conn: Connection, owner: str) -> None:
        self._conn, self._owner = conn, owner
        self._all: dict[str, ConversationSummary] | None = None
        self._changed: dict[str, ConversationSummary] = {}
        self._deleted: set[str] = set()

    def _load(self) -> dict[str, ConversationSummary]:
        if self._all is None:
            rows = self._conn.execute(
                "SELECT id, summary FROM conversations WHERE owner = %s", (self._owner,)
            ).fetchall()
            self._all = {cid: summary_from_dict(cid, json.loads(s)) for cid, s in rows}
        merged = {k: v for k, v in self._all.items() if k not in self._deleted}
        return merged | self._changed

    def names(self, stored: set[str], but: str) -> set[str]:
        """The names taken: those `stored` in the database, with this write's changes (in add_many, say)."""
        if not self._changed and not self._deleted:
            return stored
        return {s.name for s in self._load().values() if s.id != but}

    def __getitem__(self, key: str) -> ConversationSummary:
        if key in self._changed:
            return self._changed[key]
        if key in self._deleted:
            raise KeyError(key)
        if self._all is not None:
            return self._all[key]
        row = self._conn.execute(
            "SELECT summary FROM conversations WHERE owner = %s AND id = %s", (self._owner, key)
        ).fetchone()
        if row is None:
            raise KeyError(key)
        return summary_from_dict(key, json.loads(row[0]))

    def __setitem__(self, key: str, value: ConversationSummary) -> None:
        self._deleted.discard(key)
        self._changed[key] = value

    def __delitem__(self, key: str) -> None:
        self._changed.pop(key, None)
        self._deleted.add(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())


def _decode(conversation_id: str, body: bytes) -> Conversation:
    try:
        return decode_conversation(conversation_id, bytes(body))
    except Unreadable as problem:
        raise StoreError(
            f"Conversation {conversation_id} in the database could not be read ({problem})."
        ) from None
