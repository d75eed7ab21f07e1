"""NOTIFY only for new due work, naming the worker lanes that have it (PostgreSQL).

The trigger of 0002 notified on every INSERT into notifications, so every event, even one
whose notifications are recorded without a delivery (test mode, awaiting confirmation,
tracked by the manager), sent both worker lanes of every replica to the database. This one
reads the statement's new rows (a transition table) and notifies only when some are
`pending`, with the lanes as the payload: `telegram`, `sms` or `telegram,sms`.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION vestnik_queue_notify() RETURNS trigger AS $$
DECLARE
    lanes text;
BEGIN
    SELECT string_agg(lane, ',' ORDER BY lane) INTO lanes
    FROM (
        SELECT DISTINCT CASE WHEN channel = 'telegram' THEN 'telegram' ELSE 'sms' END AS lane
        FROM inserted
        WHERE status = 'pending'
    ) AS due;
    IF lanes IS NOT NULL THEN
        PERFORM pg_notify('vestnik_queue', lanes);
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
NOTIFY_TRIGGER = """
CREATE TRIGGER notifications_queue_notify
AFTER INSERT ON notifications
REFERENCING NEW TABLE AS inserted
FOR EACH STATEMENT EXECUTE FUNCTION vestnik_queue_notify()
"""
# 0002's versions, restored by the downgrade (a migration keeps its own copy of the past).
PREVIOUS_FUNCTION = """
CREATE OR REPLACE FUNCTION vestnik_queue_notify() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('vestnik_queue', '');
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""
PREVIOUS_TRIGGER = """
CREATE TRIGGER notifications_queue_notify
AFTER INSERT ON notifications
FOR EACH STATEMENT EXECUTE FUNCTION vestnik_queue_notify()
"""
DROP_TRIGGER = "DROP TRIGGER IF EXISTS notifications_queue_notify ON notifications"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DROP_TRIGGER)
        op.execute(NOTIFY_FUNCTION)
        op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DROP_TRIGGER)
        op.execute(PREVIOUS_FUNCTION)
        op.execute(PREVIOUS_TRIGGER)
