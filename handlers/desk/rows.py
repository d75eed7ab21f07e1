"""The journal as the desk shows it: the filters of the page (and of its live stream) and
the rows with what names them (the document, the client), read in one query each per page."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import urlencode

from sqlalchemy.ext.asyncio import AsyncSession

from dispatch.catalogue import EVENT_TYPES
from handlers.common.cursors import decode_cursor
from handlers.common.ids import card_id_problem
from handlers.desk.pages import render_text
from handlers.desk.sessions import DeskUser
from handlers.http.notifications import CURSOR_PREFIX
from storage import directory, events
from storage.events import DocumentRef
from storage.models import Notification
from storage.notifications import JournalFilter
from storage.statuses import ALL_STATUSES

PAGE_SIZE = 50
NUMBER_MAX_CHARS = 128
FILTER_FIELDS = ("status", "type", "client", "number", "from", "to")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True, slots=True)
class Filters:
    """The filters as typed (to fill the form again) and as a journal query."""

    values: Mapping[str, str]
    where: JournalFilter
    errors: Sequence[str] = ()

    def query(self, **extra: str) -> str:
        """The filters (and `extra`) as a query string, empty fields left out."""
        pairs = {name: value for name, value in self.values.items() if value}
        pairs.update(extra)
        return urlencode(pairs)


def _day(value: str, name: str, errors: list[str]) -> date | None:
    if not value:
        return None
    if _DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    errors.append(f"{name}: дата в виде ГГГГ-ММ-ДД")
    return None


def parse_filters(query: Mapping[str, str], user: DeskUser) -> Filters:
    """The page's filters from its query string; mistakes are named in `errors` (in Russian),
    and the user's scope (a manager's own clients) always applies."""
    values = {name: query.get(name, "").strip() for name in FILTER_FIELDS}
    errors: list[str] = []
    if values["status"] and values["status"] not in ALL_STATUSES:
        errors.append(f"Статус: неизвестный статус «{values['status']}»")
    if values["type"] and values["type"] not in EVENT_TYPES:
        errors.append(f"Тип: неизвестный тип события «{values['type']}»")
    if values["client"] and card_id_problem(values["client"], "client"):
        errors.append("Клиент: код клиента — от 1 до 64 символов")
    if len(values["number"]) > NUMBER_MAX_CHARS or "\x00" in values["number"]:
        errors.append(f"Документ: номер — до {NUMBER_MAX_CHARS} символов")
    since = _day(values["from"], "С", errors)
    until = _day(values["to"], "По", errors)
    before_id = None
    cursor = query.get("before", "")
    if cursor:
        try:
            before_id = decode_cursor(cursor, CURSOR_PREFIX)
        except ValueError:
            errors.append("Страница: ссылка на страницу испорчена, начните с первой")
    where = JournalFilter(
        status=values["status"] or None,
        event_type=values["type"] or None,
        client_id=values["client"] or None,
        document_number=values["number"] or None,
        since=datetime.combine(since, time(), UTC) if since else None,
        until=datetime.combine(until + timedelta(days=1), time(), UTC) if until else None,
        before_id=before_id,
        manager_id=user.scope,
        limit=PAGE_SIZE,
    )
    return Filters(values, where, tuple(errors))


def narrows(where: JournalFilter) -> bool:
    """Whether the page's filters leave out some of the user's notifications."""
    return any(
        value is not None
        for value in (
            where.status,
            where.event_type,
            where.client_id,
            where.document_number,
            where.since,
            where.until,
        )
    )


@dataclass(slots=True)
class RowNames:
    """What names each row: its document and its client."""

    documents: dict[int, DocumentRef] = field(default_factory=dict)
    clients: dict[str, str] = field(default_factory=dict)

    @classmethod
    async def read(cls, session: AsyncSession, rows: Sequence[Notification]) -> RowNames:
        pks = [row.event_pk for row in rows if row.event_pk is not None]
        return cls(
            documents=await events.documents_by_pk(session, pks),
            clients=await directory.client_names(
                session, [row.client_id for row in rows if row.client_id]
            ),
        )

    def document(self, row: Notification) -> DocumentRef | None:
        return self.documents.get(row.event_pk) if row.event_pk is not None else None

    def client(self, row: Notification) -> str | None:
        return self.clients.get(row.client_id) if row.client_id else None


def render_row(row: Notification, names: RowNames) -> str:
    return render_text("_row.html.j2", row=row, names=names)
