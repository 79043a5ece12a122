"""Where each durable consumer stands in the events table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from hilo.db.base import Base, Json, UTCDateTime, utcnow


class ConsumerPosition(Base):
    """A consumer's place: every event up to `position` is handled, except the ids in `holes`.

    A hole is an id below the position that was not visible when the consumer passed it: a
    transaction still running (ids are drawn before commit, so they commit out of order) or
    one rolled back. Each is kept as [id, epoch seconds first missed] and looked for again
    until it appears or HOLE_SECONDS pass."""

    __tablename__ = "consumer_positions"
    __mapper_args__ = {"eager_defaults": False}

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(BigInteger)
    holes: Mapped[list[list[Any]]] = mapped_column(Json, default=list)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
