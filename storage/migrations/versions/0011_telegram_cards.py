"""telegram_cards: the living order card, one current Telegram message per client, document
and chat (CONTRACT §9).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "telegram_cards",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("doc_kind", sa.String(64), nullable=False),
        sa.Column("doc_number", sa.String(128), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("sent_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telegram_cards")),
        sa.UniqueConstraint(
            "client_id",
            "doc_kind",
            "doc_number",
            "chat_id",
            name=op.f("uq_telegram_cards_client_id_doc_kind_doc_number_chat_id"),
        ),
    )


def downgrade() -> None:
    op.drop_table("telegram_cards")
