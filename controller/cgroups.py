"""A control group for each code session: memory (tmpfs included), processes and CPU weight capped for the
whole session, and a freezer that stops everything in it between runs.

Uses what the host offers: cgroup v2 where the app's own group can hand controllers to groups below it,
else the v1 `memory`, `pids`, `cpu` and `freezer` hierarchies where they are mounted and writable. All the
sessions of an app process share one parent group, itself capped, so that together they cannot take the
memory the engine, the app or PostgreSQL need: the kernel's OOM killer then picks inside that group. Where
no group can be made, `find()` says why and the sandbox falls back to per-process limits (sandbox.py).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V1 = ("memory", "pids", "cpu", "freezer")


@dataclass(frozen=True, slots=True)
class Caps:
    """What one session, and all of them together, may use."""

    memory_mb: int
    total_memory_mb: int
    processes: int
    cpu_weight: int = 25  # of 100 (v2); the app, the engine and the browser keep the rest under load


class Group:
    """One session's group: its folder in each hierarchy it uses."""

    def __init__(self, folders: dict[str, Path], v2: bool) -> None:
        self.folders = folders
        self.v2 = v2

    @property
    def procs(self) -> list[Path]:
        """The files a process writes its pid to, to join the group (once per hierarchy)."""
        return [folder / "cgroup.procs" for folder in self.folders.values()]

    def freeze(self) -> None:
        """Stop every process of the session where it is (threads the code left running included)."""
        self._set_frozen(True)

    def thaw(self) -> None:
        """Let the session run again."""
        self._set_frozen(False)

    def memory_peak(self) -> int:
        """The most memory the session used at once, in bytes (0 where the host does not say)."""
        folder = self.folders.get("memory") or self.folders.get("v2")
        for name in ("memory.peak", "memory.max_usage_in_bytes"):
            with contextlib.suppress(OSError, ValueError):
                return int((folder / name).read_text())
        return 0

    def pids(self) -> list[int]:
        """The processes in the group."""
        folder = self.folders.get("pids") or self.folders.get("v2") or next(iter(self.folders.values()))
        with contextlib.suppress(OSError):
            return [int(line) for line in (folder / "cgroup.procs").read_text().split()]
        return []

    def remove(self) -> None:
        """Kill what is left in the group and remove it."""
        self.thaw()  # a frozen process does not die until it is thawed
        for _ in range(100):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)
        for folder in self.folders.values():
            with contextlib.suppress(OSError):
                folder.rmdir()

    def _set_frozen(self, frozen: bool) -> None:
        if self.v2:
            _write(self.folders["v2"] / "cgroup.freeze", "1" if frozen else "0")
        elif "freezer" in self.folders:
            _write(self.folders["freezer"] / "freezer.state", "FROZEN" if frozen else "THAWED")


class Hierarchy:
    """Where this app process makes its sessions' groups."""

    def __init__(self, parents: dict[str, Path], v2: bool, caps: Caps) -> None:
        self.parents = parents
        self.v2 = v2
        self.caps = caps

    @property
    def enforced(self) -> str:
        """What is capped, for Settings."""
        kind = "cgroup v2" if self.v2 else "cgroup v1"
        return (
            f"{self.caps.memory_mb:,} MB of memory (files in /tmp included) and {self.caps.processes} "
            f"processes per session, {self.caps.total_memory_mb:,} MB for all sessions together, a lower CPU "
            f"weight, and everything frozen between runs ({kind})"
        )

    def create(self, name: str, uid: int | None) -> Group:
        """A new group for one session, which `uid` may join; raise OSError if it cannot be made."""
        folders = {key: parent / name for key, parent in self.parents.items()}
        try:
            for folder in folders.values():
                folder.mkdir()
            group = Group(folders, self.v2)
            memory = self.caps.memory_mb * 2**20
            if self.v2:
                _write(folders["v2"] / "memory.max", str(memory))
                _write_if_there(folders["v2"] / "memory.swap.max", "0")
                _write(folders["v2"] / "pids.max", str(self.caps.processes))
                _write_if_there(folders["v2"] / "cpu.weight", str(self.caps.cpu_weight))
            else:
                _write(folders["memory"] / "memory.limit_in_bytes", str(memory))
                _write_if_there(folders["memory"] / "memory.memsw.limit_in_bytes", str(memory))
                _write(folders["pids"] / "pids.max", str(self.caps.processes))
                if "cpu" in folders:
                    _write(folders["cpu"] / "cpu.shares", str(max(2, 1024 * self.caps.cpu_weight // 100)))
            if uid is not None:
                for procs in group.procs:
                    os.chown(procs, uid, -1)
            return group
        except OSError:
            for folder in folders.values():
                with contextlib.suppress(OSError):
                    folder.rmdir()
            raise

    def remove(self) -> None:
        """Remove the parent groups (once every session's group is gone)."""
        for folder in self.parents.values():
            with contextlib.suppress(OSError):
                folder.rmdir()


PREFIX = "bnagpt-sandbox-"
_numbers = itertools.count(1)  # of the sandboxes of this process (tests make several)


def find(caps: Caps, root: Path = ROOT) -> tuple[Hierarchy | None, str]:
    """The hierarchy to use and what it enforces, or None and why no group can be made here."""
    name = f"{PREFIX}{os.getpid()}-{next(_numbers)}"
    try:
        found = _v2(caps, root, name) or _v1(caps, root, name)
    except OSError as error:
        return None, f"no control group could be made here ({error.strerror or error})"
    if found is None:
        return None, "this machine offers no control groups with memory and process controllers"
    return found, found.enforced


def _v2(caps: Caps, root: Path, name: str) -> Hierarchy | None:
    mount = root if (root / "cgroup.controllers").is_file() else root / "unified"
    if not (mount / "cgroup.controllers").is_file():
        return None
    own = next(
        (line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::")),
        "",
    )
    here = mount / own.strip("/")
    if not {"memory", "pids"} <= set((here / "cgroup.controllers").read_text().split()):
        return None
    _remove_stale(here)
    parent = here / name
    parent.mkdir()
    try:
        enabled = set((parent / "cgroup.controllers").read_text().split())
        wanted = [c for c in ("memory", "pids", "cpu") if c in enabled]
        _write(parent / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
        _write(parent / "memory.max", str(caps.total_memory_mb * 2**20))
    except OSError:
        parent.rmdir()
        return None
    return Hierarchy({"v2": parent}, True, caps)


def _v1(caps: Caps, root: Path, name: str) -> Hierarchy | None:
    mounts = {key: root / key for key in V1 if (root / key / "cgroup.procs").is_file()}
    if "memory" not in mounts or "pids" not in mounts:
        return None
    parents: dict[str, Path] = {}
    try:
        for key, mount in mounts.items():
            here = mount / _v1_own(key).strip("/")
            _remove_stale(here)
            parent = here / name
            parent.mkdir()
            parents[key] = parent
        _write(parents["memory"] / "memory.limit_in_bytes", str(caps.total_memory_mb * 2**20))
    except OSError:
        for folder in parents.values():
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return Hierarchy(parents, False, caps)


def _remove_stale(folder: Path) -> None:
    """Remove the empty groups left by app processes that ended (a killed app cannot remove its own)."""
    for stale in folder.glob(PREFIX + "*"):
        pid = stale.name.removeprefix(PREFIX).split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            for child in stale.iterdir():
                if child.is_dir():
                    with contextlib.suppress(OSError):
                        child.rmdir()
            with contextlib.suppress(OSError):
                stale.rmdir()


def _v1_own(controller: str) -> str:
    """This process's group in a v1 hierarchy ("/" where it is at the top)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path
    return "/"


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _write_if_there(path: Path, value: str) -> None:
    if path.exists():
        path.write_text(value)
