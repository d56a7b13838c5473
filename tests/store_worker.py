"""Child-process workers for the store's concurrency and crash tests (spawned, so importable)."""

import sys
import threading
from pathlib import Path

from model.conversation_store import ConversationStore
from model.json_store import JsonConversationStore
from model.message import Message, Role


def append_many(where: str, conversation_id: str, worker: int, threads: int, saves: int) -> None:
    """Append `saves` messages from each of `threads` threads, each thread with its own store object, on
    the data file `where` or, for a postgresql:// address, the database's single user."""
    database = None
    if where.startswith("postgresql://"):
        from model.database import Database

        database = Database(where, max_connections=threads)

    def store() -> ConversationStore:
        if database is None:
            return JsonConversationStore(Path(where), lock_timeout=120)
        from model.postgres_store import PostgresConversationStore

        return PostgresConversationStore(database)

    def run(thread: int) -> None:
        mine = store()
        for i in range(saves):
            mine.append(conversation_id, Message(Role.USER, f"{worker}-{thread}-{i}"))

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    if database is not None:
        database.close()


def migrate_database(url: str) -> int:
    """Open a database (which migrates it) and return its schema version."""
    import psycopg

    from model.database import Database

    Database(url).pool  # noqa: B018 - opening it runs the migrations
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT max(version) FROM bnagpt_schema").fetchone()[0]


if __name__ == "__main__":
    # Save forever until killed: big messages, so a kill often lands in the middle of a write.
    store = JsonConversationStore(Path(sys.argv[1]))
    conversation_id = sys.argv[2]
    i = 0
    while True:
        store.append(conversation_id, Message(Role.ASSISTANT, f"{i} " + "x" * 20000))
        i += 1
