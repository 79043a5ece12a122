"""Outbox jobs: a send committed together with its message, run by the worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hilo.db.base import Base, BigId, UTCDateTime, utcnow


class OutboxJob(Base):
    __tablename__ = "outbox_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    # Sent to the provider with every attempt of this job, so a retry after a crash
    # between "provider accepted" and "we recorded it" is recognised as the same send.
    idempotency_key: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending, done, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=8)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_outbox_jobs_state_run_at", "state", "run_at"),)


class OutboxPart(Base):
    """One part of a multi-part send that the provider took: the text, or one attachment.

    WhatsApp, Messenger, Instagram and Telegram carry a message with attachments as
    several provider messages. Recording each as it goes lets a retry of the job send only
    the parts still missing, and lets a status callback that names any part's id find
    the Hilo message (whose own provider id is the first part's)."""

    __tablename__ = "outbox_parts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("outbox_jobs.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    # 0 for the first provider message of the send, 1 for the next, ...
    part: Mapped[int] = mapped_column(Integer)
    provider_message_id: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("job_id", "part"),
        Index("ix_outbox_parts_provider_message_id", "provider_message_id"),
    )
