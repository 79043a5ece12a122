"""Per-channel opt-outs and the queue of inbound media the worker fetches."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from hilo.db.base import Base, BigId, UTCDateTime, utcnow


class ChannelOptOut(Base):
    """An identity that must not be messaged on one kind of channel.

    SMS, WhatsApp and voice share the phone identity, so an SMS STOP is recorded for
    `sms` only and leaves WhatsApp open. `Identity.opted_out` stays the block on every
    channel."""

    __tablename__ = "channel_opt_outs"

    identity_id: Mapped[int] = mapped_column(ForeignKey("identities.id", ondelete="CASCADE"), primary_key=True)
    channel_kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    # keyword (STOP/BAJA), provider (21610, bot blocked) or agent.
    source: Mapped[str] = mapped_column(String(16))
    channel_account_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MediaFetchJob(Base):
    """Fetch one inbound attachment from its provider into Hilo's storage.

    Committed with the message it belongs to, so a crash after the webhook was
    acknowledged never loses the file; claimed like outbox jobs (lease, SKIP LOCKED)."""

    __tablename__ = "media_fetch_jobs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    attachment_id: Mapped[int] = mapped_column(ForeignKey("attachments.id", ondelete="CASCADE"), index=True)
    channel_account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending, done, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    run_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_media_fetch_jobs_state_run_at", "state", "run_at"),)
