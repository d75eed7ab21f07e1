"""`GET /desk/journal/events`: the journal page's live rows, as server-sent events.

The stream follows the journal's history (`storage.desk.feed`): every change after the
page was read, by any process, is looked at every `desk.live_seconds` (at once when this
process rings the `LiveFeed`). For each notification that changed and is in the page's
filters and the user's scope, an `row` event carries the row's HTML (the page replaces the
row, or puts a new one on top of the first page); one that changed out of the filters
gets a `gone` event. Each event's id is the history position, so a reconnecting browser
resumes where it was (`Last-Event-ID`).

On PostgreSQL a transaction may commit a history row with a smaller id after a larger one
was read, so the last `_OVERLAP` ids are read again, and what was sent is remembered.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from typing import Any

from aiohttp import web

from handlers.common.keys import DB
from handlers.desk import sessions
from handlers.desk.config import DESK, DESK_FEED
from handlers.desk.pages import SECURITY_HEADERS, DeskError, page
from handlers.desk.rows import Filters, RowNames, narrows, parse_filters, render_row
from storage import notifications
from storage.database import Database
from storage.desk import feed
from storage.notifications import JournalFilter

routes = web.RouteTableDef()

_OVERLAP = 200
_BATCH = 500
_KEEP_ALIVE_SECONDS = 15.0
_RETRY_MS = 3000


def _message(event: str, cursor: int, data: dict[str, Any]) -> bytes:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {cursor}\nevent: {event}\ndata: {body}\n\n".encode()


def _start_at(request: web.Request) -> int | None:
    value = request.headers.get("Last-Event-ID") or request.query.get("since", "")
    if not value:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise DeskError(400, "bad_request", "since: a history position", "Испорченная ссылка.")
    return int(value)


@dataclasses.dataclass(slots=True)
class _Follower:
    """Where one stream is in the journal's history, and what it sent lately."""

    db: Database
    filters: Filters
    cursor: int
    seen: set[int] = dataclasses.field(default_factory=set)
    primed: bool = False

    async def messages(self) -> tuple[list[bytes], bool]:
        """The events for the changes since the last call; True when more are waiting."""
        async with self.db.sessions() as session:
            changed = await feed.changes_after(
                session, max(0, self.cursor - _OVERLAP), limit=_BATCH
            )
            if not self.primed:
                # What the page (or this stream before a reconnection) showed already.
                self.seen.update(position for position, _ in changed if position <= self.cursor)
                self.primed = True
            fresh = {note for position, note in changed if position not in self.seen}
            if changed:
                self.seen.update(position for position, _ in changed)
                self.cursor = max(self.cursor, changed[-1][0])
                low = self.cursor - _OVERLAP
                self.seen = {position for position in self.seen if position > low}
            if not fresh:
                return [], len(changed) == _BATCH
            where = dataclasses.replace(
                self.filters.where, ids=fresh, before_id=None, limit=len(fresh)
            )
            rows = await notifications.list_notifications(session, where)
            names = await RowNames.read(session, rows)
            gone: set[int] = set()
            if narrows(where):
                scope = JournalFilter(manager_id=where.manager_id, ids=fresh, limit=len(fresh))
                in_scope = await notifications.list_notifications(session, scope)
                gone = {row.id for row in in_scope} - {row.id for row in rows}
        out = [
            _message("row", self.cursor, {"id": row.id, "html": render_row(row, names)})
            for row in sorted(rows, key=lambda row: row.id)
        ]
        out.extend(_message("gone", self.cursor, {"id": gone_id}) for gone_id in sorted(gone))
        return out, len(changed) == _BATCH


@routes.get("/desk/journal/events")
@page
async def journal_events(request: web.Request) -> web.StreamResponse:
    user = await sessions.signed_in(request)
    filters = parse_filters(request.query, user)
    if filters.errors:
        raise DeskError(400, "bad_request", "invalid journal filter", "; ".join(filters.errors))
    db = request.app[DB]
    start = _start_at(request)
    if start is None:
        async with db.sessions() as session:
            start = await feed.last_change(session)
    follower = _Follower(db, filters, start)
    config, bells = request.app[DESK], request.app[DESK_FEED]
    response = web.StreamResponse(
        headers={
            **SECURITY_HEADERS,
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # a proxy must pass events on as they come
        }
    )
    await response.prepare(request)
    with contextlib.suppress(ConnectionError), bells.listen() as bell:
        await response.write(f"retry: {_RETRY_MS}\n\n".encode())
        quiet_since = time.monotonic()
        more = False
        while not bells.closed:
            left = user.session.expires_at - time.time()
            if left <= 0:
                await response.write(_message("signout", follower.cursor, {}))
                break
            if not more:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(bell.wait(), min(config.live_seconds, left))
                bell.clear()
            messages, more = await follower.messages()
            for message in messages:
                await response.write(message)
            if messages:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > _KEEP_ALIVE_SECONDS:
                # A comment line: proves the connection alive to proxies and to us.
                await response.write(b": keep-alive\n\n")
                quiet_since = time.monotonic()
    return response
