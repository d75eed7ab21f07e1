"""The base of storage's own errors.

Database and driver failures stay SQLAlchemy's exceptions (`storage.database.
describe_db_error` turns them into one line); an error that storage itself decides to
raise derives from `StorageError`, so the layers above can catch storage's refusals as one.
"""

from __future__ import annotations


class StorageError(Exception):
    """An error raised by the storage layer itself (not by the database driver)."""
