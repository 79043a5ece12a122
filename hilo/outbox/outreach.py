"""Agent-initiated contact: which channels reach a contact, and starting a conversation on one.

The first message goes through `hilo.outbox.reply.reply`, so every channel rule a reply obeys
applies unchanged (WhatsApp's 24-hour window and templates, opt-outs, disabled channels). A
contact who already has an unresolved conversation is written to there: one thread per customer
(DESIGN invariant 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hilo.agents.access import Principal
from hilo.channels.models import ChannelAccount
from hilo.contacts.identity import CHANNEL_IDENTITY_KIND
from hilo.contacts.models import Contact
from hilo.conversations.access import can_see
from hilo.conversations.actions import realtime_of
from hilo.conversations.directory import Reach
from hilo.conversations.models import Conversation, Message
from hilo.errors import ActionError, NotFound
from hilo.i18n import N_
from hilo.outbox.reply import SCOPED_KINDS, ChannelOption, channel_options, reply
from hilo.runtime import Tx


@dataclass
class Started:
    conversation: Conversation
    message: Message
    created: bool


def reach_of(session: Session, channel_account_id: int) -> Reach:
    """The identities a channel account reaches customers on (the directory's channel filter)."""
    account = session.get(ChannelAccount, channel_account_id)
    if account is None:
        raise NotFound("channel_not_found", N_("Channel not found."))
    kind = CHANNEL_IDENTITY_KIND.get(account.kind)
    if kind is None:
        raise ActionError("channel_cannot_reach", N_("This channel cannot reach contacts."), 422)
    return Reach(str(kind), f"{account.id}:" if kind in SCOPED_KINDS else None)


def unresolved_conversation(session: Session, contact_id: int) -> Conversation | None:
    """The contact's thread every channel joins, if one is open, pending or snoozed."""
    return session.execute(
        select(Conversation).where(
            Conversation.contact_id == contact_id,
            Conversation.status != "resolved",
            Conversation.merged_into_id.is_(None),
        )
    ).scalar_one_or_none()


def contact_channels(tx: Tx, contact: Contact) -> list[ChannelOption]:
    """Every channel account this contact has an identity for, and why one cannot be used now."""
    thread = unresolved_conversation(tx.session, contact.id)
    # Without a thread the rules are judged as for a new one: no earlier message on any channel
    # of it, the contact's last inbound message per channel for the windows.
    probe = thread if thread is not None else Conversation(contact_id=contact.id)
    return channel_options(tx, probe)


def start_conversation(
    tx: Tx,
    principal: Principal,
    contact: Contact,
    *,
    channel_account_id: int,
    body: str | None,
    template: dict[str, Any] | None = None,
    subject: str | None = None,
) -> Started:
    """Write to a contact first, on the chosen channel.

    The message goes into the contact's unresolved conversation if there is one (refused when the
    caller may not see it); otherwise a new conversation starts, assigned to the agent who wrote.
    A message the channel's rules refuse (e.g. free text on WhatsApp outside the 24-hour window)
    leaves nothing behind: the caller's transaction rolls back with the refusal.
    """
    if contact.merged_into_id is not None:
        raise ActionError("contact_merged", N_("This contact was merged into another one."), 409)
    thread = unresolved_conversation(tx.session, contact.id)
    if thread is not None and not can_see(principal, thread.team_id, thread.assignee_id):
        # Writing into it would reach a conversation the caller may not open.
        raise ActionError(
            "open_conversation_not_visible",
            N_("This contact has an open conversation with another team; ask that team or a supervisor to write."),
            409,
        )
    created = thread is None
    if thread is None:
        account = tx.session.get(ChannelAccount, channel_account_id)
        if account is None:
            raise NotFound("channel_not_found", N_("Channel not found."))
        thread = Conversation(
            contact_id=contact.id,
            status="open",
            priority="none",
            assignee_id=tx.actor_agent_id,
            subject=(subject or "").strip() or None,
            last_channel_account_id=account.id,
            message_count=0,
            created_at=tx.now,
            updated_at=tx.now,
            last_message_at=tx.now,
        )
        tx.session.add(thread)
        tx.session.flush()
        tx.record(
            "conversation.created",
            conversation_id=thread.id,
            contact_id=contact.id,
            data={"channel_account_id": account.id, "started_by_agent_id": tx.actor_agent_id},
            realtime=realtime_of(thread),
        )
    message = reply(tx, thread, body, channel_account_id=channel_account_id, template=template)
    return Started(thread, message, created)
