"""Time to first token on the local engine in a chat longer than its context window.

Run: .venv/bin/python -m bench.long_chat [--trim-as-needed]
Opens a saved 80-message chat (about 4,000 tokens, twice the window) and asks four questions in a row,
printing each one's time to first token. The first pays for reading the window; the next ones should
reuse llama.cpp's cache of it, which needs the history window to start at the same message each turn.
`--trim-as-needed` drops just enough of the oldest messages each turn instead (the window start moves
every turn), for comparison.
"""

import sys
import tempfile
import time
from pathlib import Path

from controller import context
from controller.chat import ChatSession
from controller.providers import LOCAL, ProviderConfig
from model.json_store import JsonConversationStore
from model.message import Message, Role
from utils.local_server import MODEL_ALIAS, LocalEngine, bundled_model_path

SENTENCE = "We talked about rivers, mountains, bread and the history of many small towns. "


def main() -> None:
    if "--trim-as-needed" in sys.argv:
        context.stable_window = lambda sizes, budget: 0
    engine = LocalEngine(bundled_model_path(), context_size=2048)
    engine.ensure_running()
    try:
        with tempfile.TemporaryDirectory() as folder:
            store = JsonConversationStore(Path(folder) / "conversations.json")
            history = []
            for turn in range(40):
                history += [
                    Message(Role.USER, f"Turn {turn}: " + SENTENCE * 3),
                    Message(Role.ASSISTANT, SENTENCE * 3),
                ]
            chat = ChatSession(store, engine)
            chat.open(store.create("long", history).id)
            config = ProviderConfig(
                kind=LOCAL, model=MODEL_ALIAS, context_window=2048, max_tokens=16, temperature=0
            )
            for question in ("Say OK.", "And now?", "One more?", "Last one?"):
                started = time.perf_counter()
                chunks = iter(chat.send(question, config))
                next(chunks, None)
                print(f"{question:<10} time to first token {time.perf_counter() - started:6.2f} s")
                for _ in chunks:
                    pass
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
