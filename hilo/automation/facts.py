"""Gather what rule conditions look at, and the values of reply variables, for a conversation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from hilo.agents.models import Agent, Team
from hilo.automation.language import detect
from hilo.automation.variables import first_name, mapping_lookup
from hilo.contacts.models import Contact, Identity
from hilo.conversations.models import Conversation, Message
from hilo.hours.calendars import cached
from hilo.i18n import normalize_locale
from hilo.routing.actions import channel_kind
from hilo.routing.queries import team_calendar_row
from hilo.runtime import Tx


def trigger_message(tx: Tx, conversation: Conversation, message_id: int | None) -> Message | None:
    """The message an event names, else the conversation's latest inbound message."""
    if message_id is not None:
        message = tx.session.get(Message, message_id)
        if message is not None and message.direction == "inbound":
            return message
    return tx.session.execute(
        select(Message)
        .where(Message.conversation_id == conversation.id, Message.direction == "inbound")
        .order_by(Message.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def contact_details(tx: Tx, contact_id: int) -> tuple[Contact | None, dict[str, str], bool]:
    """The contact, their first address of each kind, and whether any identity is verified."""
    contact = tx.session.get(Contact, contact_id)
    addresses: dict[str, str] = {}
    verified = False
    for kind, value, is_verified in tx.session.execute(
        select(Identity.kind, Identity.value, Identity.verified)
        .where(Identity.contact_id == contact_id)
        .order_by(Identity.id)
    ).tuples():
        addresses.setdefault(kind, value)
        verified = verified or bool(is_verified)
    return contact, addresses, verified


def facts_for(
    tx: Tx, conversation: Conversation, message: Message | None, event: dict[str, Any] | None = None
) -> dict[str, Any]:
    contact, addresses, verified = contact_details(tx, conversation.contact_id)
    calendar_row = team_calendar_row(tx.session, conversation.team_id)
    text = message.body if message else None
    language = (message.data or {}).get("language") if message else None
    return {
        "conversation.status": conversation.status,
        "conversation.priority": conversation.priority,
        "conversation.team_id": conversation.team_id,
        "conversation.assignee_id": conversation.assignee_id,
        "conversation.labels": [label.name for label in conversation.labels],
        "conversation.channel": channel_kind(tx, conversation.last_channel_account_id),
        "conversation.channel_account_id": conversation.last_channel_account_id,
        "conversation.subject": conversation.subject,
        "conversation.message_count": conversation.message_count,
        "conversation.idle_hours": (tx.now - conversation.last_message_at).total_seconds() / 3600,
        "contact.name": contact.name if contact else None,
        "contact.locale": normalize_locale(contact.locale) if contact and contact.locale else None,
        "contact.email": addresses.get("email"),
        "contact.phone": addresses.get("phone"),
        "contact.verified": verified,
        "contact.attributes": dict(contact.custom_attributes or {}) if contact else {},
        "message.text": text,
        "message.language": language or detect(text),
        "message.channel": channel_kind(tx, message.channel_account_id) if message else None,
        "message.channel_account_id": message.channel_account_id if message else None,
        "message.kind": message.kind if message else None,
        "message.auto_generated": bool(message.auto_generated) if message else False,
        "business_hours.open": cached(calendar_row).is_open(tx.now) if calendar_row else None,
        "event.sla_kind": (event or {}).get("sla_kind"),
    }


def contact_locale(facts: dict[str, Any]) -> str:
    """The language to answer in: the contact's, else the one their message is written in."""
    return normalize_locale(facts.get("contact.locale") or facts.get("message.language"))


def variables(tx: Tx, conversation: Conversation, agent_id: int | None) -> Callable[[str], Any]:
    """Values for {{contact.*}}, {{agent.*}}, {{conversation.id}} and {{team.name}}, looked up
    the first time a text asks for one."""
    loaded: list[Callable[[str], Any]] = []

    def lookup(name: str) -> Any:
        if not loaded:
            loaded.append(_load_variables(tx, conversation, agent_id))
        return loaded[0](name)

    return lookup


def _load_variables(tx: Tx, conversation: Conversation, agent_id: int | None) -> Callable[[str], Any]:
    contact, addresses, _verified = contact_details(tx, conversation.contact_id)
    agent = tx.session.get(Agent, agent_id) if agent_id is not None else None
    team = tx.session.get(Team, conversation.team_id) if conversation.team_id is not None else None
    name = contact.name if contact else None
    return mapping_lookup(
        {
            "contact.name": name,
            "contact.first_name": first_name(name),
            "contact.email": addresses.get("email"),
            "contact.phone": addresses.get("phone"),
            "contact.attributes": dict(contact.custom_attributes or {}) if contact else {},
            "agent.name": agent.name if agent else None,
            "agent.first_name": first_name(agent.name) if agent else None,
            "agent.email": agent.email if agent else None,
            "conversation.id": conversation.id,
            "team.name": team.name if team else None,
        }
    )
