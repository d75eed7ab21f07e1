"""desk_tokens: the one-time sign-in links of the web desk (the bot's `/desk`).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desk_tokens",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("manager_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["manager_id"],
            ["managers.id"],
            name=op.f("fk_desk_tokens_manager_id_managers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_desk_tokens")),
    )
    with op.batch_alter_table("desk_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_desk_tokens_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("desk_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_desk_tokens_expires_at"))
    op.drop_table("desk_tokens")
