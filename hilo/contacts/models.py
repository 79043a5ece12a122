"""Contacts and the identities they own (DESIGN invariant 1: one contact per person)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hilo.db.base import Base, BigId, Json, UTCDateTime, utcnow


class Contact(Base):
    __tablename__ = "contacts"
    __mapper_args__ = {"eager_defaults": False}

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str | None] = mapped_column(String(16))
    custom_attributes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # A merged contact stays as a tombstone pointing at the survivor, so old links resolve.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    identities: Mapped[list[Identity]] = relationship(
        back_populates="contact", order_by="Identity.id", foreign_keys="Identity.contact_id"
    )

    __table_args__ = (Index("ix_contacts_created_at", "created_at"),)


class Identity(Base):
    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(320))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set when a merge brought this identity in, so a split can offer to move it back.
    merged_from_contact_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    contact: Mapped[Contact] = relationship(back_populates="identities", foreign_keys=[contact_id])

    __table_args__ = (
        UniqueConstraint("kind", "value"),
        Index("ix_identities_value", "value"),
    )
