"""How each channel account is doing: its last inbound message, last successful send and recent failures.

Two queries for every channel together, whatever their number: one reads each account's
latest inbound and latest sent message (each a short walk back on the
`(channel_account_id, id)` index), one the recent failed sends (a partial index on
`(channel_account_id, created_at)` holds only failed messages, so the week's failures are
one range of it, and a channel without failures costs nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, literal_column, select
from sqlalchemy.orm import Session

from hilo.channels.models import ChannelAccount
from hilo.conversations.models import Message

# Failures older than this are not "recent"; the page shows at most RECENT_FAILURES of them.
FAILURE_WINDOW = timedelta(days=7)
RECENT_FAILURES = 5


@dataclass(frozen=True)
class Failure:
    """A send that failed: `reason` is a catalog msgid (`status_reason`), `code` its stable code."""

    message_id: int
    conversation_id: int
    at: datetime
    code: str | None
    reason: str | None


@dataclass
class ChannelHealth:
    channel_account_id: int
    last_inbound_at: datetime | None = None
    last_sent_at: datetime | None = None
    failures_count: int = 0
    failures: list[Failure] = field(default_factory=list)


def channel_health(
    session: Session, now: datetime, account_ids: Sequence[int] | None = None
) -> dict[int, ChannelHealth]:
    """The health of the given channel accounts (all when None), by id."""
    inbound = (
        select(Message.created_at)
        .where(Message.channel_account_id == ChannelAccount.id, Message.direction == "inbound")
        .order_by(Message.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    sent = (
        select(Message.sent_at)
        .where(
            Message.channel_account_id == ChannelAccount.id,
            Message.direction == "outbound",
            Message.sent_at.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    latest = select(ChannelAccount.id, inbound, sent)
    if account_ids is not None:
        latest = latest.where(ChannelAccount.id.in_(account_ids))
    health = {
        account_id: ChannelHealth(account_id, inbound_at, sent_at)
        for account_id, inbound_at, sent_at in session.execute(latest)
    }
    if not health:
        return health
    # A literal, not a bound value: the planner matches it with the partial index's WHERE.
    failed = Message.status == literal_column("'failed'")
    ranked = (
        select(
            Message.id,
            Message.conversation_id,
            Message.channel_account_id,
            Message.created_at,
            Message.status_code,
            Message.status_reason,
            func.row_number()
            .over(partition_by=Message.channel_account_id, order_by=(Message.created_at.desc(), Message.id.desc()))
            .label("rank"),
            func.count().over(partition_by=Message.channel_account_id).label("total"),
        )
        .where(failed, Message.channel_account_id.in_(list(health)), Message.created_at >= now - FAILURE_WINDOW)
        .subquery()
    )
    rows = session.execute(
        select(ranked).where(ranked.c.rank <= RECENT_FAILURES).order_by(ranked.c.created_at.desc(), ranked.c.id.desc())
    )
    for row in rows:
        entry = health[row.channel_account_id]
        entry.failures_count = row.total
        entry.failures.append(Failure(row.id, row.conversation_id, row.created_at, row.status_code, row.status_reason))
    return health
