"""Store: save after a turn, list, open, search, rename and delete with 100, 1,000 and 10,000 conversations,
on the JSON files and on PostgreSQL.

Run: .venv/bin/python -m bench.store [counts…]
Each conversation has 50 messages of realistic, varied lengths (questions of a sentence or a paragraph,
answers of one to several paragraphs with lists and code), generated with a fixed seed. Every operation
is timed on the real store, in a temporary folder or a throwaway PostgreSQL cluster of Debian's server on
loopback (utils/pg_cluster.py: fsync off, as a benchmark of the app, not of the disk), on a store object
that has already read the data once, as a browser tab's store has; "first list" is a new store reading it
all for the first time.
"""

from __future__ import annotations

import contextlib
import random
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from bench.stats import Figure, summarise, time_ms
from model import tree
from model.backups import Backups
from model.conversation import Conversation
from model.conversation_store import ConversationStore
from model.database import Database
from model.json_store import JsonConversationStore
from model.message import Message, Role, utc_now
from model.postgres_store import PostgresConversationStore
from utils import pg_cluster

SECTION = "2 store"
MESSAGES = 50
REPEATS = 40
_VOCABULARY = (
    "the a of to and in is it you that for on with as this be are at or from by not but what all "
    "were when we there can an your which their said if do will each about how up out them then she "
    "many some so these would other into has more her two like him see time could no make than first "
    "python data model server file chat answer question river bread music history engine token"
)
_WORDS = _VOCABULARY.split()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(max(1, words))).capitalize() + "."


def _answer(rng: random.Random) -> str:
    parts = [_text(rng, rng.randint(20, 70)) for _ in range(rng.randint(1, 4))]
    if rng.random() < 0.3:
        parts.append("- " + "\n- ".join(_text(rng, rng.randint(4, 12)) for _ in range(rng.randint(2, 5))))
    if rng.random() < 0.2:
        parts.append(
            "```python\n" + "\n".join(f"x{i} = {i} * 2" for i in range(rng.randint(3, 12))) + "\n```"
        )
    return "\n\n".join(parts)


def conversation(rng: random.Random, index: int, messages: int = MESSAGES) -> Conversation:
    """A generated conversation of `messages` alternating user and assistant messages."""
    start = utc_now() - timedelta(days=rng.randint(0, 400), minutes=index)
    history = []
    for turn in range(messages):
        role = Role.USER if turn % 2 == 0 else Role.ASSISTANT
        text = _text(rng, int(rng.lognormvariate(2.7, 0.8))) if turn % 2 == 0 else _answer(rng)
        history.append(Message(role, text, created_at=start + timedelta(seconds=30 * turn)))
    return Conversation(
        name=_text(rng, rng.randint(2, 7))[:60],
        messages=tree.linked(history),
        created_at=start,
        updated_at=start,
    )


def branched(rng: random.Random, messages: int, forks: int) -> Conversation:
    """A generated conversation of `messages` on its chosen path, `forks` of them with an older version
    (an edited question or a regenerated reply) and a message after it on that branch."""
    chat = conversation(rng, 0, messages)
    path = chat.messages
    extra: list[Message] = []
    for n in range(forks):
        at = path[(n * len(path)) // forks + 1]  # spread over the chat
        older = replace(at, id=f"old{n}", content=_text(rng, 30))
        role = Role.USER if at.role == Role.ASSISTANT else Role.ASSISTANT
        tail = Message(role, _answer(rng), id=f"oldtail{n}", parent=older.id)
        extra += [older, tail]
    everything = path + extra
    chat.messages = everything
    chat.chosen = tree.choose(everything, {}, path[-1].id)
    return chat


def fill(store: ConversationStore, count: int, seed: int = 1, messages: int = MESSAGES) -> None:
    """Add `count` generated conversations, a thousand per write of the index."""
    rng = random.Random(seed)
    for first in range(0, count, 1000):
        batch = [conversation(rng, i, messages) for i in range(first, min(count, first + 1000))]
        store.add_many(batch)


def run(
    counts: tuple[int, ...] = (100, 1000, 10000),
    repeats: int = REPEATS,
    backends: tuple[str, ...] = ("files", "postgres"),
) -> list[Figure]:
    """Time each operation at each count, on each backend (PostgreSQL only where it is installed)."""
    figures = []
    for backend in backends:
        if backend == "postgres" and pg_cluster.binaries() is None:
            print("  PostgreSQL is not installed: its store figures are left out", flush=True)
            continue
        for count in counts:
            with _opened(backend) as open_store:
                fill(open_store(), count)
                figures += _measure(open_store, count, repeats, backend)
    return figures


@contextlib.contextmanager
def _opened(backend: str) -> Iterator[Callable[[], ConversationStore]]:
    """A way to open new store objects on one empty set of data."""
    if backend == "files":
        with tempfile.TemporaryDirectory() as folder:
            yield lambda: JsonConversationStore(Path(folder) / "conversations.json")
        return
    with pg_cluster.cluster() as url:
        database = Database(url)
        try:
            yield lambda: PostgresConversationStore(database)
        finally:
            database.close()


def _measure(
    open_store: Callable[[], ConversationStore], count: int, repeats: int, backend: str
) -> list[Figure]:
    rng = random.Random(2)
    label = f"{count:,} conversations" + (", PostgreSQL" if backend == "postgres" else "")
    budget = count == 1000
    figures = []

    first_reads = []
    for _ in range(5):
        first_reads += time_ms(lambda: open_store().list(), 1, warmup=0)
    figures.append(summarise(SECTION, f"first list (new tab), {label}", "ms", first_reads))

    store = open_store()
    ids = [s.id for s in store.list()]
    reply = Message(Role.ASSISTANT, _answer(rng))

    targets = iter(rng.sample(ids, min(len(ids), repeats + 2)))
    save = time_ms(lambda: store.append(next(targets), reply), repeats)
    figures.append(
        summarise(SECTION, f"save after a turn, {label}", "ms", save, "p95 ≤ 20" if budget else "")
    )

    listing = time_ms(store.list, repeats)
    figures.append(summarise(SECTION, f"list, {label}", "ms", listing, "≤ 10" if budget else ""))

    opened = iter(rng.sample(ids, min(len(ids), repeats + 2)))
    open_new = time_ms(lambda: store.get(next(opened)), repeats)
    figures.append(
        summarise(SECTION, f"open another chat, {label}", "ms", open_new, "≤ 10" if budget else "")
    )

    current = ids[0]
    store.get(current)
    rerun = time_ms(lambda: store.get(current), repeats)
    figures.append(summarise(SECTION, f"open chat again (rerun), {label}", "ms", rerun))

    renamed = iter(enumerate(rng.sample(ids, min(len(ids), repeats + 2))))
    rename = time_ms(lambda: store.rename(*_rename_args(next(renamed))), repeats)
    figures.append(summarise(SECTION, f"rename, {label}", "ms", rename))

    # On the files, search reads every chat's messages once per app process, then scans them in memory;
    # on PostgreSQL it is one full-text query. A query that matches nothing scans them all: the worst
    # case, the one held to the budget.
    if isinstance(store, JsonConversationStore):
        store.search_cache.clear()
    first = time_ms(lambda: store.search("zebra"), 1, warmup=0)
    figures.append(summarise(SECTION, f"search, first in the process, {label}", "ms", first))
    queries = iter(f"zebra{i} river" for i in range(repeats + 10))
    search = time_ms(lambda: store.search(next(queries)), repeats)
    figures.append(
        summarise(SECTION, f"search, no match (all scanned), {label}", "ms", search, "≤ 50" if budget else "")
    )
    common = time_ms(lambda: store.search("bread history"), repeats)
    figures.append(summarise(SECTION, f"search, many matches (first 50), {label}", "ms", common))

    with tempfile.TemporaryDirectory() as folder:
        backups = Backups(Path(folder), keep=2)
        backup = time_ms(lambda: backups.take(store.everything()), 3, warmup=0)
    figures.append(summarise(SECTION, f"daily backup (in the background), {label}", "ms", backup))

    doomed = iter(rng.sample(ids, min(len(ids), repeats + 2)))
    delete = time_ms(lambda: store.delete(next(doomed)), repeats)
    figures.append(summarise(SECTION, f"delete, {label}", "ms", delete))
    return figures


def _rename_args(item: tuple[int, str]) -> tuple[str, str]:
    index, conversation_id = item
    return conversation_id, f"Renamed conversation {index}"


if __name__ == "__main__":
    counts = tuple(int(a) for a in sys.argv[1:]) or (100, 1000, 10000)
    for figure in run(counts):
        print(f"{figure.name:<50} median {figure.median:8.2f} {figure.unit:<3} p95 {figure.p95:8.2f}")
