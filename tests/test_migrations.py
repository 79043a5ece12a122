"""Migrations run from empty to head and back, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect

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

    from hilo.db.models import Base

    upgrade(empty_database)
    engine = create_engine(normalize_url(empty_database))
    # when
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    engine.dispose()
    # then: nothing the models declare is missing from the migrations (FTS tables aside)
    relevant = [d for d in diff if not (d[0] == "remove_table" and "fts" in d[1].name) and d[0] != "remove_index"]
    assert relevant == []
