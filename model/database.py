"""The PostgreSQL database behind BNAGPT_DATABASE_URL: one connection pool per app process, and the schema,
brought up to date by numbered migrations when the app first opens it.

Migrations run under an advisory lock, so several processes starting at once apply each one exactly once,
and each runs in its own transaction with the version it brings: a failed one changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

from psycopg import Connection, OperationalError
from psycopg_pool import ConnectionPool, PoolTimeout

from errors import StoreError

# (version, SQL): append, never edit one that has shipped.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE owners (
            owner text PRIMARY KEY,
            generation bigint NOT NULL DEFAULT 0
        );
        CREATE SEQUENCE revisions;
        CREATE TABLE conversations (
            owner text NOT NULL,
            id text NOT NULL,
            name text NOT NULL,
            updated_at timestamptz NOT NULL,
            trashed boolean NOT NULL DEFAULT false,
            summary text NOT NULL,
            body bytea NOT NULL,
            revision bigint NOT NULL DEFAULT nextval('revisions'),
            words tsvector NOT NULL,
            PRIMARY KEY (owner, id)
        );
        CREATE UNIQUE INDEX conversations_name ON conversations (owner, name);
        CREATE INDEX conversations_recent ON conversations (owner, updated_at DESC);
        CREATE INDEX conversations_words ON conversations USING gin (words);
        CREATE TABLE documents (
            owner text NOT NULL,
            name text NOT NULL,
            body bytea,
            PRIMARY KEY (owner, name)
        );
        """,
    ),
]
_LOCK = 7_142_001  # the advisory lock migrations take


class Database:
    """A PostgreSQL database reached through a pool of connections, its schema up to date."""

    def __init__(self, url: str, max_connections: int = 10, timeout: float = 15.0) -> None:
        self.url = url
        parts = urlsplit(url)
        self.label = f"{parts.hostname or 'localhost'}:{parts.port or 5432}{parts.path}"
        self._max, self._timeout = max_connections, timeout
        self._pool: ConnectionPool | None = None
        self._opening = threading.Lock()

    @property
    def pool(self) -> ConnectionPool:
        """The connections, opened (and the schema migrated) on first use; raise StoreError."""
        if self._pool is None:
            with self._opening:
                if self._pool is None:
                    pool = ConnectionPool(
                        self.url, min_size=1, max_size=self._max, timeout=self._timeout, open=False
                    )
                    try:
                        pool.open(wait=True, timeout=self._timeout)
                        with pool.connection() as conn:
                            migrate(conn)
                    except (OperationalError, PoolTimeout) as error:
                        pool.close()
                        raise StoreError(
                            f"Could not reach the database at {self.label}: {_first_line(error)}. Check "
                            "BNAGPT_DATABASE_URL and that PostgreSQL is running."
                        ) from None
                    self._pool = pool
        return self._pool

    def document(self, owner: str, name: str) -> Document:
        """One owner's named document (their assistants, say)."""
        return Document(self, owner, name)

    def give(self, owner: str, to: str) -> None:
        """Hand everything of one owner to another (the single user's chats to the first account)."""
        with self.pool.connection() as conn, conn.transaction():
            for table in ("conversations", "documents", "owners"):
                conn.execute(f"UPDATE {table} SET owner = %s WHERE owner = %s", (to, owner))

    def forget(self, owner: str) -> None:
        """Delete everything of one owner."""
        with self.pool.connection() as conn, conn.transaction():
            for table in ("conversations", "documents", "owners"):
                conn.execute(f"DELETE FROM {table} WHERE owner = %s", (owner,))

    def close(self) -> None:
        """Close every connection."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None


class Document:
    """A named blob of one owner in the `documents` table, changed under a row lock like a locked file."""

    def __init__(self, database: Database, owner: str, name: str) -> None:
        self.database, self.owner, self.name = database, owner, name
        self._local = threading.local()  # the connection of a `locked()` block, per thread

    def read(self) -> bytes | None:
        """The document, or None if it was never written."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            return self._select(held)
        with self.database.pool.connection() as conn:
            return self._select(conn)

    def write(self, raw: bytes) -> None:
        """Replace the document (inside `locked()`, or on its own)."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            self._upsert(held, raw)
            return
        with self.database.pool.connection() as conn:
            self._upsert(conn, raw)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """A transaction holding the document's row: other writers, in any process, wait for it."""
        with self.database.pool.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO documents (owner, name, body) VALUES (%s, %s, NULL) ON CONFLICT DO NOTHING",
                (self.owner, self.name),
            )
            conn.execute(
                "SELECT 1 FROM documents WHERE owner = %s AND name = %s FOR UPDATE", (self.owner, self.name)
            )
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None

    def _select(self, conn: Connection) -> bytes | None:
        row = conn.execute(
            "SELECT body FROM documents WHERE owner = %s AND name = %s", (self.owner, self.name)
        ).fetchone()
        return bytes(row[0]) if row and row[0] is not None else None

    def _upsert(self, conn: Connection, raw: bytes) -> None:
        conn.execute(
            "INSERT INTO documents (owner, name, body) VALUES (%s, %s, %s) "
            "ON CONFLICT (owner, name) DO UPDATE SET body = excluded.body",
            (self.owner, self.name, raw),
        )


def migrate(conn: Connection) -> int:
    """Apply the migrations this database lacks; return its schema version."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bnagpt_schema "
            "(version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM bnagpt_schema").fetchone()
        current = row[0] if row else 0
        newest = MIGRATIONS[-1][0]
        if current > newest:
            raise StoreError(
                f"The database's schema is version {current}, newer than this bnaGPT knows ({newest}). "
                "It was left untouched: update bnaGPT."
            )
        for version, sql in MIGRATIONS:
            if version > current:
                conn.execute(sql)
                conn.execute("INSERT INTO bnagpt_schema (version) VALUES (%s)", (version,))
                current = version
    return current


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
