"""Migrations run from empty to head and back, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from hilo.db.engine import normalize_url
from hilo.db.migrate import downgrade, upgrade
from tests.conftest import create_scratch_database, drop_scratch_database, scratch_database_name


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    name = scratch_database_name("hilo_migrations")
    url = create_scratch_database(name)
    request.addfinalizer(lambda: drop_scratch_database(name))
    return url


def _tables(url: str) -> set[str]:
    engine = create_engine(normalize_url(url))
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_up_down_up(empty_database: str) -> None:
    # when
    upgrade(empty_database)
    full = _tables(empty_database)
    downgrade(empty_database, "base")
    emptied = _tables(empty_database)
    upgrade(empty_database)
    # then
    assert {"contacts", "identities", "conversations", "messages", "outbox_jobs", "events"} <= full
    assert emptied <= {"sqlite_sequence"}
    assert _tables(empty_database) == full


def test_models_match_migrations(empty_database: str) -> None:
    # given
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from hilo.models import Base

    upgrade(empty_database)
    engine = create_engine(normalize_url(empty_database))
    # when
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    engine.dispose()
    # then: nothing the models declare is missing from the migrations (FTS tables aside)
    relevant = [d for d in diff if not (d[0] == "remove_table" and "fts" in d[1].name) and d[0] != "remove_index"]
    assert relevant == []


def test_mexican_mobile_identities_take_their_current_form(empty_database: str) -> None:
    # given: WhatsApp identities stored before phone numbers dropped Mexico's old mobile "1",
    # one of them for a person who also wrote by SMS (a second contact holds the new form)
    upgrade(empty_database, "0014_outbox_parts")
    engine = create_engine(normalize_url(empty_database))
    now = "2026-03-02 09:00:00+00:00"
    rows = [(1, "+5215512345678"), (2, "+5218112345678"), (3, "+528112345678"), (4, "+34600111222")]
    with engine.begin() as conn:
        for contact_id, value in rows:
            conn.execute(
                text(
                    "INSERT INTO contacts (id, custom_attributes, created_at, updated_at) VALUES (:id, '{}', :at, :at)"
                ),
                {"id": contact_id, "at": now},
            )
            conn.execute(
                text(
                    "INSERT INTO identities (id, contact_id, kind, value, verified, opted_out, created_at)"
                    " VALUES (:id, :id, 'phone', :value, false, false, :at)"
                ),
                {"id": contact_id, "value": value, "at": now},
            )
    # when
    upgrade(empty_database)
    # then: rewritten where the new form is free, left for an agent to merge where it is not
    with engine.connect() as conn:
        values = dict(conn.execute(text("SELECT contact_id, value FROM identities")).all())
    engine.dispose()
    assert values == {1: "+525512345678", 2: "+5218112345678", 3: "+528112345678", 4: "+34600111222"}
