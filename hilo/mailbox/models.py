"""Per-mailbox polling state: the IMAP cursor and which worker holds the mailbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from hilo.db.base import Base, BigId, UTCDateTime, utcnow


class MailboxState(Base):
    """One IMAP-connected e-mail channel account's cursor and lease.

    The cursor (UIDVALIDITY and the last UID handed to ingest) lets a restarted worker
    resume where the last one stopped; the lease makes sure that, with many workers,
    one polls each mailbox at a time.
    """

    __tablename__ = "mailbox_states"

    channel_account_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("channel_accounts.id", ondelete="CASCADE"), primary_key=True
    )
    # "user@host:port/folder": the cursor means nothing for another mailbox, so a
    # reconfigured account starts afresh.
    mailbox: Mapped[str] = mapped_column(String(600))
    # IMAP UIDs and UIDVALIDITY are unsigned 32-bit numbers.
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
