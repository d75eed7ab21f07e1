"""The migrations build exactly the schema the models describe, and undo themselves."""

from __future__ import annotations

from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from storage import migrate
from storage.database import Database
from storage.models import Base


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": False}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(db: Database) -> None:
    async with db.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []


async def test_every_migration_downgrades_and_upgrades_again(db: Database) -> None:
    config = migrate.alembic_config()

    def _down_and_up(connection: Connection) -> tuple[list[str], list[str]]:
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
        emptied = [
            name for name in inspect(connection).get_table_names() if name != "alembic_version"
        ]
        command.upgrade(config, "head")
        return emptied, inspect(connection).get_table_names()

    async with db.engine.begin() as connection:
        emptied, tables = await connection.run_sync(_down_and_up)
    assert emptied == []
    assert set(Base.metadata.tables) <= set(tables)
    assert await migrate.current_revision(db) == migrate.head_revision()
    async with db.engine.connect() as connection:
        assert await connection.run_sync(_differences) == []
