"""Process-wide state and every engine in the app's own process.

A setting made for one library in the app's process reaches every library in it: `OMP_THREAD_LIMIT=1`,
set for Tesseract, made Whisper hear nothing, or not, by the order modules happened to be imported in.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import PROJECT
from utils import offline

APP_CODE = ["app.py", "settings.py", "errors.py", "controller", "model", "view", "utils", "pages"]
# The one place process-wide switches are made on purpose (every library must stay offline), by the
# entrypoints before anything loads; and the sandbox's kernel, a program of its own run inside the sandbox.
ALLOWED = {"utils/offline.py", "controller/sandbox_kernel.py"}
# One hook, audited: it drops only the traceback of llama-index's stream-writer thread (the same error
# reaches the user through `Agent.stream`) and hands every other thread's error to the hook it replaced.
ALLOWED_CHANGES = {"controller/agent.py: threading.excepthook = …"}
# Changes to the process's environment, warnings, signals, locale, threads and hooks.
SETTERS = {
    ("os", "putenv"), ("os", "unsetenv"), ("signal", "signal"), ("locale", "setlocale"),
    ("warnings", "filterwarnings"), ("warnings", "simplefilter"), ("warnings", "resetwarnings"),
    ("socket", "setdefaulttimeout"), ("sys", "setrecursionlimit"), ("torch", "set_num_threads"),
    ("faulthandler", "enable"), ("logging", "basicConfig"), ("logging", "disable"),
}  # fmt: skip
ENVIRON_WRITES = {"setdefault", "update", "pop", "clear", "__setitem__", "__delitem__"}
HOOKS = {"excepthook", "displayhook", "unraisablehook"}


def _python_files() -> list[Path]:
    files: list[Path] = []
    for entry in APP_CODE:
        path = PROJECT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


class _Finder(ast.NodeVisitor):
    """Calls and assignments that change process-wide state; warnings filters inside
    `with warnings.catch_warnings()` are put back when the block ends, so they are not counted."""

    def __init__(self) -> None:
        self.found: list[tuple[int, str]] = []
        self._guarded = 0

    def visit_With(self, node: ast.With) -> None:
        guarded = any(_dotted(item.context_expr.func).endswith("catch_warnings")
                      for item in node.items if isinstance(item.context_expr, ast.Call))  # fmt: skip
        self._guarded += guarded
        self.generic_visit(node)
        self._guarded -= guarded

    def visit_Call(self, node: ast.Call) -> None:
        name = _dotted(node.func)
        module, _, function = name.rpartition(".")
        if (module, function) in SETTERS and not (module == "warnings" and self._guarded):
            self.found.append((node.lineno, name))
        if module.endswith("environ") and function in ENVIRON_WRITES:
            self.found.append((node.lineno, name))
        self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            name = _dotted(target.value if isinstance(target, ast.Subscript) else target)
            if name.endswith("environ") or name.rpartition(".")[2] in HOOKS:
                self.found.append((node.lineno, f"{name} = …"))
        self.generic_visit(node)


def test_no_module_of_the_app_changes_process_wide_state():
    """The environment, warnings filters, signal handlers, locale, thread counts and exception hooks are
    shared by every library: the app's code leaves them alone (a program it runs gets its own `env=`)."""
    found = []
    for path in _python_files():
        relative = path.relative_to(PROJECT).as_posix()
        if relative in ALLOWED:
            continue
        finder = _Finder()
        finder.visit(ast.parse(path.read_text(encoding="utf-8")))
        found += [
            f"{relative}:{line}: {what}"
            for line, what in finder.found
            if f"{relative}: {what}" not in ALLOWED_CHANGES
        ]
    assert found == []


def test_the_finder_sees_each_kind_of_change():
    """The check above is only as good as what it can see."""
    source = """
import os, signal, warnings, threading
os.environ.setdefault("OMP_THREAD_LIMIT", "1")
os.environ["X"] = "1"
signal.signal(signal.SIGINT, signal.SIG_IGN)
warnings.simplefilter("ignore")
threading.excepthook = print
with warnings.catch_warnings():
    warnings.simplefilter("error")
"""
    finder = _Finder()
    finder.visit(ast.parse(source))
    assert [line for line, _ in finder.found] == [3, 4, 5, 6, 7]


def test_the_whole_app_in_one_process_reads_hears_embeds_and_speaks():
    """In a process of its own, the app loaded as `streamlit run app.py` loads it (every page), then OCR,
    Whisper (the word error rate the media tests hold it to), the embedding model and Piper, each working."""
    # As a user's shell has it: the offline switches come from app.py itself.
    environment = {k: v for k, v in os.environ.items() if k not in offline.environment()}
    done = subprocess.run(
        [sys.executable, "-m", "tests.whole_app"],
        cwd=PROJECT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["page_errors"] == []
    assert "PADARIA LUTZ" in result["ocr"] and "47,90" in result["ocr"]
    assert result["languages"] == ["en", "en"], result["transcripts"]
    assert result["wer"] <= 0.2, result["transcripts"]
    assert result["similar"] > result["unrelated"] + 0.2, result
    assert result["spoken_wer"] <= 0.3, result["spoken_back"]


def test_the_app_frame_applies_the_offline_switches_before_any_library_loads():
    """Each switch is read once, when its library loads: app.py sets them before its first import."""
    frame = (PROJECT / "app.py").read_text(encoding="utf-8")
    first_import = min(frame.index("import streamlit"), frame.index("from view import"))
    assert frame.index("offline.apply()") < first_import
