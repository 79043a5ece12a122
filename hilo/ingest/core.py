"""Ingest: store what a channel received, on the contact's one thread, exactly once.

`ingest_message` runs inside a transaction and issues a handful of statements per
message (dedupe look-up, identity + latest conversation in one query, message insert,
conversation update, event insert). `IngestQueue` shares one durable commit between
webhooks that arrive together (group commit), and answers each webhook only after the
commit that holds its data.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import String, Table, and_, any_, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError, OperationalError

# The batch insert casts every column it writes. A foreign-key column takes its type from
# the column it points at, known only once that table is loaded: load every table.
import hilo.models  # noqa: F401
from hilo.channels.base import (
    ChannelAccountView,
    DeliveryStatus,
    IdentityRef,
    InboundMessage,
    StatusUpdate,
    WebhookResult,
)
from hilo.channels.meta_common import MetaWebhookResult
from hilo.contacts.identity import InvalidIdentity, normalize
from hilo.contacts.models import Contact, Identity
from hilo.conversations.models import Attachment, Conversation, Message
from hilo.db import bulk
from hilo.events.models import Event
from hilo.messaging import actions as messaging_actions
from hilo.runtime import Record, Runtime, Tx

log = logging.getLogger(__name__)

# What threading needs to know about a candidate conversation.
THREAD_COLUMNS = (
    Conversation.id,
    Conversation.status,
    Conversation.team_id,
    Conversation.assignee_id,
    Conversation.resolved_at,
    Conversation.contact_id,
    Conversation.merged_into_id,
)

UNRESOLVED = ("open", "pending", "snoozed")

# The event (and timeline line) that says an identity a message carried was not linked.
LINK_REFUSED = "contact.link_refused"

# Which earlier statuses a delivery status may replace: status never moves backwards.
STATUS_PREDECESSORS: dict[str, tuple[str, ...]] = {
    DeliveryStatus.SENT: ("queued",),
    DeliveryStatus.DELIVERED: ("queued", "sent"),
    DeliveryStatus.READ: ("queued", "sent", "delivered"),
    DeliveryStatus.FAILED: ("queued", "sent"),
}


@dataclass
class IngestResult:
    message_id: int | None
    conversation_id: int | None
    contact_id: int | None
    duplicate: bool = False
    new_conversation: bool = False


@dataclass
class DeliveryResult:
    """What one webhook delivery stored."""

    messages: list[IngestResult] = field(default_factory=list)
    statuses_applied: int = 0
    statuses_ignored: int = 0


def _normalized(ref: IdentityRef, region: str) -> IdentityRef:
    try:
        return normalize(ref, region)
    except InvalidIdentity:
        # Keep the provider's value rather than lose the message; it just will not
        # match other channels' identities.
        log.warning("identity %s could not be normalised; kept as given", ref.kind)
        return IdentityRef(kind=ref.kind, value=ref.value.strip()[:320], verified=ref.verified)


def _realtime(conversation: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "team_id": conversation["team_id"],
        "assignee_id": conversation["assignee_id"],
        "status": conversation["status"],
        **extra,
    }


def _message_created(
    account: ChannelAccountView,
    inbound: InboundMessage,
    conversation: dict[str, Any],
    conversation_id: int,
    contact_id: int,
    message_id: int,
) -> Record:
    """The event of a stored inbound message, with what the agents' inbox shows of it."""
    return Record(
        "message.created",
        conversation_id=conversation_id,
        contact_id=contact_id,
        message_id=message_id,
        data={"direction": "inbound", "channel_account_id": account.id, "kind": str(inbound.kind)},
        realtime=_realtime(
            conversation,
            direction="inbound",
            channel_account_id=account.id,
            channel_kind=account.kind,
            preview=(inbound.text or "")[:140],
        ),
    )


@dataclass(frozen=True)
class RefusedLink:
    """An identity a message carried that was not linked to its sender (see `link_refusal`)."""

    ref: IdentityRef
    reason: str
    owner_id: int | None


@dataclass
class ResolvedContact:
    """The contact a message's sender resolved to, and what the message could not link to it."""

    contact_id: int
    identity_id: int
    refused: list[RefusedLink] = field(default_factory=list)


def resolve_contact(tx: Tx, refs: list[IdentityRef], name: str | None, locale: str | None) -> ResolvedContact:
    """Return the contact and sender identity for normalised `refs` (sender first).

    Identities already known link to their contact; new ones attach to the sender's
    contact. Two contacts that the same message proves to be one person are merged.
    Every such link passes `link_refusal` first: an identity it refuses stays where it
    is (or unknown), and the sender keeps, or gets, a contact of their own.
    """
    from hilo.contacts.actions import link_refusal, merge_contacts

    session = tx.session
    sender = refs[0]
    if len(refs) == 1:
        found = session.execute(
            select(Identity.id, Identity.contact_id, Identity.verified, Identity.kind, Identity.value).where(
                Identity.kind == sender.kind, Identity.value == sender.value
            )
        ).all()
    else:
        found = session.execute(
            select(Identity.id, Identity.contact_id, Identity.verified, Identity.kind, Identity.value).where(
                or_(*[and_(Identity.kind == r.kind, Identity.value == r.value) for r in refs])
            )
        ).all()
    by_key = {(row.kind, row.value): row for row in found}
    sender_row = by_key.get((sender.kind, sender.value))
    if sender_row is None:
        # A new sender joins the contact of another identity it carries, if one may be joined.
        joined = None
        for ref in refs[1:]:
            row = by_key.get((ref.kind, ref.value))
            if row is not None and not link_refusal(
                session, ref, sender=sender, sender_contact_id=None, owner_id=row.contact_id
            ):
                joined = row.contact_id
                break
        if joined is not None:
            contact_id = joined
        else:
            contact_id = session.execute(
                insert(Contact)
                .values(name=name, locale=locale, custom_attributes={}, created_at=tx.now, updated_at=tx.now)
                .returning(Contact.id)
            ).scalar_one()
            tx.record("contact.created", contact_id=contact_id, data={"via": sender.kind})
        sender_id = session.execute(
            insert(Identity)
            .values(
                contact_id=contact_id,
                kind=sender.kind,
                value=sender.value,
                verified=sender.verified,
                opted_out=False,
                created_at=tx.now,
            )
            .returning(Identity.id)
        ).scalar_one()
    else:
        contact_id = sender_row.contact_id
        sender_id = sender_row.id
        if sender.verified and not sender_row.verified:
            session.execute(update(Identity).where(Identity.id == sender_id).values(verified=True))
    resolved = ResolvedContact(contact_id, sender_id)
    merged = {contact_id}
    for ref in refs[1:]:
        row = by_key.get((ref.kind, ref.value))
        owner_id = row.contact_id if row is not None else None
        if owner_id in merged:
            continue
        reason = link_refusal(session, ref, sender=sender, sender_contact_id=contact_id, owner_id=owner_id)
        if reason:
            log.info("identity %s not linked to contact %s: %s", ref.kind, contact_id, reason)
            resolved.refused.append(RefusedLink(ref, reason, owner_id))
        elif owner_id is None:
            session.execute(
                insert(Identity).values(
                    contact_id=contact_id,
                    kind=ref.kind,
                    value=ref.value,
                    verified=ref.verified,
                    opted_out=False,
                    created_at=tx.now,
                )
            )
            tx.record(
                "identity.added", contact_id=contact_id, data={"kind": ref.kind, "value": ref.value, "auto": True}
            )
        else:
            merge_contacts(tx, source_id=owner_id, target_id=contact_id, automatic=True)
            merged.add(owner_id)
    if name:
        session.execute(update(Contact).where(Contact.id == contact_id, Contact.name.is_(None)).values(name=name))
    return resolved


def record_refused_links(tx: Tx, conversation: dict[str, Any], contact_id: int, refused: list[RefusedLink]) -> None:
    """Tell the agents, in the conversation's timeline, which identities were not linked and why.

    The refused value stays visible there as what the customer claimed (unverified). A
    claim refused before for this contact (a signed-in user's address, sent with every
    message) is not repeated.
    """
    if not refused:
        return
    earlier = {
        (data.get("kind"), data.get("value"))
        for data in tx.session.execute(
            select(Event.data).where(Event.contact_id == contact_id, Event.kind == LINK_REFUSED)
        ).scalars()
        if isinstance(data, dict)
    }
    for link in refused:
        if (str(link.ref.kind), link.ref.value) in earlier:
            continue
        data = {"kind": str(link.ref.kind), "value": link.ref.value, "reason": link.reason, "owner_id": link.owner_id}
        message_id = tx.session.execute(
            insert(Message)
            .values(
                conversation_id=conversation["id"],
                contact_id=contact_id,
                direction="event",
                kind="event",
                body=None,
                status="received",
                data={"event": LINK_REFUSED, **data},
                created_at=tx.now,
            )
            .returning(Message.id)
        ).scalar_one()
        tx.record(
            LINK_REFUSED,
            conversation_id=conversation["id"],
            contact_id=contact_id,
            message_id=message_id,
            data=data,
            realtime=_realtime(conversation),
        )


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


def _follow_merges(tx: Tx, conversation: dict[str, Any]) -> dict[str, Any]:
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
        referenced = _follow_merges(tx, referenced)
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


def _apply_edit(tx: Tx, account: ChannelAccountView, inbound: InboundMessage) -> IngestResult:
    target_id = inbound.edit_of_provider_id or inbound.unsend_of_provider_id
    row = tx.session.execute(
        select(Message.id, Message.conversation_id, Message.contact_id, Message.body, Message.data).where(
            Message.channel_account_id == account.id, Message.provider_message_id == target_id
        )
    ).first()
    if row is None:
        # The original never reached us: store the edit as a message of its own (once).
        return _dedupe_or_store(tx, account, inbound)
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
    conversation = _follow_merges(tx, {"merged_into_id": row.conversation_id})
    tx.record(
        kind,
        conversation_id=conversation["id"],
        contact_id=row.contact_id,
        message_id=row.id,
        realtime=_realtime(conversation),
    )
    return IngestResult(row.id, conversation["id"], row.contact_id)


def ingest_message(tx: Tx, account: ChannelAccountView, inbound: InboundMessage) -> IngestResult:
    """Store one inbound message on its contact's thread; a repeat is recognised, not stored."""
    if _edit(inbound):
        return _apply_edit(tx, account, inbound)
    return _dedupe_or_store(tx, account, inbound)


# The hot path's statements are built once: building and cache-keying a statement per
# message costs more than running it.
_messages = cast(Table, Message.__table__)
_identities = cast(Table, Identity.__table__)
_contacts = cast(Table, Contact.__table__)
_conversations = cast(Table, Conversation.__table__)
_latest = (
    select(func.max(_conversations.c.id))
    .where(_conversations.c.contact_id == _identities.c.contact_id, _conversations.c.merged_into_id.is_(None))
    .correlate(_identities)
    .scalar_subquery()
)
SELECT_DUPLICATE = select(_messages.c.id, _messages.c.conversation_id, _messages.c.contact_id).where(
    _messages.c.channel_account_id == bindparam("account_id"),
    _messages.c.provider_message_id == bindparam("provider_message_id"),
)
_SENDER_THREAD_BASE = (
    select(
        _identities.c.id.label("identity_id"),
        _identities.c.contact_id,
        _identities.c.verified,
        _contacts.c.name.label("contact_name"),
        _conversations.c.id.label("conversation_id"),
        _conversations.c.status,
        _conversations.c.team_id,
        _conversations.c.assignee_id,
    )
    .join(_contacts, _contacts.c.id == _identities.c.contact_id)
    .outerjoin(_conversations, _conversations.c.id == _latest)
    .where(_identities.c.kind == bindparam("kind"))
)
SELECT_SENDER_THREAD = _SENDER_THREAD_BASE.where(_identities.c.value == bindparam("value"))
SELECT_IDENTITY_OWNER = select(_identities.c.contact_id).where(
    _identities.c.kind == bindparam("kind"), _identities.c.value == bindparam("value")
)
INSERT_MESSAGE = insert(_messages).returning(_messages.c.id)
UPDATE_THREAD = (
    update(_conversations)
    .where(_conversations.c.id == bindparam("conversation_id"))
    .values(
        last_message_at=bindparam("now"),
        last_inbound_at=bindparam("now"),
        updated_at=bindparam("now"),
        last_channel_account_id=bindparam("account_id"),
        message_count=_conversations.c.message_count + bindparam("added"),
        waiting_since=func.coalesce(_conversations.c.waiting_since, bindparam("waiting_since")),
        status="open",
        resolved_at=None,
        snoozed_until=None,
    )
)


def _dedupe_or_store(tx: Tx, account: ChannelAccountView, inbound: InboundMessage) -> IngestResult:
    batch = _Batch(tx)
    simple = batch.simple(account, inbound)
    if simple is not None:
        # The common case in five statements: see `_Batch`.
        batch.prefetch([simple])
        result = batch.message(account, inbound, simple)
        batch.flush()
        return result
    conn = tx.session.connection()
    existing = conn.execute(
        SELECT_DUPLICATE, {"account_id": account.id, "provider_message_id": inbound.provider_message_id}
    ).first()
    if existing is not None:
        return IngestResult(existing.id, existing.conversation_id, existing.contact_id, duplicate=True)
    return _store_new(tx, account, inbound)


INSERT_CONTACT = insert(_contacts).returning(_contacts.c.id)
INSERT_IDENTITY = insert(_identities).returning(_identities.c.id)
INSERT_IDENTITIES = insert(_identities)
INSERT_CONVERSATION = insert(_conversations).returning(_conversations.c.id)


@dataclass
class _Thread:
    identity_id: int
    contact_id: int
    conversation_id: int
    team_id: int | None = None
    assignee_id: int | None = None


@dataclass
class _NewSender:
    """The rows and events of a first message's new contact, identities and conversation."""

    contact: dict[str, Any]
    # The sender's identity first, then the other identities the message named.
    identities: list[dict[str, Any]]
    conversation: dict[str, Any]

    def records(self, contact_id: int, conversation_id: int) -> list[Record]:
        sender, *others = self.identities
        return [
            Record("contact.created", contact_id=contact_id, data={"via": sender["kind"]}),
            *(
                Record(
                    "identity.added",
                    contact_id=contact_id,
                    data={"kind": row["kind"], "value": row["value"], "auto": True},
                )
                for row in others
            ),
            Record(
                "conversation.created",
                conversation_id=conversation_id,
                contact_id=contact_id,
                data={"channel_account_id": self.conversation["last_channel_account_id"]},
                realtime={"team_id": None, "assignee_id": None, "status": "open"},
            ),
        ]


def _new_sender(
    now: datetime, account: ChannelAccountView, inbound: InboundMessage, sender: IdentityRef, others: list[IdentityRef]
) -> _NewSender:
    """A first message from an unknown sender: a new contact with the sender's identity and
    `others` (identities nobody holds, so nothing can refuse them: see `link_refusal`), and
    a new conversation. Ids are left for the caller to fill in."""
    contact: dict[str, Any] = {
        "name": inbound.sender_name,
        "locale": inbound.locale,
        "custom_attributes": {},
        "merged_into_id": None,
        "created_at": now,
        "updated_at": now,
    }
    identities = [
        {
            "kind": str(ref.kind),
            "value": ref.value,
            "verified": ref.verified,
            "opted_out": False,
            "merged_from_contact_id": None,
            "created_at": now,
        }
        for ref in [sender, *others]
    ]
    conversation = {
        "status": "open",
        "priority": "none",
        "assignee_id": None,
        "team_id": None,
        "subject": inbound.subject,
        "last_channel_account_id": account.id,
        "message_count": 0,
        "created_at": now,
        "updated_at": now,
        "last_message_at": now,
        "last_inbound_at": now,
        "waiting_since": None,
        "first_response_at": None,
        "resolved_at": None,
        "snoozed_until": None,
        "merged_into_id": None,
    }
    return _NewSender(contact, identities, conversation)


def _new_sender_thread(tx: Tx, new: _NewSender, records: list[Record]) -> _Thread:
    """Insert `new` now, one statement per table; its events are added to `records`."""
    conn = tx.session.connection()
    contact_id = conn.execute(INSERT_CONTACT, new.contact).scalar_one()
    sender, *others = ({**row, "contact_id": contact_id} for row in new.identities)
    identity_id = conn.execute(INSERT_IDENTITY, sender).scalar_one()
    if others:
        conn.execute(INSERT_IDENTITIES, others)
    conversation_id = conn.execute(INSERT_CONVERSATION, {**new.conversation, "contact_id": contact_id}).scalar_one()
    records.extend(new.records(contact_id, conversation_id))
    return _Thread(identity_id, contact_id, conversation_id)


def _store_new(tx: Tx, account: ChannelAccountView, inbound: InboundMessage) -> IngestResult:
    region = tx.runtime.settings.default_region
    refs = [_normalized(inbound.sender, region)]
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
            realtime=_realtime(conversation),
        )
    elif how == "reopened":
        tx.record(
            "conversation.reopened",
            conversation_id=conversation_id,
            contact_id=contact_id,
            data={"channel_account_id": account.id},
            realtime=_realtime(conversation),
        )
    tx.record_many([_message_created(account, inbound, conversation, conversation_id, contact_id, message_id)])
    record_refused_links(tx, conversation, contact_id, resolved.refused)
    return IngestResult(message_id, conversation_id, contact_id, new_conversation=how == "created")


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
        realtime=_realtime(
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
        ref = _normalized(IdentityRef(kind=kind, value=value), region)
        identity_id = tx.session.execute(
            select(Identity.id).where(Identity.kind == ref.kind, Identity.value == ref.value)
        ).scalar()
        if identity_id is not None:
            messaging_actions.set_channel_opt_out(
                tx, identity_id, account.kind, opted_out, source="keyword", channel_account_id=account.id
            )


def ingest_delivery(tx: Tx, account: ChannelAccountView, result: WebhookResult) -> DeliveryResult:
    """Store everything one webhook delivery carried, in the caller's transaction."""
    outcome = DeliveryResult()
    for inbound in result.messages:
        outcome.messages.append(ingest_message(tx, account, inbound))
    if result.opt_changes:
        apply_opt_changes(tx, account, result.opt_changes)
    for status in result.statuses:
        if apply_status(tx, account, status):
            outcome.statuses_applied += 1
        else:
            outcome.statuses_ignored += 1
    if isinstance(result, MetaWebhookResult):
        for mark in result.watermarks:
            allowed = STATUS_PREDECESSORS.get(mark.status, ())
            outcome.statuses_applied += messaging_actions.apply_watermark(
                tx, account, mark.recipient, mark.status, mark.at, allowed
            )
        if result.account_errors:
            messaging_actions.record_account_errors(tx, account, result.account_errors)
    return outcome


# ---------------------------------------------------------------- batches (group commit)


def _among(column: Any, name: str, postgres: bool) -> Any:
    """`column IN (<the list bound as name>)`: on PostgreSQL as `= ANY(array)`, one statement
    text for any number of values, which psycopg prepares once; an expanding IN is new text
    (planned anew) for every length."""
    if postgres:
        # No length on the element type: a cast to VARCHAR(512) would cut a longer value short.
        return column == any_(bindparam(name, type_=postgresql.ARRAY(String())))
    return column.in_(bindparam(name, expanding=True))


@dataclass(frozen=True)
class _Lookups:
    """The batch's look-ups, as each engine runs them best."""

    duplicates: Any
    sender_threads: Any
    identity_owners: Any

    @classmethod
    def build(cls, postgres: bool) -> _Lookups:
        return cls(
            select(
                _messages.c.provider_message_id, _messages.c.id, _messages.c.conversation_id, _messages.c.contact_id
            ).where(
                _messages.c.channel_account_id == bindparam("account_id"),
                _among(_messages.c.provider_message_id, "provider_message_ids", postgres),
            ),
            _SENDER_THREAD_BASE.add_columns(_identities.c.value).where(_among(_identities.c.value, "values", postgres)),
            select(_identities.c.value, _identities.c.contact_id).where(
                _identities.c.kind == bindparam("kind"), _among(_identities.c.value, "values", postgres)
            ),
        )


_LOOKUPS = {postgres: _Lookups.build(postgres) for postgres in (True, False)}
INSERT_MESSAGES = insert(_messages).returning(_messages.c.id, sort_by_parameter_order=True)


@dataclass
class _Simple:
    """A plain inbound message (no threading, edit or attachment): the batch's fast path may take it."""

    account: ChannelAccountView
    inbound: InboundMessage
    sender: IdentityRef
    others: list[IdentityRef]


@dataclass
class _Queued:
    """A message the batch will insert with the others at its next flush."""

    simple: _Simple
    thread: _Thread
    result: IngestResult
    # Events that come before the message's own (a new sender's contact and conversation).
    before: list[Record] = field(default_factory=list)


class _Batch:
    """Store many deliveries in one transaction with a few statements for all of them.

    The common messages (a known sender with an open thread, or a new sender) are looked up
    together (duplicates, senders' threads, other identities' owners: one query per channel
    account or identity kind), inserted together (one multi-row INSERT) and their threads
    and events written together. Anything else (edits, attachments, threading references,
    identities to link, statuses) goes through the one-at-a-time path, after the messages
    queued before it are flushed, so every conversation's messages keep their order.
    """

    def __init__(self, tx: Tx) -> None:
        self.tx = tx
        self.conn = tx.session.connection()
        self.region = tx.runtime.settings.default_region
        self.queued: list[_Queued] = []
        # (account id, provider message id) -> what holds that message: stored before the
        # batch, stored by it, or queued in it (its id known at the next flush).
        self.held: dict[tuple[int, str], IngestResult] = {}
        self.repeats: list[tuple[IngestResult, IngestResult]] = []
        self.senders: dict[tuple[str, str], Any] = {}
        self.owners: dict[tuple[str, str], int | None] = {}
        # PostgreSQL: new senders' rows, inserted at the next flush, and ids for them.
        self.postgres = self.conn.dialect.name == "postgresql"
        self.lookups = _LOOKUPS[self.postgres]
        # PostgreSQL: ids drawn from the sequences for rows still to insert, lowest last.
        self.spare_ids: dict[Table, list[int]] = {_contacts: [], _identities: [], _conversations: [], _messages: []}
        self.new_rows: dict[Table, list[dict[str, Any]]] = {_contacts: [], _identities: [], _conversations: []}

    # ---- look-ups

    def simple(self, account: ChannelAccountView, inbound: InboundMessage) -> _Simple | None:
        """The message as the fast path takes it, or None if it needs the general path
        (edits are the caller's to send elsewhere)."""
        if inbound.reply_to_provider_ids or inbound.conversation_token is not None:
            return None
        if inbound.attachments or (inbound.raw is not None and inbound.kind == "unknown"):
            return None
        sender = _normalized(inbound.sender, self.region)
        others: list[IdentityRef] = []
        for other in inbound.other_identities:
            try:
                ref = normalize(other, self.region)
            except InvalidIdentity:
                continue
            if (ref.kind, ref.value) != (sender.kind, sender.value) and all(
                (ref.kind, ref.value) != (seen.kind, seen.value) for seen in others
            ):
                others.append(ref)
        return _Simple(account, inbound, sender, others)

    def prefetch(self, simples: list[_Simple]) -> None:
        """Everything the fast path reads, for all of `simples`, in a few queries."""
        by_account: dict[int, set[str]] = {}
        senders: dict[str, set[str]] = {}
        others: dict[str, set[str]] = {}
        identities: dict[tuple[str, str], int] = {}  # per sender, with the others it names
        new_senders = new_identities = 0
        for item in simples:
            by_account.setdefault(item.account.id, set()).add(item.inbound.provider_message_id)
            senders.setdefault(str(item.sender.kind), set()).add(item.sender.value)
            identities.setdefault((str(item.sender.kind), item.sender.value), 1 + len(item.others))
            for ref in item.others:
                others.setdefault(str(ref.kind), set()).add(ref.value)
        for account_id, ids in by_account.items():
            for row in self.conn.execute(
                self.lookups.duplicates, {"account_id": account_id, "provider_message_ids": sorted(ids)}
            ):
                self.held[(account_id, row.provider_message_id)] = IngestResult(
                    row.id, row.conversation_id, row.contact_id, duplicate=True
                )
        for kind, values in senders.items():
            found = {
                row.value: row
                for row in self.conn.execute(self.lookups.sender_threads, {"kind": kind, "values": sorted(values)})
            }
            for value in values:
                self.senders[(kind, value)] = found.get(value)
            unknown = [value for value in values if value not in found]
            new_senders += len(unknown)
            new_identities += sum(identities[(kind, value)] for value in unknown)
        for kind, values in others.items():
            rows = self.conn.execute(self.lookups.identity_owners, {"kind": kind, "values": sorted(values)})
            owners: dict[str, int] = {row.value: row.contact_id for row in rows}
            for value in values:
                self.owners[(kind, value)] = owners.get(value)
        if self.postgres:
            # One query for the ids of every message and new sender the fast path may store.
            self._draw(
                {
                    _messages: len(simples),
                    _contacts: new_senders,
                    _conversations: new_senders,
                    _identities: new_identities,
                }
            )

    def _sender(self, ref: IdentityRef) -> Any:
        key = (str(ref.kind), ref.value)
        if key not in self.senders:
            self.senders[key] = self.conn.execute(SELECT_SENDER_THREAD, {"kind": key[0], "value": key[1]}).first()
        return self.senders[key]

    def _owner(self, ref: IdentityRef) -> int | None:
        key = (str(ref.kind), ref.value)
        if key not in self.owners:
            self.owners[key] = self.conn.execute(SELECT_IDENTITY_OWNER, {"kind": key[0], "value": key[1]}).scalar()
        return self.owners[key]

    def stored_alone(
        self, account: ChannelAccountView, inbounds: list[InboundMessage], results: list[IngestResult]
    ) -> None:
        """What the one-at-a-time path stored: a later repeat in the batch is known, and any
        sender may have been linked, merged or given a thread since the look-ups."""
        for inbound, result in zip(inbounds, results, strict=True):
            if not result.duplicate:
                self.held[(account.id, inbound.provider_message_id)] = result
        self._forget()

    def _forget(self) -> None:
        """The one-at-a-time path may have linked, merged or opened anything: look again."""
        self.senders.clear()
        self.owners.clear()

    # ---- messages

    def message(self, account: ChannelAccountView, inbound: InboundMessage, simple: _Simple | None) -> IngestResult:
        key = (account.id, inbound.provider_message_id)
        if simple is None:
            self.flush()
            result = ingest_message(self.tx, account, inbound)
            self._forget()
        else:
            held = self.held.get(key)
            if held is not None:
                repeat = IngestResult(held.message_id, held.conversation_id, held.contact_id, duplicate=True)
                if held.message_id is None:
                    self.repeats.append((repeat, held))
                return repeat
            result = self._fast(simple)
        if not result.duplicate:
            self.held[key] = result
        return result

    def _fast(self, simple: _Simple) -> IngestResult:
        found = self._sender(simple.sender)
        inbound = simple.inbound
        if found is None:
            if any(self._owner(ref) is not None for ref in simple.others):
                return self._alone(simple)  # joins, or is refused by, the owner's contact
            before: list[Record] = []
            thread = self._new_sender(simple, before)
            self.senders[(str(simple.sender.kind), simple.sender.value)] = _OpenThread(
                thread.identity_id, thread.contact_id, simple.sender.verified, inbound.sender_name,
                thread.conversation_id, "open", None, None,
            )  # fmt: skip
            for ref in simple.others:
                self.owners[(str(ref.kind), ref.value)] = thread.contact_id
            new_conversation = True
        elif (
            found.conversation_id is None
            or found.status not in UNRESOLVED
            or (simple.sender.verified and not found.verified)
            or (inbound.sender_name and not found.contact_name)
            or any(self._owner(ref) != found.contact_id for ref in simple.others)
        ):
            return self._alone(simple)
        else:
            thread = _Thread(
                found.identity_id, found.contact_id, found.conversation_id, found.team_id, found.assignee_id
            )
            before = []
            new_conversation = False
        result = IngestResult(None, thread.conversation_id, thread.contact_id, new_conversation=new_conversation)
        self.queued.append(_Queued(simple, thread, result, before))
        return result

    def _new_sender(self, simple: _Simple, records: list[Record]) -> _Thread:
        """Create a new sender's contact and thread: on PostgreSQL at the next flush, with
        the other new senders' (ids drawn from the sequences for all of them at once)."""
        new = _new_sender(self.tx.now, simple.account, simple.inbound, simple.sender, simple.others)
        if not self.postgres:
            return _new_sender_thread(self.tx, new, records)
        [contact_id], [conversation_id] = self._ids(_contacts, 1), self._ids(_conversations, 1)
        identity_ids = self._ids(_identities, len(new.identities))
        self.new_rows[_contacts].append({**new.contact, "id": contact_id})
        self.new_rows[_identities].extend(
            {**row, "id": identity_id, "contact_id": contact_id}
            for row, identity_id in zip(new.identities, identity_ids, strict=True)
        )
        self.new_rows[_conversations].append({**new.conversation, "id": conversation_id, "contact_id": contact_id})
        records.extend(new.records(contact_id, conversation_id))
        return _Thread(identity_ids[0], contact_id, conversation_id)

    def _draw(self, counts: dict[Table, int]) -> None:
        wanted = {table: count for table, count in counts.items() if count > 0}
        if wanted:
            for table, ids in bulk.next_ids(self.conn, wanted).items():
                # Handed out from the end: the lowest ids go to the first rows.
                self.spare_ids[table][:0] = reversed(ids)

    def _ids(self, table: Table, count: int) -> list[int]:
        """`count` new ids for `table` (PostgreSQL), drawn in `prefetch` or now if it drew too few."""
        spare = self.spare_ids[table]
        if len(spare) < count:
            self._draw({table: count - len(spare)})
        return [spare.pop() for _ in range(count)]

    def _alone(self, simple: _Simple) -> IngestResult:
        self.flush()
        result = _store_new(self.tx, simple.account, simple.inbound)
        self._forget()
        return result

    def flush(self) -> None:
        """Insert the queued messages, move their threads on and record their events.

        On PostgreSQL the writes go out together in pipeline mode: one round trip.
        """
        if not self.queued:
            return
        queued, self.queued = self.queued, []
        now = self.tx.now
        rows = [
            {
                "conversation_id": item.thread.conversation_id,
                "contact_id": item.thread.contact_id,
                "channel_account_id": item.simple.account.id,
                "identity_id": item.thread.identity_id,
                "direction": "inbound",
                "kind": str(item.simple.inbound.kind),
                "author_agent_id": None,
                "body": item.simple.inbound.text,
                "html": item.simple.inbound.html,
                "subject": item.simple.inbound.subject,
                "data": dict(item.simple.inbound.data),
                "provider_message_id": item.simple.inbound.provider_message_id,
                "status": "received",
                "status_code": None,
                "status_reason": None,
                "idempotency_key": None,
                "reply_to_message_id": None,
                "auto_generated": item.simple.inbound.auto_generated,
                "created_at": now,
                "sent_at": item.simple.inbound.sent_at,
                "edited_at": None,
                "deleted_at": None,
            }
            for item in queued
        ]
        threads: dict[int, dict[str, Any]] = {}
        for item in queued:
            thread = threads.setdefault(
                item.thread.conversation_id,
                {"conversation_id": item.thread.conversation_id, "now": now, "added": 0, "waiting_since": None},
            )
            thread["added"] += 1
            thread["account_id"] = item.simple.account.id
            if not item.simple.inbound.auto_generated:
                thread["waiting_since"] = now
        updates = list(threads.values())
        # Drawn before the pipeline: a query's rows cannot be read in the middle of one.
        drawn = self._ids(_messages, len(rows)) if self.postgres else None
        with bulk.pipeline(self.conn):
            for table in (_contacts, _identities, _conversations):
                if self.new_rows[table]:
                    bulk.insert_rows(self.conn, table, self.new_rows[table])
                    self.new_rows[table] = []
            ids = self._insert_messages(rows, drawn)
            self.conn.execute(UPDATE_THREAD, updates if len(updates) > 1 else updates[0])
            records = []
            for item, message_id in zip(queued, ids, strict=True):
                item.result.message_id = message_id
                owner = item.thread
                conversation = {"team_id": owner.team_id, "assignee_id": owner.assignee_id, "status": "open"}
                records.extend(item.before)
                records.append(
                    _message_created(
                        item.simple.account,
                        item.simple.inbound,
                        conversation,
                        owner.conversation_id,
                        owner.contact_id,
                        message_id,
                    )
                )
            self.tx.record_many(records)
        for repeat, held in self.repeats:
            repeat.message_id = held.message_id
        self.repeats.clear()

    def _insert_messages(self, rows: list[dict[str, Any]], ids: list[int] | None) -> list[int]:
        """Insert the message rows, with `ids` on PostgreSQL; return their ids, in order."""
        if ids is not None:
            bulk.insert_rows(self.conn, _messages, [{**row, "id": id_} for row, id_ in zip(rows, ids, strict=True)])
            return ids
        if len(rows) == 1:
            return [self.conn.execute(INSERT_MESSAGE, rows[0]).scalar_one()]
        return list(self.conn.execute(INSERT_MESSAGES, rows).scalars())


@dataclass
class _OpenThread:
    """A sender's thread as SELECT_SENDER_THREAD returns it, for a sender the batch created."""

    identity_id: int
    contact_id: int
    verified: bool
    contact_name: str | None
    conversation_id: int
    status: str
    team_id: int | None
    assignee_id: int | None


def _edit(inbound: InboundMessage) -> bool:
    return bool(inbound.edit_of_provider_id or inbound.unsend_of_provider_id)


def _plain(result: WebhookResult) -> bool:
    """Whether a delivery carries messages only (no statuses, opt-outs or read watermarks)."""
    if result.statuses or result.opt_changes:
        return False
    return not (isinstance(result, MetaWebhookResult) and (result.watermarks or result.account_errors))


def ingest_batch(tx: Tx, deliveries: list[tuple[ChannelAccountView, WebhookResult]]) -> list[DeliveryResult]:
    """Store many webhook deliveries in the caller's transaction, in order (see `_Batch`)."""
    batch = _Batch(tx)
    plans = []
    for account, result in deliveries:
        plain = _plain(result)
        plans.append(
            [batch.simple(account, inbound) if plain and not _edit(inbound) else None for inbound in result.messages]
        )
    batch.prefetch([simple for plan in plans for simple in plan if simple is not None])
    outcomes = []
    for (account, result), plan in zip(deliveries, plans, strict=True):
        if not _plain(result):
            batch.flush()
            outcome = ingest_delivery(tx, account, result)
            batch.stored_alone(account, result.messages, outcome.messages)
            outcomes.append(outcome)
            continue
        outcome = DeliveryResult()
        for inbound, simple in zip(result.messages, plan, strict=True):
            outcome.messages.append(batch.message(account, inbound, simple))
        outcomes.append(outcome)
    batch.flush()
    return outcomes


@dataclass
class _Item:
    account: ChannelAccountView
    result: WebhookResult
    # Who waits: a thread (`submit`) or a coroutine on an event loop (`store`).
    future: concurrent.futures.Future[DeliveryResult] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    waiter: asyncio.Future[DeliveryResult] | None = None


class _Answers:
    """A batch's outcomes, handed to each waiting event loop in one call.

    One thread-safe wake-up per loop and batch, rather than one per webhook, which cost the
    event loop more than the webhook's own parsing under load.
    """

    def __init__(self) -> None:
        self.by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[DeliveryResult], Any]]] = {}

    def give(self, item: _Item, outcome: DeliveryResult | BaseException) -> None:
        if item.future is not None:
            if isinstance(outcome, BaseException):
                item.future.set_exception(outcome)
            else:
                item.future.set_result(outcome)
        elif item.loop is not None and item.waiter is not None:
            self.by_loop.setdefault(item.loop, []).append((item.waiter, outcome))

    def send(self) -> None:
        for loop, answers in self.by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, answers)
            except RuntimeError:
                log.warning("event loop closed before %d ingest answers reached it", len(answers))
        self.by_loop.clear()


def _settle(answers: list[tuple[asyncio.Future[DeliveryResult], Any]]) -> None:
    for waiter, outcome in answers:
        if waiter.done():
            continue  # the request was cancelled (its client went away); the data is stored
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)


class IngestQueue:
    """One writer thread that commits webhook deliveries in shared transactions.

    Deliveries that arrive while a commit is in flight wait for the next one, so under
    load one durable commit carries many messages. If a batch fails (a race on a unique
    index, a bad row) it is rolled back and each delivery retried alone, so one bad
    delivery never takes its neighbours down.
    """

    def __init__(self, runtime: Runtime, max_batch: int = 128) -> None:
        self.runtime = runtime
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="hilo-ingest", daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._started = False

    def submit(self, account: ChannelAccountView, result: WebhookResult) -> concurrent.futures.Future[DeliveryResult]:
        """Queue a delivery; the future resolves once it is committed (or failed)."""
        future: concurrent.futures.Future[DeliveryResult] = concurrent.futures.Future()
        self._queue.put(_Item(account, result, future=future))
        return future

    async def store(self, account: ChannelAccountView, result: WebhookResult) -> DeliveryResult:
        """Queue a delivery from a coroutine and wait until it is committed."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[DeliveryResult] = loop.create_future()
        self._queue.put(_Item(account, result, loop=loop, waiter=waiter))
        return await waiter

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._answer(batch)
                    return
                batch.append(item)
            self._answer(batch)

    def _answer(self, batch: list[_Item]) -> None:
        answers = _Answers()
        try:
            self._process(batch, answers)
        finally:
            answers.send()

    def _process(self, batch: list[_Item], answers: _Answers) -> None:
        try:
            with self.runtime.transaction() as tx:
                results = ingest_batch(tx, [(item.account, item.result) for item in batch])
            for item, outcome in zip(batch, results, strict=True):
                answers.give(item, outcome)
            return
        except (IntegrityError, OperationalError, ValueError) as exc:
            if len(batch) == 1:
                self._process_alone(batch[0], answers, retry=isinstance(exc, IntegrityError | OperationalError))
                return
        except Exception:
            log.exception("ingest batch failed; retrying deliveries one by one")
        for item in batch:
            self._process_alone(item, answers, retry=True)

    def _process_alone(self, item: _Item, answers: _Answers, *, retry: bool) -> None:
        attempts = 3 if retry else 1
        for attempt in range(attempts):
            try:
                with self.runtime.transaction() as tx:
                    outcome = ingest_delivery(tx, item.account, item.result)
                answers.give(item, outcome)
                return
            except (IntegrityError, OperationalError) as exc:
                # A concurrent process created the same identity or conversation first;
                # the retry finds and joins it.
                if attempt == attempts - 1:
                    log.exception("ingest failed for channel account %s", item.account.id)
                    answers.give(item, exc)
            except Exception as exc:
                log.exception("ingest failed for channel account %s", item.account.id)
                answers.give(item, exc)
                return
