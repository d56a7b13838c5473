"""The agent's tools, one file each; every tool also runs at the user's request (a Run button, the search
toggle), so a model too small to call tools still gets them.

A tool is plain Python: it takes text arguments and returns an `Outcome` (what the model reads, the step
the user sees, the sources it found). `controller/agent.py` turns tools into llama-index's, so nothing here
knows the agent's library.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from model.assistant import TOOLS
from model.attachment import Source
from model.step import Step

# Every tool by name, as the chat's menu and the Assistants page call it.
LABELS = {"run_python": "Run Python code", "web_search": "Search the web", "make_image": "Make images"}
assert tuple(LABELS) == TOOLS


@dataclass(frozen=True, slots=True)
class Outcome:
    """A tool's result: text for the model, a step for the user, and any sources to cite."""

    for_model: str
    step: Step
    sources: tuple[Source, ...] = ()


@dataclass(frozen=True, slots=True)
class Running:
    """A tool has started (shown while it runs)."""

    tool: str
    input: str


class Tool(ABC):
    """One tool, bound to a chat for a turn."""

    name: ClassVar[str]
    description: ClassVar[str]  # for the model: when to use it
    parameters: ClassVar[dict[str, str]]  # argument name -> what to put in it (all text)

    @abstractmethod
    def run(self, **arguments: str) -> Outcome:
        """Do the work; a failure is reported in the outcome, never raised."""

    def shown_input(self, arguments: dict[str, str]) -> str:
        """The input as the step shows it."""
        return next(iter(arguments.values()), "")
