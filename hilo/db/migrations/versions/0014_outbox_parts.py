"""Outbox parts: which parts of a multi-part send the provider took, with their ids.

A retry sends only the parts still missing, and a status callback naming any part's id
finds its message.

Revision ID: 0014_outbox_parts
Revises: 0013_open_load_index
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_outbox_parts"
down_revision: str | Sequence[str] | None = "0013_open_load_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox_parts",
        sa.Column("id", ID, nullable=False),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("provider_message_id", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["outbox_jobs.id"], name=op.f("fk_outbox_parts_job_id_outbox_jobs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_outbox_parts_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_parts")),
        sa.UniqueConstraint("job_id", "part", name=op.f("uq_outbox_parts_job_id_part")),
    )
    op.create_index("ix_outbox_parts_provider_message_id", "outbox_parts", ["provider_message_id"])


def downgrade() -> None:
    op.drop_index("ix_outbox_parts_provider_message_id", table_name="outbox_parts")
    op.drop_table("outbox_parts")
