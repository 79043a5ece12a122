"""Widget writes: read receipts from the visitor's widget, and e-mail copies of unseen replies."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from hilo.channels.base import DeliveryStatus, IdentityKind
from hilo.channels.models import ChannelAccount
from hilo.channels.widget import WidgetSettings
from hilo.contacts.models import Identity
from hilo.conversations.models import Conversation, Message
from hilo.errors import ActionError
from hilo.ingest.statements import STATUS_PREDECESSORS
from hilo.outbox.reply import reply
from hilo.runtime import Runtime, Tx

log = logging.getLogger(__name__)

# Replies older than this are never copied by e-mail: after an outage, no flood of stale mail.
FALLBACK_HORIZON = timedelta(days=1)
UNSEEN = ("queued", "sent")


def record_receipt(tx: Tx, account_id: int, identity_value: str, up_to: int, status: DeliveryStatus) -> int:
    """Mark the replies this visitor's widget received (or showed) up to message `up_to`.

    Status only moves forward, and only on messages addressed to this visitor.
    Returns how many messages changed.
    """
    identity = tx.session.execute(
        select(Identity.id, Identity.contact_id).where(
            Identity.kind == IdentityKind.WIDGET, Identity.value == identity_value
        )
    ).first()
    if identity is None:
        return 0
    rows = tx.session.execute(
        update(Message)
        .where(
            Message.contact_id == identity.contact_id,
            Message.identity_id == identity.id,
            Message.channel_account_id == account_id,
            Message.direction == "outbound",
            Message.id <= up_to,
            Message.status.in_(STATUS_PREDECESSORS[status]),
        )
        .values(status=str(status))
        .returning(Message.id, Message.conversation_id)
    ).all()
    if not rows:
        return 0
    scopes = {
        row.id: row
        for row in tx.session.execute(
            select(Conversation.id, Conversation.team_id, Conversation.assignee_id, Conversation.status).where(
                Conversation.id.in_({r.conversation_id for r in rows})
            )
        )
    }
    for row in sorted(rows, key=lambda r: r.id):
        scope = scopes[row.conversation_id]
        tx.record(
            "message.status",
            conversation_id=row.conversation_id,
            contact_id=identity.contact_id,
            message_id=row.id,
            data={"status": str(status), "via": "widget"},
            realtime={
                "team_id": scope.team_id,
                "assignee_id": scope.assignee_id,
                "status": scope.status,
                "delivery_status": str(status),
            },
        )
    return len(rows)


def copy_by_email(tx: Tx, conversation_id: int, message_ids: list[int], email_account_id: int) -> Message | None:
    """Send one e-mail with the widget replies `message_ids` that no widget has received yet.

    The e-mail is an ordinary reply on the e-mail channel (so the customer's answer threads
    back into this conversation); each widget reply remembers the outcome, so it is copied
    at most once, whichever API process gets to it first.
    """
    messages = list(
        tx.session.execute(
            select(Message).where(Message.id.in_(message_ids)).order_by(Message.id).with_for_update(skip_locked=True)
        ).scalars()
    )
    messages = [m for m in messages if m.status in UNSEEN and "email_fallback" not in (m.data or {})]
    if not messages:
        return None
    conversation = tx.session.get(Conversation, conversation_id)
    assert conversation is not None
    body = "\n\n".join(m.body for m in messages if m.body)
    attachments: list[dict[str, Any]] = [
        {
            "kind": a.kind,
            "filename": a.filename,
            "content_type": a.content_type,
            "size": a.size,
            "storage_key": a.storage_key,
        }
        for m in messages
        for a in m.attachments
        if a.storage_key
    ]
    copy: Message | None = None
    try:
        copy = reply(tx, conversation, body or None, channel_account_id=email_account_id, attachments=attachments)
        outcome: dict[str, Any] = {"email_message_id": copy.id}
    except ActionError as exc:
        # No e-mail address, opted out, no SMTP server...: noted once, never retried.
        outcome = {"skipped": exc.code}
    for message in messages:
        message.data = {**(message.data or {}), "email_fallback": outcome}
    tx.record(
        "widget.email_fallback",
        conversation_id=conversation.id,
        contact_id=conversation.contact_id,
        data={"message_ids": [m.id for m in messages], **outcome},
    )
    return copy


def _email_account(accounts: list[ChannelAccount], chosen: int | None) -> int | None:
    emails = [a for a in accounts if a.kind == "email" and a.enabled]
    if chosen is not None:
        return chosen if any(a.id == chosen for a in emails) else None
    return emails[0].id if emails else None


def send_email_fallbacks(runtime: Runtime) -> int:
    """Copy by e-mail every widget reply that no widget received within the channel's delay
    (the visitor had left). Returns how many e-mails were queued."""
    now = runtime.clock.now()
    with runtime.db.read() as session:
        accounts = list(
            session.execute(
                select(ChannelAccount).where(ChannelAccount.kind.in_(("widget", "email"))).order_by(ChannelAccount.id)
            ).scalars()
        )
        work: list[tuple[int, int, int | None, list[int]]] = []
        for account in accounts:
            if account.kind != "widget" or not account.enabled:
                continue
            settings = WidgetSettings.from_account(account.view())
            email_id = _email_account(accounts, settings.email_channel_account_id)
            if settings.email_fallback_minutes <= 0 or email_id is None:
                continue
            rows = session.execute(
                select(Message.id, Message.conversation_id, Message.author_agent_id, Message.data)
                .where(
                    Message.channel_account_id == account.id,
                    Message.direction == "outbound",
                    Message.status.in_(UNSEEN),
                    Message.created_at <= now - timedelta(minutes=settings.email_fallback_minutes),
                    Message.created_at >= now - FALLBACK_HORIZON,
                )
                .order_by(Message.id)
            ).all()
            grouped: dict[tuple[int, int | None], list[int]] = defaultdict(list)
            for row in rows:
                if "email_fallback" not in (row.data or {}):
                    grouped[(row.conversation_id, row.author_agent_id)].append(row.id)
            work.extend((email_id, conversation_id, author, ids) for (conversation_id, author), ids in grouped.items())
    queued = 0
    for email_id, conversation_id, author, ids in work:
        with runtime.transaction(author) as tx:
            if copy_by_email(tx, conversation_id, ids, email_id) is not None:
                queued += 1
    return queued
