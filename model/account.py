"""The people who use a bnaGPT with accounts on, and what the app keeps about them.

An account is never handed to the view with its password hash: `Account.password` stays out of `repr`, and
`public()` is what pages and exports get. Sessions and invites are kept as SHA-256 digests of their tokens,
so the accounts file alone lets nobody in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

ADMIN, USER = "admin", "user"
ACTIVE, PENDING, DISABLED = "active", "pending", "disabled"
LOCAL, SSO = "local", "sso"
ROLES = (ADMIN, USER)
STATUSES = (ACTIVE, PENDING, DISABLED)


def new_token() -> str:
    """A secret for a cookie or an invite link (256 random bits)."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What is stored of a token: finding it needs the token itself."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def now() -> datetime:
    """The time accounts are stamped with (UTC)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Account:
    """One person: how they log in, their role and whether they may."""

    id: str  # also the name of their data folder: users/<id>
    login: str  # the name typed to log in (local), or the identity provider's email or subject (sso)
    name: str  # shown in the sidebar and the admin page
    kind: str  # LOCAL or SSO
    role: str
    status: str
    created_at: datetime
    subject: str = ""  # sso: "<issuer> <sub>", the identity that does not change when an email does
    password: str = field(default="", repr=False)  # local: the argon2 hash
    approved_by: str = ""

    @property
    def admin(self) -> bool:
        """Whether this account manages the others."""
        return self.role == ADMIN

    @property
    def active(self) -> bool:
        """Whether this account may use the app."""
        return self.status == ACTIVE

    def public(self) -> Account:
        """This account without its password hash."""
        return replace(self, password="")

    def to_dict(self) -> dict[str, str]:
        """The account as the accounts file keeps it."""
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Account:
        """Read an account back; raise ValueError or KeyError on a bad record."""
        values = {name: str(data.get(name, "")) for name in cls.__dataclass_fields__}
        values["created_at"] = datetime.fromisoformat(values["created_at"])
        account = cls(**values)
        if not account.id or account.role not in ROLES or account.status not in STATUSES:
            raise ValueError(f"account {account.id!r} has no id, or an unknown role or status")
        return account


@dataclass(frozen=True, slots=True)
class Grant:
    """A session (a logged-in browser) or an invite: a token's digest, whom it is for, until when."""

    digest: str
    account: str  # the account id; "" for an invite not used yet
    expires_at: datetime
    made_by: str = ""

    def to_dict(self) -> dict[str, str]:
        """The grant as the accounts file keeps it."""
        return {**asdict(self), "expires_at": self.expires_at.isoformat()}

    @classmethod
    def from_dict(cls, data: dict) -> Grant:
        """Read a grant back; raise ValueError or KeyError on a bad record."""
        return cls(
            digest=str(data["digest"]),
            account=str(data.get("account", "")),
            expires_at=datetime.fromisoformat(data["expires_at"]),
            made_by=str(data.get("made_by", "")),
        )
