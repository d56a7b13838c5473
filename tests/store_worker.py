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
