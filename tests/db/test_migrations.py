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


def _insert(conn: Any, table: str, **values: Any) -> None:
    names = ", ".join(values)
    conn.execute(text(f"INSERT INTO {table} ({names}) VALUES ({', '.join(':' + n for n in values)})"), values)


def test_brazilian_mobile_identities_take_their_ninth_digit_and_duplicates_become_one(empty_database: str) -> None:
    # given: identities stored before phone numbers gained Brazil's ninth mobile digit
    upgrade(empty_database, "0020_account_lifecycle")
    engine = create_engine(normalize_url(empty_database))
    at = "2026-03-02 09:00:00+00:00"
    later = "2026-03-02 10:00:00+00:00"
    contacts = {
        1: [(11, "phone", "+551187650000", False)],  # João on WhatsApp, eight digits
        2: [(21, "phone", "+5511987650000", False)],  # João by SMS, nine digits: the same person
        3: [(31, "phone", "+552187654321", False)],  # WhatsApp only: rewritten
        4: [(41, "phone", "+551133334444", False)],  # a landline: untouched
        5: [(51, "phone", "+551187651111", False), (52, "email", "ana@example.com", True)],
        6: [(61, "phone", "+5511987651111", False), (62, "email", "bia@example.com", True)],
        7: [(71, "phone", "+553187652222", False), (72, "phone", "+5531987652222", False)],
    }
    with engine.begin() as conn:
        _insert(
            conn,
            "channel_accounts",
            id=1,
            kind="whatsapp",
            name="WA",
            enabled=True,
            config="{}",
            secrets="{}",
            created_at=at,
            updated_at=at,
        )
        _insert(
            conn,
            "channel_accounts",
            id=2,
            kind="sms",
            name="SMS",
            enabled=True,
            config="{}",
            secrets="{}",
            created_at=at,
            updated_at=at,
        )
        for contact_id, identities in contacts.items():
            _insert(
                conn,
                "contacts",
                id=contact_id,
                name=f"C{contact_id}",
                custom_attributes="{}",
                created_at=at,
                updated_at=at,
            )
            for identity_id, kind, value, verified in identities:
                _insert(
                    conn,
                    "identities",
                    id=identity_id,
                    contact_id=contact_id,
                    kind=kind,
                    value=value,
                    verified=verified,
                    opted_out=False,
                    created_at=at,
                )
        # João's two open threads, one message each; Ana's WhatsApp thread
        for conversation_id, contact_id, identity_id, account_id, when in (
            (101, 1, 11, 1, later),
            (102, 2, 21, 2, at),
            (103, 3, 31, 1, at),
        ):
            _insert(
                conn,
                "conversations",
                id=conversation_id,
                contact_id=contact_id,
                status="open",
                priority="none",
                message_count=1,
                created_at=when,
                updated_at=when,
                last_message_at=when,
            )
            _insert(
                conn,
                "messages",
                id=conversation_id,
                conversation_id=conversation_id,
                contact_id=contact_id,
                channel_account_id=account_id,
                identity_id=identity_id,
                direction="inbound",
                kind="text",
                body=f"m{conversation_id}",
                data="{}",
                status="received",
                auto_generated=False,
                created_at=when,
            )
        _insert(conn, "channel_opt_outs", identity_id=11, channel_kind="sms", source="keyword", created_at=at)
    # when
    upgrade(empty_database)
    # then
    with engine.connect() as conn:
        identities = {
            row.value: (row.id, row.contact_id)
            for row in conn.execute(text("SELECT id, contact_id, value FROM identities WHERE kind = 'phone'"))
        }
        merged = dict(conn.execute(text("SELECT id, merged_into_id FROM contacts")).all())
        threads = {
            row.id: (row.contact_id, row.status, row.merged_into_id, row.message_count)
            for row in conn.execute(
                text("SELECT id, contact_id, status, merged_into_id, message_count FROM conversations")
            )
        }
        message_rows = conn.execute(text("SELECT id, conversation_id, contact_id, identity_id, data FROM messages"))
        messages = {
            row.id: (row.conversation_id, row.contact_id, row.identity_id, _json(row.data)) for row in message_rows
        }
        opt_outs = conn.execute(text("SELECT identity_id, channel_kind FROM channel_opt_outs")).all()
    engine.dispose()
    assert identities == {
        # João: one identity, on the contact that held the nine-digit number
        "+5511987650000": (21, 2),
        "+5521987654321": (31, 3),
        "+551133334444": (41, 4),
        # different verified e-mails: two people, left for an agent
        "+551187651111": (51, 5),
        "+5511987651111": (61, 6),
        # both forms on one contact: one identity
        "+5531987652222": (72, 7),
    }
    assert merged == {1: 2, 2: None, 3: None, 4: None, 5: None, 6: None, 7: None}
    # João's WhatsApp thread joined his SMS thread; his messages name the one identity,
    # and the WhatsApp one keeps the wa_id replies go to
    assert threads[101] == (2, "resolved", 102, 1)
    assert threads[102] == (2, "open", None, 2)
    assert messages[101] == (102, 2, 21, {"sender_address": "551187650000"})
    assert messages[102] == (102, 2, 21, {})
    assert messages[103] == (103, 3, 31, {"sender_address": "552187654321"})
    assert opt_outs == [(21, "sms")]


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


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
