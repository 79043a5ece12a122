"""Provider webhooks answered outside the FastAPI stack keep every answer the app gave before."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from fastapi.testclient import TestClient

from hilo.app import create_app
from hilo.channels import signing
from hilo.channels.base import ChannelAccountView, WebhookRequest, WebhookResult
from hilo.channels.registry import get_adapter
from hilo.clock import FrozenClock
from tests.conftest import make_settings
from tests.fakes.twilio import twilio_signature
from tests.support import Api

TWILIO_TOKEN = "fast-path-auth-token"
VERIFY_TOKEN = "fast-path-verify-token"


def _signed(channel: dict[str, Any], payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = orjson.dumps(payload)
    return body, {"content-type": "application/json", "x-hilo-signature": signing.sign(channel["secret"], body)}


def _sms_channel(api: Api) -> dict[str, Any]:
    settings = {"account_sid": "AC" + "c" * 32, "auth_token": TWILIO_TOKEN, "from_number": "+12028831111"}
    return api.ok(api.post("/api/v1/channels", {"kind": "sms", "name": "SMS", "settings": settings}), 201)


def test_accepted_webhook_answers_compact_json_with_its_length(api: Api, app_client: TestClient) -> None:
    # given
    channel = api.api_channel()
    body, headers = _signed(channel, {"id": "m1", "contact": {"external_id": "x"}, "text": "hi"})
    # when
    first = app_client.post(f"/webhooks/api/{channel['id']}", content=body, headers=headers)
    again = app_client.post(f"/webhooks/api/{channel['id']}", content=body, headers=headers)
    # then
    assert first.status_code == 200
    assert first.content == b'{"ok":true,"messages":1,"duplicates":0,"statuses":0}'
    assert first.headers["content-type"] == "application/json"
    assert first.headers["content-length"] == str(len(first.content))
    assert "set-cookie" not in first.headers
    assert again.json() == {"ok": True, "messages": 0, "duplicates": 1, "statuses": 0}
    assert len(api.conversations()) == 1


def test_errors_speak_the_callers_accept_language(api: Api, app_client: TestClient) -> None:
    # given
    channel = api.api_channel()
    body = orjson.dumps({"id": "m1", "contact": {"external_id": "x"}, "text": "hi"})
    spanish = {"content-type": "application/json", "accept-language": "fr;q=0.9, es-MX;q=0.8"}
    # when
    missing = app_client.post("/webhooks/api/9999", content=body, headers=spanish)
    unsigned = app_client.post(f"/webhooks/api/{channel['id']}", content=body, headers=spanish)
    english = app_client.post(
        f"/webhooks/api/{channel['id']}",
        content=body,
        headers={"content-type": "application/json", "accept-language": "de"},
    )
    # then
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "channel_not_found", "message": "No se encontró el canal."}}
    assert missing.headers["content-type"] == "application/json"
    assert missing.headers["content-length"] == str(len(missing.content))
    assert unsigned.status_code == 401
    assert unsigned.json() == {"error": {"code": "signature_missing", "message": "La petición no está firmada."}}
    assert english.json()["error"]["message"] == "The request is not signed."


def test_refused_webhook_is_logged(api: Api, app_client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    # given
    channel = api.api_channel()
    # when
    with caplog.at_level(logging.WARNING):
        app_client.post(f"/webhooks/api/{channel['id']}", content=b"{}", headers={"content-type": "application/json"})
    # then
    assert f"webhook refused: /webhooks/api/{channel['id']} signature_missing" in caplog.text


def test_unexpected_failure_is_a_plain_500_and_reaches_the_server(
    api: Api, app_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: an adapter with a bug
    channel = api.api_channel()
    body, headers = _signed(channel, {"id": "m1", "contact": {"external_id": "x"}, "text": "hi"})

    def broken(account: ChannelAccountView, request: WebhookRequest) -> WebhookResult:
        raise RuntimeError("adapter bug")

    monkeypatch.setattr(get_adapter("api"), "parse_webhook", broken)
    quiet = TestClient(app_client.app, raise_server_exceptions=False)
    # when
    answer = quiet.post(f"/webhooks/api/{channel['id']}", content=body, headers=headers)
    # then: the same answer as Starlette's ServerErrorMiddleware, and the server sees the error
    assert answer.status_code == 500
    assert answer.text == "Internal Server Error"
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    with pytest.raises(RuntimeError, match="adapter bug"):
        app_client.post(f"/webhooks/api/{channel['id']}", content=body, headers=headers)
    assert api.conversations() == []


def test_get_webhook_hands_the_signed_query_string_to_the_adapter(api: Api, app_client: TestClient) -> None:
    # given: Twilio configured to call with GET signs the full URL, parameters included
    channel = _sms_channel(api)
    params = [
        ("MessageSid", "SM" + "1" * 32),
        ("AccountSid", "AC" + "c" * 32),
        ("From", "+14133881111"),
        ("To", "+12028831111"),
        ("Body", "Hola, ¿qué tal?"),
        ("NumMedia", "0"),
    ]
    path = f"/webhooks/sms/{channel['id']}?{urlencode(params)}"
    signature = twilio_signature(TWILIO_TOKEN, f"http://testserver{path}", [])
    # when
    answer = app_client.get(path, headers={"x-twilio-signature": signature})
    # then
    assert answer.status_code == 200, answer.text
    assert answer.content == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert answer.headers["content-type"] == "text/xml; charset=utf-8"
    [conversation] = api.conversations()
    assert [m["body"] for m in api.timeline(conversation["id"])] == ["Hola, ¿qué tal?"]


def test_meta_handshake_echoes_the_last_challenge_of_the_query(api: Api, app_client: TestClient) -> None:
    # given
    settings = {"phone_number_id": "106540352242922", "access_token": "t", "app_secret": "s"}
    channel = api.ok(
        api.post(
            "/api/v1/channels",
            {"kind": "whatsapp", "name": "WA", "settings": {**settings, "verify_token": VERIFY_TOKEN}},
        ),
        201,
    )
    query = "hub.mode=subscribe&hub.challenge=first&hub.challenge=a%20b&hub.verify_token=" + VERIFY_TOKEN
    # when
    answer = app_client.get(f"/webhooks/whatsapp/{channel['id']}?{query}")
    # then
    assert answer.status_code == 200
    assert answer.text == "a b"
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"


def test_body_streamed_past_the_limit_without_a_length_is_refused(api: Api, app_client: TestClient) -> None:
    # given: a chunked body, so no Content-Length to refuse it up front
    channel = api.api_channel()

    def chunks() -> Any:
        for _ in range(80):
            yield b"x" * 1024

    # when
    answer = app_client.post(
        f"/webhooks/api/{channel['id']}", content=chunks(), headers={"content-type": "application/json"}
    )
    # then
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "body_too_large"


def test_refusal_limit_counts_per_client_address(api: Api, app_client: TestClient) -> None:
    # given: the tests allow 20 refused webhook requests a minute per client
    channel = api.api_channel()
    url = f"/webhooks/api/{channel['id']}"
    unsigned = {"content-type": "application/json"}
    other = TestClient(app_client.app, client=("203.0.113.7", 40000))
    # when
    flood = [app_client.post(url, content=b"{}", headers=unsigned).status_code for _ in range(22)]
    elsewhere = other.post(url, content=b"{}", headers=unsigned)
    # then
    assert flood[-1] == 429
    assert elsewhere.status_code == 401
    assert elsewhere.json()["error"]["code"] == "signature_missing"


def test_per_account_rate_limit(database_url: str, tmp_path: Path, clock: FrozenClock) -> None:
    # given
    app = create_app(make_settings(database_url, tmp_path / "data", webhook_rate_limit=2), clock=clock)
    with TestClient(app) as client:
        api = Api.bootstrap(client)
        channel = api.api_channel()
        # when
        answers = [
            api.webhook(channel, {"id": f"m{i}", "contact": {"external_id": "x"}, "text": "hi"}) for i in range(3)
        ]
    # then
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].json()["error"]["code"] == "rate_limited"


def test_other_webhook_shapes_get_the_apps_own_answers(api: Api, app_client: TestClient) -> None:
    # given
    channel = api.api_channel()
    # when
    not_a_number = app_client.post("/webhooks/api/abc", content=b"{}")
    too_short = app_client.post("/webhooks/api", content=b"{}")
    wrong_method = app_client.put(f"/webhooks/api/{channel['id']}", content=b"{}")
    # then
    assert not_a_number.status_code == 422
    assert not_a_number.json()["error"]["code"] == "payload_invalid"
    assert not_a_number.json()["error"]["details"][0]["field"] == "path.account_id"
    assert too_short.status_code == 404 and too_short.json()["error"]["code"] == "not_found"
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"


def test_the_rest_of_the_app_keeps_its_middleware(api: Api, app_client: TestClient) -> None:
    # when
    health = app_client.get("/healthz")
    login = app_client.post(
        "/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"}
    )
    me = app_client.get("/api/v1/auth/me")
    schema = app_client.get("/api/openapi.json")
    # then: the session middleware still sets and reads its cookie
    assert health.json() == {"status": "ok"}
    assert login.status_code == 200 and "hilo_session=" in login.headers["set-cookie"]
    assert me.status_code == 200 and me.json()["email"] == "admin@example.com"
    assert set(schema.json()["paths"]["/webhooks/{kind}/{account_id}"]) == {"get", "post"}
