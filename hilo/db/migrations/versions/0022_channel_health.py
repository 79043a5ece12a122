"""Indexes for each channel's health: its latest messages and its failed sends.

Revision ID: 0022_channel_health
Revises: 0021_brazil_mobiles
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022_channel_health"
down_revision: str | Sequence[str] | None = "0021_brazil_mobiles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_messages_channel_account_id_id", "messages", ["channel_account_id", "id"])
    op.create_index(
        "ix_messages_failed",
        "messages",
        ["channel_account_id", "created_at"],
        sqlite_where=sa.text("status = 'failed'"),
        postgresql_where=sa.text("status = 'failed'"),
    )


def downgrade() -> None:
    op.drop_index("ix_messages_failed", table_name="messages")
    op.drop_index("ix_messages_channel_account_id_id", table_name="messages")
