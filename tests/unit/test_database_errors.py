"""Which database errors mean "unavailable" (503) rather than a bug (500)."""

from __future__ import annotations


def test_database_starting_up_inside_a_plain_dbapi_error_is_unavailable() -> None:
    """asyncpg's CannotConnectNowError wrapped by SQLAlchemy still means 503, not 500."""
    from sqlalchemy.exc import DBAPIError

    from storage.database import is_unavailable_error

    class CannotConnectNowError(Exception):
        pass

    class AdaptedError(Exception):
        pass

    adapted = AdaptedError("the database system is starting up")
    adapted.__cause__ = CannotConnectNowError("the database system is starting up")
    wrapped = DBAPIError("SELECT 1", {}, adapted)
    assert is_unavailable_error(wrapped)
    assert not is_unavailable_error(DBAPIError("SELECT 1", {}, ValueError("bad value")))
    assert not is_unavailable_error(KeyError("x"))
