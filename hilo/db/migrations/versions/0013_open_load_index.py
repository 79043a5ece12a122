"""A partial index of open, assigned conversations by agent and channel: routing's load.

A routing decision reads how many open conversations each online member of a team
carries per kind of channel. The (assignee, status, last message) index made that a
scan over every conversation's status on PostgreSQL; this index holds only the open,
assigned ones, so each member's load is one short index-only probe.

Revision ID: 0013_open_load_index
Revises: 0012_conversation_statistics
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013_open_load_index"
down_revision: str | Sequence[str] | None = "0012_conversation_statistics"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHERE = sa.text("status = 'open' AND assignee_id IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_conversations_open_load",
        "conversations",
        ["assignee_id", "last_channel_account_id"],
        sqlite_where=WHERE,
        postgresql_where=WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_open_load", table_name="conversations")
