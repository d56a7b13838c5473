"""Running the code a chat writes: one sandboxed Python session per chat, like a notebook.

Each session is a kernel (`controller/sandbox_kernel.py`) inside a bubblewrap namespace, started as an
unprivileged uid (never root: bwrap run by root leaves /proc/sys writable), with no network, a read-only
/usr, private tmpfs /tmp and /work (capped in size), no environment but a few locale variables, no view
of the app's files, and rlimits on memory, CPU, file size, processes and open files. The host keeps a
wall-clock limit on every run and kills the whole session if the kernel does not stop in time. There is no
fallback: where bwrap or the sandbox's Python is missing, `problem()` says what to install and nothing runs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import itertools
import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from controller import cgroups
from errors import SandboxUnavailable

NOBODY = 65534
KERNEL = (Path(__file__).with_name("sandbox_kernel.py")).read_text(encoding="utf-8")
IDLE_SECONDS = 15 * 60  # a session unused this long is reclaimed (its variables go)
MAX_SESSIONS = 12  # beyond this, the least recently used session is reclaimed first
START_SECONDS = 20.0
_GRACE = 3.0  # seconds after the run's own limit before the host kills the session
_MAX_REPLY = 64 * 2**20


@dataclass(frozen=True, slots=True)
class Limits:
    """What one session may use."""

    run_seconds: float = 30.0  # wall clock, per run
    cpu_seconds: int = 600  # per process of the session
    memory_mb: int = 1024  # address space per process (numpy, pandas and matplotlib take 230 MB)
    session_memory_mb: int = 1024  # every process of a session together, files in /tmp included (cgroups)
    total_memory_mb: int = 3072  # every session together (cgroups)
    file_mb: int = 64  # any one file, the output included
    work_mb: int = 200  # the working folder, in total
    tmp_mb: int = 100
    processes: int = 64
    open_files: int = 256

    def rlimits(self) -> dict[str, int]:
        """The kernel's rlimits, by `resource` name."""
        return {
            "RLIMIT_AS": self.memory_mb * 2**20,
            "RLIMIT_CPU": self.cpu_seconds,
            "RLIMIT_FSIZE": self.file_mb * 2**20,
            "RLIMIT_NPROC": self.processes,
            "RLIMIT_NOFILE": self.open_files,
            "RLIMIT_CORE": 0,
        }


@dataclass(frozen=True, slots=True)
class OutputFile:
    """A file the code wrote; `data` is None when it was too big to bring back."""

    name: str
    size: int
    data: bytes | None


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a run printed, returned, drew and wrote, or why it failed."""

    stdout: str = ""
    stderr: str = ""
    value: str | None = None
    error: str | None = None
    figures: tuple[bytes, ...] = ()
    files: tuple[OutputFile, ...] = ()
    seconds: float = 0.0
    timed_out: bool = False
    restarted: bool = False  # the session was lost: variables defined before are gone

    @property
    def ok(self) -> bool:
        """Whether the code ran to its end without an error."""
        return self.error is None


class _Session:
    """One kernel process and the folder of the chat's files it reads."""

    def __init__(
        self, command: list[str], inputs: Path, uid: int | None, limits: Limits, group: cgroups.Group | None
    ) -> None:
        self.inputs = inputs
        self.group = group
        self.lock = threading.Lock()  # one run at a time
        self.used = time.monotonic()
        environment = {"PATH": "/usr/bin:/bin"}
        if group is not None:
            # A shell joins the session's group, then becomes bwrap: everything the session starts is in it.
            # It joins while still root (cgroup v2 asks the writer for the common ancestor's rights), then
            # setpriv drops to the sandbox's user.
            environment["BNAGPT_CGROUP_PROCS"] = " ".join(str(p) for p in group.procs)
            if uid is not None and shutil.which("setpriv"):
                drop = [
                    shutil.which("setpriv") or "setpriv",
                    f"--reuid={uid}",
                    f"--regid={uid}",
                    "--clear-groups",
                ]
                command, uid = [*drop, "--", *command], None
            command = ["/bin/sh", "-c", _JOIN_GROUP, "sh", *command]
        requests_read, self._requests = os.pipe()
        self._replies, replies_write = os.pipe()
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 - open for the session's life
        try:
            # The kernel's channel is its stdin and stdout, which it moves out of the code's reach at once
            # (controller/sandbox_kernel.py): nothing of it is in any command line.
            self.process = subprocess.Popen(
                command,
                stdin=requests_read,
                stdout=replies_write,
                stderr=self._errors,
                user=uid,
                group=uid,
                extra_groups=[] if uid is not None else None,
                start_new_session=True,
                env=environment,  # bwrap clears it for the code (--clearenv)
            )
        finally:
            os.close(requests_read)
            os.close(replies_write)
        self.send({"limits": limits.rlimits()})
        ready = self.receive(START_SECONDS)
        if not ready.get("ready"):
            raise SandboxUnavailable("The sandbox did not start.")

    def send(self, message: dict) -> None:
        data = json.dumps(message).encode()
        try:
            os.write(self._requests, struct.pack(">I", len(data)) + data)
        except OSError:
            raise _SessionLost(self._why()) from None

    def receive(self, seconds: float) -> dict:
        deadline = time.monotonic() + seconds
        header = self._read(4, deadline)
        (size,) = struct.unpack(">I", header)
        if size > _MAX_REPLY:
            raise _SessionLost("The session sent more than the app accepts.")
        try:
            reply = json.loads(self._read(size, deadline))
        except (ValueError, RecursionError):
            raise _SessionLost("The session sent a reply the app cannot read.") from None
        if not isinstance(reply, dict):
            raise _SessionLost("The session sent a reply the app cannot read.")
        if isinstance(reply.get("lost"), str):
            if reply.get("timed_out") is True:
                raise TimeoutError  # the kernel stopped a run that did not stop when asked
            raise _SessionLost(reply["lost"])
        return reply

    def _read(self, size: int, deadline: float) -> bytes:
        data = b""
        while len(data) < size:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._replies], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(self._replies, min(size - len(data), 2**20))
            if not chunk:
                raise _SessionLost(self._why())
            data += chunk
        return data

    def _why(self) -> str:
        """What the session's end looked like, for the user."""
        code = self.process.poll()
        if code is None:
            try:
                code = self.process.wait(1)
            except subprocess.TimeoutExpired:
                code = None
        self._errors.seek(0)
        said = self._errors.read(2000).decode("utf-8", "replace").strip()
        if code is not None and code < 0:
            return f"The session was killed by signal {-code} (a resource limit, probably)."
        if said and "bwrap" in said:
            return f"The sandbox failed: {said.splitlines()[-1]}"
        return "The session ended (the code exited or killed its own interpreter)."

    def alive(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        if self.group is not None:
            self.group.remove()  # every process of the session, wherever it moved its process group
        with contextlib.suppress(OSError):
            os.killpg(self.process.pid, 9)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        for fd in (self._requests, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._errors.close()
        shutil.rmtree(self.inputs, ignore_errors=True)


_JOIN_GROUP = 'for p in $BNAGPT_CGROUP_PROCS; do echo $$ > "$p" || exit 111; done; exec "$@"'
FALLBACK_SESSIONS = 4  # without control groups: fewer sessions and processes, stated in Settings
FALLBACK_PROCESSES = 16


class _SessionLost(Exception):
    """The kernel died or broke the protocol; the message says how."""


class Sandbox:
    """The sandboxed Python sessions of one app process, by chat."""

    def __init__(
        self,
        directory: Path,
        python: str = "/usr/bin/python3",
        limits: Limits | None = None,
        max_sessions: int = MAX_SESSIONS,
        control_groups: Path = cgroups.ROOT,
        slot_wait: float = 30.0,
    ) -> None:
        self.directory = directory
        self.control_groups = control_groups
        self.python = python
        self.limits = limits or Limits()
        self.max_sessions = max_sessions
        self.slot_wait = slot_wait  # seconds a new chat's run waits for a session to be free
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._problem: str | None = None
        self._checked = False
        self._bwrap = ""  # its path, found by the check
        self._groups: cgroups.Hierarchy | None = None
        self.enforced = ""  # what the sessions' limits are, for Settings
        self._numbers = itertools.count(1)  # sessions started, for their groups' names
        self._reaper = threading.Thread(target=self._reap, name="sandbox-reaper", daemon=True)
        self._reaper.start()
        # Sessions are started from one long-lived thread: bwrap's --die-with-parent follows the thread
        # that started it, and Streamlit ends a thread with every script run.
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spawner")

    # -- availability ---------------------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why code cannot run on this machine (what to install), or None when it can."""
        with self._lock:
            if not self._checked:
                self._problem = self._check()
                self._checked = True
            return self._problem

    def _check(self) -> str | None:
        self._bwrap = shutil.which("bwrap") or ""
        if not self._bwrap:
            return (
                "Running code needs bubblewrap, which is not installed: install it "
                "(Debian/Ubuntu: `apt-get install bubblewrap`) and restart bnaGPT."
            )
        if not Path(self.python).is_file():
            return (
                f"Running code needs a system Python at {self.python}: install python3, "
                "or set BNAGPT_SANDBOX_PYTHON."
            )
        if not (self.directory / "site").is_dir():
            return f"The sandbox's libraries are not set up in {self.directory}: run `make install`."
        if os.geteuid() == 0 and _uid() == 0:
            return "Code is never run as root: set BNAGPT_SANDBOX_UID to an unprivileged user id."
        self._limit_sessions()
        try:
            try:
                session = self._start(Path(tempfile.mkdtemp(prefix="bnagpt-check-")))
            except (SandboxUnavailable, _SessionLost, TimeoutError, OSError) as error:
                if self._groups is None:
                    raise
                # The groups could be made but a session cannot join one here: go without them.
                self._groups.remove()
                self._groups = None
                self._without_groups(f"no session could join a control group ({error})")
                session = self._start(Path(tempfile.mkdtemp(prefix="bnagpt-check-")))
        except (SandboxUnavailable, _SessionLost, TimeoutError, OSError) as error:
            why = error or "no answer"
            return f"bubblewrap cannot make a sandbox on this machine ({why}); code does not run."
        session.close()
        return None

    def _limit_sessions(self) -> None:
        """Cap the sessions with control groups where the host offers them; else fewer, smaller sessions."""
        limits = self.limits
        caps = cgroups.Caps(limits.session_memory_mb, limits.total_memory_mb, limits.processes)
        self._groups, why = cgroups.find(caps, self.control_groups)
        if self._groups is not None:
            self.enforced = why
            return
        self._without_groups(why)

    def _without_groups(self, why: str) -> None:
        """Fewer sessions and processes, and say so, where no control group holds them."""
        limits = self.limits
        self.max_sessions = min(self.max_sessions, FALLBACK_SESSIONS)
        self.limits = replace(limits, processes=min(limits.processes, FALLBACK_PROCESSES))
        self.enforced = (
            f"per process only, as {why}: {self.limits.memory_mb:,} MB per process, "
            f"{self.limits.processes} processes for all sessions together, at most {self.max_sessions} "
            "sessions; a run's code could still use that much memory in each process it starts"
        )

    # -- running --------------------------------------------------------------------------------------

    def run(self, chat_id: str, code: str, files: Sequence[tuple[str, Path]] = ()) -> RunResult:
        """Run `code` in the chat's session (started if needed) with the chat's `files` (name, path)
        readable in ./files; raise SandboxUnavailable when code cannot run here."""
        problem = self.problem()
        if problem:
            raise SandboxUnavailable(problem)
        session = self._session(chat_id)
        with session.lock:
            if not session.alive():
                self._forget(chat_id, session)
                return self.run(chat_id, code, files)
            _sync_inputs(session.inputs, files)
            session.used = time.monotonic()
            started = time.monotonic()
            try:
                if session.group is not None:
                    session.group.thaw()
                session.send({"code": code, "seconds": self.limits.run_seconds})
                reply = session.receive(self.limits.run_seconds + _GRACE)
                if session.group is not None:
                    session.group.freeze()  # threads or processes the code left running stop here
            except TimeoutError:
                self._forget(chat_id, session)
                return RunResult(
                    error=f"Stopped: the code ran longer than {self.limits.run_seconds:g} seconds and did "
                    "not stop when asked, so its session was restarted (variables defined before are gone).",
                    seconds=time.monotonic() - started,
                    timed_out=True,
                    restarted=True,
                )
            except _SessionLost as lost:
                self._forget(chat_id, session)
                return RunResult(
                    error=f"{lost} Its session was restarted: variables defined before are gone.",
                    seconds=time.monotonic() - started,
                    restarted=True,
                )
            session.used = time.monotonic()
        return _result(reply)

    def restart(self, chat_id: str) -> None:
        """End the chat's session (its variables go); the next run starts a new one."""
        with self._lock:
            session = self._sessions.pop(chat_id, None)
        if session is not None:
            session.close()

    def memory_peak(self, chat_id: str) -> int | None:
        """The most memory the chat's session has used at once, in bytes, as the host counts it (None
        without control groups or without a session)."""
        with self._lock:
            session = self._sessions.get(chat_id)
        return session.group.memory_peak() if session is not None and session.group is not None else None

    def processes(self, chat_id: str) -> list[int]:
        """The host's pids of the chat's session (empty without control groups or a session)."""
        with self._lock:
            session = self._sessions.get(chat_id)
        return session.group.pids() if session is not None and session.group is not None else []

    def sessions(self) -> int:
        """How many sessions are running."""
        with self._lock:
            return len(self._sessions)

    def close(self) -> None:
        """End every session."""
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()
        if self._groups is not None:
            self._groups.remove()

    def _session(self, chat_id: str) -> _Session:
        deadline = time.monotonic() + self.slot_wait
        while True:
            with self._lock:
                session = self._sessions.get(chat_id)
                if session is not None:
                    return session
                # Only an idle session makes room: one running code is never cut short for another.
                idle = [k for k, v in self._sessions.items() if not v.lock.locked()]
                if len(self._sessions) < self.max_sessions or idle:
                    while len(self._sessions) >= self.max_sessions and idle:
                        oldest = min(idle, key=lambda k: self._sessions[k].used)
                        idle.remove(oldest)
                        self._sessions.pop(oldest).close()
                    break
            if time.monotonic() > deadline:
                raise SandboxUnavailable(
                    f"All {self.max_sessions} code sessions are busy running code; this run waited "
                    f"{self.slot_wait:g} s for one to finish. Try again in a moment."
                )
            time.sleep(0.1)
        session = self._start(Path(tempfile.mkdtemp(prefix="bnagpt-files-")))
        with self._lock:
            if chat_id in self._sessions:  # another tab of the chat started one meanwhile
                session.close()
                return self._sessions[chat_id]
            self._sessions[chat_id] = session
        return session

    def _start(self, inputs: Path) -> _Session:
        uid = _uid()
        if uid is not None:
            os.chown(inputs, uid, uid)
        group = None
        if self._groups is not None:
            try:
                group = self._groups.create(f"session-{next(self._numbers)}", uid)
            except OSError as error:
                shutil.rmtree(inputs, ignore_errors=True)
                raise SandboxUnavailable(f"The session's limits could not be set ({error}).") from None
        try:
            command = self._command(inputs)
            return self._spawner.submit(_Session, command, inputs, uid, self.limits, group).result()
        except (_SessionLost, TimeoutError) as error:
            shutil.rmtree(inputs, ignore_errors=True)
            if group is not None:
                group.remove()
            raise SandboxUnavailable(f"The sandbox did not start: {error or 'no answer'}") from None

    def _command(self, inputs: Path) -> list[str]:
        limits = self.limits
        return [
            self._bwrap,
            "--unshare-all",  # network, PID, IPC, UTS, cgroup and user namespaces
            "--unshare-user",
            "--disable-userns",  # no namespaces of its own inside: no unshare, no mount
            "--die-with-parent",
            # The kernel is the sandbox's PID 1: no bwrap init inside holding the app's channel as its
            # stdin and stdout (/proc/1/fd would reopen it), and the code cannot kill the kernel.
            "--as-pid-1",
            "--new-session",
            "--hostname", "sandbox",
            "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/bin", "/bin",
            "--ro-bind", str(self.directory), "/opt/sandbox",
            "--proc", "/proc",
            "--dev", "/dev",
            "--size", str(limits.tmp_mb * 2**20), "--tmpfs", "/tmp",
            "--size", str(limits.work_mb * 2**20), "--tmpfs", "/workspace",
            "--ro-bind", str(inputs), "/workspace/files",
            "--remount-ro", "/",  # the root: only /tmp and /work take writes
            "--chdir", "/workspace",
            "--clearenv",
            "--setenv", "HOME", "/workspace",
            "--setenv", "PATH", "/usr/bin:/bin",
            "--setenv", "LANG", "C.UTF-8",
            "--setenv", "MPLBACKEND", "Agg",
            "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib",
            "--setenv", "OPENBLAS_NUM_THREADS", "1",
            "--setenv", "OMP_NUM_THREADS", "1",
            "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
            "--",
            self.python, "-I", "-c", KERNEL,
        ]  # fmt: skip

    def _forget(self, chat_id: str, session: _Session) -> None:
        with self._lock:
            if self._sessions.get(chat_id) is session:
                del self._sessions[chat_id]
        session.close()

    def _reap(self) -> None:
        while True:
            time.sleep(30)
            now = time.monotonic()
            with self._lock:
                idle = [
                    k
                    for k, s in self._sessions.items()
                    if now - s.used > IDLE_SECONDS and not s.lock.locked()
                ]
                ended = [self._sessions.pop(k) for k in idle]
            for session in ended:
                session.close()


def _uid() -> int | None:
    """The uid code runs as: an unprivileged one when the app is root, else the app's own."""
    if os.geteuid() != 0:
        return None
    return int(os.environ.get("BNAGPT_SANDBOX_UID") or NOBODY)


def _sync_inputs(folder: Path, files: Sequence[tuple[str, Path]]) -> None:
    """Make the session's files folder hold exactly the chat's files."""
    wanted = {name: path for name, path in files}
    for present in folder.iterdir():
        if present.name not in wanted:
            present.unlink(missing_ok=True)
    uid = _uid()
    for name, source in wanted.items():
        target = folder / name
        if target.exists() and target.stat().st_size == source.stat().st_size:
            continue
        shutil.copyfile(source, target)
        target.chmod(0o444)
        if uid is not None:
            os.chown(target, uid, uid)


def _result(reply: dict) -> RunResult:
    """The kernel's reply as a result; one that does not read as a reply is an error saying so."""
    try:
        return _read_result(reply)
    except (TypeError, ValueError, KeyError, AttributeError, binascii.Error):
        return RunResult(error="The run's result could not be read: the session sent something else.")


def _read_result(reply: dict) -> RunResult:
    stdout, stderr = reply.get("stdout", ""), reply.get("stderr", "")
    if reply.get("stdout_left"):
        stdout += f"\n… {reply['stdout_left']:,} more bytes of output not shown"
    if reply.get("stderr_left"):
        stderr += f"\n… {reply['stderr_left']:,} more bytes not shown"
    return RunResult(
        stdout=stdout,
        stderr=stderr,
        value=reply.get("value"),
        error=reply.get("error"),
        figures=tuple(base64.b64decode(f) for f in reply.get("figures", ())),
        files=tuple(
            OutputFile(f["name"], int(f["size"]), base64.b64decode(f["data"]) if f.get("data") else None)
            for f in reply.get("files", ())
        ),
        seconds=float(reply.get("seconds", 0.0)),
        timed_out=bool(reply.get("timed_out")),
    )
