"""Channel accounts: a configured number, address, page or bot of one channel kind."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from hilo.channels.base import ChannelAccountView
from hilo.db.base import Base, BigId, Json, UTCDateTime, utcnow
from hilo.db.encryption import EncryptedJson


class ChannelAccount(Base):
    __tablename__ = "channel_accounts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(255))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    config: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    # Encrypted at rest; never returned by the API nor logged, only their names are shown.
    secrets: Mapped[dict[str, str]] = mapped_column(EncryptedJson, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    def view(self) -> ChannelAccountView:
        return ChannelAccountView(
            id=self.id,
            kind=self.kind,
            name=self.name,
            config=dict(self.config or {}),
            secrets=dict(self.secrets or {}),
        )
