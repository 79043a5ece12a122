"""Delivery statuses and opt-outs a provider reports: statuses only move forward."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update

# The batch insert casts every column it writes. A foreign-key column takes its type from
# the column it points at, known only once that table is loaded: load the tables they point at.
import hilo.agents.models  # noqa: F401
import hilo.channels.models  # noqa: F401
from hilo.channels.base import (
    ChannelAccountView,
    DeliveryStatus,
    IdentityRef,
    StatusUpdate,
)
from hilo.contacts.models import Identity
from hilo.conversations.models import Conversation, Message
from hilo.ingest.statements import STATUS_PREDECESSORS, normalized, thread_realtime
from hilo.messaging import actions as messaging_actions
from hilo.runtime import Tx

log = logging.getLogger(__name__)


def apply_status(tx: Tx, account: ChannelAccountView, status: StatusUpdate) -> bool:
    """Move a sent message's delivery status forward; never backwards."""
    allowed = STATUS_PREDECESSORS.get(status.status)
    if not allowed:
        return False
    values: dict[str, Any] = {"status": str(status.status)}
    if status.status == DeliveryStatus.FAILED:
        values.update(status_code=status.error_code, status_reason=status.error_message)
    row = tx.session.execute(
        update(Message)
        .where(
            Message.channel_account_id == account.id,
            Message.provider_message_id == status.provider_message_id,
            Message.status.in_(allowed),
        )
        .values(**values)
        .returning(Message.id, Message.conversation_id, Message.contact_id, Message.identity_id)
    ).first()
    if status.opted_out:
        _mark_opted_out(tx, account, status, row.identity_id if row else None)
    if row is None:
        return False
    conversation = tx.session.execute(
        select(Conversation.id, Conversation.status, Conversation.team_id, Conversation.assignee_id).where(
            Conversation.id == row.conversation_id
        )
    ).one()
    tx.record(
        "message.status",
        conversation_id=row.conversation_id,
        contact_id=row.contact_id,
        message_id=row.id,
        data={"status": str(status.status), "code": status.error_code, "reason": status.error_message},
        realtime=thread_realtime(
            dict(conversation._mapping),
            delivery_status=str(status.status),
            status_code=status.error_code,
            status_reason=status.error_message,
        ),
    )
    return True


def _mark_opted_out(tx: Tx, account: ChannelAccountView, status: StatusUpdate, identity_id: int | None) -> None:
    if identity_id is None:
        return
    messaging_actions.set_channel_opt_out(
        tx, identity_id, account.kind, True, source="provider", channel_account_id=account.id, code=status.error_code
    )


def apply_opt_changes(tx: Tx, account: ChannelAccountView, changes: dict[str, bool]) -> None:
    """Record STOP/START keywords and blocks for this kind of channel only: an SMS STOP
    leaves WhatsApp, which shares the phone identity, open."""
    from hilo.channels.registry import get_adapter

    region = tx.runtime.settings.default_region
    kind = get_adapter(account.kind).identity_kind
    for value, opted_out in changes.items():
        ref = normalized(IdentityRef(kind=kind, value=value), region)
        identity_id = tx.session.execute(
            select(Identity.id).where(Identity.kind == ref.kind, Identity.value == ref.value)
        ).scalar()
        if identity_id is not None:
            messaging_actions.set_channel_opt_out(
                tx, identity_id, account.kind, opted_out, source="keyword", channel_account_id=account.id
            )
