"""Time to first token on the local engine in a chat longer than its context window.

Run: .venv/bin/python -m bench.long_chat [--trim-as-needed] [--sweep]
Opens a saved 80-message chat (about 4,000 tokens, twice the window) and asks four questions in a row,
printing each one's time to first token. The first pays for reading the window; the next ones should
reuse llama.cpp's cache of it, which needs the history window to start at the same message each turn.
`--trim-as-needed` drops just enough of the oldest messages each turn instead (the window start moves
every turn), for comparison. `--sweep` asks in chats of 72 to 86 messages instead, and prints the means:
how long the first question waits depends on where the window stands in its cycle.
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


def ask(engine: LocalEngine, exchanges: int) -> tuple[float, float, int]:
    """A saved chat of `exchanges` questions and answers, then four questions in a row: (time to the
    first token of the first, mean of the next three, prompt tokens the engine read for the first)."""
    with tempfile.TemporaryDirectory() as folder:
        store = JsonConversationStore(Path(folder) / "conversations.json")
        history = []
        for turn in range(exchanges):
            # Every message names its chat, so that no chat of the sweep reuses the engine's cache of another.
            history += [
                Message(Role.USER, f"Chat {exchanges}, turn {turn}: " + SENTENCE * 3),
                Message(Role.ASSISTANT, f"Chat {exchanges}: " + SENTENCE * 3),
            ]
        chat = ChatSession(store, engine)
        chat.open(store.create("long", history).id)
        config = ProviderConfig(
            kind=LOCAL, model=MODEL_ALIAS, context_window=2048, max_tokens=16, temperature=0
        )
        times, read = [], 0
        for question in ("Say OK.", "And now?", "One more?", "Last one?"):
            before = engine.metrics().get("prompt_tokens_total", 0)
            started = time.perf_counter()
            chunks = iter(chat.send(question, config))
            next(chunks, None)
            times.append(time.perf_counter() - started)
            for _ in chunks:
                pass
            read = read or int(engine.metrics().get("prompt_tokens_total", 0) - before)
            print(f"  {exchanges} exchanges, {question:<10} time to first token {times[-1]:6.2f} s")
        return times[0], sum(times[1:]) / 3, read


def main() -> None:
    if "--trim-as-needed" in sys.argv:
        context.stable_window = lambda sizes, budget, floor=None: 0
    # Where the window stands in its cycle (just moved, or about to) depends on the chat's length: the
    # sweep asks at eight lengths, so the means do not hang on one position.
    lengths = range(36, 44) if "--sweep" in sys.argv else (40,)
    engine = LocalEngine(bundled_model_path(), context_size=2048)
    engine.ensure_running()
    try:
        results = [ask(engine, n) for n in lengths]
    finally:
        engine.stop()
    firsts, nexts, reads = zip(*results, strict=True)
    print(
        f"first question: mean time to first token {sum(firsts) / len(firsts):.2f} s, "
        f"mean prompt {sum(reads) / len(reads):.0f} tokens; next three: mean {sum(nexts) / len(nexts):.3f} s"
    )


if __name__ == "__main__":
    main()
