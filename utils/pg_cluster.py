"""A throwaway PostgreSQL cluster for the tests and benchmarks: Debian's server binaries, a new cluster in a
temporary folder, on a free loopback port, trusted without a password, removed when it stops.

Run as root (CI), the server runs as the `postgres` user the package makes: PostgreSQL refuses root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from utils.local_server import free_port


def binaries() -> Path | None:
    """The folder of Debian's PostgreSQL server programs (the newest installed), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def cluster(database: str = "bnagpt") -> Iterator[str]:
    """Start a new cluster with one database; yield its URL; stop and remove it after."""
    bin_dir = binaries()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="bnagpt-pg-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = free_port()
    run = subprocess.run
    try:
        run(
            _as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E",
                             "UTF8", "--no-sync"]),
            check=True, capture_output=True,
        )  # fmt: skip
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        run(
            _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"),
                             "-o", options, "-w", "start"]),
            check=True, capture_output=True,
        )  # fmt: skip
        run(
            _as_server_user([str(bin_dir.parent / "bin" / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                             "-U", "postgres", database]),
            check=True, capture_output=True,
        )  # fmt: skip
        yield f"postgresql://postgres@127.0.0.1:{port}/{database}"
    finally:
        if data.exists():
            run(
                _as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                capture_output=True,
            )  # fmt: skip
        time.sleep(0.1)
        shutil.rmtree(folder, ignore_errors=True)
