"""Accounts, sessions, invites and the admin's policy in `accounts.json` at the top of the data folder.

One file, changed under a cross-process lock and replaced atomically, like the other stores. Unlike them, a
file that cannot be read is never set aside and started afresh: an empty accounts file would make the next
visitor the admin. The app refuses every login instead, and says which file to fix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from errors import AccountsUnreadable, StoreError
from model.account import Account, Grant
from utils.files import atomic_write, locked

FORMAT = "bnagpt-accounts"
VERSION = 1


@dataclass(slots=True)
class Ledger:
    """Everything the accounts file holds, to read or to change inside `AccountStore.change()`."""

    accounts: dict[str, Account] = field(default_factory=dict)
    sessions: dict[str, Grant] = field(default_factory=dict)  # by token digest
    invites: dict[str, Grant] = field(default_factory=dict)  # by token digest
    failures: dict[str, list[float]] = field(default_factory=dict)  # failed logins by key, epoch seconds
    known: dict[str, list[str]] = field(default_factory=dict)  # account id -> digests of addresses it used
    providers: list[str] | None = None  # the providers users may use; None: all


class AccountStore:
    """Reads and changes the accounts file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = FileLock(str(self.path) + ".lock", timeout=15)
        self._cache: tuple[tuple[int, int], Ledger] | None = None

    def read(self) -> Ledger:
        """The accounts as saved, to read only (it is the cache every rerun shares); raise
        AccountsUnreadable."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return Ledger()
        except OSError as error:
            raise StoreError(f"Could not read {self.path}: {error.strerror}.") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self._cache is None or self._cache[0] != stamp:
            self._cache = (stamp, self._load())
        return self._cache[1]

    @contextmanager
    def change(self) -> Iterator[Ledger]:
        """The accounts to change, saved when the block ends without an error."""
        with locked(self._lock, self.path):
            ledger = self._load()
            yield ledger
            atomic_write(self.path, _encode(ledger))
            self._cache = None

    def _load(self) -> Ledger:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Ledger()
        except OSError as error:
            raise StoreError(f"Could not read {self.path}: {error.strerror}.") from None
        try:
            document = json.loads(raw.decode("utf-8"))
            if not isinstance(document, dict) or document.get("format") != FORMAT:
                raise ValueError("not a bnaGPT accounts file")
            if document.get("version") != VERSION:
                raise ValueError(f"version {document.get('version')!r}, this bnaGPT reads {VERSION}")
            accounts = [Account.from_dict(item) for item in document["accounts"]]
            sessions = [Grant.from_dict(item) for item in document.get("sessions", [])]
            invites = [Grant.from_dict(item) for item in document.get("invites", [])]
            failures = {str(k): [float(t) for t in v] for k, v in document.get("failures", {}).items()}
            providers = document.get("providers")
            known = {str(k): [str(d) for d in v] for k, v in document.get("known", {}).items()}
            return Ledger(
                accounts={a.id: a for a in accounts},
                sessions={g.digest: g for g in sessions},
                invites={g.digest: g for g in invites},
                failures=failures,
                known=known,
                providers=[str(p) for p in providers] if isinstance(providers, list) else None,
            )
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as problem:
            raise AccountsUnreadable(
                f"{self.path} could not be read ({problem}), so nobody can log in. It was left untouched: "
                "fix it by hand or put back a copy from a backup, then reload."
            ) from None


def _encode(ledger: Ledger) -> bytes:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "accounts": [a.to_dict() for a in ledger.accounts.values()],
        "sessions": [g.to_dict() for g in ledger.sessions.values()],
        "invites": [g.to_dict() for g in ledger.invites.values()],
        "failures": ledger.failures,
        "known": ledger.known,
        "providers": ledger.providers,
    }
    return (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
