"""What a visitor's widget shows: their own messages on this widget, read for the socket."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Collection
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from hilo.agents.models import Agent
from hilo.channels.base import IdentityKind
from hilo.contacts.models import Identity
from hilo.conversations.files import served_type
from hilo.conversations.models import Conversation, Message

INITIAL_MESSAGES = 100
PAGE = 500


def file_signature(secret_key: str, account_id: int, attachment_id: int) -> str:
    """Signs an attachment link: a visitor's widget can fetch its own files without a session."""
    digest = hmac.new(secret_key.encode(), f"hilo-widget-file:{account_id}:{attachment_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode()[:32]


def identity_of(session: Session, identity_value: str) -> tuple[int, int] | None:
    """(identity id, contact id) of a widget identity, None before the visitor's first message."""
    row = session.execute(
        select(Identity.id, Identity.contact_id).where(
            Identity.kind == IdentityKind.WIDGET, Identity.value == identity_value
        )
    ).first()
    return (row.id, row.contact_id) if row is not None else None


def conversation_scope(session: Session, conversation_id: int) -> dict[str, Any] | None:
    """Team and assignee of a conversation: what agents' websockets filter events on."""
    row = session.execute(
        select(Conversation.team_id, Conversation.assignee_id, Conversation.status, Conversation.contact_id).where(
            Conversation.id == conversation_id
        )
    ).first()
    return dict(row._mapping) if row is not None else None


def _item(message: Message, author: str | None, token: str, secret_key: str) -> dict[str, Any]:
    account_id = message.channel_account_id or 0
    item: dict[str, Any] = {
        "id": message.id,
        "conversation_id": message.conversation_id,
        "dir": "in" if message.direction == "inbound" else "out",
        "text": message.body,
        "at": message.created_at.isoformat(),
        "files": [
            {
                "name": a.filename or "file",
                # The type the file is served as: an SVG is offered as a download, not an image.
                "type": served_type(a.content_type)[0],
                "size": a.size,
                "url": f"/widget/{token}/files/{a.id}/{file_signature(secret_key, account_id, a.id)}",
            }
            for a in message.attachments
            if a.storage_key
        ],
    }
    if message.direction == "inbound":
        # The widget's own id for the message, so a resent message is recognised as sent.
        item["cid"] = (message.provider_message_id or "").rsplit(":", 1)[-1]
    else:
        # An earlier visit read it: not counted as new on the launcher's badge.
        item["read"] = message.status == "read"
        if author:
            item["author"] = author.split()[0]
    return item


def visitor_messages(
    session: Session,
    *,
    account_id: int,
    token: str,
    identity_value: str,
    secret_key: str,
    after: int,
    exclude: Collection[int] = (),
    initial: bool = False,
) -> list[dict[str, Any]]:
    """The visitor's messages on this widget newer than `after` (the latest ones if `initial`).

    Only the messages this identity sent or was sent on this channel account: a contact's
    other channels, and other visitors a pre-chat e-mail linked to the same contact, stay
    out of a widget that merely claimed an address.
    """
    query = (
        select(Message, Agent.name)
        .options(selectinload(Message.attachments))
        .join(Identity, (Identity.id == Message.identity_id) & (Identity.contact_id == Message.contact_id))
        .outerjoin(Agent, Agent.id == Message.author_agent_id)
        .where(
            Identity.kind == IdentityKind.WIDGET,
            Identity.value == identity_value,
            Message.channel_account_id == account_id,
            Message.direction.in_(("inbound", "outbound")),
            Message.deleted_at.is_(None),
            Message.id > after,
        )
    )
    if initial:
        rows = list(session.execute(query.order_by(Message.id.desc()).limit(INITIAL_MESSAGES)).all())
        rows.reverse()
    else:
        rows = list(session.execute(query.order_by(Message.id).limit(PAGE + len(exclude))).all())
    return [_item(message, author, token, secret_key) for message, author in rows if message.id not in exclude]
