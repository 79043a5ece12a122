"""The contacts directory's reads: a filtered page of contacts and a contact's profile.

The search itself is `hilo.conversations.search.contact_page`; this module adds the directory's
filters (channel, conversation label, custom attribute) and what each row shows about the
contact's conversations, in a constant number of queries per page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload

from hilo.agents.access import Principal
from hilo.contacts.access import access_contact
from hilo.contacts.directory import attribute_clause
from hilo.contacts.models import Contact, Identity
from hilo.conversations.access import visible_clause
from hilo.conversations.models import Conversation, Label, conversation_labels
from hilo.conversations.search import contact_page


@dataclass(frozen=True)
class Reach:
    """Contacts a channel account can reach: an identity of `kind`, with `prefix` for per-account ids."""

    kind: str
    prefix: str | None = None


@dataclass(frozen=True)
class DirectoryFilters:
    q: str | None = None
    reach: Reach | None = None
    label: str | None = None
    attribute_key: str | None = None
    attribute_value: str | None = None


@dataclass(frozen=True)
class Activity:
    """What a directory row says about the contact's conversations the caller may see."""

    conversations: int = 0
    last_message_at: datetime | None = None
    open_conversation_id: int | None = None


@dataclass
class DirectoryPage:
    items: list[Contact]
    activity: dict[int, Activity]
    next_cursor: str | None


@dataclass
class Profile:
    contact: Contact
    conversations: list[Conversation] = field(default_factory=list)


def filter_clauses(dialect: str, filters: DirectoryFilters) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if filters.reach is not None:
        reachable = select(Identity.contact_id).where(Identity.kind == filters.reach.kind)
        if filters.reach.prefix is not None:
            reachable = reachable.where(Identity.value.startswith(filters.reach.prefix, autoescape=True))
        clauses.append(Contact.id.in_(reachable))
    if filters.label:
        labelled = (
            select(Conversation.contact_id)
            .join(conversation_labels, conversation_labels.c.conversation_id == Conversation.id)
            .join(Label, Label.id == conversation_labels.c.label_id)
            .where(Label.name == filters.label)
        )
        clauses.append(Contact.id.in_(labelled))
    if filters.attribute_key:
        clauses.append(attribute_clause(dialect, filters.attribute_key, filters.attribute_value or None))
    return clauses


def activity_of(session: Session, principal: Principal, contact_ids: list[int]) -> dict[int, Activity]:
    """Conversation count, last message and open conversation per contact: one query for the page."""
    if not contact_ids:
        return {}
    rows = session.execute(
        select(
            Conversation.contact_id,
            func.count(Conversation.id),
            func.max(Conversation.last_message_at),
            func.max(Conversation.id).filter(Conversation.status != "resolved"),
        )
        .where(
            Conversation.contact_id.in_(contact_ids),
            Conversation.merged_into_id.is_(None),
            visible_clause(principal),
        )
        .group_by(Conversation.contact_id)
    ).all()
    return {row[0]: Activity(row[1], row[2], row[3]) for row in rows}


def directory_page(
    session: Session,
    principal: Principal,
    filters: DirectoryFilters,
    *,
    region: str,
    limit: int,
    after: int | None,
) -> DirectoryPage:
    """One page of the directory, newest contacts first: the search, the filters and each row's activity."""
    dialect = session.get_bind().dialect.name
    rows, next_cursor = contact_page(
        session, filters.q, region=region, limit=limit, after=after, where=filter_clauses(dialect, filters)
    )
    return DirectoryPage(rows, activity_of(session, principal, [c.id for c in rows]), next_cursor)


def contact_profile(session: Session, principal: Principal, contact_id: int, *, limit: int = 50) -> Profile:
    """A contact with their identities and attributes, and their conversations the caller may see."""
    contact = access_contact(session, principal, contact_id)
    conversations = list(
        session.execute(
            select(Conversation)
            .options(selectinload(Conversation.labels))
            .where(
                Conversation.contact_id == contact.id,
                Conversation.merged_into_id.is_(None),
                visible_clause(principal),
            )
            .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
            .limit(limit)
        ).scalars()
    )
    return Profile(contact, conversations)
