"""Events: the record behind the timeline, the audit log and reports."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from hilo.db.base import Base, BigId, Json, UTCDateTime, utcnow


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[int | None] = mapped_column(BigId)
    contact_id: Mapped[int | None] = mapped_column(BigId)
    message_id: Mapped[int | None] = mapped_column(BigId)
    actor_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # What the live screens were told (None: nothing); consumers read it (see hilo.consumers).
    payload: Mapped[dict[str, Any] | None] = mapped_column(Json)
    # How many automated reactions led here: 0 for what a person or a provider did.
    depth: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_events_conversation_id_id", "conversation_id", "id"),
        Index("ix_events_contact_id_id", "contact_id", "id"),
        Index("ix_events_kind_created_at", "kind", "created_at"),
    )
