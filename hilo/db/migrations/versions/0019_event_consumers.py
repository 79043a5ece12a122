"""Durable event consumers and background jobs.

`events.payload` keeps what a committed event told the live screens (the conversation's team,
assignee and status at that moment, the message's direction...), so consumers that read the
events table later see what a listener in the committing process saw. `events.depth` counts how
many automated reactions led to the event (automation stops loops with it). `consumer_positions`
holds each consumer's place in the events table; `jobs` holds work with effects outside the
database (rule webhooks) until it is done.

Revision ID: 0019_event_consumers
Revises: 0018_encrypted_secrets
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019_event_consumers"
down_revision: str | Sequence[str] | None = "0018_encrypted_secrets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.add_column("events", sa.Column("payload", JSON, nullable=True))
    op.add_column("events", sa.Column("depth", sa.SmallInteger(), nullable=False, server_default="0"))
    op.create_table(
        "consumer_positions",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("holes", JSON, nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_consumer_positions")),
    )
    op.create_table(
        "jobs",
        sa.Column("id", ID, nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index("ix_jobs_state_run_at", "jobs", ["state", "run_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_state_run_at", table_name="jobs")
    op.drop_table("jobs")
    op.drop_table("consumer_positions")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("depth")
        batch_op.drop_column("payload")
