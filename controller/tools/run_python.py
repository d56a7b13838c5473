"""The `run_python` tool: run code in the chat's sandboxed session and bring back what it printed, returned,
drew and wrote."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from controller.sandbox import RunResult, Sandbox
from controller.tools import Outcome, Tool
from errors import SandboxUnavailable
from model.attachment import clean_file_name
from model.file_store import FileStore
from model.step import Step, StepFile, clip

FOR_MODEL_CHARS = 4_000  # of output given back to the model: its window is small


class RunPython(Tool):
    """Python in the chat's notebook-like session (numpy, pandas, matplotlib; the chat's files in ./files)."""

    name = "run_python"
    description = (
        "Run Python 3 code in a sandbox and get its output: use it to calculate, analyse data or plot. "
        "Variables persist between runs in this chat. numpy, pandas and matplotlib are installed; the "
        "chat's attached files are in the folder files/. There is no internet access. The value of the "
        "last expression is returned, and matplotlib figures are shown to the user."
    )
    parameters: ClassVar[dict[str, str]] = {"code": "The Python code to run."}

    def __init__(
        self,
        sandbox: Sandbox,
        chat_id: str,
        files: Sequence[tuple[str, Path]],
        store: FileStore,
        by_user=False,
    ) -> None:
        self._sandbox = sandbox
        self._chat_id = chat_id
        self._files = files
        self._store = store
        self._by_user = by_user

    def run(self, **arguments: str) -> Outcome:
        code = arguments.get("code", "")
        try:
            result = self._sandbox.run(self._chat_id, code, self._files)
        except SandboxUnavailable as error:
            step = Step(self.name, clip(code), error=str(error), by_user=self._by_user)
            return Outcome(f"Code cannot run here: {error}", step)
        step = self.step(code, result)
        return Outcome(_for_model(result, step), step)

    def step(self, code: str, result: RunResult) -> Step:
        """The step a run makes, its figures and files kept in the file store."""
        files = [
            StepFile(f"figure-{n}.png", self._store.put(png), len(png))
            for n, png in enumerate(result.figures, 1)
        ]
        left_behind = []
        for written in result.files:
            if written.data is None:
                left_behind.append(f"{written.name} ({written.size:,} bytes: too big to bring back)")
            else:
                name = clean_file_name(written.name)  # the code chose it: no path, no control characters
                files.append(StepFile(name, self._store.put(written.data), written.size))
        output = "\n".join(p for p in (result.stdout.rstrip("\n"), result.stderr.rstrip("\n")) if p)
        if result.value is not None:
            output = f"{output}\n{result.value}" if output else result.value
        if left_behind:
            output += "\nNot brought back: " + ", ".join(left_behind)
        return Step(
            self.name,
            clip(code),
            clip(output),
            error=clip(result.error or ""),
            seconds=result.seconds,
            files=tuple(files),
            by_user=self._by_user,
        )


def _for_model(result: RunResult, step: Step) -> str:
    parts = []
    if step.output:
        parts.append(step.output[:FOR_MODEL_CHARS])
    if result.error:
        parts.append(f"Error:\n{result.error[-FOR_MODEL_CHARS:]}")
    if step.files:
        parts.append("Shown to the user: " + ", ".join(f.name for f in step.files))
    return "\n".join(parts) or "(the code ran and printed nothing)"
