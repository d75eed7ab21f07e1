"""Delivery queue: queued_at, and NOTIFY on new notifications (PostgreSQL).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# A statement-level trigger: one NOTIFY per INSERT statement, and PostgreSQL folds
# identical notifications of one transaction into one, so ingestion pays nothing extra.
NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION vestnik_queue_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('vestnik_queue', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
NOTIFY_TRIGGER = """
CREATE TRIGGER notifications_queue_notify
AFTER INSERT ON notifications
FOR EACH STATEMENT EXECUTE FUNCTION vestnik_queue_notify()
"""


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("queued_at", storage.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute("UPDATE notifications SET queued_at = created_at WHERE status = 'pending'")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION)
        op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS notifications_queue_notify ON notifications")
        op.execute("DROP FUNCTION IF EXISTS vestnik_queue_notify()")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("queued_at")
