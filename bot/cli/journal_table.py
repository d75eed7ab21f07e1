"""`vestnik journal`: the latest notifications as a plain-text table."""

from __future__ import annotations

import asyncio
import shutil

from sqlalchemy.exc import DBAPIError

from bot.cli.db_file import require_database_file
from bot.cli.errors import CliError
from bot.settings import Settings
from dispatch.phones import mask_phone
from storage import notifications
from storage.database import create_database, describe_db_error, is_unavailable_error
from storage.models import Notification

COLUMNS = ("id", "created (UTC)", "type", "to", "channel", "status", "segs", "text / reason")


def _recipient(note: Notification) -> str:
    """Who the row is for: the client's id, `mgr <id>`, or `admin` for a test SMS (which has
    neither a client nor a manager)."""
    if note.recipient == "client":
        return note.client_id or "client"
    if note.recipient == "manager":
        # The skipped row of a client with no (known) responsible manager has no id.
        return f"mgr {note.manager_id or '-'}"
    return note.recipient


def _row(note: Notification) -> tuple[str, ...]:
    who = _recipient(note)
    detail = note.text if note.status in {"test", "pending", "sent", "delivered"} else None
    detail = (detail or note.reason or note.text or "").replace("\n", " ")
    return (
        str(note.id),
        note.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        note.event_type,
        f"{who} {mask_phone(note.phone)}" if note.phone else who,
        note.channel or "-",
        note.status,
        str(note.segments or "-"),
        detail,
    )


def format_table(rows: list[tuple[str, ...]], width: int) -> str:
    table = [COLUMNS, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS) - 1)]
    fixed = sum(widths) + 2 * (len(widths))
    last = max(20, width - fixed)
    lines = []
    for row in table:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        text = row[-1] if len(row[-1]) <= last else row[-1][: last - 1] + "…"
        lines.append("  ".join([*cells, text]).rstrip())
    return "\n".join(lines)


def print_journal(settings: Settings, *, status: str | None, limit: int) -> None:
    require_database_file(settings.database.url)

    async def load() -> list[Notification]:
        db = create_database(settings.database.url)
        try:
            async with db.sessions() as session:
                return await notifications.list_notifications(
                    session, notifications.JournalFilter(status=status, limit=limit)
                )
        finally:
            await db.dispose()

    try:
        rows = asyncio.run(load())
    except Exception as exc:
        if is_unavailable_error(exc) or isinstance(exc, DBAPIError):
            raise CliError(
                f"cannot read the journal: {describe_db_error(exc)} "
                "(is the database URL right? has `vestnik migrate` run?)"
            ) from None
        raise
    if not rows:
        print("The journal is empty" + (f" for status {status}." if status else "."))
        return
    width = shutil.get_terminal_size((140, 20)).columns
    print(format_table([_row(note) for note in rows], width))
