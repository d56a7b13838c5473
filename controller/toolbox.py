"""The tools of one app process: the code sandbox, the file store, and the web search back-end chosen now."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from controller.sandbox import Sandbox
from controller.search_engines import SearchEngine, chosen
from controller.tools import Outcome, Tool, make_image
from controller.tools.run_python import RunPython
from controller.tools.web_search import WebSearch
from errors import BnaGPTError
from model.attachment import Attachment
from model.file_store import FileStore
from model.step import Step

SEARCH_ENGINE = "search_engine"  # the preference naming the back-end chosen in Settings


class Toolbox:
    """Makes each turn's tools, bound to its chat."""

    def __init__(
        self,
        sandbox: Sandbox,
        files: FileStore,
        environment: Mapping[str, str],
        preference: Callable[[], str | None] = lambda: None,
        scope: str = "",
    ) -> None:
        self.sandbox = sandbox
        # Code sessions are the app process's, by chat id; with accounts two users may hold a chat of
        # the same id (each restored the same backup), so the id is taken within the user's scope.
        self._scope = f"{scope}/" if scope else ""
        self.files = files
        self._environment = environment
        self._preference = preference

    @property
    def allow(self) -> frozenset[str]:
        """host:port the fetch guard lets through: the tests' loopback stand-in for the web; nothing else
        sets BNAGPT_FETCH_ALLOW (see controller/fetch.py)."""
        listed = self._environment.get("BNAGPT_FETCH_ALLOW", "")
        return frozenset(h.strip() for h in listed.split(",") if h.strip())

    def engine(self) -> SearchEngine:
        """The web search back-end chosen in Settings (or the first configured)."""
        try:
            preference = self._preference()
        except BnaGPTError:  # an unreadable preferences file: the default back-end
            preference = None
        return chosen(self._environment, preference)

    def problem(self, name: str) -> str | None:
        """Why a tool cannot work on this machine, or None."""
        if name == "run_python":
            return self.sandbox.problem()
        if name == "make_image" and not make_image.configured(self._environment):
            return make_image.WHAT_TO_CONFIGURE
        return None

    def tools(
        self, names: Sequence[str], chat_id: str, attachments: Sequence[Attachment], first_number: int
    ) -> list[Tool]:
        """The tools named (those that can work here) for a turn of the chat; web sources numbered from
        `first_number` on."""
        made: list[Tool] = []
        for name in names:
            if self.problem(name):
                continue
            if name == "run_python":
                made.append(
                    RunPython(self.sandbox, self._scope + chat_id, self.readable(attachments), self.files)
                )
            elif name == "web_search":
                made.append(WebSearch(self.engine(), first_number, self.allow))
            elif name == "make_image":
                made.append(make_image.MakeImage(self._environment, self.files))
        return made

    def run_code(self, chat_id: str, code: str, attachments: Sequence[Attachment]) -> Step:
        """Run code at the user's request (a Run button) in the chat's session."""
        tool = RunPython(
            self.sandbox, self._scope + chat_id, self.readable(attachments), self.files, by_user=True
        )
        return tool.run(code=code).step

    def restart(self, chat_id: str) -> None:
        """End the chat's code session (its variables go)."""
        self.sandbox.restart(self._scope + chat_id)

    def search(self, query: str, first_number: int) -> Outcome:
        """Search the web at the user's request (the toggle)."""
        return WebSearch(self.engine(), first_number, self.allow, by_user=True).run(query=query)

    def draws_chart(self, prompt: str) -> bool:
        """Whether a picture asked for is a chart drawn by code in the sandbox: no image server, and
        the sandbox can run."""
        return (
            bool(self.problem("make_image"))
            and not self.problem("run_python")
            and make_image.is_chart(prompt)
        )

    def make_image(self, prompt: str) -> Outcome:
        """Make a picture at the user's request (the /image command)."""
        return make_image.MakeImage(self._environment, self.files, by_user=True).run(prompt=prompt)

    def readable(self, attachments: Sequence[Attachment]) -> list[tuple[str, Path]]:
        """(name, stored path) of each attached file still stored, names made unique."""
        named: dict[str, Path] = {}
        for file in attachments:
            if not self.files.has(file.sha256):
                continue
            name, number = file.name, 1
            while name in named:
                number += 1
                stem, dot, ext = file.name.rpartition(".")
                name = f"{stem} ({number}).{ext}" if dot else f"{file.name} ({number})"
            named[name] = self.files.path(file.sha256)
        return list(named.items())
