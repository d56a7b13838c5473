"""Files attached to chats and assistants: reading them in, indexing them in the background, finding the
passages that answer a question.

Retrieval is hybrid: llama-index's BM25 retriever (exact words, names, numbers) and a dense retriever over
the local embeddings (meaning, paraphrase), fused in llama-index's QueryFusionRetriever
(controller/retrieval.py).
One `Documents` serves the whole app process for a data folder; its one indexing thread works through a
queue, so the chat stays usable and a file can be asked about as soon as its own index is saved.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from controller import embeddings, readers
from errors import UnreadableFile
from model.attachment import Attachment, clean_file_name
from model.file_store import FileStore, Passage
from utils.loading import IMPORTS

if TYPE_CHECKING:
    from llama_index.core.retrievers import BaseRetriever

# Small passages: all-MiniLM-L6-v2 reads at most 256 word pieces (Portuguese takes more of them than
# English), and one fact in a long passage is lost in its average (bench/documents.py: dense hit@5 0.48 at
# 200 tokens, 0.68 at 96).
_log = logging.getLogger(__name__)
CHUNK_TOKENS, CHUNK_OVERLAP = 96, 16
ROW_PASSAGE_CHARS = 400  # rows and lines are joined into passages of about this size
MAX_FILE_MB = 50


@dataclass(frozen=True, slots=True)
class Found:
    """A passage that matched, with its file."""

    file: Attachment
    passage: Passage
    score: float


@dataclass(frozen=True, slots=True)
class FileStatus:
    """Where a file's indexing is."""

    state: str  # "ready", "queued", "indexing", "failed"
    progress: float = 0.0  # 0..1 while indexing
    error: str = ""

    @property
    def ready(self) -> bool:
        """Whether it can be searched."""
        return self.state == "ready"


def passages(reading: readers.Reading) -> list[Passage]:
    """Cut a file's sections into passages: pages and slides by sentences (about CHUNK_TOKENS tokens with
    some overlap), neighbouring rows and lines joined up to ROW_PASSAGE_CHARS ("Sheet1, rows 2–9")."""
    with IMPORTS:
        from llama_index.core.node_parser import SentenceSplitter

    splitter = SentenceSplitter(chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP)
    out: list[Passage] = []
    run: list[readers.Section] = []

    def flush() -> None:
        if not run:
            return
        first, last = run[0], run[-1]
        word = "rows" if reading.unit == "rows" else "lines"
        span = f"{word[:-1]} {first.number}" if first is last else f"{word} {first.number}–{last.number}"
        location = f"{first.location}, {span}" if first.location else span
        out.append(Passage("\n".join(s.text for s in run), location))
        run.clear()

    for section in reading.sections:
        if section.number is None:
            flush()
            out += [Passage(t, section.location) for t in splitter.split_text(section.text) if t.strip()]
            continue
        if run and (
            run[-1].location != section.location
            or sum(len(s.text) + 1 for s in run) + len(section.text) > ROW_PASSAGE_CHARS
        ):
            flush()
        run.append(section)
    flush()
    return out


class Documents:
    """Attached files for one data folder: stored, indexed in the background, searched."""

    def __init__(
        self,
        store: FileStore,
        embedder: Callable[[], embeddings.Embedder] = embeddings.embedder,
        embedder_name: str = embeddings.NAME,
        max_file_mb: int = MAX_FILE_MB,
    ) -> None:
        self.store = store
        self._embedder = embedder
        self._embedder_name = embedder_name
        self.max_file_mb = max_file_mb
        self._status: dict[str, FileStatus] = {}
        self._readings: dict[str, readers.Reading] = {}
        self._names: dict[str, str] = {}  # what kind of file each is, by its name's extension
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._indexes: OrderedDict[str, tuple[list[Passage], np.ndarray]] = OrderedDict()
        self._retrievers: OrderedDict[tuple[str, ...], Any] = OrderedDict()

    # -- attaching -------------------------------------------------------------------------------

    def attach(self, name: str, data: bytes) -> Attachment:
        """Read a file (raise UnreadableFile naming it), store it and queue it for indexing."""
        name = clean_file_name(name)
        if len(data) > self.max_file_mb * 2**20:
            raise UnreadableFile(
                f"“{name}” is {len(data) / 2**20:,.1f} MB, over the {self.max_file_mb} MB limit for one file "
                "(BNAGPT_MAX_FILE_MB). Attach a smaller part of it."
            )
        if not data:
            raise UnreadableFile(f"“{name}” is empty.")
        reading = readers.read(name, data)
        sha = hashlib.sha256(data).hexdigest()
        with self._lock:
            if not self.store.has_index(sha, self._embedder_name):
                self._readings[sha] = reading
        self.store.put(data)
        attachment = Attachment(sha, name, len(data), reading.pages, reading.unit)
        self.index([attachment])
        return attachment

    def index(self, files: Iterable[Attachment]) -> None:
        """Queue files that have no index yet (after an import, or a restart mid-indexing)."""
        with self._lock:
            for file in files:
                sha = file.sha256
                self._names[sha] = file.name
                if self._status.get(sha, FileStatus("")).state in ("queued", "indexing", "failed"):
                    continue
                if self.store.has_index(sha, self._embedder_name):
                    continue
                self._status[sha] = FileStatus("queued")
                self._queue.put(sha)
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._work, name="bnagpt-indexer", daemon=True)
                self._worker.start()

    def status(self, sha: str) -> FileStatus:
        """Where a file is: ready, queued, indexing (with progress) or failed (with why)."""
        with self._lock:
            known = self._status.get(sha)
        if known is not None and known.state != "ready":
            return known
        if known is not None or self.store.has_index(sha, self._embedder_name):
            return FileStatus("ready", 1.0)
        return FileStatus("queued")

    def busy(self, files: Iterable[Attachment]) -> bool:
        """Whether any of these files is still waiting or being indexed."""
        return any(self.status(f.sha256).state in ("queued", "indexing") for f in files)

    def wait(self, timeout: float) -> bool:
        """Wait until the queue is done (for tests and benchmarks); return whether it is."""
        queued = self._queue
        with queued.all_tasks_done:  # the queue's own condition, as `join` uses, but with a deadline
            return queued.all_tasks_done.wait_for(lambda: not queued.unfinished_tasks, timeout)

    def _work(self) -> None:
        while True:
            sha = self._queue.get()
            failure = ""
            try:
                self._index_one(sha)
            except UnreadableFile as error:
                failure = str(error)
            except FileNotFoundError:
                failure = (
                    "Its content is missing from the data folder (an import or backup without it). Remove it "
                    "and attach the file again."
                )
            except Exception as error:  # a bug of ours: logged; one bad file must not stop the others
                _log.exception("indexing %s failed", self._names.get(sha, sha))
                failure = f"{type(error).__name__}: {error}"
            finally:
                if failure:
                    with self._lock:
                        self._status[sha] = FileStatus("failed", error=failure)
                self._queue.task_done()

    def _index_one(self, sha: str) -> None:
        with self._lock:
            reading = self._readings.pop(sha, None)
            name = self._names.get(sha, "")
            self._status[sha] = FileStatus("indexing", 0.0)
        if reading is None:
            reading = readers.read(name, self.store.read(sha))
        cut = passages(reading)
        model = self._embedder()
        vectors: list[list[float]] = []
        for start in range(0, len(cut), embeddings.BATCH):
            batch = [p.text for p in cut[start : start + embeddings.BATCH]]
            vectors += model.get_text_embedding_batch(batch)
            with self._lock:
                self._status[sha] = FileStatus("indexing", min(1.0, (start + len(batch)) / len(cut)))
        matrix = np.asarray(vectors, dtype=np.float32).reshape(len(cut), -1)
        self.store.save_index(sha, self._embedder_name, cut, matrix)
        with self._lock:
            self._status[sha] = FileStatus("ready", 1.0)

    # -- finding ---------------------------------------------------------------------------------

    def passages_of(self, file: Attachment) -> list[Passage]:
        """All of a file's passages in order (for "use the whole file"); [] if not indexed yet."""
        loaded = self._load(file.sha256)
        return list(loaded[0]) if loaded else []

    def search(self, files: Sequence[Attachment], question: str, top_k: int = 5) -> list[Found]:
        """The passages of the ready files that best answer `question`, best first."""
        ready = [f for f in files if self.status(f.sha256).ready and self._load(f.sha256)]
        if not ready or not question.strip():
            return []
        retriever = self._retriever(ready, top_k)
        with IMPORTS:
            from llama_index.core.schema import QueryBundle

        vector = self._embedder().get_query_embedding(question)
        found = retriever.retrieve(QueryBundle(question, embedding=vector))
        by_sha = {f.sha256: f for f in ready}
        return [
            Found(
                by_sha[n.node.metadata["sha"]],
                Passage(n.node.get_content(), n.node.metadata["loc"]),
                n.score or 0,
            )
            for n in found
        ]

    def _load(self, sha: str) -> tuple[list[Passage], np.ndarray] | None:
        with self._lock:
            if sha in self._indexes:
                self._indexes.move_to_end(sha)
                return self._indexes[sha]
        loaded = self.store.load_index(sha, self._embedder_name)
        if loaded is not None:
            with self._lock:
                self._indexes[sha] = loaded
                while len(self._indexes) > 64:
                    self._indexes.popitem(last=False)
        return loaded

    def _retriever(self, files: Sequence[Attachment], top_k: int) -> BaseRetriever:
        key = (*sorted({f.sha256 for f in files}), str(top_k))
        with self._lock:
            if key in self._retrievers:
                self._retrievers.move_to_end(key)
                return self._retrievers[key]
        with IMPORTS:
            from controller.retrieval import hybrid_retriever

        parts = [(f.sha256, *self._load(f.sha256)) for f in {f.sha256: f for f in files}.values()]
        retriever = hybrid_retriever(parts, top_k)
        with self._lock:
            self._retrievers[key] = retriever
            while len(self._retrievers) > 8:
                self._retrievers.popitem(last=False)
        return retriever
