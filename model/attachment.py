"""Files attached to a chat or an assistant, and the passages a reply cites from them.

A file's name is data shown to the user, never a path: the bytes live in the file store under their
SHA-256, so the same file attached twice is stored once and a changed file is a new one.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

MAX_FILE_NAME = 200


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file attached to a chat or an assistant."""

    sha256: str
    name: str
    size: int
    pages: int  # pages, slides, sheets' rows or lines: what its locations count
    unit: str = "pages"  # what `pages` counts, in words
    whole: bool = False  # the whole file goes to the model, not only the passages that match
    added_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        data = {
            "sha256": self.sha256,
            "name": self.name,
            "size": self.size,
            "pages": self.pages,
            "unit": self.unit,
            "added_at": self.added_at.isoformat(),
        }
        if self.whole:
            data["whole"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attachment:
        """Read `to_dict`'s form; raise ValueError if malformed."""
        if not isinstance(data, Mapping):
            raise ValueError("an attached file must be an object")
        sha, name = data.get("sha256"), data.get("name")
        size, pages = data.get("size"), data.get("pages", 0)
        if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            raise ValueError(f"attached file {name!r} has no valid sha256")
        if not isinstance(name, str) or not isinstance(size, int) or not isinstance(pages, int):
            raise ValueError("an attached file needs a name, a size and a page count")
        return cls(
            sha256=sha,
            name=name,
            size=size,
            pages=pages,
            unit=str(data.get("unit", "pages")),
            whole=bool(data.get("whole", False)),
            added_at=datetime.fromisoformat(data["added_at"]) if data.get("added_at") else datetime.now(UTC),
        )


@dataclass(frozen=True, slots=True)
class Source:
    """A passage given to the model with a reply, under the number the reply cites it by."""

    number: int
    name: str  # the file's name
    location: str  # "page 3", "Sheet1, row 12", "slide 2", "" for a file without parts
    passage: str
    cited: bool = False  # the reply names it as [number]
    url: str = ""  # a web page's address (http or https only); "" for a file

    def with_cited(self, cited: bool) -> Source:
        """The same source, cited or not."""
        return replace(self, cited=cited)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        data: dict[str, Any] = {
            "number": self.number,
            "name": self.name,
            "location": self.location,
            "passage": self.passage,
        }
        if self.cited:
            data["cited"] = True
        if self.url:
            data["url"] = self.url
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Source:
        """Read `to_dict`'s form; raise ValueError if malformed."""
        if not isinstance(data, Mapping) or not isinstance(data.get("number"), int):
            raise ValueError("a source must be an object with a number")
        return cls(
            number=data["number"],
            name=str(data.get("name", "")),
            location=str(data.get("location", "")),
            passage=str(data.get("passage", "")),
            cited=bool(data.get("cited", False)),
            url=_web_address(data.get("url", "")),
        )


def _web_address(value: object) -> str:
    """An http(s) address, or "" (a `javascript:` link from a crafted file must never become a link)."""
    text = str(value or "")
    return text if text.lower().startswith(("http://", "https://")) else ""


def clean_file_name(name: str) -> str:
    """The name to show and store for an uploaded file: its last path part, one line, no broken characters.

    Browsers send only the base name, but a name is data from outside: `../../etc/passwd` is shown as
    `passwd`, never used as a path (the bytes are stored under their hash)."""
    name = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c) not in ("Cc", "Cs", "Cf")).strip()
    if len(name) > MAX_FILE_NAME:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: MAX_FILE_NAME - len(ext) - 2] + "…" + dot + ext) if dot else name[:MAX_FILE_NAME]
    return name or "unnamed file"


def extension(name: str) -> str:
    """The lower-case extension without its dot ("" if none)."""
    stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and stem else ""
