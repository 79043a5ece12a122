"""Inbox order: conversations by last activity, for lists and searches without a status filter.

Revision ID: 0010_inbox_order
Revises: 0002_search
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010_inbox_order"
down_revision: str | Sequence[str] | None = "0002_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The other ordered indexes start with status, assignee, team or channel; "all
    # conversations, newest activity first" (and search's newest-first window) needs this one.
    op.create_index("ix_conversations_last_message_at", "conversations", ["last_message_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_conversations_last_message_at", table_name="conversations")
