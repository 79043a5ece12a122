"""Conversation and contact search with each engine's own full-text index.

PostgreSQL: GIN indexes over `to_tsvector('simple', ...)` queried with
`websearch_to_tsquery` (words, "quoted phrases", -exclusions). SQLite: FTS5 tables
kept in sync by triggers. People are found the way agents type them (`identity_clause`):
an e-mail address matches exactly, part of one ("liam.33", "example.net") matches any
address containing it, and a phone number matches exactly in E.164 (with "+" or "00") or,
typed without its country code ("600 000 033"), every phone number ending with its digits.

On PostgreSQL the page of results is found by `find_conversations`, whose cost follows
how common the searched words are, never the size of the tables:

1. the newest conversations of the list are checked one by one (`RECENT_WINDOW` of them,
   stopping at a page): a common word fills a page there;
2. otherwise the matches are collected through the indexes, up to `COLLECT_LIMIT`
   messages and people: a rare word, a phone number or an address ends there, and its
   few conversations are sorted;
3. a word too common to collect and too rare for the first window is looked for in
   growing windows of the list, each checked at once by intersecting the full-text index
   with the window's messages (a bitmap AND), until a page is found or `WALK_LIMIT`
   conversations were checked, after which every match is collected.

The planner cannot choose between these itself: its estimate for a word outside its
statistics is a guess, and the wrong plan costs seconds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Select,
    and_,
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
    union_all,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, selectinload

from hilo.contacts.identity import InvalidIdentity, normalize_email, normalize_phone
from hilo.contacts.models import Contact, Identity
from hilo.conversations.models import Conversation, Message

_PHONE = re.compile(r"^\+?[\d\s().-]{6,20}$")
_TOKEN = re.compile(r'"[^"]*"|\S+')
# Fewer digits than this typed without a country code match too many numbers to be meant as one.
MIN_NATIONAL_DIGITS = 6
# Part of an e-mail address: no spaces, a dot or an "@", at least a trigram.
_EMAIL_PART = re.compile(r"^[^\s\"]*[.@][^\s\"]*$")
# Queries made only of these characters need every run of letters and digits in a matching
# message (see `_required_words`); others ("-exclusions", URLs, other scripts, whose letters
# the text parser may split differently) are checked without it.
_LETTERS = "0-9A-Za-zÀ-ÖØ-öø-ÿ"
_PLAIN = re.compile(rf"^[{_LETTERS}\s\".,+@']+$")
_WORD = re.compile(rf"[{_LETTERS}]+")


def fts5_query(query: str) -> str:
    """Turn user input into an FTS5 query: each word or "phrase" quoted, all required."""
    parts = []
    for token in _TOKEN.findall(query):
        inner = token.strip('"').replace('"', "")
        if inner.strip():
            parts.append(f'"{inner}"')
    return " ".join(parts)


def identity_clause(query: str, region: str, dialect: str) -> ColumnElement[bool] | None:
    """Identities named by `query`: an e-mail address or part of one, a phone number with
    or without its country code; None when it names none."""
    term = query.strip().strip('"').strip()
    clauses: list[ColumnElement[bool]] = []
    if _PHONE.match(term):
        clauses.extend(_phone_clauses(term, region, dialect))
    elif "@" in term:
        with suppress(InvalidIdentity):
            clauses.append(Identity.value == normalize_email(term))
    if not clauses and len(term) >= 3 and _EMAIL_PART.match(term):
        clauses.append(
            and_(
                Identity.kind == literal_column("'email'"),
                # lower(value), not value: the expression of ix_identities_email_trgm (see
                # migration 0024), which equality look-ups on value then never take.
                func.lower(Identity.value).contains(term.lower(), autoescape=True),
            )
        )
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else or_(*clauses)


def _phone_clauses(term: str, region: str, dialect: str) -> list[ColumnElement[bool]]:
    digits = re.sub(r"\D", "", term)
    exact: set[str] = set()
    international = term.startswith("+") or digits.startswith("00")
    for candidate in (term, "+" + digits[2:] if digits.startswith("00") else None):
        if candidate is not None:
            with suppress(InvalidIdentity):
                exact.add(normalize_phone(candidate, region))
    clauses: list[ColumnElement[bool]] = [Identity.value.in_(sorted(exact))] if exact else []
    # A national number ("600 000 033", "07700 900123") is the end of its E.164 form once
    # the trunk prefix (leading zeros) is dropped, whatever the country.
    national = digits.lstrip("0")
    if not international and len(national) >= MIN_NATIONAL_DIGITS:
        phone = Identity.kind == literal_column("'phone'")
        if dialect == "postgresql":
            # Served by ix_identities_phone_suffix, a B-tree over the reversed numbers.
            clauses.append(and_(phone, func.reverse(Identity.value).like(national[::-1] + "%")))
        else:
            clauses.append(and_(phone, Identity.value.like("%" + national)))
    return clauses


# How many of the list's newest conversations a PostgreSQL search checks one by one first;
# fewer when no words can be required of a message before its text is parsed.
RECENT_WINDOW = 1000
RECENT_WINDOW_UNFILTERED = 200
# How many matching messages (and people) are collected before a search calls its words common.
COLLECT_LIMIT = 5000
# Up to how many collected conversations and contacts are sorted and paged in one statement.
FEW = 500
# The first window after the recent one, how much each next one grows, and how many
# conversations the windows check before every match is collected instead.
FIRST_WALK_WINDOW = 4000
WALK_GROWTH = 4
WALK_LIMIT = 100_000
# Up to how many messages a word may be in for the windows to start with the newest
# conversations: reading its index entries then costs less than parsing their messages.
WINDOWS_FROM_THE_START = 50_000


def _tsquery(query: str) -> ColumnElement[Any]:
    return func.websearch_to_tsquery(literal_column("'simple'::regconfig"), query)


def _body_matches(query: str) -> ColumnElement[bool]:
    """Message text matching `query`, in the form the GIN index ix_messages_body_fts serves.

    The empty string is a literal, not a parameter: a prepared statement's generic plan
    must still see the index's own expression."""
    vector = func.to_tsvector(literal_column("'simple'::regconfig"), func.coalesce(Message.body, literal_column("''")))
    return vector.op("@@")(_tsquery(query))


def _name_matches(query: str) -> ColumnElement[bool]:
    """Contact names matching `query`, in the form the GIN index ix_contacts_name_fts serves."""
    vector = func.to_tsvector(literal_column("'simple'::regconfig"), func.coalesce(Contact.name, literal_column("''")))
    return vector.op("@@")(_tsquery(query))


def _required_words(query: str) -> list[str]:
    """Words every message matching `query` contains once both are lower-cased by PostgreSQL,
    or none if that cannot be told.

    A message matches a query of plain words and phrases only if it holds each of their
    lexemes, and a lexeme is a lower-cased piece of the text: so each run of letters and
    digits of such a query is in the message's lower-cased text. Checking that first spares
    parsing most messages into a tsvector, which costs ten times more."""
    if not _PLAIN.match(query) or any(token.lower() == "or" for token in query.split()):
        return []
    return _WORD.findall(query)


def _people(query: str, region: str) -> Select[Any] | CompoundSelect:
    """Contacts whose name matches `query`, or who own the e-mail address or phone it names."""
    named = select(Contact.id).where(_name_matches(query))
    identity = identity_clause(query, region, "postgresql")
    return named if identity is None else union(named, select(Identity.contact_id).where(identity))


@dataclass(frozen=True)
class _Search:
    """One PostgreSQL search: what a message, a contact or an identity must be to match."""

    query: str
    region: str

    @property
    def identity(self) -> ColumnElement[bool] | None:
        return identity_clause(self.query, self.region, "postgresql")

    @property
    def names_someone(self) -> bool:
        """Whether the query is a phone number or a whole e-mail address."""
        term = self.query.strip().strip('"').strip()
        if _PHONE.match(term):
            return True
        if "@" not in term:
            return False
        try:
            normalize_email(term)
        except InvalidIdentity:
            return False
        return True

    def mentioned(self, conversation_id: Any) -> ColumnElement[bool]:
        """Whether a message of the conversation matches, checked message by message."""
        # One required word is enough to pass over most messages: the longest, likely the rarest.
        required = sorted(_required_words(self.query), key=len)[-1:]
        words = [func.strpos(func.lower(Message.body), func.lower(word)) > 0 for word in required]
        # OFFSET 0 keeps the check per conversation: without it PostgreSQL may first collect
        # every matching message in the table to test the window against.
        own = Message.conversation_id == conversation_id
        return exists(select(literal(1)).where(own, *words, _body_matches(self.query)).offset(0))

    def person(self, contact_id: Any) -> ColumnElement[bool]:
        """Whether the contact's name matches or the contact owns a named identity, contact by contact."""
        named = exists(select(literal(1)).where(Contact.id == contact_id, _name_matches(self.query)).offset(0))
        identity = self.identity
        if identity is None:
            return named
        owns = exists(select(literal(1)).where(Identity.contact_id == contact_id, identity).offset(0))
        return or_(named, owns)


def find_conversations(
    session: Session, query: Select[Any], text_query: str, region: str, *, offset: int, limit: int
) -> list[Any]:
    """Run the inbox `query` (filters and order, no offset or limit) for conversations matching
    `text_query`; return the page at `offset` of at most `limit` conversations."""
    dialect = session.get_bind().dialect.name
    if dialect != "postgresql":
        found = query.where(search_clause(dialect, text_query, region))
        return list(session.execute(found.offset(offset or None).limit(limit)).scalars().all())
    search = _Search(text_query, region)
    needed = offset + limit
    # A phone number or an e-mail address names a few people: their conversations are
    # collected at once. Anything else may be common, and is looked for among the newest first.
    if search.names_someone:
        collected, complete = _collect(session, search, COLLECT_LIMIT)
        if complete:
            return _sorted_page(session, query, collected, offset, limit)
    # The statistics tell how many messages the rarest word of the query is in, at most.
    # Few: they are collected first, sparing the check of the newest conversations' messages
    # one by one. Some thousands: the list is checked in windows at once from the start
    # (step 3). Many, or unknown: the newest conversations one by one soon fill a page.
    bounds = _bounds(session, search)
    bound = bounds.get("ix_messages_body_fts")
    mentioning: list[int] | None = None
    if bound is not None and bound <= COLLECT_LIMIT:
        conversation_ids, complete = _collect_messages(session, search, COLLECT_LIMIT)
        mentioning = conversation_ids if complete else None
    # A rare word that is also rare among names, and names no address: its people too are
    # collected at once.
    named = bounds.get("ix_contacts_name_fts")
    if mentioning is not None and search.identity is None and named is not None and named <= COLLECT_LIMIT:
        people, complete = _collect(session, search, COLLECT_LIMIT, messages=False)
        if complete:
            return _sorted_page(session, query, _Collected(mentioning, people.contact_ids), offset, limit)
    hits: list[int] = []
    walked = 0
    size = RECENT_WINDOW
    if bound is None or not COLLECT_LIMIT < bound <= WINDOWS_FROM_THE_START:
        # 1. The newest conversations, one by one.
        walked = RECENT_WINDOW if mentioning is not None or _required_words(text_query) else RECENT_WINDOW_UNFILTERED
        window = query.with_only_columns(Conversation.id, Conversation.contact_id).limit(walked).subquery()
        mentioned = (
            search.mentioned(window.c.id)
            if mentioning is None
            else window.c.id == any_(_ids("mentioning_ids", mentioning))
        )
        hits = list(
            session.execute(
                select(window.c.id).where(or_(mentioned, search.person(window.c.contact_id))).limit(needed)
            ).scalars()
        )
        if len(hits) >= needed:
            return _page(session, query, hits, offset, limit)
        # 2. Every match, if there are few.
        if not search.names_someone and (mentioning is not None or bound is None):
            collected, complete = _collect(session, search, COLLECT_LIMIT, messages=mentioning is None)
            if complete:
                if mentioning is not None:
                    collected = _Collected(mentioning, collected.contact_ids)
                return _sorted_page(session, query, collected, offset, limit)
        size = FIRST_WALK_WINDOW
    # 3. Growing windows of the list, each checked at once.
    while walked < WALK_LIMIT:
        rows = session.execute(
            query.with_only_columns(Conversation.id, Conversation.contact_id).offset(walked).limit(size)
        ).all()
        hits.extend(_window_hits(session, search, rows))
        walked += size
        if len(hits) >= needed or len(rows) < size:
            return _page(session, query, hits, offset, limit)
        size *= WALK_GROWTH
    everything, _complete = _collect(session, search, None)
    return _sorted_page(session, query, everything, offset, limit)


def _bounds(session: Session, search: _Search) -> dict[str, float]:
    """How many messages (ix_messages_body_fts) and contacts (ix_contacts_name_fts) at most
    match a query of plain words, by the statistics PostgreSQL keeps of those indexes;
    nothing for other queries, or before the first ANALYZE.

    A matching text holds every lexeme of the query, so its rarest one bounds the count.
    The statistics list the most common lexemes with their frequencies (the planner reads
    the same list). One not listed is rarer than all of them and counts as 0: its texts
    are collected, with the collection's limit as the guard against a long tail."""
    if not _required_words(search.query):
        return {}
    rows = session.execute(
        text(
            "SELECT s.tablename, s.freqs[array_position(s.elems, q.lexeme)], s.total "
            "FROM unnest(to_tsvector('simple'::regconfig, :query)) AS q, "
            "(SELECT tablename, most_common_elems::text::text[] AS elems, most_common_elem_freqs AS freqs, "
            "(SELECT reltuples FROM pg_class WHERE oid = (CASE tablename WHEN 'ix_messages_body_fts' "
            "THEN 'messages' ELSE 'contacts' END)::regclass) AS total "
            "FROM pg_stats WHERE schemaname = current_schema() "
            "AND tablename IN ('ix_messages_body_fts', 'ix_contacts_name_fts')) AS s"
        ),
        {"query": search.query},
    ).all()
    bounds: dict[str, float] = {}
    for index, freq, total in rows:
        count = float(freq * total) if freq is not None else 0.0
        bounds[index] = min(count, bounds.get(index, count))
    return bounds


def _collect_messages(session: Session, search: _Search, cap: int) -> tuple[list[int], bool]:
    """The conversations with a matching message, and whether that is all of them (at most `cap` messages)."""
    rows = session.execute(select(Message.conversation_id).where(_body_matches(search.query)).limit(cap + 1)).all()
    return sorted({row[0] for row in rows}), len(rows) <= cap


def _page(session: Session, query: Select[Any], hits: list[int], offset: int, limit: int) -> list[Any]:
    """The page of `query` among `hits`, every match of the part of the list they were found in."""
    if not hits:
        return []
    found = query.where(Conversation.id.in_(hits)).offset(offset or None).limit(limit)
    return list(session.execute(found).scalars().all())


@dataclass(frozen=True)
class _Collected:
    conversation_ids: list[int]
    contact_ids: list[int]


def _collect(session: Session, search: _Search, cap: int | None, *, messages: bool = True) -> tuple[_Collected, bool]:
    """The conversations with a matching message (unless not `messages`) and the matching
    people, through the indexes, and whether that is all of them (at most `cap` of each kind)."""
    body = select(literal(0).label("kind"), Message.conversation_id.label("id")).where(_body_matches(search.query))
    people = select(literal(1).label("kind"), Contact.id.label("id")).where(_name_matches(search.query))
    parts = [body, people] if messages else [people]
    identity = search.identity
    if identity is not None:
        parts.append(select(literal(2).label("kind"), Identity.contact_id.label("id")).where(identity))
    if cap is not None:
        parts = [part.limit(cap + 1) for part in parts]
    rows = session.execute(union_all(*[part.subquery().select() for part in parts])).all()
    found: dict[int, set[int]] = {0: set(), 1: set(), 2: set()}
    counts = {0: 0, 1: 0, 2: 0}
    for kind, ident in rows:
        found[kind].add(ident)
        counts[kind] += 1
    complete = cap is None or all(count <= cap for count in counts.values())
    return _Collected(sorted(found[0]), sorted(found[1] | found[2])), complete


def _sorted_page(session: Session, query: Select[Any], collected: _Collected, offset: int, limit: int) -> list[Any]:
    """The page of `query` among the conversations collected.

    All of them are sorted first, without a LIMIT: with one, PostgreSQL may walk the list's
    index from the newest conversation hoping to meet the matches soon, and walk all of it
    when they are old."""
    clauses = []
    if collected.conversation_ids:
        clauses.append(Conversation.id == any_(_ids("collected_ids", collected.conversation_ids)))
    if collected.contact_ids:
        clauses.append(Conversation.contact_id == any_(_ids("collected_contact_ids", collected.contact_ids)))
    if not clauses:
        return []
    if len(collected.conversation_ids) + len(collected.contact_ids) <= FEW:
        # So few that PostgreSQL's estimate rules the walk out: one statement.
        found = query.where(or_(*clauses)).offset(offset or None).limit(limit)
        return list(session.execute(found).scalars().all())
    ordered = list(session.execute(query.with_only_columns(Conversation.id).where(or_(*clauses))).scalars())
    return _page(session, query, ordered[offset : offset + limit], 0, limit)


def _ids(name: str, values: list[int]) -> Any:
    return bindparam(name, values, type_=postgresql.ARRAY(BigInteger))


def _window_hits(session: Session, search: _Search, rows: Sequence[Any]) -> list[int]:
    """The conversations of a window (id, contact id rows) that match, in the window's order.

    Given the window's ids as an array, PostgreSQL intersects the full-text index with the
    messages' conversation index (a BitmapAnd) and reads only the messages in both; the
    same for the contacts' names. One statement each: together, PostgreSQL would start
    parallel workers for them, which costs more than the statements on a busy machine."""
    if not rows:
        return []
    ids = _ids("window_ids", [row[0] for row in rows])
    contacts = _ids("window_contact_ids", sorted({row[1] for row in rows}))
    mentioning = set(
        session.execute(
            select(Message.conversation_id).where(Message.conversation_id == any_(ids), _body_matches(search.query))
        ).scalars()
    )
    people = set(
        session.execute(select(Contact.id).where(Contact.id == any_(contacts), _name_matches(search.query))).scalars()
    )
    identity = search.identity
    if identity is not None:
        people.update(
            session.execute(
                select(Identity.contact_id).where(Identity.contact_id == any_(contacts), identity)
            ).scalars()
        )
    return [row[0] for row in rows if row[0] in mentioning or row[1] in people]


def search_clause(dialect: str, query: str, region: str) -> ColumnElement[bool]:
    """A WHERE clause on Conversation matching message text, contact names or identities."""
    if dialect == "postgresql":
        return or_(
            Conversation.id.in_(select(Message.conversation_id).where(_body_matches(query))),
            Conversation.contact_id.in_(_people(query, region)),
        )
    clauses: list[ColumnElement[bool]] = []
    identity = identity_clause(query, region, dialect)
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
    if after is not None:
        query = query.where(Contact.id < after)
    query = query.order_by(Contact.id.desc())
    term = (q or "").strip()
    dialect = session.get_bind().dialect.name
    if term and dialect == "postgresql":
        rows = _contacts_found(session, query, term, region, limit + 1, after)
    else:
        if term:
            query = query.where(_contact_clause(term, region, dialect))
        rows = list(session.execute(query.limit(limit + 1)).scalars().all())
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (str(rows[-1].id) if more else None)


# Contacts collected by a search are read in groups of this many, newest first (merged ones are skipped).
CONTACT_CHUNK = 200


def _prefix(term: str) -> ColumnElement[bool]:
    """Identities whose value starts with what was typed (ix_identities_value_prefix)."""
    return Identity.value.startswith(term.lower(), autoescape=True)


def _contact_clause(term: str, region: str, dialect: str) -> ColumnElement[bool]:
    """Contacts whose name matches `term` or who own an identity it names or starts (SQLite)."""
    clauses: list[ColumnElement[bool]] = []
    identity = identity_clause(term, region, dialect)
    if identity is not None:
        clauses.append(Contact.id.in_(select(Identity.contact_id).where(identity)))
    match = fts5_query(term)
    if match:
        clauses.append(
            Contact.id.in_(text("SELECT rowid FROM contacts_fts WHERE contacts_fts MATCH :m").bindparams(m=match))
        )
    clauses.append(Contact.id.in_(select(Identity.contact_id).where(_prefix(term))))
    return or_(*clauses)


def _contacts_found(
    session: Session, query: Select[Any], term: str, region: str, count: int, after: int | None
) -> list[Contact]:
    """The first `count` contacts of `query` matching `term` on PostgreSQL.

    Like conversations: the matching contacts are collected through the indexes when there
    are few (a phone number, an address, a rare name) and the newest are read; when there
    are many (a common name, a domain), the newest contacts are checked one by one, which
    soon meets enough of them."""
    search = _Search(term, region)
    parts = [select(Contact.id).where(_name_matches(term)), select(Identity.contact_id).where(_prefix(term))]
    identity = search.identity
    if identity is not None:
        parts.append(select(Identity.contact_id).where(identity))
    # A name the statistics list in more contacts than are collected is not collected.
    named = _bounds(session, search).get("ix_contacts_name_fts")
    rows = (
        session.execute(union_all(*[part.limit(COLLECT_LIMIT + 1).subquery().select() for part in parts])).all()
        if named is None or named <= COLLECT_LIMIT
        else None
    )
    if rows is not None and len(rows) <= COLLECT_LIMIT:
        # Sorted here and read a few at a time: given all the ids, PostgreSQL may walk every
        # contact from the newest hoping to meet them soon.
        ids = sorted({row[0] for row in rows if after is None or row[0] < after}, reverse=True)
        found: list[Contact] = []
        for start in range(0, len(ids), CONTACT_CHUNK):
            chunk = ids[start : start + CONTACT_CHUNK]
            found.extend(session.execute(query.where(Contact.id.in_(chunk)).limit(count - len(found))).scalars())
            if len(found) >= count:
                break
        return found
    prefixed = exists(select(literal(1)).where(Identity.contact_id == Contact.id, _prefix(term)).offset(0))
    newest = query.where(or_(search.person(Contact.id), prefixed)).limit(count)
    return list(session.execute(newest).scalars().all())
