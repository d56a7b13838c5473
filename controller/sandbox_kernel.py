"""The process that runs a chat's code inside the sandbox, like a notebook kernel.

Passed to `python -I -c` by `controller/sandbox.py`, so it uses the standard library only and never
imports the app. Two processes: the kernel talks to the app (requests on its stdin, replies on its stdout,
each a 4-byte length then JSON) and runs nothing itself; it forks a worker that runs the code, holds its
variables and answers the kernel on pipes of its own. The worker never has the app's channel: its copies
are closed at the fork, and the kernel makes itself non-dumpable, so the code cannot reopen them through
/proc either. Whatever the worker sends is checked as untrusted: a result it cannot read is a clear error.
The code's stdout and stderr go to files, so nothing it prints can be mistaken for a result. The kernel
lowers the rlimits before the fork, and after each run kills every other process of its PID namespace, so
nothing the code started outlives the run (the app then freezes the session until the next run).
"""

import ast
import base64
import binascii
import contextlib
import ctypes
import io
import json
import os
import resource
import select
import shutil
import signal
import struct
import sys
import time
import traceback
import warnings

WORK = "/workspace"
INPUTS = "/workspace/files"  # the chat's attached files, read-only
SITE = "/opt/sandbox/site"
OUTPUT_DIR = "/tmp/.run"
SHOWN_CHARS = 20_000  # of stdout, stderr and the last value
MAX_FILES = 20
MAX_FILE_BYTES = 8 * 2**20
MAX_RETURNED_BYTES = 16 * 2**20
MAX_RESULT_BYTES = 48 * 2**20  # of a worker's result: its figures, mostly
OUT_PATH, ERR_PATH = OUTPUT_DIR + "/out", OUTPUT_DIR + "/err"
PR_SET_DUMPABLE = 4


class RunTimeout(BaseException):
    """The run took longer than its wall-clock limit (a BaseException: `except Exception` cannot eat it)."""


def _read_exactly(fd, size, deadline=None):
    """`size` bytes from a pipe; EOFError if it closes first, TimeoutError past `deadline` (monotonic)."""
    data = b""
    while len(data) < size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def receive(fd):
    (size,) = struct.unpack(">I", _read_exactly(fd, 4))
    return json.loads(_read_exactly(fd, size))


def send(message, fd):
    data = json.dumps(message).encode()
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def lower_limits(limits):
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def snapshot():
    """Every file of the working folder (the inputs aside): path -> (mtime, size)."""
    seen = {}
    for root, dirs, files in os.walk(WORK):
        dirs[:] = [d for d in dirs if os.path.join(root, d) != INPUTS]
        for name in files:
            path = os.path.join(root, name)
            try:
                stat = os.lstat(path)
            except OSError:
                continue
            if os.path.isfile(path) and not os.path.islink(path):
                seen[path] = (stat.st_mtime_ns, stat.st_size)
            if len(seen) >= 5000:
                return seen
    return seen


def written_files(before):
    """The files the run made or changed, with their bytes while they fit in the caps."""
    found, total = [], 0
    for path, (mtime, size) in sorted(snapshot().items()):
        if before.get(path) == (mtime, size):
            continue
        entry = {"name": os.path.relpath(path, WORK), "size": size, "data": None}
        if len(found) >= MAX_FILES:
            break
        if size <= MAX_FILE_BYTES and total + size <= MAX_RETURNED_BYTES:
            try:
                with open(path, "rb") as handle:
                    entry["data"] = base64.b64encode(handle.read(MAX_FILE_BYTES + 1)).decode()
                total += size
            except OSError:
                pass
        found.append(entry)
    return found


def figures():
    """The open matplotlib figures as PNG, then closed (as a notebook shows and forgets them)."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is None:
        return []
    images = []
    for number in pyplot.get_fignums()[:MAX_FILES]:
        buffer = io.BytesIO()
        try:
            pyplot.figure(number).savefig(buffer, format="png", dpi=100, bbox_inches="tight")
            images.append(base64.b64encode(buffer.getvalue()).decode())
        except Exception:  # a broken figure is the code's problem: report the others
            traceback.print_exc()
    pyplot.close("all")
    return images


def shown(path):
    """The start of an output file, and how much was left out."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(SHOWN_CHARS * 4)
    except OSError:
        return "", 0
    text = head.decode("utf-8", "replace")[:SHOWN_CHARS]
    return text, max(0, size - len(text.encode("utf-8", "replace")))


def kill_strays(keep):
    """Kill every process of this sandbox but its init (PID 1), this kernel and `keep` (the worker); reap
    what is ours."""
    me = os.getpid()
    for _ in range(50):
        others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me, keep)]
        if not others:
            break
        for pid in others:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        time.sleep(0.005)


def reap():
    """Collect the exit of every child that has ended (killed strays otherwise stay as zombies)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _timeout(signum, frame):
    raise RunTimeout()


def execute(code, namespace, seconds, worker_pid):
    """In the worker: run one cell with stdout and stderr going to the output files."""
    reap()  # what the last run forked was killed by the kernel: its entries go
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, path in ((1, OUT_PATH), (2, ERR_PATH)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(handle, fd)
        os.close(handle)
    value, error, timed_out = None, None, False
    started = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        tree = ast.parse(code, "<cell>", "exec")
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "<cell>", "exec"), namespace)
        if last is not None:
            result = eval(compile(ast.Expression(last.value), "<cell>", "eval"), namespace)
            if result is not None:
                value = repr(result)[:SHOWN_CHARS]
    except RunTimeout:
        timed_out = True
        error = f"Stopped: the code ran longer than {seconds:g} seconds."
    except SystemExit as stop:
        if stop.code not in (None, 0):
            error = f"The code exited with status {stop.code!r}."
    except BaseException as failure:  # anything the code raises is its result
        frames = traceback.extract_tb(failure.__traceback__)
        user = [f for f in frames if f.filename != "<string>"]  # the kernel's own frames left out
        error = "".join(
            ["Traceback (most recent call last):\n"] * bool(user)
            + traceback.format_list(user)
            + traceback.format_exception_only(type(failure), failure)
        )
    finally:
        if os.getpid() != worker_pid:
            os._exit(0)  # a child the code forked ends here, never in the worker's loop
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds_taken = time.monotonic() - started
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    return {
        "value": value,
        "error": error,
        "timed_out": timed_out,
        "figures": figures(),
        "seconds": seconds_taken,
    }


def work(requests, replies):
    """The worker's loop: cells from the kernel, results back."""
    me = os.getpid()
    signal.signal(signal.SIGALRM, _timeout)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file over the size limit fails its write instead
    warnings.filterwarnings("ignore", message=".*non-interactive.*")  # plt.show() under Agg
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    while True:
        try:
            request = receive(requests)
        except EOFError:
            os._exit(0)
        result = execute(request["code"], namespace, float(request["seconds"]), me)
        send(result | {"run": request["run"]}, replies)


def _checked(result, seconds):
    """The worker's result as the kernel passes it on; ValueError if it is not what a worker sends."""
    if not isinstance(result, dict):
        raise ValueError("not an object")
    value, error = result.get("value"), result.get("error")
    images = result.get("figures", [])
    if not all(isinstance(x, (str, type(None))) for x in (value, error)):
        raise ValueError("value and error must be text")
    if not isinstance(images, list) or len(images) > MAX_FILES:
        raise ValueError("figures must be a list")
    for image in images:
        if not isinstance(image, str) or not base64.b64decode(image, validate=True).startswith(b"\x89PNG"):
            raise ValueError("a figure is not a PNG image")
    taken = result.get("seconds", 0.0)
    if not isinstance(taken, (int, float)) or isinstance(taken, bool):
        raise ValueError("seconds must be a number")
    return {
        "value": value[:SHOWN_CHARS] if value else value,
        "error": error[: SHOWN_CHARS * 2] if error else error,
        "timed_out": result.get("timed_out") is True,
        "figures": images,
        "seconds": min(float(taken), seconds + 5),
    }


class Worker:
    """The process that runs the code, seen from the kernel."""

    def __init__(self, channel):
        to_worker_read, self.requests = os.pipe()
        self.replies, from_worker_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            for fd in (*channel, self.requests, self.replies):
                os.close(fd)  # the app's channel and the kernel's ends never reach the code
            try:
                work(to_worker_read, from_worker_write)
            finally:
                os._exit(0)
        os.close(to_worker_read)
        os.close(from_worker_write)
        self.number = 0  # of the last cell sent: the worker's result carries it

    def run(self, code, seconds):
        """The worker's result for this cell (results of earlier cells still in the pipe are skipped);
        raise EOFError if it died, TimeoutError if it does not answer, ValueError for what is no result."""
        self.number += 1
        send({"code": code, "seconds": seconds, "run": self.number}, self.requests)
        deadline = time.monotonic() + seconds + 2
        while True:
            (size,) = struct.unpack(">I", _read_exactly(self.replies, 4, deadline))
            if size > MAX_RESULT_BYTES:
                raise ValueError("a result larger than any the kernel accepts")
            result = json.loads(_read_exactly(self.replies, size, deadline))
            number = result.get("run") if isinstance(result, dict) else None
            if not isinstance(number, int) or isinstance(number, bool) or number > self.number:
                raise ValueError("a message that is no cell's result")
            if number == self.number:
                return result

    def stop(self):
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        for fd in (self.requests, self.replies):
            with contextlib.suppress(OSError):
                os.close(fd)


def run(worker, code, seconds):
    """In the kernel: one cell run by the worker, with what it printed and wrote; a dead or unreadable
    worker is reported as the session lost."""
    before = snapshot()
    for path in (OUT_PATH, ERR_PATH):
        with contextlib.suppress(OSError):
            os.remove(path)
    lost, timed_out = None, False
    try:
        reply = _checked(worker.run(code, seconds), seconds)
    except TimeoutError:
        lost, timed_out = f"The code ran longer than {seconds:g} seconds and did not stop when asked.", True
    except EOFError:
        lost = "The session ended (the code exited or killed its own interpreter)."
    except (ValueError, TypeError, KeyError, binascii.Error, RecursionError, UnicodeDecodeError) as problem:
        lost = f"The run's result could not be read ({problem}): the code wrote to the session's channel."
    kill_strays(keep=worker.pid)
    if lost is not None:
        return {"lost": lost, "timed_out": timed_out}
    stdout, stdout_left = shown(OUT_PATH)
    stderr, stderr_left = shown(ERR_PATH)
    for path in (OUT_PATH, ERR_PATH):
        with contextlib.suppress(OSError):
            os.remove(path)
    return reply | {
        "stdout": stdout,
        "stdout_left": stdout_left,
        "stderr": stderr,
        "stderr_left": stderr_left,
        "files": written_files(before),
    }


def main():
    # The app's channel leaves fds 0 and 1 (which the code could write to) for private descriptors.
    requests, replies = os.dup(0), os.dup(1)
    quiet = os.open(os.devnull, os.O_RDWR)
    os.dup2(quiet, 0)
    os.dup2(quiet, 1)
    os.close(quiet)
    # Non-dumpable: /proc/<kernel>/fd is then closed to the code, though it runs as the same user.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    sys.path.insert(0, SITE)
    setup = receive(requests)
    mplconfig = os.environ.get("MPLCONFIGDIR")
    if mplconfig and os.path.isdir("/opt/sandbox/mplconfig"):
        shutil.copytree("/opt/sandbox/mplconfig", mplconfig, dirs_exist_ok=True)  # the font cache, made once
    lower_limits(setup["limits"])
    os.chdir(WORK)
    worker = Worker((requests, replies))
    send({"ready": True}, replies)
    while True:
        try:
            request = receive(requests)
        except EOFError:
            worker.stop()
            sys.exit(0)  # the app closed the session
        reply = run(worker, request["code"], float(request["seconds"]))
        send(reply, replies)
        if "lost" in reply:
            worker.stop()
            sys.exit(0)


main()
