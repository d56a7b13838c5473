"""A step of a reply: one tool run (code, a web search), by the model's call or the user's button."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif")
MAX_TEXT = 20_000  # characters of a step's input or output kept


@dataclass(frozen=True, slots=True)
class StepFile:
    """A file a step made (a figure, a CSV), stored by its SHA-256 like attached files."""

    name: str
    sha256: str
    size: int

    @property
    def is_image(self) -> bool:
        """Shown inline (raster formats only: an SVG could carry script)."""
        return self.name.lower().endswith(IMAGE_EXTENSIONS)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {"name": self.name, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepFile:
        """Read `to_dict`'s form; raise ValueError if malformed."""
        sha = data.get("sha256") if isinstance(data, Mapping) else None
        if not isinstance(sha, str) or len(sha) != 64:
            raise ValueError("a step's file needs its sha256")
        return cls(name=str(data.get("name", "file")), sha256=sha, size=int(data.get("size", 0)))


@dataclass(frozen=True, slots=True)
class Step:
    """What a tool was given and gave back, and how long it took."""

    tool: str  # "run_python", "web_search"
    input: str  # the code, the query
    output: str = ""
    error: str = ""  # why it failed or was stopped; the reply goes on
    seconds: float = 0.0
    files: tuple[StepFile, ...] = ()
    by_user: bool = False  # the user's Run button or search toggle, not the model's call

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        data: dict[str, Any] = {"tool": self.tool, "input": self.input, "output": self.output}
        if self.error:
            data["error"] = self.error
        data["seconds"] = round(self.seconds, 3)
        if self.files:
            data["files"] = [f.to_dict() for f in self.files]
        if self.by_user:
            data["by_user"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        """Read `to_dict`'s form; raise ValueError if malformed."""
        if not isinstance(data, Mapping) or not isinstance(data.get("tool"), str):
            raise ValueError("a step must be an object naming its tool")
        files = data.get("files", [])
        if not isinstance(files, list):
            raise ValueError("a step's files must be a list")
        return cls(
            tool=data["tool"],
            input=str(data.get("input", "")),
            output=str(data.get("output", "")),
            error=str(data.get("error", "")),
            seconds=float(data.get("seconds", 0.0)),
            files=tuple(StepFile.from_dict(f) for f in files),
            by_user=bool(data.get("by_user", False)),
        )


def clip(text: str, limit: int = MAX_TEXT) -> str:
    """Text cut to what a step keeps, saying how much was left out."""
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… {len(text) - limit:,} more characters not kept"
