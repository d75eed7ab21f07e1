"""client_type_settings.template_attachment: the client card's «Шаблоны вложений».

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("client_type_settings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("template_attachment", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("client_type_settings", schema=None) as batch_op:
        batch_op.drop_column("template_attachment")
