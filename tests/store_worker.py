"""Child-process workers for the store's concurrency and crash tests (spawned, so importable)."""

import sys
import threading
from pathlib import Path

from model.json_store import JsonConversationStore
from model.message import Message, Role


def append_many(path: str, conversation_id: str, worker: int, threads: int, saves: int) -> None:
    """Append `saves` messages from each of `threads` threads, each thread with its own store object."""

    def run(thread: int) -> None:
        store = JsonConversationStore(Path(path), lock_timeout=120)
        for i in range(saves):
            store.append(conversation_id, Message(Role.USER, f"{worker}-{thread}-{i}"))

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


if __name__ == "__main__":
    # Save forever until killed: big messages, so a kill often lands in the middle of a write.
    store = JsonConversationStore(Path(sys.argv[1]))
    conversation_id = sys.argv[2]
    i = 0
    while True:
        store.append(conversation_id, Message(Role.ASSISTANT, f"{i} " + "x" * 20000))
        i += 1


def append_many_postgres(
    url: str, owner: str, conversation_id: str, worker: int, threads: int, saves: int
) -> None:
    """The same, on PostgreSQL: each thread with its own store object, one pool for the process."""
    from model.database import Database
    from model.postgres_store import PostgresConversationStore

    database = Database(url, max_connections=threads)

    def run(thread: int) -> None:
        store = PostgresConversationStore(database, owner)
        for i in range(saves):
            store.append(conversation_id, Message(Role.USER, f"{worker}-{thread}-{i}"))

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    database.close()


def migrate_database(url: str) -> int:
    """Open a database (which migrates it) and return its schema version."""
    import psycopg

    from model.database import Database

    Database(url).pool  # noqa: B018 - opening it runs the migrations
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT max(version) FROM bnagpt_schema").fetchone()[0]
