"""A SQLite database file that is not there yet.

Opening a SQLite URL creates the file, so a command that only reads (`journal`,
`check-config`) would leave an empty `./vestnik.db` in whatever folder it ran, and then fail
on the missing tables. These commands look first.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.cli.errors import CliError


def missing_sqlite_file(url: str) -> str | None:
    """The path of the SQLite database file `url` names when that file does not exist, else
    None (another backend, an in-memory database, or a URL the engine will refuse itself)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite":
        return None
    path = parsed.database or ""
    if not path or path == ":memory:" or Path(path).is_file():
        return None
    return path


def require_database_file(url: str) -> None:
    """CliError (exit 1) naming the next step when `url` is a SQLite file that is not there."""
    missing = missing_sqlite_file(url)
    if missing is not None:
        raise CliError(
            f"no database at {missing}: start `vestnik serve` (or `vestnik migrate`) first, "
            "or set database.url (VESTNIK_DATABASE__URL)"
        )
