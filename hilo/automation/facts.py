"""Gather what rule conditions look at, and the values of reply variables, for a conversation."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
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

# Per conversation, the latest inbound message of an engine batch's events (`load_trigger_messages`).
LATEST_INBOUND = "automation_latest_inbound"


def load_trigger_messages(tx: Tx, latest: dict[int, int]) -> None:
    """Load in one query the messages rules of a batch will look at: `latest` maps each
    conversation with an inbound message in the batch to the newest of them."""
    if latest:
        messages = tx.session.execute(select(Message).where(Message.id.in_(sorted(latest.values())))).scalars()
        tx.retained.extend(messages)
        tx.cached(LATEST_INBOUND, dict[int, int]).update(latest)


def trigger_message(tx: Tx, conversation: Conversation, message_id: int | None) -> Message | None:
    """The message an event names, else the conversation's latest inbound message."""
    if message_id is None:
        # A new conversation's event names no message; its first one came in the same batch.
        message_id = tx.cached(LATEST_INBOUND, dict[int, int]).get(conversation.id)
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


FACT_KEYS = (
    "conversation.status",
    "conversation.priority",
    "conversation.team_id",
    "conversation.assignee_id",
    "conversation.labels",
    "conversation.channel",
    "conversation.channel_account_id",
    "conversation.subject",
    "conversation.message_count",
    "conversation.idle_hours",
    "contact.name",
    "contact.locale",
    "contact.email",
    "contact.phone",
    "contact.verified",
    "contact.attributes",
    "message.text",
    "message.language",
    "message.channel",
    "message.channel_account_id",
    "message.kind",
    "message.auto_generated",
    "business_hours.open",
    "event.sla_kind",
)


class Facts(Mapping[str, Any]):
    """What rule conditions look at for one conversation, each read the first time it is asked for.

    Most rules look at a fact or two (the channel, the message text): the contact, the labels,
    the calendar and the message's language cost a query or a detection each, so they are
    only read when a condition (or the language of an answer) needs them.
    """

    def __init__(
        self, tx: Tx, conversation: Conversation, message: Message | None, event: dict[str, Any] | None = None
    ) -> None:
        self._tx = tx
        self._conversation = conversation
        self._message = message
        self._values: dict[str, Any] = {
            "conversation.status": conversation.status,
            "conversation.priority": conversation.priority,
            "conversation.team_id": conversation.team_id,
            "conversation.assignee_id": conversation.assignee_id,
            "conversation.channel_account_id": conversation.last_channel_account_id,
            "conversation.subject": conversation.subject,
            "conversation.message_count": conversation.message_count,
            "conversation.idle_hours": (tx.now - conversation.last_message_at).total_seconds() / 3600,
            "message.text": message.body if message else None,
            "message.channel_account_id": message.channel_account_id if message else None,
            "message.kind": message.kind if message else None,
            "message.auto_generated": bool(message.auto_generated) if message else False,
            "event.sla_kind": (event or {}).get("sla_kind"),
        }
        self._loaders: dict[str, Callable[[], Any]] = {
            "conversation.labels": lambda: [label.name for label in conversation.labels],
            "conversation.channel": lambda: channel_kind(tx, conversation.last_channel_account_id),
            "message.language": self._language,
            "message.channel": lambda: channel_kind(tx, message.channel_account_id) if message else None,
            "business_hours.open": self._open,
        }

    def __getitem__(self, key: str) -> Any:
        if key not in self._values:
            if key.startswith("contact."):
                self._load_contact()
            elif key in self._loaders:
                self._values[key] = self._loaders[key]()
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(FACT_KEYS)

    def __len__(self) -> int:
        return len(FACT_KEYS)

    def _load_contact(self) -> None:
        contact, addresses, verified = contact_details(self._tx, self._conversation.contact_id)
        self._values.update(
            {
                "contact.name": contact.name if contact else None,
                "contact.locale": normalize_locale(contact.locale) if contact and contact.locale else None,
                "contact.email": addresses.get("email"),
                "contact.phone": addresses.get("phone"),
                "contact.verified": verified,
                "contact.attributes": dict(contact.custom_attributes or {}) if contact else {},
            }
        )

    def _language(self) -> str | None:
        if self._message is None:
            return detect(None)
        return (self._message.data or {}).get("language") or detect(self._message.body)

    def _open(self) -> bool | None:
        row = team_calendar_row(self._tx.session, self._conversation.team_id)
        return cached(row).is_open(self._tx.now) if row else None


def facts_for(
    tx: Tx, conversation: Conversation, message: Message | None, event: dict[str, Any] | None = None
) -> Facts:
    """The conversation's facts (read lazily, see `Facts`)."""
    return Facts(tx, conversation, message, event)


def contact_locale(facts: Mapping[str, Any]) -> str:
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
