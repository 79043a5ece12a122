"""Setting up channels through the API and the admin page: required settings per kind, each
channel's health (last inbound, last send, recent failures) and the public address it is reached at."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hilo.clock import FrozenClock
from tests.channels.provider_support import (
    fixture,
    post_meta,
    post_telegram,
    telegram_channel,
    whatsapp_channel,
)
from tests.fakes.meta import FakeGraphAPI
from tests.fakes.telegram import FakeTelegram
from tests.support import Api
from tests.test_cli import hilo
from tests.web.test_query_counts import counting
from tests.web.test_workspace_api import sign_in

Worker = Callable[[], int]

# What each kind refuses to be saved without, in form order.
REQUIRED = {
    "whatsapp": ["phone_number_id", "access_token", "app_secret", "verify_token"],
    "messenger": ["page_id", "page_access_token", "app_secret", "verify_token"],
    "instagram": ["instagram_account_id", "access_token", "app_secret", "verify_token"],
    "telegram": ["bot_token", "secret_token"],
    "sms": ["account_sid", "auth_token", "from_number"],
    "twilio_whatsapp": ["account_sid", "auth_token", "from_number"],
    "email": ["address"],
    "api": [],
    "widget": [],
    "webform": [],
}


@pytest.mark.parametrize("kind", sorted(REQUIRED))
def test_a_channel_with_only_a_name_is_refused_naming_each_required_setting(api: Api, kind: str) -> None:
    # when
    answer = api.post("/api/v1/channels", {"kind": kind, "name": "Only a name"})
    # then: the kinds with required settings say which, and nothing is stored
    listed = api.ok(api.get("/api/v1/channels"))
    if not REQUIRED[kind]:
        assert answer.status_code == 201, answer.text
        assert [c["kind"] for c in listed] == [kind]
        return
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "settings_required"
    assert error["details"] == [{"field": f"settings.{key}", "code": "required"} for key in REQUIRED[kind]]
    assert listed == []


def test_a_twilio_channel_needs_a_sender_number_or_a_messaging_service(api: Api) -> None:
    # given
    credentials = {"account_sid": "AC" + "2" * 32, "auth_token": "token"}
    # when
    neither = api.post(
        "/api/v1/channels", {"kind": "sms", "name": "SMS", "settings": {**credentials, "from_number": " "}}
    )
    service = api.post(
        "/api/v1/channels", {"kind": "sms", "name": "SMS", "settings": {**credentials, "messaging_service_sid": "MG1"}}
    )
    # then
    assert neither.status_code == 422
    assert neither.json()["error"]["details"] == [{"field": "settings.from_number", "code": "required"}]
    assert service.status_code == 201, service.text


def test_clearing_a_required_setting_is_refused_and_changes_nothing(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given
    channel = whatsapp_channel(api, fake_graph)
    url = f"/api/v1/channels/{channel['id']}"
    # when: the number id is cleared along with another change
    cleared = api.patch(url, {"name": "Renamed", "settings": {"phone_number_id": "", "waba_id": "77"}})
    # then
    assert cleared.status_code == 422
    assert cleared.json()["error"]["details"] == [{"field": "settings.phone_number_id", "code": "required"}]
    after = api.ok(api.get(url))
    assert (after["name"], after["config"]) == (channel["name"], channel["config"])
    assert after["missing_settings"] == []


def test_the_command_line_names_the_missing_settings(tmp_path: Path) -> None:
    # when
    added = hilo(tmp_path, "channels", "add", "telegram", "--name", "Bot", "--set", "bot_token=1:x")
    # then
    assert added.returncode == 2
    assert "settings_required" in added.stderr and "settings.secret_token" in added.stderr


def test_health_shows_the_last_message_in_the_last_send_and_recent_failures(
    api: Api, fake_telegram: tuple[FakeTelegram, str], worker: Worker, clock: FrozenClock
) -> None:
    # given: a bot that received a message and answered it once, then failed to send twice
    bot, base_url = fake_telegram
    channel = telegram_channel(api, bot, base_url)
    health_url = f"/api/v1/channels/{channel['id']}/health"
    before = api.ok(api.get(health_url))
    assert post_telegram(api, channel, fixture("telegram_text.json")).status_code == 200
    received_at = clock.now()
    [conversation] = api.conversations()
    path = f"/api/v1/conversations/{conversation['id']}/messages"
    clock.advance(minutes=1)
    api.ok(api.post(path, {"body": "Welcome!"}), 201)
    assert worker() == 1
    sent_at = clock.now()
    bot.fail_next(2, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"})
    for text in ("Are you there?", "Hello?"):
        clock.advance(minutes=1)
        api.ok(api.post(path, {"body": text}), 201)
        assert worker() == 1
    # when
    health = api.ok(api.get(health_url))
    # then
    assert before == {
        "channel_account_id": channel["id"],
        "last_inbound_at": None,
        "last_sent_at": None,
        "failures_count": 0,
        "failures": [],
    }
    assert datetime.fromisoformat(health["last_inbound_at"]) == received_at
    assert datetime.fromisoformat(health["last_sent_at"]) == sent_at
    assert health["failures_count"] == 2
    newest, oldest = health["failures"]
    assert newest["message_id"] > oldest["message_id"]
    assert newest["conversation_id"] == conversation["id"]
    assert newest["code"] == "text_too_long"
    assert newest["reason"] == "The message is longer than Telegram accepts (4096 characters). Shorten it or split it."


def test_failures_older_than_a_week_are_not_recent(
    api: Api, fake_telegram: tuple[FakeTelegram, str], worker: Worker, clock: FrozenClock
) -> None:
    # given: a failed send eight days ago
    bot, base_url = fake_telegram
    channel = telegram_channel(api, bot, base_url)
    assert post_telegram(api, channel, fixture("telegram_text.json")).status_code == 200
    [conversation] = api.conversations()
    bot.fail_next(1, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"})
    api.ok(api.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Hi"}), 201)
    assert worker() == 1
    clock.advance(days=8)
    # when
    health = api.ok(api.get(f"/api/v1/channels/{channel['id']}/health"))
    # then
    assert (health["failures_count"], health["failures"]) == (0, [])


def test_health_is_for_admins(api: Api, fake_telegram: tuple[FakeTelegram, str]) -> None:
    # given
    bot, base_url = fake_telegram
    channel = telegram_channel(api, bot, base_url)
    agent = api.as_new_agent("agent@example.com")
    # when
    answer = agent.get(f"/api/v1/channels/{channel['id']}/health")
    missing = api.get("/api/v1/channels/999999/health")
    # then
    assert answer.status_code == 403
    assert missing.status_code == 404


def test_the_channels_page_reads_every_channels_health_in_the_same_number_of_queries(
    api: Api, app_client: TestClient, fake_graph: FakeGraphAPI, fake_telegram: tuple[FakeTelegram, str]
) -> None:
    # given: one channel with a message, then four more
    bot, base_url = fake_telegram
    sign_in(app_client)
    whatsapp = whatsapp_channel(api, fake_graph)
    assert post_meta(api, whatsapp, fixture("whatsapp_text.json")).status_code == 200
    app_client.get("/admin/channels")
    with counting(app_client) as one:
        first = app_client.get("/admin/channels")
    for name in ("a", "b", "c", "d"):
        api.ok(api.post("/api/v1/channels", {"kind": "widget", "name": name}), 201)
    telegram_channel(api, bot, base_url)
    with counting(app_client) as many:
        second = app_client.get("/admin/channels")
    # then: the page shows the health of each, without a query per channel
    assert first.status_code == second.status_code == 200
    assert len(many) == len(one)
    assert second.text.count('class="channel-health"') == 6
    assert "Last message received" in second.text


def test_the_channels_page_says_where_providers_reach_hilo(api: Api, app_client: TestClient) -> None:
    # given: the tests' HILO_BASE_URL, a public address
    sign_in(app_client)
    # when
    page = app_client.get("/admin/channels").text
    # then
    assert "Providers reach this Hilo at" in page and "<code>http://testserver</code>" in page
    assert "HILO_BASE_URL is not set" not in page


def test_each_kind_has_its_own_name_in_the_add_form(api: Api, app_client: TestClient) -> None:
    # given
    sign_in(app_client)
    # when
    page = app_client.get("/admin/channels").text
    # then
    for label in ("Web form", "Chat widget", "WhatsApp (Cloud API)", "WhatsApp (Twilio)", "SMS (Twilio)"):
        assert f">{label}</option>" in page
    assert "(webform)" not in page and "(twilio_whatsapp)" not in page


def test_the_setup_guide_of_a_kind_is_its_docs_page(api: Api, app_client: TestClient) -> None:
    # given
    sign_in(app_client)
    # when
    guide = app_client.get("/admin/docs/channels/telegram")
    unknown = app_client.get("/admin/docs/channels/fax", follow_redirects=False)
    # then
    assert guide.status_code == 200
    assert "docs/channels/telegram.md" in guide.text and "setWebhook" in guide.text
    assert unknown.status_code == 303
