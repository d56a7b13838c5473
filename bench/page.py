"""Page: server-side time of one rerun of the chat page, measured with Streamlit's AppTest.

Run: .venv/bin/python -m bench.page
A rerun is what happens on every click: the whole script runs again. Measured with a conversation of 10,
100 and 500 messages open (about 3 kB of text per answer), and with 1,000 conversations in the sidebar.
And a 500-message chat with 50 forks (edited questions, regenerated replies: 600 messages in all), whose
page shows versions, actions and the context meter. The local engine is not involved (Groq is chosen so
that no engine starts); nothing is sent.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from bench.stats import Figure, summarise, time_ms
from bench.store import branched, conversation, fill
from model.json_store import JsonConversationStore

SECTION = "3 page"
PROJECT = Path(__file__).resolve().parent.parent
REPEATS = 20


def _rerun_ms(data_dir: Path, conversation_id: str | None, repeats: int) -> list[float]:
    os.environ["BNAGPT_DATA_DIR"] = str(data_dir)
    os.environ["BNAGPT_PROVIDER"] = "groq"
    os.environ["BNAGPT_BACKUPS"] = "0"  # the daily backup is timed apart from reruns (bench/store.py)
    at = AppTest.from_file(str(PROJECT / "app.py"), default_timeout=60)
    if conversation_id:
        at.query_params["c"] = conversation_id
    at.run()
    if at.exception:
        raise RuntimeError(at.exception[0].message)
    time.sleep(8)  # let the first page's background work (agent import, search warm-up, backups) finish
    return time_ms(at.run, repeats, warmup=2)


def run(repeats: int = REPEATS) -> list[Figure]:
    """Rerun times for each case."""
    figures = []
    rng = random.Random(3)
    for size in (10, 100, 500):
        with tempfile.TemporaryDirectory() as folder:
            store = JsonConversationStore(Path(folder) / "conversations.json")
            (opened,) = store.add_many([conversation(rng, 0, size)])
            samples = _rerun_ms(Path(folder), opened.id, repeats)
            budget = "≤ 150" if size == 500 else ""
            figures.append(summarise(SECTION, f"rerun, {size}-message chat open", "ms", samples, budget))
    with tempfile.TemporaryDirectory() as folder:
        store = JsonConversationStore(Path(folder) / "conversations.json")
        (opened,) = store.add_many([branched(rng, 500, 50)])
        samples = _rerun_ms(Path(folder), opened.id, repeats)
        name = "rerun, 500-message chat with 50 forks open"
        figures.append(summarise(SECTION, name, "ms", samples, "≤ 150"))
    with tempfile.TemporaryDirectory() as folder:
        store = JsonConversationStore(Path(folder) / "conversations.json")
        fill(store, 1000, messages=10)
        newest = store.list()[0].id
        samples = _rerun_ms(Path(folder), newest, repeats)
        figures.append(summarise(SECTION, "rerun, 1,000 chats in the sidebar", "ms", samples, "≤ 150"))
    return figures


if __name__ == "__main__":
    for figure in run():
        print(f"{figure.name:<45} median {figure.median:8.1f} {figure.unit:<3} p95 {figure.p95:8.1f}")
