"""Read per-channel opt-outs: may this identity be messaged on this kind of channel?"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from hilo.messaging.models import ChannelOptOut


def opted_out_kinds(session: Session, identity_id: int) -> set[str]:
    """The channel kinds this identity opted out of (STOP on SMS, a blocked bot...)."""
    rows = session.execute(select(ChannelOptOut.channel_kind).where(ChannelOptOut.identity_id == identity_id))
    return set(rows.scalars().all())


def is_opted_out(session: Session, identity_id: int, global_flag: bool, channel_kind: str) -> bool:
    """True when the identity is blocked everywhere (`Identity.opted_out`) or on this kind."""
    return global_flag or channel_kind in opted_out_kinds(session, identity_id)
