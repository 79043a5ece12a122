"""PostgreSQL plans for e-mail identities: ingest's exact look-ups take the unique B-tree,
the search's "part of an address" takes the trigram index."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy.dialects import postgresql

from hilo.contacts.models import Identity
from hilo.conversations.search import identity_clause
from hilo.db.engine import normalize_url
from hilo.db.migrate import upgrade
from hilo.ingest.batch import _LOOKUPS
from tests.conftest import create_scratch_database, drop_scratch_database, scratch_database_name

ADDRESSES = 3000


@pytest.fixture
def engine() -> Iterator[Engine]:
    name = scratch_database_name("hilo_identity_plans")
    url = create_scratch_database(name)
    upgrade(url)
    engine = create_engine(normalize_url(url))
    contacts = text(
        "INSERT INTO contacts (id, name, custom_attributes, created_at, updated_at) "
        "SELECT n, 'Cliente ' || n, '{}', now(), now() "
        "FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n"
    )
    identities = text(
        "INSERT INTO identities (id, contact_id, kind, value, verified, opted_out, created_at) "
        "SELECT n, n, 'email', 'cliente' || n || '@example.com', false, false, now() "
        "FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS n"
    )
    # Half the addresses as autovacuum leaves them (the GIN index's pending list merged),
    # half since (in the pending list, as on a busy desk), statistics of all.
    for first, last, vacuum in ((1, ADDRESSES // 2, True), (ADDRESSES // 2 + 1, ADDRESSES, False)):
        with engine.begin() as conn:
            conn.execute(contacts, {"first": first, "last": last})
            conn.execute(identities, {"first": first, "last": last})
        _maintain(engine, "VACUUM ANALYZE identities" if vacuum else "ANALYZE identities")
    try:
        yield engine
    finally:
        engine.dispose()
        drop_scratch_database(name)


def _maintain(engine: Engine, statement: str) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(statement))


def _plan(engine: Engine, statement: object, params: dict[str, object] | None = None) -> str:
    compiled = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"render_postcompile": True})  # type: ignore[attr-defined]
    with engine.connect() as conn:
        # A table of this size is read whole whatever the query; the question is which index.
        conn.exec_driver_sql("SET enable_seqscan = off")
        rows = conn.exec_driver_sql(f"EXPLAIN {compiled}", {**compiled.params, **(params or {})})
        return "\n".join(row[0] for row in rows)


def test_a_batch_looks_its_senders_addresses_up_in_the_unique_index(engine: Engine) -> None:
    # given: the other identities a batch of 40 senders names, as the ingest writer looks them up
    addresses = [f"cliente{n}@example.com" for n in range(1, 3 * 40, 3)]
    # when
    plan = _plan(engine, _LOOKUPS[True].identity_owners, {"kind": "email", "values": addresses})
    # then
    assert "ix_identities_email_trgm" not in plan, plan
    assert re.search(r"Index Scan on (uq_identities_kind_value|ix_identities_value)", plan), plan


def test_a_search_for_part_of_an_address_takes_the_trigram_index(engine: Engine) -> None:
    # given
    clause = identity_clause("ente12@exa", "ES", "postgresql")
    assert clause is not None
    # A long pending list makes any GIN index dearer than a scan of the table's e-mail
    # identities; autovacuum merges it long before that table is large.
    _maintain(engine, "VACUUM identities")
    # when
    plan = _plan(engine, select(Identity.contact_id).where(clause))
    # then
    assert "ix_identities_email_trgm" in plan, plan
