"""App-wide choices made in Settings, in `preferences.json` beside the conversations: a cross-process lock,
atomic replace, and a file that cannot be read set aside untouched (never overwritten)."""

from __future__ import annotations

import json
from pathlib import Path

from filelock import FileLock

from errors import StoreError
from utils.files import atomic_write, locked, set_aside

FORMAT = "bnagpt-preferences"


class Preferences:
    """Named text values that outlive a restart."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = FileLock(str(self.path) + ".lock", timeout=15)
        self.notices: list[str] = []

    def get(self, name: str) -> str | None:
        """The saved value, or None."""
        value = self._read().get(name)
        return value if isinstance(value, str) else None

    def set(self, name: str, value: str) -> None:
        """Save one value, keeping the others."""
        with locked(self._lock, self.path):
            values = self._read(locked=True)
            values[name] = value
            document = {"format": FORMAT, "values": values}
            atomic_write(self.path, (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode())

    def _read(self, locked: bool = False) -> dict[str, object]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as error:
            raise StoreError(f"Could not read {self.path}: {error.strerror}.") from None
        try:
            document = json.loads(raw.decode("utf-8-sig"))
            if not isinstance(document, dict) or document.get("format") != FORMAT:
                raise ValueError("not a bnaGPT preferences file")
            values = document["values"]
            if not isinstance(values, dict):
                raise ValueError("its values are not an object")
            return values
        except (ValueError, KeyError, RecursionError) as problem:
            if not locked:
                return {}  # read-only callers use the defaults; the next save sets the file aside
            aside = set_aside(self.path)
            self.notices.append(
                f"{self.path.name} could not be read ({problem}). It was moved, untouched, to {aside}, "
                "and your new choice saved in a new one."
            )
            return {}
