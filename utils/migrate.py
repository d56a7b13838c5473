"""Move chats and assistants between the JSON files and PostgreSQL, both ways, checked, source untouched.

    python -m utils.migrate to-postgres   # BNAGPT_DATA_DIR's files → BNAGPT_DATABASE_URL
    python -m utils.migrate to-files      # BNAGPT_DATABASE_URL → BNAGPT_DATA_DIR's files

Every owner moves: the single user's data at the top of the data folder, and with accounts each account's
`users/<id>/`. A target that already holds chats or assistants for an owner is refused before anything is
written. After copying, every chat is read back from the target and compared byte for byte with the
source's (in the file format both use), and the assistants' documents likewise. The source is only read.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from controller.accounts import USERS_FOLDER
from errors import BnaGPTError
from model.assistant_store import AssistantStore, PostgresAssistantStore
from model.codec import encode_conversation
from model.conversation_store import ConversationStore
from model.database import Database
from model.json_store import JsonConversationStore
from model.postgres_store import PostgresConversationStore
from settings import load_settings


class MigrationRefused(BnaGPTError):
    """The target already holds data, or the copy did not read back the same; the message says which."""


@dataclass(frozen=True, slots=True)
class Moved:
    """What was copied for one owner."""

    owner: str
    chats: int
    assistants: int


@dataclass(frozen=True, slots=True)
class Side:
    """One owner's chats and assistants in one backend."""

    chats: ConversationStore
    assistants: AssistantStore


def file_owners(root: Path) -> list[str]:
    """The owners with data in the folder: "" (the top), and each account folder."""
    users = root / USERS_FOLDER
    folders = sorted(p.name for p in users.iterdir() if p.is_dir()) if users.is_dir() else []
    return ["", *folders]


def database_owners(database: Database) -> list[str]:
    """The owners with chats or documents in the database."""
    with database.pool.connection() as conn:
        rows = conn.execute(
            "SELECT owner FROM conversations UNION SELECT owner FROM documents ORDER BY 1"
        ).fetchall()
    return [row[0] for row in rows]


def files_side(root: Path, owner: str) -> Side:
    """An owner's files."""
    folder = root / USERS_FOLDER / owner if owner else root
    return Side(
        JsonConversationStore(folder / "conversations.json"), AssistantStore(folder / "assistants.json")
    )


def database_side(database: Database, owner: str) -> Side:
    """An owner's rows."""
    return Side(PostgresConversationStore(database, owner), PostgresAssistantStore(database, owner))


def copy(owners: list[str], source: Callable[[str], Side], target: Callable[[str], Side]) -> list[Moved]:
    """Copy every owner's chats and assistants, then check them; raise MigrationRefused."""
    for owner in owners:  # refuse before writing anything
        there = target(owner)
        if there.chats.list() or there.assistants.document():
            raise MigrationRefused(
                f"The target already has chats or assistants for {_who(owner)}: nothing was copied. Move "
                "them away (or point the target at an empty database or folder) and run this again."
            )
    moved = []
    for owner in owners:
        here, there = source(owner), target(owner)
        chats = here.chats.everything()
        there.chats.add_many(chats, keep_ids=True)
        assistants = here.assistants.document()
        if assistants is not None:
            there.assistants.replace_document(assistants)
        _check(owner, here, target(owner))
        mine = [a for a in here.assistants.list() if not a.builtin]
        moved.append(Moved(owner, len(chats), len(mine)))
    return moved


def _check(owner: str, here: Side, there: Side) -> None:
    """The target, read afresh, holds exactly the source's chats and assistants."""
    wanted = {c.id: encode_conversation(c) for c in here.chats.everything()}
    found = {c.id: encode_conversation(c) for c in there.chats.everything()}
    if wanted != found:
        differ = sorted(set(wanted) ^ set(found)) or [i for i in wanted if wanted[i] != found.get(i)]
        raise MigrationRefused(
            f"The copy of {_who(owner)}'s chats does not read back the same ({len(wanted)} in the source, "
            f"{len(found)} in the target; first difference: {differ[:1]}). The source is unchanged."
        )
    if here.assistants.document() != there.assistants.document():
        raise MigrationRefused(f"The copy of {_who(owner)}'s assistants does not read back the same.")


def _who(owner: str) -> str:
    return f"account {owner}" if owner else "the single user"


def main(argv: list[str] | None = None) -> int:
    """The command line."""
    settings = load_settings()
    parser = argparse.ArgumentParser(prog="python -m utils.migrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("direction", choices=["to-postgres", "to-files"])
    parser.add_argument("--data-dir", type=Path, default=settings.shared_dir, help="default: BNAGPT_DATA_DIR")
    parser.add_argument("--database-url", default=settings.database_url, help="default: BNAGPT_DATABASE_URL")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("no database: set BNAGPT_DATABASE_URL or pass --database-url")
    database = Database(args.database_url)
    root = Path(args.data_dir)
    try:
        if args.direction == "to-postgres":
            moved = copy(
                file_owners(root), lambda o: files_side(root, o), lambda o: database_side(database, o)
            )
        else:
            owners = database_owners(database)
            moved = copy(owners, lambda o: database_side(database, o), lambda o: files_side(root, o))
    except BnaGPTError as error:
        print(f"Not done: {error}", file=sys.stderr)
        return 1
    finally:
        database.close()
    target = database.label if args.direction == "to-postgres" else root
    for item in moved:
        print(f"{_who(item.owner)}: {item.chats} chats and {item.assistants} assistants copied and checked")
    print(f"Done: everything is in {target} too; the source was not changed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
