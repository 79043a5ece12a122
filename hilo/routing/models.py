"""Routing and SLA tables: team strategies, agents' routing state, the queue, SLAs.

Nothing here alters the core tables: what routing and SLAs add to a conversation lives in
tables keyed by conversation id (`conversation_routing`, `conversation_sla`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from hilo.db.base import Base, BigId, Json, UTCDateTime, utcnow

STRATEGIES = ("round_robin", "least_loaded", "skills")
AVAILABILITIES = ("available", "away")
PRESENCES = ("online", "away", "offline")
SLA_KINDS = ("first_response", "next_response", "resolution")
TIMER_STATES = ("running", "paused", "met", "cancelled")
SLA_STATUSES = ("on_track", "warning", "breached", "paused", "met")


class RoutingTeam(Base):
    """How a team hands out its conversations."""

    __tablename__ = "routing_teams"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(16), default="round_robin")
    auto_assign: Mapped[bool] = mapped_column(Boolean, default=True)
    reassign_when_offline: Mapped[bool] = mapped_column(Boolean, default=False)
    business_hours_id: Mapped[int | None] = mapped_column(ForeignKey("business_hours.id", ondelete="SET NULL"))
    # The round-robin cursor: the agent who got the last conversation.
    last_agent_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RoutingAgent(Base):
    """An agent's routing state: skills, capacity per kind of channel, presence."""

    __tablename__ = "routing_agents"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    skills: Mapped[list[str]] = mapped_column(Json, default=list)
    # {"call": 1, "chat": 3, "email": 10}; a kind left out uses the built-in default.
    capacity: Mapped[dict[str, int]] = mapped_column(Json, default=dict)
    # What the agent chose; whether they are connected comes from `online_until`.
    availability: Mapped[str] = mapped_column(String(16), default="available")
    # The latest heartbeat expiry over every API process the agent is connected to.
    online_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The presence last announced (online, away, offline), to notice changes.
    presence: Mapped[str] = mapped_column(String(16), default="offline")
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    # Open conversations the agent carries per capacity class, kept by database triggers
    # on `conversations` (migration 0016): read by the routing decision, never written here.
    open_call: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    open_chat: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    open_email: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (Index("ix_routing_agents_presence_online_until", "presence", "online_until"),)


class PresenceSession(Base):
    """An agent's open websockets on one API process, kept alive by heartbeats."""

    __tablename__ = "presence_sessions"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    node_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_presence_sessions_expires_at", "expires_at"),)


class ConversationRouting(Base):
    """A conversation's routing needs and, while nobody fits, its place in its team's queue."""

    __tablename__ = "conversation_routing"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    required_skills: Mapped[list[str]] = mapped_column(Json, default=list)
    # Agents who gave the conversation back (unassigned themselves), and when:
    # [{"agent_id": 3, "at": "<ISO time>"}]. Routing does not offer it to them again for
    # GIVE_BACK_HOLD, then only when nobody else can take it (hilo.routing.strategies).
    excluded_agent_ids: Mapped[list[Any]] = mapped_column(Json, default=list)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    team_id: Mapped[int | None] = mapped_column(BigId)
    # 0 urgent .. 4 none: the queue's first key.
    priority_rank: Mapped[int] = mapped_column(Integer, default=4)
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    channel_class: Mapped[str] = mapped_column(String(16), default="chat")
    reason: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index(
            "ix_conversation_routing_queue",
            "team_id",
            "priority_rank",
            "sla_due_at",
            "waiting_since",
            "conversation_id",
            sqlite_where=text("queued_at IS NOT NULL"),
            postgresql_where=text("queued_at IS NOT NULL"),
        ),
    )


class SlaPolicy(Base):
    """Response and resolution targets for the conversations its conditions pick."""

    __tablename__ = "sla_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    # The first active policy (lowest position) whose conditions match applies.
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # {"priorities": [...], "channel_kinds": [...], "team_ids": [...], "contact_attributes": {...}}
    conditions: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    first_response_seconds: Mapped[int | None] = mapped_column(Integer)
    next_response_seconds: Mapped[int | None] = mapped_column(Integer)
    resolution_seconds: Mapped[int | None] = mapped_column(Integer)
    # Set: targets count business time of this calendar; unset: round-the-clock time.
    business_hours_id: Mapped[int | None] = mapped_column(ForeignKey("business_hours.id", ondelete="SET NULL"))
    warning_share: Mapped[float] = mapped_column(Float, default=0.8)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SlaTimer(Base):
    """One SLA target of one conversation, counting while the conversation waits on us."""

    __tablename__ = "sla_timers"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policies.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="running")
    target_seconds: Mapped[int] = mapped_column(Integer)
    warning_share: Mapped[float] = mapped_column(Float, default=0.8)
    business_hours_id: Mapped[int | None] = mapped_column(ForeignKey("business_hours.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Counted time (business or plain) before `running_since`; pauses add to it.
    consumed_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    running_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The next instant the evaluation pass must look at this timer (warning, then breach).
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_sla_timers_conversation_id_kind", "conversation_id", "kind"),
        # The evaluation pass reads only what is due: a range scan on this index.
        Index(
            "ix_sla_timers_next_check_at",
            "next_check_at",
            sqlite_where=text("next_check_at IS NOT NULL"),
            postgresql_where=text("next_check_at IS NOT NULL"),
        ),
    )
