"""Writing files so that a crash leaves the old version or the new one, never a mix."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from errors import StoreError

TEMP_PREFIX, TEMP_SUFFIX = ".bnagpt-", ".tmp"


def atomic_write(path: Path, data: bytes, temp_folder: Path | None = None, durable: bool = True) -> None:
    """Replace `path` with `data` through a temp file (in `temp_folder`, by default beside it).

    `durable` also flushes it to disk before returning (fsync of the file and its folder), so that it
    survives a power cut, not just a crash of the app. A writer killed midway leaves a temp file named
    TEMP_PREFIX…TEMP_SUFFIX, which the owner of the folder may remove.
    """
    fd, tmp = tempfile.mkstemp(dir=temp_folder or path.parent, prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if not durable:
        return
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def set_aside(path: Path) -> Path:
    """Move a file that could not be read out of the way, untouched, under a name saying when; return it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    aside = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, aside)
    return aside


@contextmanager
def locked(lock: FileLock, path: Path) -> Iterator[None]:
    """Hold the cross-process `lock` guarding `path` (creating its folder); failures become StoreError."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with lock:
            yield
    except Timeout:
        raise StoreError(
            f"Another bnaGPT process has held {path.name} locked for over {lock.timeout:.0f} s. Try again; "
            "if it persists, restart the app."
        ) from None
    except OSError as error:
        raise StoreError(
            f"Could not save to {path.parent}: {error.strerror or error}. Check that the folder exists "
            "and is writable, or point BNAGPT_DATA_DIR at one that is."
        ) from None
