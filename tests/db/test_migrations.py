"""Migrations run from empty to head and back, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


def test_stored_secrets_are_encrypted_and_decrypted_again_on_downgrade(
    empty_database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # given: a channel's secrets and a rule's webhook step stored in plain text
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    monkeypatch.setenv("HILO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HILO_SECRET_KEY", "migration-secret-key")
    monkeypatch.setenv("HILO_SECRET_KEYS", key)
    upgrade(empty_database, "0016_agent_open_counts")
    engine = create_engine(normalize_url(empty_database))
    now = "2026-03-02 09:00:00+00:00"
    secrets = {"secret": "plain-channel-secret"}
    actions = [{"type": "webhook", "url": "https://crm.example.com/hook", "secret": "plain-rule-secret"}]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO channel_accounts (id, kind, name, enabled, config, secrets, created_at, updated_at)"
                " VALUES (1, 'api', 'Shop', true, '{}', :secrets, :at, :at)"
            ),
            {"secrets": json.dumps(secrets), "at": now},
        )
        conn.execute(
            text(
                "INSERT INTO automation_rules (id, name, event, conditions, actions, position, active,"
                " stop_processing, created_at, updated_at)"
                " VALUES (1, 'CRM', 'sla.breached', '{}', :actions, 0, true, false, :at, :at)"
            ),
            {"actions": json.dumps(actions), "at": now},
        )

    def stored() -> list[Any]:
        with engine.connect() as conn:
            rows = [
                conn.execute(text("SELECT CAST(secrets AS TEXT) FROM channel_accounts")).scalar_one(),
                conn.execute(text("SELECT CAST(actions AS TEXT) FROM automation_rules")).scalar_one(),
            ]
        return [json.loads(row) for row in rows]

    # when
    upgrade(empty_database)
    encrypted = stored()
    downgrade(empty_database, "0016_agent_open_counts")
    decrypted = stored()
    engine.dispose()
    # then
    assert [json.loads(Fernet(key).decrypt(token.encode())) for token in encrypted] == [secrets, actions]
    assert decrypted == [secrets, actions]
