"""What a command says when the database cannot be used at all: one line, exit 2 when the
URL names something that does not exist (fix the configuration), 1 when the server cannot be
reached (start it, or wait)."""

from __future__ import annotations

from bot.cli.errors import EXIT_USAGE, CliError
from storage.database import (
    describe_db_error,
    is_unavailable_error,
    missing_sqlite_folder,
    safe_url,
    wrong_url_reason,
)


def check_database_url(url: str) -> None:
    """Refuse before connecting a URL no server can make work: an SQLite file in a folder that
    does not exist. (aiosqlite's failed connect would also leave its thread to print a
    traceback after the command ends.)"""
    folder = missing_sqlite_folder(url)
    if folder is not None:
        raise _wrong_url(url, f"the folder {folder} of the SQLite file does not exist")


def database_error(url: str, exc: BaseException) -> CliError | None:
    """The line for `exc`, raised while connecting to `url`; None when `exc` is not about
    reaching the database (a bug, shown whole)."""
    reason = wrong_url_reason(url, exc)
    if reason is not None:
        return _wrong_url(url, reason)
    if is_unavailable_error(exc):
        return CliError(
            f"cannot reach the database {safe_url(url)}: {describe_db_error(exc)} "
            "(unreachable: is the server running, and are the URL's host and port right?)"
        )
    return None


def _wrong_url(url: str, reason: str) -> CliError:
    return CliError(
        f"wrong database.url (VESTNIK_DATABASE__URL) {safe_url(url)}: {reason} "
        "(the URL is wrong: fix it, or create what it names)",
        EXIT_USAGE,
    )
