"""Accounts: who may use this bnaGPT, their sessions, and the admin's choices.

Off unless BNAGPT_ACCOUNTS says `local` or `sso`. Each account's data lives in its own folder,
`users/<id>/` under the data folder, with the same files a single-user install keeps at the top: every store
the app opens is opened there, so one user's chats, assistants, files, indexes and backups are out of
another's reach by construction, not by a check each path must remember.

Local accounts: argon2 password hashes, sessions as random tokens kept only as digests, failed logins
counted per name and per address in the accounts file (so every app process sees them) and slowed down
exponentially. Messages never tell a wrong name from a wrong password.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from errors import AccountError, LoginFailed, TooManyAttempts
from model.account import (
    ACTIVE,
    ADMIN,
    DISABLED,
    LOCAL,
    PENDING,
    ROLES,
    SSO,
    USER,
    Account,
    Grant,
    digest,
    new_token,
    now,
)
from model.account_store import AccountStore, Ledger
from model.codec import encode_export
from model.database import Database
from model.postgres_store import PostgresConversationStore

USERS_FOLDER = "users"
LOGIN = re.compile(r"[\w.@+-]{1,64}")
MIN_PASSWORD = 8
INVITE_DAYS = 7
# Failed logins: this many are free in WINDOW; each one more doubles the wait before the next try. Per name
# from one address, per address, and per name from every address the account never logged in from (many
# addresses guessing one password).
FREE_PER_NAME, FREE_PER_ADDRESS, FREE_PER_NAME_ANYWHERE = 5, 20, 50
KNOWN_ADDRESSES = 20  # an account's latest addresses, kept as digests
WINDOW = timedelta(minutes=15)
FIRST_WAIT, LONGEST_WAIT = 30.0, 900.0
WRONG = "Wrong name or password."
# What a single-user install keeps in its data folder that belongs to its one user (the rest, such as
# preferences.json and the speech cache, stays app-wide).
OWNED = (
    "conversations.json",
    "conversations",
    "conversations.json.v2-backup",
    "conversations.v2-backup",
    "assistants.json",
    "files",
    "indexes",
    "chat-vectors",
    "backups",
)

_hasher = PasswordHasher()
# Checked when the name is unknown, so that a wrong name costs as long as a wrong password.
_DUMMY = _hasher.hash(secrets.token_hex(16))


class Accounts:
    """The accounts of one data folder."""

    def __init__(
        self,
        root: Path,
        session_hours: float = 168.0,
        clock: Callable[[], datetime] = now,
        database: Database | None = None,
    ) -> None:
        self.root = Path(root)
        self.database = database  # where chats and assistants are, with BNAGPT_DATABASE_URL
        self.store = AccountStore(self.root / "accounts.json")
        self.session_length = timedelta(hours=session_hours)
        self._clock = clock

    # Reading

    def list(self) -> list[Account]:
        """Every account (without password hashes), admins first, then by name."""
        accounts = self.store.read().accounts.values()
        return sorted((a.public() for a in accounts), key=lambda a: (a.role != ADMIN, a.login.casefold()))

    def get(self, account_id: str) -> Account:
        """One account, without its password hash; raise AccountError."""
        account = self.store.read().accounts.get(account_id)
        if account is None:
            raise AccountError("That account no longer exists.")
        return account.public()

    def exists(self) -> bool:
        """Whether any account was made yet (the first one made is the admin)."""
        return bool(self.store.read().accounts)

    def folder(self, account_id: str) -> Path:
        """Where this account's data lives."""
        if not re.fullmatch(r"[0-9a-f]{16}", account_id):
            raise AccountError("Not an account id.")
        return self.root / USERS_FOLDER / account_id

    def session(self, token: str) -> Account | None:
        """The active account a session token belongs to, or None (unknown, expired, or disabled)."""
        if not token:
            return None
        ledger = self.store.read()
        grant = ledger.sessions.get(digest(token))
        if grant is None or grant.expires_at <= self._clock():
            return None
        account = ledger.accounts.get(grant.account)
        return account.public() if account is not None and account.active else None

    def providers(self) -> list[str] | None:
        """The providers users may use (admins may use all); None: all."""
        return self.store.read().providers

    # Local accounts

    def sign_up(self, login: str, name: str, password: str, invite: str = "") -> Account | None:
        """Make a local account: the first is the admin; one with a valid invite may log in at once; any
        other waits for an admin's approval. Raise AccountError (the name is taken, say). Without an
        invite a taken name is not reported: nothing is made and None comes back, which the page answers
        as it does a request made."""
        login = _clean_login(login)
        _check_password(password, login)
        hashed = _hasher.hash(password)
        with self.store.change() as ledger:
            first = not ledger.accounts
            grant = ledger.invites.get(digest(invite)) if invite else None
            if invite and (grant is None or grant.expires_at <= self._clock()):
                raise AccountError("This invite link has expired or was already used; ask for a new one.")
            if _by_login(ledger, login) is not None:
                if first or grant is not None:
                    raise AccountError(f"The name {login!r} is taken; choose another.")
                return None
            account = Account(
                id=secrets.token_hex(8),
                login=login,
                name=name.strip()[:80] or login,
                kind=LOCAL,
                role=ADMIN if first else USER,
                status=ACTIVE if first or grant is not None else PENDING,
                created_at=self._clock(),
                password=hashed,
                approved_by=grant.made_by if grant is not None else "",
            )
            ledger.accounts[account.id] = account
            if grant is not None:
                del ledger.invites[grant.digest]
        if first:
            self._adopt(account.id)
        return account.public()

    def log_in(self, login: str, password: str, address: str = "") -> tuple[Account, str]:
        """Check a name and password; return the account and a new session token. Raise LoginFailed
        (which never says whether the name exists) or TooManyAttempts.

        Each try is counted before its password is checked, under the accounts file's lock, so tries sent
        at once from many tabs or processes get no more checks than the allowance. A name is slowed down
        per address: a stranger's failures cannot lock its owner out from an address the owner has logged
        in from before, only strangers' addresses share the slowdown of the name as a whole."""
        name = login.strip().casefold()
        where = digest(address or "unknown")
        pair, by_address, by_name = f"name:{name}|{where}", f"address:{where}", f"name:{name}"
        with self.store.change() as ledger:
            account = _by_login(ledger, login.strip())
            known = account is not None and where in ledger.known.get(account.id, [])
            limits = [(pair, FREE_PER_NAME), (by_address, FREE_PER_ADDRESS)]
            self._check_pace(ledger, limits if known else [*limits, (by_name, FREE_PER_NAME_ANYWHERE)])
            stamp = self._clock().timestamp()
            for key in (pair, by_address, by_name):
                ledger.failures.setdefault(key, []).append(stamp)
            self._prune(ledger)
        stored = account.password if account is not None and account.kind == LOCAL else _DUMMY
        try:
            _hasher.verify(stored, password)
            right = account is not None and stored is not _DUMMY
        except (VerificationError, InvalidHashError):
            right = False
        if not right:
            raise LoginFailed(WRONG)
        assert account is not None
        with self.store.change() as ledger:
            ledger.failures.pop(pair, None)  # the owner is at this address: its failures are forgiven
            for key in (by_address, by_name):  # the right password is not a failure
                if stamp in ledger.failures.get(key, []):
                    ledger.failures[key].remove(stamp)
            token = ""
            if account.status == ACTIVE:
                seen = [d for d in ledger.known.get(account.id, []) if d != where]
                ledger.known[account.id] = [*seen, where][-KNOWN_ADDRESSES:]
                if _hasher.check_needs_rehash(account.password):
                    ledger.accounts[account.id] = replace(account, password=_hasher.hash(password))
                token = self._start(ledger, account.id)
        if account.status == PENDING:
            raise LoginFailed("Your account is waiting for an admin's approval.")
        if account.status == DISABLED:
            raise LoginFailed("This account is disabled; ask an admin.")
        return account.public(), token

    def log_out(self, token: str) -> None:
        """End a session (the token no longer logs anyone in, in any tab or process)."""
        with self.store.change() as ledger:
            ledger.sessions.pop(digest(token), None)

    def change_password(self, account_id: str, old: str, new: str) -> None:
        """Change one's own password; every other session of the account ends."""
        account = self.store.read().accounts.get(account_id)
        if account is None or account.kind != LOCAL:
            raise AccountError("Only local accounts have a password here.")
        try:
            _hasher.verify(account.password, old)
        except (VerificationError, InvalidHashError):
            raise AccountError("The current password is wrong.") from None
        _check_password(new, account.login)
        with self.store.change() as ledger:
            ledger.accounts[account_id] = replace(account, password=_hasher.hash(new))
            ledger.sessions = {d: g for d, g in ledger.sessions.items() if g.account != account_id}

    # Single sign-on

    def sso(self, issuer: str, subject: str, email: str, name: str) -> Account:
        """The account of someone the identity provider vouched for: made on their first visit (the first
        one is the admin; the others wait for approval)."""
        key = f"{issuer} {subject}"
        if not subject:
            raise AccountError("The identity provider did not say who you are (no subject); ask an admin.")
        ledger = self.store.read()
        found = next((a for a in ledger.accounts.values() if a.kind == SSO and a.subject == key), None)
        if found is not None:
            return found.public()
        with self.store.change() as ledger:
            found = next((a for a in ledger.accounts.values() if a.kind == SSO and a.subject == key), None)
            if found is not None:
                return found.public()
            first = not ledger.accounts
            account = Account(
                id=secrets.token_hex(8),
                login=(email or subject)[:200],
                name=(name or email or subject).strip()[:80],
                kind=SSO,
                role=ADMIN if first else USER,
                status=ACTIVE if first else PENDING,
                created_at=self._clock(),
                subject=key,
            )
            ledger.accounts[account.id] = account
        if first:
            self._adopt(account.id)
        return account.public()

    # The admin's work

    def invite(self, admin: Account) -> str:
        """A token for an invite link: whoever opens it within INVITE_DAYS may make an account at once."""
        self._require_admin(admin)
        token = new_token()
        with self.store.change() as ledger:
            expires = self._clock() + timedelta(days=INVITE_DAYS)
            ledger.invites[digest(token)] = Grant(digest(token), "", expires, made_by=admin.id)
        return token

    def set_status(self, admin: Account, account_id: str, status: str) -> None:
        """Approve, disable or enable an account; its sessions end when it is disabled."""
        self._require_admin(admin)
        if account_id == admin.id:
            raise AccountError("You cannot change your own account's status.")
        with self.store.change() as ledger:
            account = _existing(ledger, account_id)
            approver = admin.id if account.status == PENDING and status == ACTIVE else account.approved_by
            ledger.accounts[account_id] = replace(account, status=status, approved_by=approver)
            if status != ACTIVE:
                ledger.sessions = {d: g for d, g in ledger.sessions.items() if g.account != account_id}

    def set_role(self, admin: Account, account_id: str, role: str) -> None:
        """Make an account an admin, or a user again (there is always one admin left)."""
        self._require_admin(admin)
        if role not in ROLES:
            raise AccountError(f"Unknown role {role!r}.")
        with self.store.change() as ledger:
            account = _existing(ledger, account_id)
            admins = [a for a in ledger.accounts.values() if a.admin and a.active]
            if role == USER and account.admin and len(admins) <= 1:
                raise AccountError("This is the last admin: make another admin first.")
            ledger.accounts[account_id] = replace(account, role=role)

    def delete(self, admin: Account, account_id: str) -> None:
        """Remove an account, its sessions and all its data, for good."""
        self._require_admin(admin)
        if account_id == admin.id:
            raise AccountError("You cannot delete your own account.")
        folder = self.folder(account_id)
        with self.store.change() as ledger:
            _existing(ledger, account_id)
            del ledger.accounts[account_id]
            ledger.sessions = {d: g for d, g in ledger.sessions.items() if g.account != account_id}
        if self.database is not None:
            self.database.forget(account_id)
        shutil.rmtree(folder, ignore_errors=True)

    def set_providers(self, admin: Account, kinds: Sequence[str] | None) -> None:
        """Which providers users may use (None: all)."""
        self._require_admin(admin)
        if kinds is not None and not kinds:
            raise AccountError("Leave users at least one provider.")
        with self.store.change() as ledger:
            ledger.providers = list(kinds) if kinds is not None else None

    def export(self, admin: Account, account_id: str) -> bytes:
        """A zip of everything an account keeps (its data folder, and the account without its hash)."""
        self._require_admin(admin)
        account = self.get(account_id)
        folder = self.folder(account_id)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            fields = {k: v for k, v in account.to_dict().items() if k != "password"}
            archive.writestr("account.json", json.dumps(fields, ensure_ascii=False, indent=1) + "\n")
            if folder.is_dir():
                for path in sorted(folder.rglob("*")):
                    if path.is_file() and not path.name.endswith(".lock"):
                        archive.write(path, f"data/{path.relative_to(folder)}")
            if self.database is not None:
                chats = PostgresConversationStore(self.database, account_id).everything()
                archive.writestr("data/conversations-export.json", encode_export(chats))
                assistants = self.database.document(account_id, "assistants").read()
                if assistants is not None:
                    archive.writestr("data/assistants.json", assistants)
        return buffer.getvalue()

    # Inside

    def _start(self, ledger: Ledger, account_id: str) -> str:
        token = new_token()
        ledger.sessions[digest(token)] = Grant(digest(token), account_id, self._clock() + self.session_length)
        self._prune(ledger)
        return token

    def _prune(self, ledger: Ledger) -> None:
        moment = self._clock()
        ledger.sessions = {d: g for d, g in ledger.sessions.items() if g.expires_at > moment}
        ledger.invites = {d: g for d, g in ledger.invites.items() if g.expires_at > moment}
        oldest = (moment - WINDOW).timestamp()
        kept = {key: [t for t in times if t > oldest] for key, times in ledger.failures.items()}
        ledger.failures = {key: times for key, times in kept.items() if times}

    def _check_pace(self, ledger: Ledger, limits: list[tuple[str, int]]) -> None:
        """Raise TooManyAttempts if any key has had more than its free failures in WINDOW."""
        moment = self._clock().timestamp()
        oldest = moment - WINDOW.total_seconds()
        wait = 0.0
        for key, free in limits:
            times = [t for t in ledger.failures.get(key, []) if t > oldest]
            if len(times) >= free:
                pause = min(LONGEST_WAIT, FIRST_WAIT * 2 ** (len(times) - free))
                wait = max(wait, times[-1] + pause - moment)
        if wait > 0:
            minutes = max(1, round(wait / 60))
            raise TooManyAttempts(
                f"Too many failed logins. Try again in {minutes} minute{'s' if minutes > 1 else ''}.", wait
            )

    def _require_admin(self, admin: Account) -> None:
        current = self.store.read().accounts.get(admin.id)
        if current is None or not current.admin or not current.active:
            raise AccountError("Only an admin can do that.")

    def _adopt(self, account_id: str) -> None:
        """Give a single-user install's data to its first account, after copying it aside."""
        if self.database is not None:
            self.database.give("", account_id)
        owned = [self.root / name for name in OWNED if (self.root / name).exists()]
        if not owned:
            return
        aside = self.root / f"before-accounts-{self._clock():%Y%m%d-%H%M%S}"
        aside.mkdir(parents=True, exist_ok=True)
        for path in owned:
            if path.is_dir():
                shutil.copytree(path, aside / path.name, dirs_exist_ok=True)
            else:
                shutil.copy2(path, aside / path.name)
        target = self.folder(account_id)
        target.mkdir(parents=True, exist_ok=True)
        for path in owned:
            os.replace(path, target / path.name)


def _clean_login(login: str) -> str:
    login = login.strip()
    if not LOGIN.fullmatch(login):
        raise AccountError("A name is 1 to 64 letters, digits or . _ - @ + (no spaces); choose another.")
    return login


def _check_password(password: str, login: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"A password needs at least {MIN_PASSWORD} characters.")
    if password.casefold() == login.casefold():
        raise AccountError("The password cannot be the name.")


def _by_login(ledger: Ledger, login: str) -> Account | None:
    wanted = login.casefold()
    return next(
        (a for a in ledger.accounts.values() if a.kind == LOCAL and a.login.casefold() == wanted), None
    )


def _existing(ledger: Ledger, account_id: str) -> Account:
    account = ledger.accounts.get(account_id)
    if account is None:
        raise AccountError("That account no longer exists.")
    return account
