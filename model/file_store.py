"""Attached files' bytes and their search indexes, in the data folder.

- `files/<sha256>`: a file's bytes, named by their hash (a name from outside is never a path), written
  once and shared by every chat and assistant that attached the same bytes;
- `indexes/<sha256>.<embedder>.json` and `.npy`: its passages and their embeddings, made once per file and
  embedding model, so a restart or a new chat with the same file costs a read, not a re-index.
A file no chat or assistant refers to any more is removed with its indexes by `keep_only`.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from utils.files import atomic_write


@dataclass(frozen=True, slots=True)
class Passage:
    """A piece of a file's text and where in the file it is."""

    text: str
    location: str  # "page 3", "Sheet1, rows 2–9", "" for a file without parts


class FileStore:
    """The data folder's `files/` and `indexes/`."""

    def __init__(self, data_dir: Path) -> None:
        self.files = Path(data_dir) / "files"
        self.indexes = Path(data_dir) / "indexes"

    def put(self, data: bytes) -> str:
        """Store bytes (once); return their SHA-256."""
        sha = hashlib.sha256(data).hexdigest()
        path = self.files / sha
        if not path.exists():
            self.files.mkdir(parents=True, exist_ok=True)
            atomic_write(path, data)
        return sha

    def read(self, sha: str) -> bytes:
        """A stored file's bytes; raise FileNotFoundError."""
        return self._file(sha).read_bytes()

    def path(self, sha: str) -> Path:
        """Where a stored file's bytes are (to hand to the code sandbox, read-only)."""
        return self._file(sha)

    def has(self, sha: str) -> bool:
        """Whether the bytes are stored."""
        return self._file(sha).is_file()

    def save_index(self, sha: str, embedder: str, passages: list[Passage], vectors: np.ndarray) -> None:
        """Keep a file's passages and embeddings."""
        rows = [[p.text, p.location] for p in passages]
        write_vectors(self._stem(sha, embedder), {"passages": rows}, vectors)

    def load_index(self, sha: str, embedder: str) -> tuple[list[Passage], np.ndarray] | None:
        """A file's passages and embeddings, or None if it has no usable index (it is then made again)."""
        found = read_vectors(self._stem(sha, embedder), "passages")
        if found is None:
            return None
        try:
            return [Passage(str(t), str(loc)) for t, loc in found[0]["passages"]], found[1]
        except (ValueError, TypeError):
            return None

    def has_index(self, sha: str, embedder: str) -> bool:
        """Whether the file was indexed with this embedder."""
        return _beside(self._stem(sha, embedder), "json").is_file()

    def keep_only(self, used: Iterable[str]) -> int:
        """Remove stored files (and their indexes) not in `used`; return how many files went."""
        keep = set(used)
        removed = 0
        for folder in (self.files, self.indexes):
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                sha = path.name.split(".", 1)[0]
                if len(sha) == 64 and sha not in keep:
                    path.unlink(missing_ok=True)
                    removed += folder is self.files
        return removed

    def _file(self, sha: str) -> Path:
        if len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha):
            raise FileNotFoundError(sha)
        return self.files / sha

    def _stem(self, sha: str, embedder: str) -> Path:
        self._file(sha)  # checks the name
        return self.indexes / f"{sha}.{embedder}"


def write_vectors(stem: Path, meta: dict[str, Any], vectors: np.ndarray) -> None:
    """`<stem>.npy` (float32 rows) and `<stem>.json` (`meta`, a list under one key per row). The vectors
    go first: a JSON file says both are complete. Not fsynced: an index lost in a power cut is made again."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    np.save(buffer, vectors.astype(np.float32), allow_pickle=False)
    atomic_write(_beside(stem, "npy"), buffer.getvalue(), durable=False)
    atomic_write(_beside(stem, "json"), json.dumps(meta, ensure_ascii=False).encode(), durable=False)


def read_vectors(stem: Path, rows: str) -> tuple[dict[str, Any], np.ndarray] | None:
    """What `write_vectors` wrote, or None if missing or broken (then made again); `meta[rows]` must have
    one item per vector."""
    try:
        meta = json.loads(_beside(stem, "json").read_bytes())
        vectors = np.load(_beside(stem, "npy"), allow_pickle=False)
    except (OSError, ValueError):
        return None
    if not isinstance(meta, dict) or not isinstance(meta.get(rows), list):
        return None
    if vectors.ndim != 2 or len(vectors) != len(meta[rows]):
        return None
    return meta, vectors


def _beside(stem: Path, suffix: str) -> Path:
    return stem.with_name(f"{stem.name}.{suffix}")  # `with_suffix` would eat the embedder's name
