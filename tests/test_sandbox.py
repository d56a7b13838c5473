"""The code sandbox against hostile code: each probe gets a clear result, and other chats keep running."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from controller.sandbox import Limits, RunResult, Sandbox
from errors import SandboxUnavailable
from settings import load_settings
from tests.conftest import wait_until

SECRET = "gsk_sandbox_probe_secret_1234567890"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    settings = load_settings()
    box = Sandbox(
        settings.sandbox_dir, settings.sandbox_python, Limits(run_seconds=5, work_mb=50, memory_mb=512)
    )
    problem = box.problem()
    assert problem is None, problem  # CI installs bubblewrap and the libraries: the sandbox must work
    yield box
    box.close()


def test_a_session_keeps_variables_and_returns_the_last_value(sandbox: Sandbox) -> None:
    first = sandbox.run("notebook", "x = 20\nprint('set')")
    assert first.ok and first.stdout == "set\n" and first.value is None
    second = sandbox.run("notebook", "x + 22")
    assert second.value == "42"
    sandbox.restart("notebook")
    third = sandbox.run("notebook", "x")
    assert "NameError" in third.error and "Traceback" in third.error
    assert "sandbox_kernel" not in third.error and "<string>" not in third.error  # only the code's frames


def test_numpy_pandas_and_a_matplotlib_figure(sandbox: Sandbox) -> None:
    code = (
        "import numpy as np, pandas as pd, matplotlib.pyplot as plt\n"
        "frame = pd.DataFrame({'x': np.arange(5), 'y': np.arange(5) ** 2})\n"
        "frame.plot(x='x', y='y'); plt.show()\n"
        "frame.to_csv('squares.csv', index=False)\n"
        "frame['y'].sum()"
    )
    result = sandbox.run("plots", code)
    assert result.ok, result.error
    assert result.value == "np.int64(30)"
    assert len(result.figures) == 1 and result.figures[0].startswith(b"\x89PNG")
    assert [(f.name, f.data) for f in result.files] == [("squares.csv", b"x,y\n0,0\n1,1\n2,4\n3,9\n4,16\n")]


def test_the_chats_files_are_readable_and_read_only(sandbox: Sandbox, tmp_path: Path) -> None:
    data = tmp_path / "blob"
    data.write_text("name,score\nana,3\n")
    result = sandbox.run("files", "print(open('files/scores.csv').read())", [("scores.csv", data)])
    assert result.stdout == "name,score\nana,3\n\n"
    changed = sandbox.run("files", "open('files/scores.csv', 'w').write('x')", [("scores.csv", data)])
    assert "Read-only file system" in changed.error or "Permission denied" in changed.error
    assert data.read_text() == "name,score\nana,3\n"


def test_an_infinite_loop_is_stopped_and_the_session_survives(sandbox: Sandbox) -> None:
    sandbox.run("loop", "kept = 'still here'")
    result = sandbox.run("loop", "while True:\n    pass")
    assert result.timed_out and "ran longer than 5 seconds" in result.error
    assert sandbox.run("loop", "kept").value == "'still here'"


def test_a_loop_that_swallows_the_stop_is_killed_with_its_session(sandbox: Sandbox) -> None:
    code = (
        "import time\nwhile True:\n    try:\n        time.sleep(60)\n    except BaseException:\n        pass"
    )
    result = sandbox.run("stubborn", code)
    assert result.timed_out and result.restarted and "session was restarted" in result.error
    assert sandbox.run("stubborn", "1 + 1").value == "2"


@pytest.mark.parametrize(
    "code",
    [
        "x = bytearray(10 * 2**30)",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(2**26))",
    ],
    ids=["one-10GB-allocation", "growing-list"],
)
def test_a_memory_bomb_gets_a_memory_error(sandbox: Sandbox, code: str) -> None:
    result = sandbox.run("memory", code)
    assert "MemoryError" in result.error
    assert sandbox.run("memory", "'alive'").value == "'alive'"


def test_a_fork_bomb_is_contained_while_another_chat_runs(sandbox: Sandbox) -> None:
    other: list = []
    worker = threading.Thread(
        target=lambda: other.append(sandbox.run("bystander", "import time; time.sleep(1); sum(range(100))"))
    )
    worker.start()
    bomb = sandbox.run("forks", "import os\nwhile True:\n    os.fork()")
    worker.join()
    assert "BlockingIOError" in bomb.error or "Resource temporarily unavailable" in bomb.error
    assert other[0].value == "4950"
    after = sandbox.run("forks", "import os; sorted(int(p) for p in os.listdir('/proc') if p.isdigit())")
    # The kernel (the sandbox's PID 1) and its worker: every forked process is gone.
    assert after.value == "[1, 2]"


def test_ten_gigabytes_of_output_are_cut_short(sandbox: Sandbox) -> None:
    result = sandbox.run("output", "import sys\nwhile True:\n    sys.stdout.write('x' * 2**20)")
    assert "File too large" in result.error or result.timed_out
    assert len(result.stdout) < 30_000 and "more bytes of output not shown" in result.stdout


def test_the_working_folder_is_capped(sandbox: Sandbox) -> None:
    code = "for n in range(10):\n    open(f'big{n}', 'wb').write(bytes(20 * 2**20))"
    result = sandbox.run("disk", code)
    assert "No space left on device" in result.error
    sandbox.run(
        "disk", "import os\nfor n in range(10):\n    os.path.exists(f'big{n}') and os.remove(f'big{n}')"
    )


@pytest.mark.parametrize(
    "path", ["/usr/probe", "/opt/sandbox/probe", "/etc/probe", "/probe", "/proc/sys/kernel/hostname"]
)
def test_nothing_outside_the_working_folder_can_be_written(sandbox: Sandbox, path: str) -> None:
    result = sandbox.run("writes", f"open({path!r}, 'w').write('x')")
    assert result.error and any(
        word in result.error for word in ("Read-only", "Permission denied", "No such file")
    ), result.error


def test_the_apps_files_environment_and_keys_are_out_of_reach(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROQ_API_KEY", SECRET)
    sandbox.restart("secrets")
    app_dir = Path(__file__).resolve().parent.parent
    code = (
        "import os, glob\n"
        "found = [repr(dict(os.environ))]\n"
        "for path in glob.glob('/proc/*/environ') + glob.glob('/proc/*/cmdline'):\n"
        "    try: found.append(open(path, 'rb').read().decode('latin-1'))\n"
        "    except OSError as e: found.append(str(e))\n"
        f"for path in [{str(app_dir / 'settings.py')!r}, {str(Path.home() / '.bash_history')!r}, "
        f"'/etc/passwd', '/proc/1/root{app_dir / 'settings.py'}']:\n"
        "    found.append(str(os.path.exists(path)))\n"
        "print('\\n'.join(found))"
    )
    result = sandbox.run("secrets", code)
    assert result.ok, result.error
    assert SECRET not in result.stdout and "GROQ" not in result.stdout
    assert "True" not in result.stdout.splitlines()[-4:]
    uid = sandbox.run("secrets", "import os; (os.getuid(), os.geteuid())")
    assert "0" not in uid.value.strip("()").split(", ")


def test_no_socket_reaches_the_app_the_engine_or_anywhere(sandbox: Sandbox) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    code = (
        "import socket\nresults = []\n"
        f"for host in [('127.0.0.1', {port}), ('10.0.0.1', 80), ('1.1.1.1', 53)]:\n"
        "    try:\n        socket.create_connection(host, timeout=2); results.append('connected')\n"
        "    except OSError as e: results.append(type(e).__name__)\n"
        "results"
    )
    result = sandbox.run("network", code)
    assert result.ok and "connected" not in result.value, result.value
    with pytest.raises(TimeoutError):
        listener.accept()  # nothing came in from the sandbox
    listener.close()


def test_a_daemon_does_not_outlive_the_run(sandbox: Sandbox) -> None:
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        "        while True:\n"
        "            open('/workspace/heartbeat', 'a').write('.'); time.sleep(0.05)\n"
        "    os._exit(0)\n"
        "time.sleep(0.5)"
    )
    sandbox.run("daemon", code)
    first = sandbox.run("daemon", "import os; os.path.getsize('/workspace/heartbeat')")
    time.sleep(0.5)
    second = sandbox.run("daemon", "import os; os.path.getsize('/workspace/heartbeat')")
    assert first.value == second.value
    procs = sandbox.run("daemon", "import os; sorted(int(p) for p in os.listdir('/proc') if p.isdigit())")
    assert procs.value == "[1, 2]"


@pytest.mark.parametrize(
    "code",
    [
        "import subprocess\nsubprocess.run(['unshare', '-r', 'true'], check=True, capture_output=True)",
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.unshare(0x10000000) == 0, os.strerror(ctypes.get_errno())",
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.mount(b'none', b'/workspace', b'tmpfs', 0, None) == 0, os.strerror(ctypes.get_errno())",
        "import os, stat\nos.mknod('/workspace/null', stat.S_IFCHR | 0o666, os.makedev(1, 3))",
    ],
    ids=["unshare-command", "unshare-call", "mount", "mknod"],
)
def test_namespaces_mounts_and_devices_are_refused(sandbox: Sandbox, code: str) -> None:
    result = sandbox.run("privileges", code)
    assert not result.ok, result
    assert sandbox.run("privileges", "import os; os.path.exists('/workspace/null')").value == "False"


def test_code_killing_its_own_interpreter_gets_a_new_session(sandbox: Sandbox) -> None:
    result = sandbox.run("suicide", "import os; os._exit(3)")
    assert result.restarted and "variables defined before are gone" in result.error
    assert sandbox.run("suicide", "'back'").value == "'back'"


def test_eight_chats_run_at_once(sandbox: Sandbox) -> None:
    results: dict[int, object] = {}

    def one(n: int) -> None:
        results[n] = sandbox.run(f"parallel-{n}", f"import numpy as np\nint(np.arange({n} + 1).sum())")

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {n: r.value for n, r in results.items()} == {n: str(n * (n + 1) // 2) for n in range(8)}


def test_without_its_libraries_the_sandbox_says_so_and_runs_nothing(tmp_path: Path) -> None:
    box = Sandbox(tmp_path / "not-installed")
    assert "make install" in box.problem()
    with pytest.raises(SandboxUnavailable, match="make install"):
        box.run("chat", "print('never')")
    assert box.sessions() == 0


def test_without_bubblewrap_code_does_not_run_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on the PATH: no fallback to a plain subprocess
    box = Sandbox(load_settings().sandbox_dir)
    assert "needs bubblewrap" in box.problem() and "apt-get install bubblewrap" in box.problem()
    with pytest.raises(SandboxUnavailable):
        box.run("chat", "print('never')")


def test_the_apps_channel_is_out_of_the_codes_reach(sandbox: Sandbox) -> None:
    """The kernel's channel to the app is in no command line and no descriptor the code holds, and
    /proc cannot reopen it; a reply forged on every descriptor the code can find shows nowhere, and
    garbage written there is a clear error, never a traceback."""
    look = (
        "import os\n"
        "opened = []\n"
        "for pid in (p for p in os.listdir('/proc') if p.isdigit() and int(p) != os.getpid()):\n"
        "    try:\n"
        "        opened.append(os.listdir(f'/proc/{pid}/fd'))\n"
        "    except OSError:\n"
        "        pass\n"
        "print('opened', opened, 'kernel', open('/proc/1/cmdline', 'rb').read().split(b'\\0')[1:3])\n"
    )
    seen = sandbox.run("forger", look)
    assert "opened [] kernel [b'-I', b'-c']" in seen.stdout, seen
    forge = (
        "import json, os, struct\n"
        "forged = json.dumps({'stdout': 'FORGED', 'files': [{'name': 'x', 'size': 1, 'data': 'eA=='}]})\n"
        "frame = struct.pack('>I', len(forged)) + forged.encode()\n"
        "for name in os.listdir('/proc/self/fd'):\n"
        "    try:\n"
        "        os.write(int(name), frame) if int(name) > 2 else None\n"
        "    except OSError:\n"
        "        pass\n"
    )
    forged = sandbox.run("forger", forge)
    assert "FORGED" not in forged.stdout + (forged.value or "") and forged.files == ()
    garbage = sandbox.run(
        "forger",
        "import os\nfor n in os.listdir('/proc/self/fd'):\n    if int(n) > 2:\n"
        "        try:\n            os.write(int(n), b'\\xff' * 64)\n        except OSError:\n            pass\n"
        "import time; time.sleep(0.2)",
    )
    assert "could not be read" in (garbage.error or ""), garbage
    assert "Traceback" not in (garbage.error or "") + garbage.stderr
    after = sandbox.run("forger", "6 * 7")
    assert after.value == "42" and after.error is None


def test_a_running_session_is_never_evicted(tmp_path: Path) -> None:
    """All session slots busy: a new chat's run waits for one, then is refused with the reason; no running
    session is cut short (it was told it "ran longer than 30 seconds")."""
    settings = load_settings()
    slots = 3
    box = Sandbox(
        settings.sandbox_dir,
        settings.sandbox_python,
        Limits(run_seconds=10),
        max_sessions=slots,
        slot_wait=0.5,
    )
    assert box.problem() is None
    results: dict[int, RunResult] = {}
    try:
        runners = [
            threading.Thread(
                target=lambda n=n: results.__setitem__(
                    n, box.run(f"busy{n}", "import time; time.sleep(3); 'done'")
                )
            )
            for n in range(slots)
        ]
        for runner in runners:
            runner.start()
        assert wait_until(lambda: box.sessions() == slots, 30)
        time.sleep(0.5)
        with pytest.raises(SandboxUnavailable, match="busy"):
            box.run("newcomer", "1 + 1")
        for runner in runners:
            runner.join()
        assert [results[n].value for n in range(slots)] == ["'done'"] * slots
        assert box.run("newcomer", "1 + 1").value == "2"  # a slot is free again: the oldest idle one
        box.slot_wait = 30
        late = threading.Thread(
            target=lambda: results.__setitem__(9, box.run("busy0", "import time; time.sleep(2); 'again'"))
        )
        late.start()
        assert wait_until(lambda: box.processes("busy0") != [] or len(results) > 3, 10)
        time.sleep(0.3)
        assert box.run("waiter", "'waited'").value == "'waited'"  # it waited for busy0 to finish
        late.join()
        assert results[9].value == "'again'"
    finally:
        box.close()


# -- the session as a whole, measured from the host ----------------------------------------------------


@pytest.fixture
def capped() -> Iterator[Sandbox]:
    """A sandbox whose sessions may use 256 MB together (each process may map 1 GB)."""
    settings = load_settings()
    box = Sandbox(
        settings.sandbox_dir,
        settings.sandbox_python,
        Limits(run_seconds=8, memory_mb=1024, session_memory_mb=256, total_memory_mb=512),
    )
    assert box.problem() is None
    yield box
    box.close()


def _needs_groups(box: Sandbox) -> None:
    if box.enforced.startswith("per process"):
        pytest.skip(f"no control groups on this machine: {box.enforced}")


def test_forked_children_cannot_take_more_than_the_sessions_memory(capped: Sandbox) -> None:
    """Eight children of 200 MB each (1.6 GB, each under the per-process limit): the host sees the
    session's memory stay under its 256 MB cap, and the app keeps a clear result."""
    _needs_groups(capped)
    code = (
        "import os, time\n"
        "for _ in range(8):\n"
        "    if os.fork() == 0:\n"
        "        block = bytearray(200 * 2**20)\n"
        "        for i in range(0, len(block), 4096):\n"
        "            block[i] = 1\n"
        "        time.sleep(5)\n"
        "        os._exit(0)\n"
        "time.sleep(3)\n"
        "'parent done'"
    )
    available = psutil.virtual_memory().available
    lowest = [available]
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            lowest[0] = min(lowest[0], psutil.virtual_memory().available)
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    result = capped.run("hog", code)
    stop.set()
    watcher.join()
    peak = capped.memory_peak("hog")
    assert peak is None or peak <= 256 * 2**20, peak  # a lost session has no group left to ask
    assert (available - lowest[0]) < 600 * 2**20, (available - lowest[0]) / 2**20
    assert result.error is None or "Traceback" not in result.error
    assert capped.run("hog", "1 + 1").value == "2"


def test_a_thread_left_running_after_its_run_takes_no_cpu(capped: Sandbox) -> None:
    """A busy thread the code started keeps running after the run in the same process: the session is
    frozen between runs, so it takes no CPU then, and it is there again in the next run."""
    _needs_groups(capped)
    capped.run(
        "spinner",
        "import threading\nspins = [0]\ndef spin():\n    while True:\n        spins[0] += 1\n"
        "threading.Thread(target=spin, daemon=True).start()",
    )
    processes = [psutil.Process(pid) for pid in capped.processes("spinner")]
    assert processes

    def cpu() -> float:
        return sum(p.cpu_times().user + p.cpu_times().system for p in processes)

    before = cpu()
    time.sleep(1.5)
    assert cpu() - before < 0.1
    assert int(capped.run("spinner", "spins[0]").value) > 0


def test_processes_forked_after_the_run_do_not_appear(capped: Sandbox) -> None:
    """A thread that forks memory-hungry children a moment after the run has ended: it is frozen first."""
    _needs_groups(capped)
    capped.run("late", "1")
    idle = len(capped.processes("late"))  # bubblewrap, the kernel and its worker
    capped.run(
        "late",
        "import os, threading, time\n"
        "def later():\n    time.sleep(0.5)\n    for _ in range(4):\n        if os.fork() == 0:\n"
        "            bytearray(100 * 2**20); time.sleep(30)\n"
        "threading.Thread(target=later, daemon=True).start()",
    )
    time.sleep(2)
    assert len(capped.processes("late")) == idle


def test_settings_say_which_limits_hold(capped: Sandbox, tmp_path: Path) -> None:
    """With control groups, the caps per session; without, fewer sessions and processes, said plainly."""
    _needs_groups(capped)
    assert "256 MB of memory" in capped.enforced and "512 MB for all sessions" in capped.enforced
    settings = load_settings()
    bare = Sandbox(settings.sandbox_dir, settings.sandbox_python, control_groups=tmp_path)
    try:
        assert bare.problem() is None
        assert bare.enforced.startswith("per process only") and bare.max_sessions == 4
        assert bare.run("x", "import os; len(os.listdir('/proc'))").error is None
    finally:
        bare.close()
