"""Work an app process does once, in the background, after drawing its first page.

The agent stack is imported (about 2 s of CPU) so the first reply need not, after the local engine has
started (both need the CPU); the search cache is filled; today's backup is taken and old trash purged.
None of it may fail the page: each step keeps quiet about errors that a later, visible action reports
again (the first reply, a search, the Library page).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence

from controller import providers
from controller.library import daily_upkeep
from errors import BnaGPTError
from model.assistant import Assistant
from model.backups import Backups
from model.conversation_store import ConversationStore
from model.file_store import FileStore
from utils.local_server import LocalEngine


def start(
    store: ConversationStore,
    engine: LocalEngine | None,
    backups: Backups,
    files: FileStore | None = None,
    assistants: Callable[[], Sequence[Assistant]] | None = None,
) -> threading.Thread:
    """Run the start-up steps in one background thread."""

    def steps() -> None:
        if engine is not None:
            with contextlib.suppress(BnaGPTError):  # the first reply starts it again and says why
                engine.ensure_running()  # waits for the engine's own warm-up, already under way
        providers.preload()
        with contextlib.suppress(BnaGPTError, OSError):
            store.prepare_search()
        with contextlib.suppress(BnaGPTError, OSError):  # the Library page shows the backups there are
            # with BNAGPT_BACKUPS=0 no backup is taken; the purge still runs
            # Without the assistants, their knowledge would look unused: no files are removed then.
            daily_upkeep(store, backups, files if assistants else None, assistants() if assistants else ())

    thread = threading.Thread(target=steps, name="bnagpt-start-up", daemon=True)
    thread.start()
    return thread
