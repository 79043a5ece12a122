"""Conversations, their messages and attachments, and labels."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hilo.db.base import Base, BigId, Json, UTCDateTime, utcnow

STATUSES = ("open", "pending", "snoozed", "resolved")
PRIORITIES = ("none", "low", "medium", "high", "urgent")
DIRECTIONS = ("inbound", "outbound", "note", "event")

conversation_labels = Table(
    "conversation_labels",
    Base.metadata,
    Column("conversation_id", ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True),
    Column("label_id", ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_conversation_labels_label_id", "label_id"),
)


class Label(Base):
    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    color: Mapped[str] = mapped_column(String(16), default="#6b7280")


class Conversation(Base):
    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")
    priority: Mapped[str] = mapped_column(String(16), default="none")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    subject: Mapped[str | None] = mapped_column(String(998))
    # The channel account of the last inbound message: the default reply channel.
    last_channel_account_id: Mapped[int | None] = mapped_column(ForeignKey("channel_accounts.id"))
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_inbound_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The oldest inbound message still waiting for an agent's answer (None: nobody waits).
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_response_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id"))

    labels: Mapped[list[Label]] = relationship(secondary=conversation_labels, order_by=Label.name)

    __table_args__ = (
        # At most one unresolved conversation per contact: the thread every channel joins.
        Index(
            "uq_conversations_one_open_per_contact",
            "contact_id",
            unique=True,
            sqlite_where=text("status <> 'resolved' AND merged_into_id IS NULL"),
            postgresql_where=text("status <> 'resolved' AND merged_into_id IS NULL"),
        ),
        Index("ix_conversations_contact_id_created_at", "contact_id", "created_at"),
        Index("ix_conversations_status_last_message_at", "status", "last_message_at", "id"),
        Index("ix_conversations_last_message_at", "last_message_at", "id"),
        Index("ix_conversations_assignee_status", "assignee_id", "status", "last_message_at"),
        Index("ix_conversations_team_status", "team_id", "status", "last_message_at"),
        # What each agent carries, per channel (routing's load lists; an agent's counters
        # when their routing row is made).
        Index(
            "ix_conversations_open_load",
            "assignee_id",
            "last_channel_account_id",
            sqlite_where=text("status = 'open' AND assignee_id IS NOT NULL"),
            postgresql_where=text("status = 'open' AND assignee_id IS NOT NULL"),
        ),
        Index(
            "ix_conversations_channel_status",
            "last_channel_account_id",
            "status",
            "last_message_at",
        ),
    )


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    # Denormalised so the contact timeline needs no join.
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    channel_account_id: Mapped[int | None] = mapped_column(ForeignKey("channel_accounts.id"))
    identity_id: Mapped[int | None] = mapped_column(ForeignKey("identities.id"))
    direction: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(24), default="text")
    author_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    body: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(998))
    data: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    provider_message_id: Mapped[str | None] = mapped_column(String(512))
    # Inbound: "received"; outbound: queued -> sent -> delivered -> read, or failed.
    status: Mapped[str] = mapped_column(String(16), default="received")
    status_code: Mapped[str | None] = mapped_column(String(64))
    status_reason: Mapped[str | None] = mapped_column(Text)
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    reply_to_message_id: Mapped[int | None] = mapped_column(BigId)
    auto_generated: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    edited_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    attachments: Mapped[list[Attachment]] = relationship(order_by="Attachment.id")

    __table_args__ = (
        # Ingest is idempotent on this pair: a retried webhook never stores a second row.
        UniqueConstraint("channel_account_id", "provider_message_id"),
        Index("ix_messages_conversation_id_id", "conversation_id", "id"),
        Index("ix_messages_contact_id_id", "contact_id", "id"),
        # A channel's health (hilo.channels.health): its latest messages, and its failed sends,
        # which are few, so their partial index costs a send nothing until one fails.
        Index("ix_messages_channel_account_id_id", "channel_account_id", "id"),
        Index(
            "ix_messages_failed",
            "channel_account_id",
            "created_at",
            sqlite_where=text("status = 'failed'"),
            postgresql_where=text("status = 'failed'"),
        ),
    )


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    filename: Mapped[str | None] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(255))
    size: Mapped[int | None] = mapped_column(Integer)
    storage_key: Mapped[str | None] = mapped_column(String(512))
    provider_url: Mapped[str | None] = mapped_column(Text)
    provider_media_id: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConversationSla(Base):
    """A conversation's SLA at a glance: status and the nearest due time (sortable).

    Kept by the SLA engine (`hilo.routing.sla`); it lives here so that lists sort and show it
    without reaching into routing."""

    __tablename__ = "conversation_sla"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policies.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default="on_track")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    due_kind: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_conversation_sla_due_at", "due_at"),
        Index("ix_conversation_sla_status_due_at", "status", "due_at"),
    )
