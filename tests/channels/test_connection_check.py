"""The connection test (POST /api/v1/channels/{id}/check) against the fake providers.

Each adapter calls its provider with the saved credentials the way a send would; the answer
says what works or what is wrong (bad token, unknown id, unreachable...) in the admin's
language, with a stable code and the setting to fix."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from starlette.responses import HTMLResponse

from tests.channels.email_servers import run_smtp
from tests.channels.provider_support import (
    PAGE_ID,
    WHATSAPP_NUMBER_ID,
    create_channel,
    instagram_channel,
    messenger_channel,
    telegram_channel,
    twilio_channel,
    whatsapp_channel,
)
from tests.fakes.meta import DEFAULT_ACCESS_TOKEN, FakeGraphAPI
from tests.fakes.server import serve_asgi
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
from tests.support import Api

NUMBER = {"id": WHATSAPP_NUMBER_ID, "display_phone_number": "+1 555-078-3881", "verified_name": "Hilo Shop"}


def check(api: Api, channel: dict[str, Any]) -> dict[str, Any]:
    return dict(api.ok(api.post(f"/api/v1/channels/{channel['id']}/check")))


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_whatsapp_connection_test_reads_the_number_with_the_token(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given
    fake_graph.nodes[WHATSAPP_NUMBER_ID] = NUMBER
    channel = whatsapp_channel(api, fake_graph)
    # when
    result = check(api, channel)
    # then: Graph was asked for the number with the saved token, and the admin sees which number it is
    assert (result["ok"], result["code"], result["setting"]) == (True, "connected", None)
    assert result["message"] == "Connected to the WhatsApp number +1 555-078-3881 (Hilo Shop)."
    [request] = fake_graph.requests_to(f"/{WHATSAPP_NUMBER_ID}")
    assert request.method == "GET"
    assert request.headers["authorization"] == f"Bearer {DEFAULT_ACCESS_TOKEN}"
    assert request.query["fields"] == "display_phone_number,verified_name"


def test_whatsapp_connection_test_names_a_rejected_token(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given
    fake_graph.nodes[WHATSAPP_NUMBER_ID] = NUMBER
    channel = whatsapp_channel(api, fake_graph, access_token="an-expired-token")
    # when
    result = check(api, channel)
    # then
    assert (result["ok"], result["code"], result["setting"]) == (False, "token_invalid", "access_token")
    assert "Meta rejected the access token" in result["message"]


def test_whatsapp_connection_test_names_a_wrong_phone_number_id(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given: the admin pasted the phone number instead of its id
    fake_graph.nodes[WHATSAPP_NUMBER_ID] = NUMBER
    channel = whatsapp_channel(api, fake_graph, number_id="15550783881")
    # when
    result = check(api, channel)
    # then
    assert (result["ok"], result["code"], result["setting"]) == (False, "account_not_found", "phone_number_id")
    assert "15550783881" in result["message"]


def test_a_provider_that_cannot_be_reached_is_named_without_the_credentials(api: Api) -> None:
    # given: a bot whose API base URL points where nothing listens
    port = closed_port()
    channel = create_channel(
        api,
        "telegram",
        {"bot_token": "123456:secret-bot-token", "secret_token": "s", "api_base_url": f"http://127.0.0.1:{port}"},
    )
    # when
    result = check(api, channel)
    # then: the address is shown (not the path, which holds the token)
    assert (result["ok"], result["code"], result["setting"]) == (False, "provider_unreachable", "api_base_url")
    assert f"http://127.0.0.1:{port}" in result["message"]
    assert "secret-bot-token" not in result["message"]


def test_a_provider_error_is_reported_with_its_status(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given
    fake_graph.nodes[WHATSAPP_NUMBER_ID] = NUMBER
    channel = whatsapp_channel(api, fake_graph)
    fake_graph.fail_next(503, {"error": {"message": "Service temporarily unavailable", "code": 2}})
    # when
    result = check(api, channel)
    # then
    assert (result["ok"], result["code"]) == (False, "provider_error")
    assert "HTTP 503" in result["message"]


def test_a_server_that_does_not_answer_like_the_provider_is_named(api: Api) -> None:
    # given: the API base URL of a Twilio channel points at some web site
    async def web_page(scope: Any, receive: Any, send: Any) -> None:
        await HTMLResponse("<html><body>Welcome</body></html>")(scope, receive, send)

    with serve_asgi(web_page) as site:
        channel = create_channel(
            api,
            "sms",
            {"account_sid": "AC" + "1" * 32, "auth_token": "t", "from_number": "+14155550100", "api_base_url": site},
        )
        # when
        result = check(api, channel)
    # then
    assert (result["ok"], result["code"], result["setting"]) == (False, "provider_response_invalid", "api_base_url")
    assert site in result["message"]


def test_the_connection_test_answers_in_the_admins_language(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given
    channel = whatsapp_channel(api, fake_graph, access_token="wrong")
    api.ok(api.patch(f"/api/v1/agents/{api.agent_id}", {"locale": "es"}))
    # when
    result = check(api, channel)
    # then
    assert result["code"] == "token_invalid"
    assert result["message"].startswith("Meta rechazó el token de acceso")


def test_messenger_connection_test_compares_the_token_owner_with_the_page(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given: the token belongs to another Page than the one configured
    fake_graph.me[DEFAULT_ACCESS_TOKEN] = {"id": "5550001", "name": "Another Page"}
    channel = messenger_channel(api, fake_graph)
    # when
    mismatch = check(api, channel)
    fake_graph.me[DEFAULT_ACCESS_TOKEN] = {"id": PAGE_ID, "name": "Hilo Shop"}
    matched = check(api, channel)
    # then
    assert (mismatch["ok"], mismatch["code"], mismatch["setting"]) == (False, "account_mismatch", "page_id")
    assert "Another Page (5550001)" in mismatch["message"] and PAGE_ID in mismatch["message"]
    assert (matched["ok"], matched["message"]) == (True, "Connected to Messenger as Hilo Shop.")


def test_instagram_connection_test_knows_the_account_by_its_user_id(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given: Instagram Login's /me names the professional account's user id beside the app-scoped id
    fake_graph.me[DEFAULT_ACCESS_TOKEN] = {"id": "17841400000000", "user_id": PAGE_ID, "username": "hilo.shop"}
    channel = instagram_channel(api, fake_graph)
    # when
    result = check(api, channel)
    # then
    assert (result["ok"], result["message"]) == (True, "Connected to Instagram as hilo.shop.")


def test_telegram_connection_test_asks_who_the_bot_is(api: Api, fake_telegram: tuple[FakeTelegram, str]) -> None:
    # given
    bot, base_url = fake_telegram
    channel = telegram_channel(api, bot, base_url)
    wrong = create_channel(
        api, "telegram", {"bot_token": "999:not-the-token", "secret_token": "s", "api_base_url": base_url}, "Old bot"
    )
    # when
    good = check(api, channel)
    bad = check(api, wrong)
    # then
    assert (good["ok"], good["message"]) == (True, "Connected to the Telegram bot @hilo_test_bot.")
    assert bot.calls[0].method == "getMe"
    assert (bad["ok"], bad["code"], bad["setting"]) == (False, "token_invalid", "bot_token")


@pytest.mark.parametrize("kind", ["sms", "twilio_whatsapp"])
def test_twilio_connection_test_fetches_the_account(api: Api, fake_twilio: tuple[FakeTwilio, str], kind: str) -> None:
    # given
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url, kind)
    wrong = twilio_channel(api, twilio, base_url, kind, auth_token="not-the-token")
    # when
    good = check(api, channel)
    bad = check(api, wrong)
    # then
    assert (good["ok"], good["message"]) == (True, "Connected to the Twilio account Hilo test account.")
    assert twilio.requests[0].path == f"/2010-04-01/Accounts/{twilio.account_sid}.json"
    assert (bad["ok"], bad["code"], bad["setting"]) == (False, "credentials_invalid", "auth_token")


def test_a_suspended_twilio_account_is_reported(api: Api, fake_twilio: tuple[FakeTwilio, str]) -> None:
    # given
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url)
    twilio.status = "suspended"
    # when
    result = check(api, channel)
    # then
    assert (result["ok"], result["code"]) == (False, "account_inactive")
    assert "suspended" in result["message"]


def test_email_connection_test_reports_an_unreachable_mail_server(api: Api) -> None:
    # given
    port = closed_port()
    channel = create_channel(
        api,
        "email",
        {"address": "support@example.com", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none"},
    )
    # when
    result = check(api, channel)
    # then
    assert (result["ok"], result["code"], result["setting"]) == (False, "smtp_unreachable", "smtp_host")
    assert f"127.0.0.1:{port}" in result["message"]


def test_only_channels_with_a_provider_can_be_tested_and_only_by_admins(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given
    chat = create_channel(api, "widget", {})
    whatsapp = whatsapp_channel(api, fake_graph)
    agent = api.as_new_agent("agent@example.com")
    # when
    widget_check = api.post(f"/api/v1/channels/{chat['id']}/check")
    by_agent = agent.post(f"/api/v1/channels/{whatsapp['id']}/check")
    # then
    assert widget_check.status_code == 422
    assert widget_check.json()["error"]["code"] == "connection_check_not_supported"
    assert by_agent.status_code == 403
    assert fake_graph.requests == []


def test_email_connection_test_signs_in_to_the_mail_server_without_sending(api: Api) -> None:
    # given: a mail server on loopback
    with run_smtp() as (port, handler):
        channel = create_channel(
            api,
            "email",
            {"address": "support@example.com", "smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none"},
        )
        # when
        result = check(api, channel)
    # then
    assert (result["ok"], result["message"]) == (True, f"Connected to the mail server 127.0.0.1:{port}.")
    assert handler.messages == []
