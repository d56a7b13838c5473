"""Configuration from environment variables (and `.env`), as plain typed values with offline defaults.

`load_settings()` reads the environment each time it is called, which costs microseconds; that lets tests
point `BNAGPT_DATA_DIR` at a temporary folder. Secrets are kept out of `repr` so they never reach a log.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from dotenv import load_dotenv

PROJECT_DIR = Path(__file__).resolve().parent

# A real environment variable always wins over `.env`.
load_dotenv(PROJECT_DIR / ".env", override=False)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the app reads from its environment."""

    data_dir: Path  # the data of the one using the app: the data folder, or with accounts users/<id> in it
    provider: str  # BNAGPT_PROVIDER, "" if unset (the registry then picks: controller/providers.py)
    # Every non-empty environment variable, for the settings providers declare (keys among them).
    environment: Mapping[str, str] = field(repr=False)
    local_model_path: Path | None
    local_chat_template: str | None
    local_context_size: int
    local_parallel: int
    local_threads: int | None
    backups_kept: int
    max_file_mb: int
    max_reply_tokens: int
    temperature: float
    request_timeout: float
    sandbox_dir: Path  # the sandbox's libraries, readable by the unprivileged uid code runs as
    sandbox_python: str  # the interpreter code runs with (under /usr, which the sandbox mounts)
    sandbox_run_seconds: float
    accounts: str = ""  # BNAGPT_ACCOUNTS: "" (one user, no login), "local" or "sso" (controller/accounts.py)
    session_hours: float = 168.0
    # BNAGPT_USER_ENDPOINTS=1: with accounts, users may type their own server's address (public ones only)
    user_endpoints: bool = False
    root_dir: Path | None = None  # the data folder (BNAGPT_DATA_DIR); data_dir is in it with accounts
    # BNAGPT_DATABASE_URL: chats in PostgreSQL instead of the JSON files (it may hold a password)
    database_url: str = field(default="", repr=False)

    @property
    def shared_dir(self) -> Path:
        """The data folder itself: the accounts, and what the whole app shares (preferences, caches)."""
        return self.root_dir or self.data_dir

    def for_account(self, folder: Path) -> Settings:
        """These settings with the data of one account, kept in `folder` (controller/accounts.py)."""
        return replace(self, data_dir=folder)

    @property
    def conversations_file(self) -> Path:
        """The conversations data file."""
        return self.data_dir / "conversations.json"

    @property
    def backups_dir(self) -> Path:
        """Where the daily backups go."""
        return self.data_dir / "backups"


def _text(name: str, default: str = "") -> str:
    return os.environ.get(name, "").strip() or default


def _number(name: str, default: float, kind: type = float) -> float:
    raw = _text(name)
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise SystemExit(f"{name}={raw!r} is not a number; fix it in the environment or .env.") from None


def _default_sandbox_dir() -> str:
    # Root's home is private, and code runs as another uid when the app is root.
    return "/opt/bnagpt-sandbox" if os.geteuid() == 0 else "~/.local/share/bnagpt-sandbox"


def _accounts() -> str:
    mode = _text("BNAGPT_ACCOUNTS").lower()
    if mode in ("", "off", "none"):
        return ""
    if mode not in ("local", "sso"):
        raise SystemExit(f"BNAGPT_ACCOUNTS={mode!r} is not one of: local, sso (or leave it unset).")
    return mode


def load_settings() -> Settings:
    """Read the environment into a Settings."""
    local_model = _text("BNAGPT_LOCAL_MODEL")
    data_dir = Path(_text("BNAGPT_DATA_DIR", str(PROJECT_DIR))).expanduser()
    return Settings(
        data_dir=data_dir,
        root_dir=data_dir,
        provider=_text("BNAGPT_PROVIDER").lower(),
        environment={k: v.strip() for k, v in os.environ.items() if v.strip()},
        local_model_path=Path(local_model).expanduser() if local_model else None,
        # llama.cpp uses the chat template inside the GGUF file unless told otherwise.
        local_chat_template=_text("BNAGPT_LOCAL_CHAT_TEMPLATE") or None,
        local_context_size=int(_number("BNAGPT_LOCAL_CONTEXT", 2048, int)),
        local_parallel=max(1, int(_number("BNAGPT_LOCAL_PARALLEL", 4, int))),
        local_threads=int(_number("BNAGPT_LOCAL_THREADS", 0, int)) or None,
        backups_kept=max(0, int(_number("BNAGPT_BACKUPS", 7, int))),
        # Also Streamlit's upload limit (server.maxUploadSize in .streamlit/config.toml) when below it.
        max_file_mb=max(1, int(_number("BNAGPT_MAX_FILE_MB", 50, int))),
        max_reply_tokens=int(_number("BNAGPT_MAX_TOKENS", 512, int)),
        temperature=_number("BNAGPT_TEMPERATURE", 0.7),
        request_timeout=_number("BNAGPT_TIMEOUT", 60.0),
        sandbox_dir=Path(_text("BNAGPT_SANDBOX_DIR", _default_sandbox_dir())).expanduser(),
        sandbox_python=_text("BNAGPT_SANDBOX_PYTHON", "/usr/bin/python3"),
        sandbox_run_seconds=_number("BNAGPT_SANDBOX_SECONDS", 30.0),
        accounts=_accounts(),
        database_url=_text("BNAGPT_DATABASE_URL"),
        session_hours=max(0.01, _number("BNAGPT_SESSION_HOURS", 168.0)),
        user_endpoints=_text("BNAGPT_USER_ENDPOINTS").lower() in ("1", "true", "yes", "on"),
    )
