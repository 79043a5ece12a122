"""Messages stored one by one, off the batch path: edits and unsends, and messages that name a thread or
identities to link."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, insert, select, update

# The batch insert casts every column it writes. A foreign-key column takes its type from
# the column it points at, known only once that table is loaded: load the tables they point at.
import hilo.agents.models  # noqa: F401
import hilo.channels.models  # noqa: F401
from hilo.channels.base import (
    ChannelAccountView,
    InboundMessage,
)
from hilo.contacts.identity import InvalidIdentity, normalize
from hilo.conversations.models import Attachment, Conversation, Message
from hilo.ingest.senders import record_refused_links, resolve_contact
from hilo.ingest.statements import SELECT_DUPLICATE, IngestResult, message_created, normalized, thread_realtime
from hilo.ingest.threads import choose_conversation, follow_merges
from hilo.messaging import actions as messaging_actions
from hilo.runtime import Tx

log = logging.getLogger(__name__)


def ingest_alone(tx: Tx, account: ChannelAccountView, inbound: InboundMessage) -> IngestResult:
    """Store one message off the batch path (an edit applies to the message it names)."""
    if is_edit(inbound):
        return apply_edit(tx, account, inbound)
    return store_unless_repeat(tx, account, inbound)


def store_unless_repeat(tx: Tx, account: ChannelAccountView, inbound: InboundMessage) -> IngestResult:
    """Store the message unless this channel account already holds its provider id."""
    existing = (
        tx.session.connection()
        .execute(SELECT_DUPLICATE, {"account_id": account.id, "provider_message_id": inbound.provider_message_id})
        .first()
    )
    if existing is not None:
        return IngestResult(existing.id, existing.conversation_id, existing.contact_id, duplicate=True)
    return store_new(tx, account, inbound)


def is_edit(inbound: InboundMessage) -> bool:
    return bool(inbound.edit_of_provider_id or inbound.unsend_of_provider_id)


def apply_edit(tx: Tx, account: ChannelAccountView, inbound: InboundMessage) -> IngestResult:
    target_id = inbound.edit_of_provider_id or inbound.unsend_of_provider_id
    row = tx.session.execute(
        select(Message.id, Message.conversation_id, Message.contact_id, Message.body, Message.data).where(
            Message.channel_account_id == account.id, Message.provider_message_id == target_id
        )
    ).first()
    if row is None:
        # The original never reached us: store the edit as a message of its own (once).
        return store_unless_repeat(tx, account, inbound)
    data = dict(row.data or {})
    if inbound.unsend_of_provider_id:
        values: dict[str, Any] = {"deleted_at": tx.now}
        kind = "message.unsent"
    else:
        if row.body == inbound.text:
            return IngestResult(row.id, row.conversation_id, row.contact_id, duplicate=True)
        data["edits"] = [*data.get("edits", []), {"body": row.body, "at": tx.now.isoformat()}]
        values = {"body": inbound.text, "edited_at": tx.now, "data": data}
        kind = "message.edited"
    tx.session.execute(update(Message).where(Message.id == row.id).values(**values))
    conversation = follow_merges(tx, {"merged_into_id": row.conversation_id})
    tx.record(
        kind,
        conversation_id=conversation["id"],
        contact_id=row.contact_id,
        message_id=row.id,
        realtime=thread_realtime(conversation),
    )
    return IngestResult(row.id, conversation["id"], row.contact_id)


def store_new(tx: Tx, account: ChannelAccountView, inbound: InboundMessage) -> IngestResult:
    region = tx.runtime.settings.default_region
    refs = [normalized(inbound.sender, region)]
    for other in inbound.other_identities:
        try:
            candidate = normalize(other, region)
        except InvalidIdentity:
            continue
        if (candidate.kind, candidate.value) not in {(r.kind, r.value) for r in refs}:
            refs.append(candidate)
    resolved = resolve_contact(tx, refs, inbound.sender_name, inbound.locale)
    contact_id, identity_id = resolved.contact_id, resolved.identity_id
    conversation, how = choose_conversation(tx, inbound, contact_id)
    conversation_id = conversation["id"]
    data = dict(inbound.data)
    if inbound.raw is not None and inbound.kind == "unknown":
        data["raw"] = inbound.raw
    reply_to_id = None
    if inbound.reply_to_provider_ids:
        # The ids come in order of preference (an e-mail's In-Reply-To, then its References
        # newest first): the message quoted is the first of them we hold.
        wanted = inbound.reply_to_provider_ids[:20]
        rows = tx.session.execute(
            select(Message.provider_message_id, Message.id).where(
                Message.conversation_id == conversation_id, Message.provider_message_id.in_(wanted)
            )
        ).all()
        found: dict[str | None, int] = {ref: message_id for ref, message_id in rows}
        reply_to_id = next((found[ref] for ref in wanted if ref in found), None)
    message_id = tx.session.execute(
        insert(Message)
        .values(
            conversation_id=conversation_id,
            contact_id=contact_id,
            channel_account_id=account.id,
            identity_id=identity_id,
            direction="inbound",
            kind=str(inbound.kind),
            body=inbound.text,
            html=inbound.html,
            subject=inbound.subject,
            data=data,
            provider_message_id=inbound.provider_message_id,
            status="received",
            reply_to_message_id=reply_to_id,
            auto_generated=inbound.auto_generated,
            created_at=tx.now,
            sent_at=inbound.sent_at,
        )
        .returning(Message.id)
    ).scalar_one()
    if inbound.attachments:
        tx.session.execute(
            insert(Attachment),
            [
                {
                    "message_id": message_id,
                    "kind": str(a.kind),
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size": a.size if a.size is not None else (len(a.data) if a.data else None),
                    "provider_url": a.url,
                    "provider_media_id": a.provider_media_id,
                    "created_at": tx.now,
                    "storage_key": tx.runtime.store_inline(a.data, a.filename) if a.data else None,
                }
                for a in inbound.attachments
            ],
        )
        if any(a.data is None and (a.url or a.provider_media_id) for a in inbound.attachments):
            # The provider only named these files: the worker fetches them after commit.
            messaging_actions.enqueue_media_fetches(tx, message_id, account.id)
    values: dict[str, Any] = {
        "last_message_at": tx.now,
        "last_inbound_at": tx.now,
        "updated_at": tx.now,
        "last_channel_account_id": account.id,
        "message_count": Conversation.message_count + 1,
    }
    if not inbound.auto_generated:
        values["waiting_since"] = func.coalesce(Conversation.waiting_since, tx.now)
    if how == "reopened" or conversation["status"] in ("pending", "snoozed"):
        values.update(status="open", resolved_at=None, snoozed_until=None)
        conversation = {**conversation, "status": "open"}
    tx.session.execute(update(Conversation).where(Conversation.id == conversation_id).values(**values))
    if how == "created":
        tx.record(
            "conversation.created",
            conversation_id=conversation_id,
            contact_id=contact_id,
            data={"channel_account_id": account.id},
            realtime=thread_realtime(conversation),
        )
    elif how == "reopened":
        tx.record(
            "conversation.reopened",
            conversation_id=conversation_id,
            contact_id=contact_id,
            data={"channel_account_id": account.id},
            realtime=thread_realtime(conversation),
        )
    tx.record_many([message_created(account, inbound, conversation, conversation_id, contact_id, message_id)])
    record_refused_links(tx, conversation, contact_id, resolved.refused)
    return IngestResult(message_id, conversation_id, contact_id, new_conversation=how == "created")
