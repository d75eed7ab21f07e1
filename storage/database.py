"""Engine and session factory for PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

logger = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000


@dataclass(slots=True)
class Database:
    """The engine and its session factory; `dialect` is `postgresql` or `sqlite`."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_setup(engine: AsyncEngine) -> None:
    """WAL, a busy timeout, foreign keys, and BEGIN IMMEDIATE for every transaction.

    A deferred SQLite transaction that reads then writes can fail with "database is locked"
    without waiting; taking the write lock at BEGIN makes other writers wait out the busy
    timeout instead (SQLAlchemy's documented pysqlite recipe).
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def _postgresql_setup(engine: AsyncEngine) -> None:
    """Hand out no connection the server has closed (a restart, an idle timeout).

    asyncpg notices the server closing a connection as soon as the event loop reads the
    socket, idle in the pool or not, so a look at its state replaces the pool's pre-ping:
    that was a `SELECT 1` round trip before every transaction, ~14 % of the outcome
    writer's time under load (bench/dispatch.py). Raising DisconnectionError makes the pool
    drop the connection and check out another (SQLAlchemy's documented checkout hook).
    """

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise DisconnectionError("the server closed this connection")


def create_database(url: str, *, pool_size: int = 10, echo: bool = False) -> Database:
    """Build the engine for `url`; nothing connects until first use."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        # One connection per process: SQLite has one writer anyway, and this keeps
        # in-process writers queued in Python rather than spinning on the file lock.
        kwargs.update(pool_size=1, max_overflow=0, pool_timeout=60)
        engine = create_async_engine(url, **kwargs)
        _sqlite_setup(engine)
    else:
        kwargs.update(
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_recycle=1800,
            pool_timeout=10,
            connect_args={"timeout": 5, "command_timeout": 30},
        )
        engine = create_async_engine(url, **kwargs)
        _postgresql_setup(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    return Database(engine=engine, sessions=sessions)


_ASYNCPG_UNAVAILABLE = frozenset(
    {
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
        "InterfaceError",
        "TooManyConnectionsError",
        "AdminShutdownError",
        "CrashShutdownError",
        "ConnectionFailureError",
    }
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it wraps: SQLAlchemy's `orig`, then each `__cause__`."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = getattr(current, "orig", None) or current.__cause__


def is_unavailable_error(exc: BaseException) -> bool:
    """True when `exc` means the database cannot be reached (answer 503, not 500).

    Looks through SQLAlchemy's wrapping: while PostgreSQL starts up, asyncpg's
    CannotConnectNowError arrives inside a plain DBAPIError.
    """
    for current in _causes(exc):
        if isinstance(current, (OperationalError, InterfaceError)):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, (ConnectionError, OSError, TimeoutError)):
            return True
        if type(current).__name__ in _ASYNCPG_UNAVAILABLE:
            return True
    return False


def describe_db_error(exc: BaseException) -> str:
    """One line about a database error, without SQL text or parameters.

    Names the driver's own exception (asyncpg's `InvalidCatalogNameError`), not the generic
    class SQLAlchemy's adapter wraps it in.
    """
    *_, original = _causes(exc)
    text = str(original).strip().splitlines()[0] if str(original).strip() else ""
    return f"{type(original).__name__}: {text}" if text else type(original).__name__


def safe_url(url: str) -> str:
    """`url` fit for a message or a log line: the password masked."""
    return make_url(url).render_as_string(hide_password=True)


# asyncpg's answers when the server is there but the URL names a database or role it does
# not have, or the wrong password: the URL needs fixing, waiting will not help.
_ASYNCPG_WRONG_URL = frozenset(
    {
        "InvalidCatalogNameError",
        "InvalidAuthorizationSpecificationError",
        "InvalidPasswordError",
    }
)


def missing_sqlite_folder(url: str) -> Path | None:
    """The folder of the SQLite file `url` names, when that folder does not exist."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    folder = Path(parsed.database).parent
    return None if folder.is_dir() else folder


def wrong_url_reason(url: str, exc: BaseException) -> str | None:
    """Why `url` itself is wrong, when `exc` (raised while connecting) says so: a database
    or role the server does not have, or an SQLite file in a folder that does not exist."""
    folder = missing_sqlite_folder(url)
    if folder is not None:
        return f"the folder {folder} of the SQLite file does not exist"
    for current in _causes(exc):
        if type(current).__name__ in _ASYNCPG_WRONG_URL:
            text = str(current).strip()
            return text.splitlines()[0] if text else type(current).__name__
    return None
