"""Threads: the conversation a message belongs to (references, the open one, a recent one, else a new one)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, select

# The batch insert casts every column it writes. A foreign-key column takes its type from
# the column it points at, known only once that table is loaded: load the tables they point at.
import hilo.agents.models  # noqa: F401
import hilo.channels.models  # noqa: F401
from hilo.channels.base import (
    InboundMessage,
)
from hilo.conversations.models import Conversation, Message
from hilo.ingest.statements import THREAD_COLUMNS, UNRESOLVED
from hilo.runtime import Tx

log = logging.getLogger(__name__)


def _thread_by_reference(tx: Tx, inbound: InboundMessage, contact_id: int) -> dict[str, Any] | None:
    """The conversation an e-mail reply (References) or a subject token names."""
    session = tx.session
    if inbound.reply_to_provider_ids:
        row = session.execute(
            select(*THREAD_COLUMNS)
            .join(Message, Message.conversation_id == Conversation.id)
            .where(Message.provider_message_id.in_(inbound.reply_to_provider_ids[:20]))
            .order_by(Message.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            return dict(row._mapping)
    if inbound.conversation_token is not None:
        # A subject token alone is weak evidence: only the same contact may use it.
        row = session.execute(
            select(*THREAD_COLUMNS).where(
                Conversation.id == inbound.conversation_token, Conversation.contact_id == contact_id
            )
        ).first()
        if row is not None:
            return dict(row._mapping)
    return None


def _latest_conversation(tx: Tx, contact_id: int) -> dict[str, Any] | None:
    row = tx.session.execute(
        select(*THREAD_COLUMNS)
        .where(Conversation.contact_id == contact_id, Conversation.merged_into_id.is_(None))
        .order_by(Conversation.id.desc())
        .limit(1)
    ).first()
    return dict(row._mapping) if row is not None else None


def follow_merges(tx: Tx, conversation: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while conversation["merged_into_id"] is not None and seen < 10:
        row = tx.session.execute(select(*THREAD_COLUMNS).where(Conversation.id == conversation["merged_into_id"])).one()
        conversation = dict(row._mapping)
        seen += 1
    return conversation


def choose_conversation(tx: Tx, inbound: InboundMessage, contact_id: int) -> tuple[dict[str, Any], str]:
    """Return the conversation this message joins and how: joined, reopened or created."""
    window = timedelta(hours=tx.runtime.settings.reopen_window_hours)
    referenced = _thread_by_reference(tx, inbound, contact_id)
    latest = _latest_conversation(tx, contact_id)
    if referenced is not None:
        referenced = follow_merges(tx, referenced)
        if referenced["status"] in UNRESOLVED:
            return referenced, "joined"
        # Reopen the named conversation unless the contact already has another open one.
        if referenced["contact_id"] != contact_id or latest is None or latest["status"] == "resolved":
            return referenced, "reopened"
    if latest is not None:
        if latest["status"] in UNRESOLVED:
            return latest, "joined"
        resolved_at = latest["resolved_at"]
        if resolved_at is not None and tx.now - resolved_at <= window:
            return latest, "reopened"
    values = {
        "contact_id": contact_id,
        "status": "open",
        "priority": "none",
        "subject": inbound.subject,
        "message_count": 0,
        "created_at": tx.now,
        "updated_at": tx.now,
        "last_message_at": tx.now,
    }
    new_id = tx.session.execute(insert(Conversation).values(**values).returning(Conversation.id)).scalar_one()
    created = {
        "id": new_id,
        "status": "open",
        "team_id": None,
        "assignee_id": None,
        "resolved_at": None,
        "contact_id": contact_id,
        "merged_into_id": None,
    }
    return created, "created"
