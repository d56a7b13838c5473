"""Pictures and sound that came with a message: an attached photo, a recorded question.

The bytes live in the file store under their SHA-256 (as attached files do); the message keeps what was
read from them once (text found by OCR, a transcript), so nothing is recomputed on a rerun or a reload.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """What a media file is."""

    IMAGE = "image"
    AUDIO = "audio"


class Reading(StrEnum):
    """How its `text` was got, for the user to know what the model was given."""

    NONE = ""  # no text: a vision model sees the image itself
    OCR = "ocr"  # text recognised in the image (Tesseract)
    TRANSCRIPT = "transcript"  # speech turned into text


IMAGE_TYPES = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "gif": "image/gif",
}
AUDIO_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "opus": "audio/ogg",
    "webm": "audio/webm",
    "flac": "audio/flac",
}


@dataclass(frozen=True, slots=True)
class Media:
    """An image or a sound of a message."""

    kind: Kind
    name: str
    sha256: str
    size: int
    mime: str
    text: str = ""  # what was read from it (see `reading`)
    reading: Reading = Reading.NONE
    width: int = 0
    height: int = 0
    seconds: float = 0.0  # a sound's length
    note: str = ""  # what was done to it, for the user ("made smaller from 8000 × 6000")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        data: dict[str, Any] = {
            "kind": self.kind.value,
            "name": self.name,
            "sha256": self.sha256,
            "size": self.size,
            "mime": self.mime,
        }
        for key in ("text", "note"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        if self.reading is not Reading.NONE:
            data["reading"] = self.reading.value
        if self.width:
            data["width"], data["height"] = self.width, self.height
        if self.seconds:
            data["seconds"] = round(self.seconds, 2)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Media:
        """Read `to_dict`'s form; raise ValueError if malformed."""
        if not isinstance(data, Mapping):
            raise ValueError("a message's media must be an object")
        sha = data.get("sha256")
        if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
            raise ValueError("a message's media needs a valid sha256")
        kind = Kind(data.get("kind"))
        mime = str(data.get("mime", ""))
        allowed = IMAGE_TYPES if kind is Kind.IMAGE else AUDIO_TYPES
        if mime not in allowed.values():  # the browser is told this type: never text/html from a file
            raise ValueError(f"media type {mime!r} is not one bnaGPT shows")
        return cls(
            kind=kind,
            name=str(data.get("name", "")),
            sha256=sha,
            size=int(data.get("size", 0)),
            mime=mime,
            text=str(data.get("text", "")),
            reading=Reading(data.get("reading", "")),
            width=int(data.get("width", 0)),
            height=int(data.get("height", 0)),
            seconds=float(data.get("seconds", 0.0)),
            note=str(data.get("note", "")),
        )
