"""The desk's client search: by id, name or phone, over the client directory."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Client

SEARCH_LIMIT = 50
_NOT_DIGITS = re.compile(r"\D+")


@dataclass(frozen=True, slots=True)
class FoundClient:
    id: str
    name: str
    phone: str | None
    manager_id: str | None
    blocked: bool


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search(session: AsyncSession, query: str) -> list[FoundClient]:
    """Clients whose id starts with `query`, whose name holds it, or whose phone holds its
    digits (at least 4; a leading 8 of a Russian number is read as 7), by name."""
    text = _escaped(query.strip())
    # SQLite folds the case of ASCII letters only: a capitalised Cyrillic query is tried too.
    spellings = {text, text[:1].upper() + text[1:], text.lower()}
    conditions = [Client.id.like(f"{text}%", escape="\\")]
    conditions += [Client.name.ilike(f"%{spelling}%", escape="\\") for spelling in spellings]
    digits = _NOT_DIGITS.sub("", query)
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    if len(digits) >= 4:
        conditions.append(Client.phone.like(f"%{digits}%"))
    rows = await session.execute(
        select(Client.id, Client.name, Client.phone, Client.manager_id, Client.blocked)
        .where(or_(*conditions))
        .order_by(Client.name, Client.id)
        .limit(SEARCH_LIMIT)
    )
    return [FoundClient(*row) for row in rows]
