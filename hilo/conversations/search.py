"""Conversation search with each engine's own full-text index.

PostgreSQL: GIN indexes over `to_tsvector('simple', ...)` queried with
`websearch_to_tsquery` (words, "quoted phrases", -exclusions). SQLite: FTS5 tables
kept in sync by triggers. E-mail addresses and phone numbers match identities exactly
(or by prefix), so "ana@example.com" finds Ana's conversations even if no message
contains the address.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, func, literal_column, or_, select, text

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


def search_clause(dialect: str, query: str, region: str) -> ColumnElement[bool]:
    """A WHERE clause on Conversation matching message text, contact names or identities."""
    clauses: list[ColumnElement[bool]] = []
    identity = _identity_matches(query, region)
    if identity is not None:
        clauses.append(Conversation.contact_id.in_(select(Identity.contact_id).where(identity)))
    if dialect == "postgresql":
        tsquery = func.websearch_to_tsquery(literal_column("'simple'::regconfig"), query)
        body_vector = func.to_tsvector(literal_column("'simple'::regconfig"), func.coalesce(Message.body, ""))
        name_vector = func.to_tsvector(literal_column("'simple'::regconfig"), func.coalesce(Contact.name, ""))
        clauses.append(Conversation.id.in_(select(Message.conversation_id).where(body_vector.op("@@")(tsquery))))
        clauses.append(Conversation.contact_id.in_(select(Contact.id).where(name_vector.op("@@")(tsquery))))
    else:
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
