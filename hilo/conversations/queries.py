"""Conversation lists: the filters, sorts and cursors of the inbox, shared by the REST API, the agent pages and
features that list conversations (routing's queue, automation's dry runs)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, or_, select
from sqlalchemy.orm import Session

from hilo import cursors
from hilo.agents.access import Principal
from hilo.contacts.models import Contact
from hilo.conversations.access import visible_clause
from hilo.conversations.models import Conversation, ConversationSla, Label, conversation_labels
from hilo.conversations.search import find_conversations
from hilo.errors import ActionError
from hilo.i18n import N_

PRIORITY_ORDER = {"urgent": 0, "high": 1, "medium": 2, "low": 3, "none": 4}
SORTS = ("last_activity", "waiting", "priority", "created", "sla_due")


@dataclass(frozen=True)
class Filters:
    """The inbox filters; None (or an empty status list) filters nothing."""

    status: list[str] | None = None
    assignee: str | None = None
    team: str | None = None
    channel: int | None = None
    label: str | None = None
    contact_id: int | None = None


@dataclass(frozen=True)
class Page:
    rows: list[Conversation]
    next_cursor: str | None


def list_query(principal: Principal, filters: Filters) -> Any:
    """The conversations `principal` may see that pass `filters` (see `filter_clauses`)."""
    clauses = filter_clauses(principal, filters)
    return select(Conversation).where(Conversation.merged_into_id.is_(None), visible_clause(principal), *clauses)


def filter_clauses(principal: Principal, filters: Filters) -> list[ColumnElement[bool]]:
    """The list filters as SQL conditions (visibility and merges are the caller's)."""
    status, assignee, team, channel = filters.status, filters.assignee, filters.team, filters.channel
    label, contact_id = filters.label, filters.contact_id
    clauses: list[ColumnElement[bool]] = []
    if status:
        clauses.append(Conversation.status.in_(status))
    if assignee == "me":
        clauses.append(Conversation.assignee_id == principal.id)
    elif assignee == "none":
        clauses.append(Conversation.assignee_id.is_(None))
    elif assignee:
        clauses.append(Conversation.assignee_id == _int(assignee, "assignee"))
    if team == "none":
        clauses.append(Conversation.team_id.is_(None))
    elif team:
        clauses.append(Conversation.team_id == _int(team, "team"))
    if channel is not None:
        clauses.append(Conversation.last_channel_account_id == channel)
    if label:
        clauses.append(
            Conversation.id.in_(
                select(conversation_labels.c.conversation_id)
                .join(Label, Label.id == conversation_labels.c.label_id)
                .where(Label.name == label.strip().lower())
            )
        )
    if contact_id is not None:
        clauses.append(Conversation.contact_id == contact_id)
    return clauses


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise ActionError("filter_invalid", N_('The filter "{name}" is not valid.'), 422, name=name) from exc


def conversation_page(
    session: Session,
    principal: Principal,
    filters: Filters,
    *,
    q: str | None,
    sort: str,
    limit: int,
    cursor: str | None,
    region: str,
) -> Page:
    """One page of the conversations `principal` may see, and the cursor of the next."""
    query = list_query(principal, filters)
    offset = 0
    if sort == "last_activity":
        query = query.order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        if cursor:
            when, ident = cursors.time_and_id(cursor)
            query = query.where(
                or_(
                    Conversation.last_message_at < when,
                    and_(Conversation.last_message_at == when, Conversation.id < ident),
                )
            )
    else:
        if sort == "waiting":
            query = query.order_by(Conversation.waiting_since.is_(None), Conversation.waiting_since, Conversation.id)
        elif sort == "created":
            query = query.order_by(Conversation.created_at.desc(), Conversation.id.desc())
        elif sort == "sla_due":
            # Soonest (or most overdue) SLA target first; conversations without one last.
            query = query.outerjoin(ConversationSla, ConversationSla.conversation_id == Conversation.id).order_by(
                ConversationSla.due_at.asc().nulls_last(), Conversation.id
            )
        else:
            query = query.order_by(
                case(PRIORITY_ORDER, value=Conversation.priority),
                Conversation.last_message_at.desc(),
                Conversation.id.desc(),
            )
        offset = cursors.offset(cursor) if cursor else 0
    if q and q.strip():
        rows = find_conversations(session, query, q.strip(), region, offset=offset, limit=limit + 1)
    else:
        rows = list(session.execute(query.offset(offset or None).limit(limit + 1)).scalars().all())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        next_cursor = (
            cursors.encode(last.last_message_at.isoformat(), last.id)
            if sort == "last_activity"
            else cursors.encode(offset + limit)
        )
    return Page(rows=rows, next_cursor=next_cursor)


def conversation_rows(session: Session, rows: list[Conversation]) -> list[dict[str, Any]]:
    """A page of conversations as plain fields, with two extra queries in all (names, labels)."""
    ids = [c.id for c in rows]
    names = (
        dict(
            session.execute(select(Contact.id, Contact.name).where(Contact.id.in_({c.contact_id for c in rows})))
            .tuples()
            .all()
        )
        if rows
        else {}
    )
    labels: dict[int, list[str]] = {}
    if ids:
        for conversation_id, name in session.execute(
            select(conversation_labels.c.conversation_id, Label.name)
            .join(Label, Label.id == conversation_labels.c.label_id)
            .where(conversation_labels.c.conversation_id.in_(ids))
            .order_by(Label.name)
        ).tuples():
            labels.setdefault(conversation_id, []).append(name)
    columns = [column.key for column in Conversation.__table__.columns]
    return [
        {
            **{key: getattr(c, key) for key in columns},
            "contact_name": names.get(c.contact_id),
            "labels": labels.get(c.id, []),
        }
        for c in rows
    ]
