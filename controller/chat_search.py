"""Finding chats by meaning: each message's embedding (the local model of the documents), searched by
cosine similarity and fused with the keyword search by reciprocal rank.

Nothing is loaded until someone searches: the first search starts a background thread that loads the
model and embeds the chats, newest first; until it is done the sidebar shows keyword hits and says the
search by meaning is on its way. A chat's vectors are kept in `chat-vectors/` in the data folder with its
update time, and made again only when it changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from controller import embeddings
from model.conversation import ConversationSummary
from model.file_store import read_vectors, write_vectors
from model.search import SNIPPET_CHARS, SearchHit

MESSAGE_CHARS = 600  # of each message, embedded (the model reads about 256 tokens anyway)
MAX_MESSAGES = 60  # the newest of each chat
MIN_SIMILARITY = 0.35  # below this, "similar in meaning" is noise for this model
RRF_K = 60


@dataclass(frozen=True, slots=True)
class MeaningHit:
    """A chat whose message means what was searched, and that message."""

    summary: ConversationSummary
    score: float
    passage: str


class MeaningSearch:
    """Chat vectors for one data folder, made in the background, searched in memory."""

    def __init__(
        self,
        folder: Path,
        embedder: Callable[[], embeddings.Embedder] = embeddings.embedder,
        embedder_name: str = embeddings.NAME,
    ) -> None:
        self.folder = Path(folder)
        self._embedder = embedder
        self._name = embedder_name
        self._vectors: dict[str, tuple[str, list[str], np.ndarray]] = {}  # id -> (stamp, texts, matrix)
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._pending = 0
        self._ready = False
        self._version = 0  # grows with every chat embedded, so that cached results know they are stale
        self._last: tuple[str, int, tuple[str, ...], list[MeaningHit]] | None = None
        self.error = ""

    def progress(self) -> tuple[int, int] | None:
        """(chats embedded, chats in all) while the background work runs, None when it is idle."""
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                return None
            return len(self._vectors), len(self._vectors) + self._pending

    def find(
        self,
        query: str,
        summaries: Sequence[ConversationSummary],
        read: Callable[[str], list[str]],
        limit: int = 20,
    ) -> list[MeaningHit] | None:
        """Chats with a message close in meaning to `query` (trash left out), best first; None while the
        model is not loaded yet (the work is started: ask again in a moment)."""
        self.update(summaries, read)
        if not self._ready:
            return None
        ids = tuple(s.id for s in summaries)
        with self._lock:
            last, version = self._last, self._version
        if last is not None and last[:3] == (query, version, ids):
            return last[3]  # a rerun with the same search: no new embedding
        vector = np.asarray(self._embedder().get_query_embedding(query), dtype=np.float32)
        vector /= max(float(np.linalg.norm(vector)), 1e-12)
        hits = []
        with self._lock:
            kept = dict(self._vectors)
        for summary in summaries:
            if summary.placement.trashed_at is not None or summary.id not in kept:
                continue
            _, texts, matrix = kept[summary.id]
            if not len(matrix):
                continue
            scores = matrix @ vector
            best = int(np.argmax(scores))
            if scores[best] >= MIN_SIMILARITY:
                hits.append(MeaningHit(summary, float(scores[best]), texts[best]))
        hits.sort(key=lambda h: h.score, reverse=True)
        with self._lock:
            self._last = (query, version, ids, hits[:limit])
        return hits[:limit]

    def update(self, summaries: Sequence[ConversationSummary], read: Callable[[str], list[str]]) -> None:
        """Embed, in the background, the chats that changed since they were last embedded."""
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                return
            stale = [s for s in summaries if self._stamp(s) != self._vectors.get(s.id, ("",))[0]]
            if not stale and self._ready:
                return
            self._pending = len(stale)
            self._worker = threading.Thread(
                target=self._work, args=(stale, read), name="bnagpt-chat-vectors", daemon=True
            )
            self._worker.start()

    def wait(self, timeout: float) -> bool:
        """Wait for the background work (tests, benchmarks)."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return worker is None or not worker.is_alive()

    def forget(self, keep: set[str]) -> None:
        """Drop the vectors of chats that are gone."""
        with self._lock:
            for cid in [c for c in self._vectors if c not in keep]:
                del self._vectors[cid]
        if self.folder.is_dir():
            for path in self.folder.iterdir():
                if path.name.split(".", 1)[0] not in keep:
                    path.unlink(missing_ok=True)

    def _work(self, stale: list[ConversationSummary], read: Callable[[str], list[str]]) -> None:
        try:
            model = self._embedder()
            for summary in sorted(stale, key=lambda s: s.updated_at, reverse=True):
                stamp = self._stamp(summary)
                loaded = self._load(summary.id, stamp)
                if loaded is None:
                    texts = [summary.name] + [
                        " ".join(t.split())[:MESSAGE_CHARS]
                        for t in read(summary.id)[-MAX_MESSAGES:]
                        if t.strip()
                    ]
                    matrix = np.asarray(model.get_text_embedding_batch(texts), dtype=np.float32)
                    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
                    self._save(summary.id, stamp, texts, matrix)
                    loaded = texts, matrix
                with self._lock:
                    self._vectors[summary.id] = (stamp, *loaded)
                    self._pending -= 1
                    self._version += 1
                    self._ready = True  # the model is loaded: searches can run on what is there
            with self._lock:
                self._ready = True
        except Exception as error:  # the keyword search goes on; the sidebar says why this one stopped
            self.error = f"{type(error).__name__}: {error}"

    @staticmethod
    def _stamp(summary: ConversationSummary) -> str:
        return f"{summary.updated_at.isoformat()}|{summary.message_count}|{summary.name}"

    def _stem(self, cid: str) -> Path:
        return self.folder / f"{cid}.{self._name}"

    def _load(self, cid: str, stamp: str) -> tuple[list[str], np.ndarray] | None:
        found = read_vectors(self._stem(cid), "texts")
        if found is None or found[0].get("stamp") != stamp:
            return None
        return [str(t) for t in found[0]["texts"]], found[1]

    def _save(self, cid: str, stamp: str, texts: list[str], matrix: np.ndarray) -> None:
        write_vectors(self._stem(cid), {"stamp": stamp, "texts": texts}, matrix)


def fuse(keyword: Sequence[SearchHit], meaning: Sequence[MeaningHit], limit: int = 50) -> list[SearchHit]:
    """One list from both searches by reciprocal rank: a chat found both ways comes first; a chat found
    only by meaning shows the message that matched."""
    scores: dict[str, float] = {}
    hits: dict[str, SearchHit] = {}
    for rank, hit in enumerate(keyword):
        scores[hit.summary.id] = scores.get(hit.summary.id, 0) + 1 / (RRF_K + rank)
        hits[hit.summary.id] = hit
    for rank, found in enumerate(meaning):
        scores[found.summary.id] = scores.get(found.summary.id, 0) + 1 / (RRF_K + rank)
        passage = found.passage if found.passage != found.summary.name else ""
        short = passage[:SNIPPET_CHARS] + ("…" if len(passage) > SNIPPET_CHARS else "")
        hits.setdefault(found.summary.id, SearchHit(found.summary, short))
    order = sorted(scores, key=lambda cid: scores[cid], reverse=True)
    return [hits[cid] for cid in order[:limit]]
