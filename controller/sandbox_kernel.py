"""The process that runs a chat's code inside the sandbox, like a notebook kernel.

Passed to `python -I -c` by `controller/sandbox.py`, so it uses the standard library only and never
imports the app. Requests arrive on one pipe and replies leave on another (4-byte length, then JSON): the
code's own stdout and stderr go to files, so nothing it prints can be mistaken for a reply. It lowers its
own rlimits before the first run, and after each run kills every other process of its PID namespace, so
nothing the code started outlives the run.
"""

import ast
import base64
import contextlib
import io
import json
import os
import resource
import shutil
import signal
import struct
import sys
import time
import traceback
import warnings

REQUESTS, REPLIES = int(sys.argv[1]), int(sys.argv[2])  # pipes from the app, by fd number
WORK = "/workspace"
INPUTS = "/workspace/files"  # the chat's attached files, read-only
SITE = "/opt/sandbox/site"
OUTPUT_DIR = "/tmp/.run"
SHOWN_CHARS = 20_000  # of stdout, stderr and the last value
MAX_FILES = 20
MAX_FILE_BYTES = 8 * 2**20
MAX_RETURNED_BYTES = 16 * 2**20
KERNEL_PID = os.getpid()


class RunTimeout(BaseException):
    """The run took longer than its wall-clock limit (a BaseException: `except Exception` cannot eat it)."""


def _read_exactly(size):
    data = b""
    while len(data) < size:
        chunk = os.read(REQUESTS, size - len(data))
        if not chunk:
            sys.exit(0)  # the app closed the session
        data += chunk
    return data


def receive():
    (size,) = struct.unpack(">I", _read_exactly(4))
    return json.loads(_read_exactly(size))


def send(message):
    data = json.dumps(message).encode()
    view = memoryview(struct.pack(">I", len(data)) + data)
    while view:
        view = view[os.write(REPLIES, view) :]


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


def kill_strays():
    """Kill every process of this sandbox but its init (PID 1) and this kernel; reap what is ours."""
    me = os.getpid()
    for _ in range(50):
        others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
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


def _timeout(signum, frame):
    raise RunTimeout()


def run(code, namespace, seconds):
    os.makedirs(OUTPUT_DIR, exist_ok=True)
    out_path, err_path = os.path.join(OUTPUT_DIR, "out"), os.path.join(OUTPUT_DIR, "err")
    sys.stdout.flush()
    sys.stderr.flush()
    for fd, path in ((1, out_path), (2, err_path)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(handle, fd)
        os.close(handle)
    before = snapshot()
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
        if os.getpid() != KERNEL_PID:
            os._exit(0)  # a child the code forked ends here, never in the kernel's loop
        signal.setitimer(signal.ITIMER_REAL, 0)
    seconds_taken = time.monotonic() - started
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except OSError:
        pass
    kill_strays()
    images = figures()
    stdout, stdout_left = shown(out_path)
    stderr, stderr_left = shown(err_path)
    for path in (out_path, err_path):
        with contextlib.suppress(OSError):
            os.remove(path)
    return {
        "stdout": stdout,
        "stdout_left": stdout_left,
        "stderr": stderr,
        "stderr_left": stderr_left,
        "value": value,
        "error": error,
        "timed_out": timed_out,
        "figures": images,
        "files": written_files(before),
        "seconds": seconds_taken,
    }


def main():
    sys.path.insert(0, SITE)
    setup = receive()
    mplconfig = os.environ.get("MPLCONFIGDIR")
    if mplconfig and os.path.isdir("/opt/sandbox/mplconfig"):
        shutil.copytree("/opt/sandbox/mplconfig", mplconfig, dirs_exist_ok=True)  # the font cache, made once
    lower_limits(setup["limits"])
    signal.signal(signal.SIGALRM, _timeout)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file over the size limit fails its write instead
    warnings.filterwarnings("ignore", message=".*non-interactive.*")  # plt.show() under Agg
    os.chdir(WORK)
    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    namespace = {"__name__": "__main__", "__builtins__": __builtins__}
    send({"ready": True})
    while True:
        request = receive()
        send(run(request["code"], namespace, float(request["seconds"])))


main()
