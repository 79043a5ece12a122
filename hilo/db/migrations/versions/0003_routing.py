"""Routing and SLAs: team strategies, agents' skills/capacity/presence, the queue,
business-hour calendars, SLA policies, timers and per-conversation SLA status.

Revision ID: 0003_routing
Revises: 0002_search
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003_routing"
down_revision: str | Sequence[str] | None = "0002_search"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "business_hours",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("periods", JSON, nullable=False),
        sa.Column("holiday_country", sa.String(length=8), nullable=True),
        sa.Column("holiday_subdivision", sa.String(length=16), nullable=True),
        sa.Column("closed_dates", JSON, nullable=False),
        sa.Column("out_of_office_message", JSON, nullable=True),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_business_hours")),
        sa.UniqueConstraint("name", name=op.f("uq_business_hours_name")),
    )
    op.create_table(
        "routing_teams",
        sa.Column("team_id", ID, nullable=False),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("auto_assign", sa.Boolean(), nullable=False),
        sa.Column("reassign_when_offline", sa.Boolean(), nullable=False),
        sa.Column("business_hours_id", ID, nullable=True),
        sa.Column("last_agent_id", ID, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["business_hours_id"],
            ["business_hours.id"],
            name=op.f("fk_routing_teams_business_hours_id_business_hours"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_routing_teams_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", name=op.f("pk_routing_teams")),
    )
    op.create_table(
        "routing_agents",
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("skills", JSON, nullable=False),
        sa.Column("capacity", JSON, nullable=False),
        sa.Column("availability", sa.String(length=16), nullable=False),
        sa.Column("online_until", TS, nullable=True),
        sa.Column("presence", sa.String(length=16), nullable=False),
        sa.Column("last_assigned_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_routing_agents_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_routing_agents")),
    )
    with op.batch_alter_table("routing_agents", schema=None) as batch_op:
        batch_op.create_index("ix_routing_agents_presence_online_until", ["presence", "online_until"], unique=False)
    op.create_table(
        "presence_sessions",
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_presence_sessions_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("agent_id", "node_id", name=op.f("pk_presence_sessions")),
    )
    with op.batch_alter_table("presence_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_presence_sessions_expires_at", ["expires_at"], unique=False)
    op.create_table(
        "conversation_routing",
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("required_skills", JSON, nullable=False),
        sa.Column("excluded_agent_ids", JSON, nullable=False),
        sa.Column("queued_at", TS, nullable=True),
        sa.Column("team_id", ID, nullable=True),
        sa.Column("priority_rank", sa.Integer(), nullable=False),
        sa.Column("sla_due_at", TS, nullable=True),
        sa.Column("waiting_since", TS, nullable=True),
        sa.Column("channel_class", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_routing_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_conversation_routing")),
    )
    with op.batch_alter_table("conversation_routing", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversation_routing_queue",
            ["team_id", "priority_rank", "sla_due_at", "waiting_since", "conversation_id"],
            unique=False,
            sqlite_where=sa.text("queued_at IS NOT NULL"),
            postgresql_where=sa.text("queued_at IS NOT NULL"),
        )
    op.create_table(
        "sla_policies",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("conditions", JSON, nullable=False),
        sa.Column("first_response_seconds", sa.Integer(), nullable=True),
        sa.Column("next_response_seconds", sa.Integer(), nullable=True),
        sa.Column("resolution_seconds", sa.Integer(), nullable=True),
        sa.Column("business_hours_id", ID, nullable=True),
        sa.Column("warning_share", sa.Float(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["business_hours_id"],
            ["business_hours.id"],
            name=op.f("fk_sla_policies_business_hours_id_business_hours"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
        sa.UniqueConstraint("name", name=op.f("uq_sla_policies_name")),
    )
    op.create_table(
        "sla_timers",
        sa.Column("id", ID, nullable=False),
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("policy_id", ID, nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("target_seconds", sa.Integer(), nullable=False),
        sa.Column("warning_share", sa.Float(), nullable=False),
        sa.Column("business_hours_id", ID, nullable=True),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("consumed_seconds", sa.Float(), nullable=False),
        sa.Column("running_since", TS, nullable=True),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("warn_at", TS, nullable=True),
        sa.Column("next_check_at", TS, nullable=True),
        sa.Column("warned_at", TS, nullable=True),
        sa.Column("breached_at", TS, nullable=True),
        sa.Column("stopped_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["business_hours_id"],
            ["business_hours.id"],
            name=op.f("fk_sla_timers_business_hours_id_business_hours"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_sla_timers_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"], ["sla_policies.id"], name=op.f("fk_sla_timers_policy_id_sla_policies"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_timers")),
    )
    with op.batch_alter_table("sla_timers", schema=None) as batch_op:
        batch_op.create_index("ix_sla_timers_conversation_id_kind", ["conversation_id", "kind"], unique=False)
        batch_op.create_index(
            "ix_sla_timers_next_check_at",
            ["next_check_at"],
            unique=False,
            sqlite_where=sa.text("next_check_at IS NOT NULL"),
            postgresql_where=sa.text("next_check_at IS NOT NULL"),
        )
    op.create_table(
        "conversation_sla",
        sa.Column("conversation_id", ID, nullable=False),
        sa.Column("policy_id", ID, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("due_kind", sa.String(length=16), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_sla_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["policy_id"],
            ["sla_policies.id"],
            name=op.f("fk_conversation_sla_policy_id_sla_policies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_conversation_sla")),
    )
    with op.batch_alter_table("conversation_sla", schema=None) as batch_op:
        batch_op.create_index("ix_conversation_sla_due_at", ["due_at"], unique=False)
        batch_op.create_index("ix_conversation_sla_status_due_at", ["status", "due_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("conversation_sla", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_sla_status_due_at")
        batch_op.drop_index("ix_conversation_sla_due_at")
    op.drop_table("conversation_sla")
    with op.batch_alter_table("sla_timers", schema=None) as batch_op:
        batch_op.drop_index("ix_sla_timers_next_check_at")
        batch_op.drop_index("ix_sla_timers_conversation_id_kind")
    op.drop_table("sla_timers")
    op.drop_table("sla_policies")
    with op.batch_alter_table("conversation_routing", schema=None) as batch_op:
        batch_op.drop_index("ix_conversation_routing_queue")
    op.drop_table("conversation_routing")
    with op.batch_alter_table("presence_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_presence_sessions_expires_at")
    op.drop_table("presence_sessions")
    with op.batch_alter_table("routing_agents", schema=None) as batch_op:
        batch_op.drop_index("ix_routing_agents_presence_online_until")
    op.drop_table("routing_agents")
    op.drop_table("routing_teams")
    op.drop_table("business_hours")
