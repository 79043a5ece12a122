"""`hilo.db.bulk`: many-row INSERTs as the ingest batch runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DataError, IntegrityError

from hilo.db import bulk
from hilo.events.models import Event
from hilo.runtime import EVENTS, Runtime
from hilo.settings import Settings

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


@pytest.fixture
def runtime(settings: Settings) -> Runtime:
    return Runtime(settings)


def row(kind: str, **values: object) -> dict[str, object]:
    return {
        "kind": kind,
        "conversation_id": None,
        "contact_id": None,
        "message_id": None,
        "actor_agent_id": None,
        "data": {},
        "created_at": AT,
        **values,
    }


def test_rows_go_in_with_their_nulls_json_and_times(runtime: Runtime) -> None:
    # given: rows with empty and nested JSON, text with quotes and braces, and NULLs
    rows = [
        row("one", data={"text": 'say "hi" {to} \\ me', "n": [1, 2, {"ñ": None}]}),
        row("two", data={}),
        row("three", data={"k": "v"}, created_at=datetime(2026, 3, 2, tzinfo=UTC)),
    ]
    # when
    with runtime.db.sessions() as session, session.begin():
        bulk.insert_rows(session.connection(), EVENTS, rows)
    # then
    with runtime.db.read() as session:
        stored = session.execute(select(Event).order_by(Event.id)).scalars().all()
        assert [(e.kind, e.data, e.created_at, e.conversation_id) for e in stored] == [
            ("one", {"text": 'say "hi" {to} \\ me', "n": [1, 2, {"ñ": None}]}, AT, None),
            ("two", {}, AT, None),
            ("three", {"k": "v"}, datetime(2026, 3, 2, tzinfo=UTC), None),
        ]
    runtime.close()


def test_a_value_too_long_for_its_column_is_refused_not_cut(runtime: Runtime) -> None:
    # given: a kind longer than the column allows (a plain INSERT refuses it on PostgreSQL)
    if runtime.db.dialect != "postgresql":
        pytest.skip("SQLite does not enforce VARCHAR lengths")
    too_long = "k" * (EVENTS.c.kind.type.length + 1)  # type: ignore[attr-defined]
    # when / then
    with pytest.raises((DataError, IntegrityError)), runtime.db.sessions() as session, session.begin():
        bulk.insert_rows(session.connection(), EVENTS, [row("fine"), row(too_long)])
    with runtime.db.read() as session:
        assert session.execute(select(Event.kind)).scalars().all() == []
    runtime.close()


def test_ids_drawn_for_several_tables_at_once_are_new_and_ascending(runtime: Runtime) -> None:
    if runtime.db.dialect != "postgresql":
        pytest.skip("ids are drawn from sequences on PostgreSQL only")
    from hilo.contacts.models import Contact
    from hilo.conversations.models import Conversation

    contacts, conversations = Contact.__table__, Conversation.__table__
    with runtime.db.sessions() as session, session.begin():
        first = bulk.next_ids(session.connection(), {contacts: 3, conversations: 2})  # type: ignore[dict-item]
        again = bulk.next_ids(session.connection(), {contacts: 2})  # type: ignore[dict-item]
    assert [len(first[contacts]), len(first[conversations])] == [3, 2]  # type: ignore[index]
    assert first[contacts] == sorted(first[contacts])  # type: ignore[index]
    assert min(again[contacts]) > max(first[contacts])  # type: ignore[index]
    runtime.close()


def test_a_conflict_inside_a_pipeline_is_the_integrity_error_a_plain_insert_raises(runtime: Runtime) -> None:
    # given: two inserts sent together, the second repeating the first's id
    # when / then
    with pytest.raises(IntegrityError), runtime.db.sessions() as session, session.begin():
        conn = session.connection()
        with bulk.pipeline(conn):
            bulk.insert_rows(conn, EVENTS, [row("first", id=7)])
            bulk.insert_rows(conn, EVENTS, [row("again", id=7)])
    # and nothing of the transaction is kept
    with runtime.db.read() as session:
        assert session.execute(select(Event.kind)).scalars().all() == []
    runtime.close()
