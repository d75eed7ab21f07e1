"""quiet_hours: the queue's index takes `scheduled` rows (held by quiet hours).

A `scheduled` row waits in `next_attempt_at` (the journal's `not_before`) and is claimed
like a `pending` one when it comes, so the partial index the claim reads must hold it too.
No new column: `not_before` is `next_attempt_at` of a scheduled row.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_OLD = "status IN ('pending', 'sending')"
_NEW = "status IN ('pending', 'sending', 'scheduled')"


def _recreate(where: str, previous: str) -> None:
    op.drop_index(
        "ix_notifications_due",
        table_name="notifications",
        postgresql_where=sa.text(previous),
        sqlite_where=sa.text(previous),
    )
    op.create_index(
        "ix_notifications_due",
        "notifications",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(where),
    )


def upgrade() -> None:
    _recreate(_NEW, _OLD)


def downgrade() -> None:
    # The older code knows no `scheduled`: as `pending` with the same due time, such a row
    # still waits for the end of its quiet hours.
    op.execute("UPDATE notifications SET status = 'pending' WHERE status = 'scheduled'")
    _recreate(_OLD, _NEW)
