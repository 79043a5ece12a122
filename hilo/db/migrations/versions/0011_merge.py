"""Join the feature branches into one head: routing, automation, workspace, messaging, mailbox, inbox order.

Revision ID: 0011_merge
Revises: 0004_automation, 0005_web, 0006_channel_optout, 0007_mailbox_state, 0010_inbox_order
"""

from collections.abc import Sequence

revision: str = "0011_merge"
down_revision: str | Sequence[str] | None = (
    "0004_automation",
    "0005_web",
    "0006_channel_optout",
    "0007_mailbox_state",
    "0010_inbox_order",
)
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Nothing to change: this revision only orders the branches."""


def downgrade() -> None:
    """Nothing to change: this revision only orders the branches."""
