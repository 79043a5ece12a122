"""What the agent workspace keeps per agent: saved inbox views, read markers, notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from hilo.db.base import Base, BigId, Json, UTCDateTime, utcnow

SORTS = ("last_activity", "waiting", "priority", "created", "sla_due")
NOTIFICATION_KINDS = ("mention", "assigned", "reply", "sla_warning", "sla_breached", "scheduled_failed")


class SavedView(Base):
    """An agent's own inbox view: a name, filters and a sort order."""

    __tablename__ = "saved_views"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(80))
    # {"status": [...], "assignee": "me"|"none"|"<id>", "team": "none"|"<id>", "channel": <id>, "label": "..."}
    filters: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    sort: Mapped[str] = mapped_column(String(16), default="last_activity")
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_saved_views_agent_id_position", "agent_id", "position"),)


class ConversationRead(Base):
    """When an agent last read a conversation: newer inbound messages make it unread."""

    __tablename__ = "conversation_reads"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_conversation_reads_conversation_id", "conversation_id"),)


class Notification(Base):
    """Something an agent should know about: a mention, an assignment, a customer's reply."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(BigId)
    actor_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    # What the notification shows: the contact's name and a preview of the text.
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_notifications_agent_id_id", "agent_id", "id"),)
