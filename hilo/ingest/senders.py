"""Senders: resolve the identities a message names to one contact, linking and merging as the message proves,
and record what it could not link."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select, update

# The batch insert casts every column it writes. A foreign-key column takes its type from
# the column it points at, known only once that table is loaded: load the tables they point at.
import hilo.agents.models  # noqa: F401
import hilo.channels.models  # noqa: F401
from hilo.channels.base import (
    ChannelAccountView,
    IdentityRef,
    InboundMessage,
)
from hilo.contacts.models import Contact, Identity
from hilo.conversations.models import Message
from hilo.events.models import Event
from hilo.ingest.statements import (
    INSERT_CONTACT,
    INSERT_CONVERSATION,
    INSERT_IDENTITIES,
    INSERT_IDENTITY,
    LINK_REFUSED,
    thread_realtime,
)
from hilo.runtime import Record, Tx

log = logging.getLogger(__name__)


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
    from hilo.contacts.actions import link_refusal
    from hilo.conversations.merging import merge_contacts

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
            realtime=thread_realtime(conversation),
        )


@dataclass
class Thread:
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


def new_sender(
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


def new_sender_thread(tx: Tx, new: _NewSender, records: list[Record]) -> Thread:
    """Insert `new` now, one statement per table; its events are added to `records`."""
    conn = tx.session.connection()
    contact_id = conn.execute(INSERT_CONTACT, new.contact).scalar_one()
    sender, *others = ({**row, "contact_id": contact_id} for row in new.identities)
    identity_id = conn.execute(INSERT_IDENTITY, sender).scalar_one()
    if others:
        conn.execute(INSERT_IDENTITIES, others)
    conversation_id = conn.execute(INSERT_CONVERSATION, {**new.conversation, "contact_id": contact_id}).scalar_one()
    records.extend(new.records(contact_id, conversation_id))
    return Thread(identity_id, contact_id, conversation_id)
