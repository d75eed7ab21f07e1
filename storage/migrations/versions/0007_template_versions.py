"""template_versions and template_current: templates edited through the API (CONTRACT §7);
notifications.telegram_text: the Telegram text rendered next to the SMS text.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "template_versions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("saved_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_template_versions")),
        sa.UniqueConstraint(
            "code",
            "recipient",
            "version",
            name=op.f("uq_template_versions_code_recipient_version"),
        ),
    )
    op.create_table(
        "template_current",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("changed_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["code", "recipient", "version"],
            [
                "template_versions.code",
                "template_versions.recipient",
                "template_versions.version",
            ],
            name=op.f("fk_template_current_code_template_versions"),
        ),
        sa.PrimaryKeyConstraint("code", "recipient", name=op.f("pk_template_current")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("telegram_text", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("telegram_text")
    op.drop_table("template_current")
    op.drop_table("template_versions")
