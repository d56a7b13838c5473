"""Two app processes, 8 sessions each, on one PostgreSQL database (and, to compare, on one data folder).

Run: .venv/bin/python -m bench.replicas
Each process (spawned, as a second `streamlit run` is) holds 8 sessions in threads, as 8 tabs do; every
session repeats a turn's store work as the app does it: list the sidebar, open its chat, save the question,
save the reply (about 1 KB), list again. All 16 sessions are the single user of an install without
accounts, so every write takes the same owner's turn: the worst case. Latency is per turn; errors are any
exception a session met. The database is a throwaway cluster of Debian's PostgreSQL (utils/pg_cluster.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import tempfile
import threading
import time
from pathlib import Path

from bench.stats import Figure, summarise
from utils import pg_cluster

SECTION = "2b replicas"
PROCESSES, SESSIONS, TURNS = 2, 8, 25
REPLY = "A reply of about a kilobyte. " * 36


def _process(where: str, worker: int, turns: int, results, ready, go) -> None:
    """One app process: SESSIONS sessions in threads, each with its own chat."""
    from model.database import Database
    from model.json_store import JsonConversationStore
    from model.message import Message, Role
    from model.postgres_store import PostgresConversationStore

    database = Database(where, max_connections=SESSIONS) if where.startswith("postgresql") else None

    def store():
        if database is not None:
            return PostgresConversationStore(database)
        return JsonConversationStore(Path(where) / "conversations.json", lock_timeout=120)

    latencies: list[float] = []
    errors: list[str] = []

    made = threading.Barrier(SESSIONS + 1)

    def session(number: int) -> None:
        tab = store()
        try:
            chat = tab.create(f"Process {worker} session {number}")
            tab.list()
            made.wait()
            go.wait()  # every session of both processes starts its turns at once
            for turn in range(turns):
                started = time.perf_counter()
                tab.list()
                tab.get(chat.id)
                tab.append(chat.id, Message(Role.USER, f"Question {turn} from {worker}/{number}"))
                tab.append(chat.id, Message(Role.ASSISTANT, REPLY))
                tab.list()
                latencies.append((time.perf_counter() - started) * 1000)
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=session, args=(n,)) for n in range(SESSIONS)]
    for thread in threads:
        thread.start()
    made.wait()
    ready.put(worker)
    for thread in threads:
        thread.join()
    if database is not None:
        database.close()
    results.put((latencies, errors))


def _run(where: str, turns: int) -> tuple[list[float], list[str], float]:
    context = multiprocessing.get_context("spawn")
    results, ready, go = context.Queue(), context.Queue(), context.Event()
    processes = [
        context.Process(target=_process, args=(where, w, turns, results, ready, go)) for w in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        ready.get(timeout=300)
    started = time.perf_counter()
    go.set()
    gathered = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    seconds = time.perf_counter() - started
    latencies = [value for lat, _ in gathered for value in lat]
    errors = [error for _, err in gathered for error in err]
    return latencies, errors, seconds


def _check(where: str, turns: int) -> int:
    """Messages lost: each session's chat must hold exactly its 2 × turns messages."""
    from model.database import Database
    from model.json_store import JsonConversationStore
    from model.postgres_store import PostgresConversationStore

    if where.startswith("postgresql"):
        database = Database(where)
        counts = [s.message_count for s in PostgresConversationStore(database).list()]
        database.close()
    else:
        counts = [s.message_count for s in JsonConversationStore(Path(where) / "conversations.json").list()]
    return sum(2 * turns - c for c in counts) + 2 * turns * (PROCESSES * SESSIONS - len(counts))


def run(turns: int = TURNS) -> list[Figure]:
    """Both backends, the same work."""
    figures: list[Figure] = []
    label = f"{PROCESSES} processes × {SESSIONS} sessions"
    backends = [("files", None)]
    if pg_cluster.binaries() is not None:
        backends.append(("PostgreSQL", "postgres"))
    for name, kind in backends:
        with tempfile.TemporaryDirectory() as folder:
            context = pg_cluster.cluster() if kind else contextlib.nullcontext(folder)
            with context as where:
                latencies, errors, seconds = _run(where, turns)
                lost = _check(where, turns)
        figures += [
            summarise(SECTION, f"a turn's store work, {label}, {name}", "ms", latencies),
            summarise(SECTION, f"turns per second, {label}, {name}", "count", [len(latencies) / seconds]),
            summarise(SECTION, f"errors, {label}, {name}", "count", [len(errors)], "0"),
            summarise(SECTION, f"messages lost, {label}, {name}", "count", [lost], "0"),
        ]
        for error in errors[:3]:
            print(f"  {name}: {error}", flush=True)
    return figures


if __name__ == "__main__":
    for figure in run():
        print(f"{figure.name:<60} median {figure.median:8.2f} {figure.unit:<5} p95 {figure.p95:8.2f}")
