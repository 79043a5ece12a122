"""The business-hours table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from hilo.db.base import Base, BigId, Json, UTCDateTime, utcnow


class BusinessHours(Base):
    """A business-hour calendar: weekly periods in a time zone, minus holidays."""

    __tablename__ = "business_hours"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    # {"mon": [["09:00", "14:00"], ["15:00", "18:00"]], ..., "sun": []}
    periods: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    holiday_country: Mapped[str | None] = mapped_column(String(8))
    holiday_subdivision: Mapped[str | None] = mapped_column(String(16))
    # Extra closed dates ("YYYY-MM-DD"), e.g. a company day off.
    closed_dates: Mapped[list[str]] = mapped_column(Json, default=list)
    # {"en": "...", "es": "..."}: answered once per closed spell when set.
    out_of_office_message: Mapped[dict[str, str] | None] = mapped_column(Json)
    # The calendar of conversations whose team has none.
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
