"""Secrets at rest: encrypted in their tables, usable by the desk, rotated from the command line."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.fernet import Fernet, InvalidToken
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from hilo.app import create_app
from hilo.db.engine import normalize_url
from tests.conftest import make_settings
from tests.support import Api

RULE_SECRET = "rule-signing-secret"
TEST_SECRET_KEY = "test-secret-key"  # make_settings's, from which the default key is derived


class Desk:
    """One desk on one database, opened with a given HILO_SECRET_KEYS, signed in as its admin."""

    def __init__(self, database_url: str, data_dir: Path) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.token: tuple[str, int] | None = None

    @contextmanager
    def open(self, secret_keys: str) -> Iterator[Api]:
        settings = make_settings(self.database_url, self.data_dir, secret_keys=secret_keys)
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            if self.token is None:
                api = Api.bootstrap(client)
                self.token = (api.token, api.agent_id)
                yield api
            else:
                yield Api(client, *self.token)

    def raw_token(self, sql: str) -> bytes:
        """The stored value, read past the models as a copy of the database would be."""
        engine = create_engine(normalize_url(self.database_url))
        try:
            with engine.connect() as conn:
                stored = orjson.loads(conn.execute(text(sql)).scalar_one())
        finally:
            engine.dispose()
        assert isinstance(stored, str), stored
        return stored.encode()

    def hilo(self, secret_keys: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "HILO_DATA_DIR": str(self.data_dir),
            "HILO_DATABASE_URL": self.database_url,
            "HILO_SECRET_KEY": TEST_SECRET_KEY,
            "HILO_SECRET_KEYS": secret_keys,
            "HILO_LOG_LEVEL": "WARNING",
        }
        return subprocess.run(
            [sys.executable, "-m", "hilo.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )


@pytest.fixture
def desk(database_url: str, tmp_path: Path) -> Desk:
    return Desk(database_url, tmp_path / "data")


def add_rule(api: Api) -> dict[str, Any]:
    step = {"type": "webhook", "url": "https://crm.example.com/hook", "secret": RULE_SECRET}
    rule = {"name": "Tell the CRM", "event": "sla.breached", "actions": [step]}
    return api.ok(api.post("/api/v1/automation/rules", rule), 201)


CHANNEL_SECRETS = "SELECT CAST(secrets AS TEXT) FROM channel_accounts"
RULE_ACTIONS = "SELECT CAST(actions AS TEXT) FROM automation_rules"


def test_a_channel_secret_is_unreadable_in_its_table_and_still_verifies_webhooks(
    desk: Desk, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    caplog.set_level(logging.DEBUG)
    key = Fernet.generate_key().decode()
    with desk.open(key) as api:
        channel = api.api_channel()
        add_rule(api)
        # when
        signed = api.webhook(channel, {"id": "m-1", "contact": {"external_id": "c-1"}, "text": "Hola"})
        forged = api.webhook(channel, {"id": "m-2", "contact": {"external_id": "c-1"}, "text": "Hola"}, secret="x" * 20)
        shown = api.get(f"/api/v1/channels/{channel['id']}")
        rules = api.get("/api/v1/automation/rules")
    # then: the tables hold tokens of the configured key, not the secrets
    stored = desk.raw_token(CHANNEL_SECRETS)
    assert channel["secret"].encode() not in stored
    assert orjson.loads(Fernet(key).decrypt(stored)) == {"secret": channel["secret"]}
    assert RULE_SECRET.encode() not in desk.raw_token(RULE_ACTIONS)
    # and the desk reads them: signed webhooks are taken, others refused
    assert signed.status_code == 200, signed.text
    assert forged.status_code == 401
    # and neither the API nor the rules show them
    assert shown.json()["secrets_set"] == ["secret"] and channel["secret"] not in shown.text
    assert rules.json()[0]["actions"][0]["secret_set"] is True and RULE_SECRET not in rules.text
    # nor the logs
    assert caplog.records and not [r for r in caplog.records if channel["secret"] in r.getMessage()]


def test_rotation_re_encrypts_with_the_new_key_and_the_old_one_can_then_go(desk: Desk) -> None:
    # given: secrets stored under an old key
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with desk.open(old) as api:
        channel = api.api_channel()
        add_rule(api)
    # when: the new key is put first, every row is rotated, and the old key is removed
    with desk.open(f"{new},{old}") as api:
        before_rotation = api.webhook(channel, {"id": "m-1", "contact": {"external_id": "c-1"}, "text": "Hola"})
    rotated = desk.hilo(f"{new},{old}", "secrets", "rotate")
    with desk.open(new) as api:
        after_removal = api.webhook(channel, {"id": "m-2", "contact": {"external_id": "c-1"}, "text": "Otra"})
        rules = api.get("/api/v1/automation/rules")
    # then
    assert before_rotation.status_code == 200, before_rotation.text
    assert rotated.returncode == 0, rotated.stderr
    assert "1 channel accounts and 1 rules" in rotated.stdout
    for sql in (CHANNEL_SECRETS, RULE_ACTIONS):
        Fernet(new).decrypt(desk.raw_token(sql))
        with pytest.raises(InvalidToken):
            Fernet(old).decrypt(desk.raw_token(sql))
    assert after_removal.status_code == 200, after_removal.text
    assert rules.status_code == 200 and rules.json()[0]["actions"][0]["secret_set"] is True


def test_a_wrong_key_is_a_clear_error_and_changes_nothing(desk: Desk) -> None:
    # given: secrets stored under one key
    right, wrong = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with desk.open(right) as api:
        channel = api.api_channel()
    stored = desk.raw_token(CHANNEL_SECRETS)
    # when: the desk and the command line are given another key
    with desk.open(wrong) as api:
        listed = api.get("/api/v1/channels")
        webhook = api.webhook(channel, {"id": "m-1", "contact": {"external_id": "c-1"}, "text": "Hola"})
    rotated = desk.hilo(wrong, "secrets", "rotate")
    mistyped = desk.hilo("not-a-key", "secrets", "rotate")
    # then
    for response in (listed, webhook):
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "secrets_unreadable"
        assert "HILO_SECRET_KEYS" in response.json()["error"]["message"]
    assert rotated.returncode == 2 and "secrets_unreadable" in rotated.stderr
    assert mistyped.returncode == 2 and "is not a Fernet key" in mistyped.stderr
    assert "not-a-key" not in mistyped.stderr
    assert desk.raw_token(CHANNEL_SECRETS) == stored
    with desk.open(right) as api:
        assert api.get("/api/v1/channels").status_code == 200


def test_with_no_keys_configured_the_key_derived_from_the_app_secret_is_used(desk: Desk) -> None:
    # given
    with desk.open("") as api:
        channel = api.api_channel()
    # when: keys of the operator's own are added later
    with desk.open(Fernet.generate_key().decode()) as api:
        webhook = api.webhook(channel, {"id": "m-1", "contact": {"external_id": "c-1"}, "text": "Hola"})
    # then: what the derived key encrypted is still read
    assert channel["secret"].encode() not in desk.raw_token(CHANNEL_SECRETS)
    assert webhook.status_code == 200, webhook.text


def test_going_back_before_encryption_with_a_wrong_key_is_a_clear_error(desk: Desk) -> None:
    # given
    with desk.open(Fernet.generate_key().decode()) as api:
        api.api_channel()
    # when
    result = desk.hilo(Fernet.generate_key().decode(), "migrate", "--downgrade", "0016_agent_open_counts")
    # then
    assert result.returncode == 2
    assert "stored secrets cannot be decrypted" in result.stderr and "Traceback" not in result.stderr
