"""Template versions (CONTRACT §7): every save is a new numbered version, and one row per
code and recipient names the version in use (no row: the template files are in use)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import TemplateCurrent, TemplateVersion
from storage.types import utcnow
from storage.upsert import dialect_of, insert_for

Key = tuple[str, str]
"""(event type code, recipient)."""


@dataclass(frozen=True, slots=True)
class SavedVersion:
    """One line of a template's history."""

    version: int
    saved_at: datetime
    actor: str


async def current_versions(session: AsyncSession) -> dict[Key, int]:
    """The version in use per code and recipient: a few dozen rows at most, read per
    ingest batch to notice a change made by any replica."""
    rows = await session.execute(
        select(TemplateCurrent.code, TemplateCurrent.recipient, TemplateCurrent.version)
    )
    return {(code, recipient): version for code, recipient, version in rows.all()}


async def sources_of(
    session: AsyncSession, wanted: Collection[tuple[str, str, int]]
) -> dict[tuple[str, str, int], str]:
    """The source of each (code, recipient, version) asked for that exists."""
    if not wanted:
        return {}
    columns = (TemplateVersion.code, TemplateVersion.recipient, TemplateVersion.version)
    rows = await session.execute(
        select(*columns, TemplateVersion.source).where(tuple_(*columns).in_(list(wanted)))
    )
    return {(code, recipient, version): source for code, recipient, version, source in rows}


async def history(session: AsyncSession, code: str, recipient: str) -> list[SavedVersion]:
    """Every saved version of a template, newest first."""
    rows = await session.execute(
        select(TemplateVersion.version, TemplateVersion.saved_at, TemplateVersion.actor)
        .where(TemplateVersion.code == code, TemplateVersion.recipient == recipient)
        .order_by(TemplateVersion.version.desc())
    )
    return [SavedVersion(version, saved_at, actor) for version, saved_at, actor in rows]


async def add_version(
    session: AsyncSession, code: str, recipient: str, source: str, *, actor: str
) -> int:
    """Store `source` as the next version and make it current; returns its number.

    Saves of one template take turns, so two at the same moment get two numbers: SQLite's
    transactions already do (BEGIN IMMEDIATE); on PostgreSQL a transaction-scoped advisory
    lock per code and recipient does, since there may be no row yet to lock.
    """
    if dialect_of(session) == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"template_versions:{code}:{recipient}"},
        )
    latest = await session.scalar(
        select(func.max(TemplateVersion.version)).where(
            TemplateVersion.code == code, TemplateVersion.recipient == recipient
        )
    )
    version = (latest or 0) + 1
    session.add(
        TemplateVersion(
            code=code,
            recipient=recipient,
            version=version,
            source=source,
            saved_at=utcnow(),
            actor=actor,
        )
    )
    await session.flush()
    await set_current(session, code, recipient, version, actor=actor)
    return version


async def set_current(
    session: AsyncSession, code: str, recipient: str, version: int | None, *, actor: str
) -> None:
    """Make `version` the one in use; None goes back to the template files."""
    if version is None:
        await session.execute(
            delete(TemplateCurrent).where(
                TemplateCurrent.code == code, TemplateCurrent.recipient == recipient
            )
        )
        return
    now = utcnow()
    await session.execute(
        insert_for(session, TemplateCurrent)
        .values(code=code, recipient=recipient, version=version, changed_at=now, changed_by=actor)
        .on_conflict_do_update(
            index_elements=[TemplateCurrent.code, TemplateCurrent.recipient],
            set_={"version": version, "changed_at": now, "changed_by": actor},
        )
    )
