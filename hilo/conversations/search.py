"""Conversation and contact search with each engine's own full-text index.

PostgreSQL: GIN indexes over `to_tsvector('simple', ...)` queried with
`websearch_to_tsquery` (words, "quoted phrases", -exclusions). SQLite: FTS5 tables
kept in sync by triggers. E-mail addresses and phone numbers match identities exactly
(or by prefix), so "ana@example.com" finds Ana's conversations even if no message
contains the address.

On PostgreSQL the page of results is found in one of two ways (`find_conversations`):
a word that many conversations contain is cheapest to find by checking the newest
conversations of the list one by one, while a rare one is cheapest through the index.
The planner cannot tell them apart (its estimate for a word outside the statistics is
a guess), so the search first checks a window of the newest conversations and falls
back to the index only when that window holds too few matches.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Select,
    any_,
    bindparam,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    union,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, selectinload

from hilo.contacts.identity import InvalidIdentity, normalize_email, normalize_phone
from hilo.contacts.models import Contact, Identity
from hilo.conversations.models import Conversation, Message

_PHONE = re.compile(r"^\+?[\d\s().-]{6,20}$")
_TOKEN = re.compile(r'"[^"]*"|\S+')


def fts5_query(query: str) -> str:
    """Turn user input into an FTS5 query: each word or "phrase" quoted, all required."""
    parts = []
    for token in _TOKEN.findall(query):
        inner = token.strip('"').replace('"', "")
        if inner.strip():
            parts.append(f'"{inner}"')
    return " ".join(parts)


def _identity_matches(query: str, region: str) -> ColumnElement[bool] | None:
    term = query.strip().strip('"')
    if "@" in term:
        try:
            email = normalize_email(term)
        except InvalidIdentity:
            return Identity.value.startswith(term.lower())
        return Identity.value == email
    if _PHONE.match(term):
        try:
            return Identity.value == normalize_phone(term, region)
        except InvalidIdentity:
            return None
    return None


# How many of the list's newest conversations a PostgreSQL search checks one by one first.
RECENT_WINDOW = 400


def _tsquery(query: str) -> ColumnElement[Any]:
    return func.websearch_to_tsquery(literal_column("'simple'::regconfig"), query)


def _body_matches(query: str) -> ColumnElement[bool]:
    """Message text matching `query`, in the form the GIN index ix_messages_body_fts serves.

    The empty string is a literal, not a parameter: a prepared statement's generic plan
    must still see the index's own expression."""
    vector = func.to_tsvector(literal_column("'simple'::regconfig"), func.coalesce(Message.body, literal_column("''")))
    return vector.op("@@")(_tsquery(query))


def _people(query: str, region: str) -> Select[Any] | CompoundSelect:
    """Contacts whose name matches `query`, or who own the e-mail address or phone it names."""
    vector = func.to_tsvector(literal_column("'simple'::regconfig"), func.coalesce(Contact.name, literal_column("''")))
    named = select(Contact.id).where(vector.op("@@")(_tsquery(query)))
    identity = _identity_matches(query, region)
    return named if identity is None else union(named, select(Identity.contact_id).where(identity))


def find_conversations(
    session: Session, query: Select[Any], text_query: str, region: str, *, offset: int, limit: int
) -> list[Any]:
    """Run the inbox `query` (filters and order, no offset or limit) for conversations matching
    `text_query`; return the page at `offset` of at most `limit` conversations."""
    dialect = session.get_bind().dialect.name
    if dialect != "postgresql":
        found = query.where(search_clause(dialect, text_query, region))
        return list(session.execute(found.offset(offset or None).limit(limit)).scalars().all())
    body = _body_matches(text_query)
    people = _people(text_query, region)
    if not offset:
        window = query.with_only_columns(Conversation.id, Conversation.contact_id).limit(RECENT_WINDOW).subquery()
        # OFFSET 0 keeps the check per conversation: without it PostgreSQL may first collect
        # every matching message in the table to test the window against.
        mentioned = exists(select(literal(1)).where(Message.conversation_id == window.c.id, body).offset(0))
        checked = session.execute(select(window.c.id, or_(mentioned, window.c.contact_id.in_(people)))).all()
        hits = [row[0] for row in checked if row[1]]
        if len(hits) >= limit or len(checked) < RECENT_WINDOW:
            return list(session.execute(query.where(Conversation.id.in_(hits)).limit(limit)).scalars().all())
    # Collected first, so the planner sees how few they are: left inside the query, its
    # guess for a rare word makes it scan every conversation instead of fetching these.
    matching = session.execute(
        union(
            select(Message.conversation_id).where(body),
            select(Conversation.id).where(Conversation.contact_id.in_(people)),
        )
    ).scalars()
    ids = bindparam("matching_ids", list(matching), type_=postgresql.ARRAY(BigInteger))
    found = query.where(Conversation.id == any_(ids))
    return list(session.execute(found.offset(offset or None).limit(limit)).scalars().all())


def search_clause(dialect: str, query: str, region: str) -> ColumnElement[bool]:
    """A WHERE clause on Conversation matching message text, contact names or identities."""
    if dialect == "postgresql":
        return or_(
            Conversation.id.in_(select(Message.conversation_id).where(_body_matches(query))),
            Conversation.contact_id.in_(_people(query, region)),
        )
    clauses: list[ColumnElement[bool]] = []
    identity = _identity_matches(query, region)
    if identity is not None:
        clauses.append(Conversation.contact_id.in_(select(Identity.contact_id).where(identity)))
    match = fts5_query(query)
    if match:
        clauses.append(
            Conversation.id.in_(
                select(Message.conversation_id).where(
                    Message.id.in_(
                        text("SELECT rowid FROM messages_fts WHERE messages_fts MATCH :q").bindparams(q=match)
                    )
                )
            )
        )
        clauses.append(
            Conversation.contact_id.in_(
                text("SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH :qn").bindparams(qn=match)
            )
        )
    return or_(*clauses) if clauses else Conversation.id.is_(None)


def contact_page(
    session: Session,
    q: str | None,
    *,
    region: str,
    limit: int,
    after: int | None,
    where: Sequence[ColumnElement[bool]] = (),
) -> tuple[list[Contact], str | None]:
    """Contacts newest first, older than contact `after` if given; `q` searches names, e-mail addresses and
    phone numbers, `where` narrows the list further (the directory's filters). Returns the page and the
    cursor of the next one."""
    query = select(Contact).options(selectinload(Contact.identities)).where(Contact.merged_into_id.is_(None), *where)
    if q and q.strip():
        term = q.strip()
        identity = _identity_matches(term, region)
        clauses = []
        if identity is not None:
            clauses.append(Contact.id.in_(select(Identity.contact_id).where(identity)))
        if session.get_bind().dialect.name == "postgresql":
            vector = func.to_tsvector(literal_column("'simple'::regconfig"), func.coalesce(Contact.name, ""))
            clauses.append(vector.op("@@")(func.websearch_to_tsquery(literal_column("'simple'::regconfig"), term)))
        else:
            match = fts5_query(term)
            if match:
                clauses.append(
                    Contact.id.in_(
                        text("SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH :m").bindparams(m=match)
                    )
                )
        clauses.append(Contact.id.in_(select(Identity.contact_id).where(Identity.value.startswith(term.lower()))))
        query = query.where(or_(*clauses))
    if after is not None:
        query = query.where(Contact.id < after)
    query = query.order_by(Contact.id.desc()).limit(limit + 1)
    rows = list(session.execute(query).scalars().all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (str(rows[-1].id) if more else None)
