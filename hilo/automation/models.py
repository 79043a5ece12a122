"""Automation tables: rules and their runs, macros, canned responses, scheduled messages,
and the organisation's automation settings (auto-resolve)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hilo.db.base import Base, BigId, Json, UTCDateTime, utcnow
from hilo.db.encryption import EncryptedJson

RULE_EVENTS = (
    "conversation.created",
    "message.received",
    "conversation.status_changed",
    "conversation.assigned",
    "conversation.reopened",
    "sla.warning",
    "sla.breached",
    "conversation.idle",
)
SCHEDULED_STATES = ("pending", "sent", "failed", "cancelled")


class AutomationRule(Base):
    """When `event` happens and the conditions hold, do the actions, in `position` order."""

    __tablename__ = "automation_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    event: Mapped[str] = mapped_column(String(40))
    # {"all": [{"field": ..., "op": ..., "value": ...}], "any": [...]}
    conditions: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # [{"type": "assign_team", "team_id": 3}, {"type": "reply", "body": {...}}, ...]
    # Encrypted at rest: a webhook step holds its signing secret.
    actions: Mapped[list[dict[str, Any]]] = mapped_column(EncryptedJson, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Later rules for the same event are skipped once this one has run.
    stop_processing: Mapped[bool] = mapped_column(Boolean, default=False)
    # conversation.idle: how long without a message, and how far the scan has got.
    idle_hours: Mapped[float | None] = mapped_column(Float)
    idle_scanned_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_automation_rules_event_active_position", "event", "active", "position"),)


class AutomationRun(Base):
    """One rule applied (or stopped) on one conversation: the audit trail and the rate limit."""

    __tablename__ = "automation_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("automation_rules.id", ondelete="SET NULL"))
    conversation_id: Mapped[int] = mapped_column(BigId)
    event: Mapped[str] = mapped_column(String(40))
    depth: Mapped[int] = mapped_column(Integer, default=0)
    # applied, loop_stopped
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_automation_runs_conversation_id_created_at", "conversation_id", "created_at"),
        Index("ix_automation_runs_rule_id_id", "rule_id", "id"),
    )


class Macro(Base):
    """Several actions an agent applies to a conversation in one click."""

    __tablename__ = "macros"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    actions: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    # Shared macros are for everyone (managed by supervisors); others only for their owner.
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_macros_owner_agent_id", "owner_agent_id"),)


class CannedResponse(Base):
    """A saved answer with variables ({{contact.first_name}}), typed with "/shortcut"."""

    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    shortcut: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    # {"es": "..."}: used when the contact's language is one of these.
    translations: Mapped[dict[str, str]] = mapped_column(Json, default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ScheduledMessage(Base):
    """A reply an agent wrote to go out later; sent through the normal reply path then."""

    __tablename__ = "scheduled_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    created_by: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)
    channel_account_id: Mapped[int | None] = mapped_column(BigId)
    send_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    message_id: Mapped[int | None] = mapped_column(BigId)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_scheduled_messages_state_send_at", "state", "send_at"),
        Index("ix_scheduled_messages_conversation_id", "conversation_id"),
    )


class AutomationSettings(Base):
    """The organisation's automation switches (one row, id 1)."""

    __tablename__ = "automation_settings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Resolve open or pending conversations nobody waits on after this many idle hours.
    auto_resolve_after_hours: Mapped[float | None] = mapped_column(Float)
    # {"en": "...", "es": "..."}: sent (when the channel allows) before resolving.
    auto_resolve_message: Mapped[dict[str, str] | None] = mapped_column(Json)
    auto_resolve_scanned_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
