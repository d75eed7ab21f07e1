"""`INSERT … ON CONFLICT` for whichever dialect the session talks to."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(session: AsyncSession, table: Any) -> Any:
    """The dialect's own `insert()`, which has `on_conflict_do_nothing/update`."""
    return insert_of(dialect_of(session))(table)


def insert_of(dialect: str) -> Any:
    """The `insert` function of `dialect` (`postgresql` or `sqlite`)."""
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


def dialect_of(session: AsyncSession) -> str:
    return session.get_bind().dialect.name
