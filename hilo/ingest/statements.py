"""The statements and records every ingest path shares: built once, since building a statement per message
costs more than running it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update

# The batch insert casts every column it writes. A foreign-key column takes its type from
# the column it points at, known only once that table is loaded: load the tables they point at.
import hilo.agents.models  # noqa: F401
import hilo.channels.models  # noqa: F401
from hilo.channels.base import (
    ChannelAccountView,
    DeliveryStatus,
    IdentityRef,
    InboundMessage,
)
from hilo.contacts.identity import InvalidIdentity, normalize
from hilo.contacts.models import Contact, Identity
from hilo.conversations.models import Conversation, Message
from hilo.runtime import Record

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


def normalized(ref: IdentityRef, region: str) -> IdentityRef:
    try:
        return normalize(ref, region)
    except InvalidIdentity:
        # Keep the provider's value rather than lose the message; it just will not
        # match other channels' identities.
        log.warning("identity %s could not be normalised; kept as given", ref.kind)
        return IdentityRef(kind=ref.kind, value=ref.value.strip()[:320], verified=ref.verified)


def thread_realtime(conversation: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "team_id": conversation["team_id"],
        "assignee_id": conversation["assignee_id"],
        "status": conversation["status"],
        **extra,
    }


def message_created(
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
        realtime=thread_realtime(
            conversation,
            direction="inbound",
            channel_account_id=account.id,
            channel_kind=account.kind,
            preview=(inbound.text or "")[:140],
        ),
    )


# The hot path's statements are built once: building and cache-keying a statement per
# message costs more than running it.
messages_table = cast(Table, Message.__table__)
identities_table = cast(Table, Identity.__table__)
contacts_table = cast(Table, Contact.__table__)
conversations_table = cast(Table, Conversation.__table__)
_latest = (
    select(func.max(conversations_table.c.id))
    .where(
        conversations_table.c.contact_id == identities_table.c.contact_id,
        conversations_table.c.merged_into_id.is_(None),
    )
    .correlate(identities_table)
    .scalar_subquery()
)
SELECT_DUPLICATE = select(messages_table.c.id, messages_table.c.conversation_id, messages_table.c.contact_id).where(
    messages_table.c.channel_account_id == bindparam("account_id"),
    messages_table.c.provider_message_id == bindparam("provider_message_id"),
)
SENDER_THREAD_BASE = (
    select(
        identities_table.c.id.label("identity_id"),
        identities_table.c.contact_id,
        identities_table.c.verified,
        contacts_table.c.name.label("contact_name"),
        conversations_table.c.id.label("conversation_id"),
        conversations_table.c.status,
        conversations_table.c.team_id,
        conversations_table.c.assignee_id,
    )
    .join(contacts_table, contacts_table.c.id == identities_table.c.contact_id)
    .outerjoin(conversations_table, conversations_table.c.id == _latest)
    .where(identities_table.c.kind == bindparam("kind"))
)
SELECT_SENDER_THREAD = SENDER_THREAD_BASE.where(identities_table.c.value == bindparam("value"))
SELECT_IDENTITY_OWNER = select(identities_table.c.contact_id).where(
    identities_table.c.kind == bindparam("kind"), identities_table.c.value == bindparam("value")
)
INSERT_MESSAGE = insert(messages_table).returning(messages_table.c.id)
UPDATE_THREAD = (
    update(conversations_table)
    .where(conversations_table.c.id == bindparam("conversation_id"))
    .values(
        last_message_at=bindparam("now"),
        last_inbound_at=bindparam("now"),
        updated_at=bindparam("now"),
        last_channel_account_id=bindparam("account_id"),
        message_count=conversations_table.c.message_count + bindparam("added"),
        waiting_since=func.coalesce(conversations_table.c.waiting_since, bindparam("waiting_since")),
        status="open",
        resolved_at=None,
        snoozed_until=None,
    )
)

INSERT_CONTACT = insert(contacts_table).returning(contacts_table.c.id)
INSERT_IDENTITY = insert(identities_table).returning(identities_table.c.id)
INSERT_IDENTITIES = insert(identities_table)
INSERT_CONVERSATION = insert(conversations_table).returning(conversations_table.c.id)
