"""Channel plumbing: per-channel opt-outs and the inbound media fetch queue.

Revision ID: 0006_channel_optout
Revises: 0002_search
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_channel_optout"
down_revision: str | Sequence[str] | None = "0002_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "channel_opt_outs",
        sa.Column("identity_id", ID, nullable=False),
        sa.Column("channel_kind", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("channel_account_id", ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name=op.f("fk_channel_opt_outs_identity_id_identities"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("identity_id", "channel_kind", name=op.f("pk_channel_opt_outs")),
    )
    op.create_table(
        "media_fetch_jobs",
        sa.Column("id", ID, nullable=False),
        sa.Column("attachment_id", ID, nullable=False),
        sa.Column("channel_account_id", ID, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["attachment_id"],
            ["attachments.id"],
            name=op.f("fk_media_fetch_jobs_attachment_id_attachments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["channel_account_id"],
            ["channel_accounts.id"],
            name=op.f("fk_media_fetch_jobs_channel_account_id_channel_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_fetch_jobs")),
    )
    op.create_index("ix_media_fetch_jobs_attachment_id", "media_fetch_jobs", ["attachment_id"])
    op.create_index("ix_media_fetch_jobs_state_run_at", "media_fetch_jobs", ["state", "run_at"])


def downgrade() -> None:
    op.drop_index("ix_media_fetch_jobs_state_run_at", table_name="media_fetch_jobs")
    op.drop_index("ix_media_fetch_jobs_attachment_id", table_name="media_fetch_jobs")
    op.drop_table("media_fetch_jobs")
    op.drop_table("channel_opt_outs")
