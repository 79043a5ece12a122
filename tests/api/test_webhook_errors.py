"""Bad webhooks get a precise 4xx with a stable code, and nothing is stored."""

from __future__ import annotations

import time

import orjson
import pytest
from fastapi.testclient import TestClient

from hilo.channels import signing
from tests.support import Api


def _stored(api: Api) -> int:
    return len(api.conversations())


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("malformed_json", 400, "payload_malformed"),
        ("wrong_content_type", 415, "content_type_unsupported"),
        ("missing_signature", 401, "signature_missing"),
        ("wrong_signature", 401, "signature_invalid"),
        ("malformed_signature", 401, "signature_malformed"),
        ("stale_timestamp", 401, "timestamp_stale"),
        ("schema_violation", 422, "payload_invalid"),
        ("oversized", 413, "body_too_large"),
    ],
)
def test_bad_webhook_is_refused_and_nothing_stored(
    api: Api, app_client: TestClient, name: str, status: int, code: str
) -> None:
    # given
    channel = api.api_channel()
    good = orjson.dumps({"id": "m1", "contact": {"external_id": "x"}, "text": "hi"})
    url = f"/webhooks/api/{channel['id']}"
    secret = channel["secret"]
    body, headers = good, {"content-type": "application/json", "x-hilo-signature": signing.sign(secret, good)}
    if name == "malformed_json":
        body = b'{"id": "m1", "contact": '
        headers["x-hilo-signature"] = signing.sign(secret, body)
    elif name == "wrong_content_type":
        headers["content-type"] = "text/plain"
    elif name == "missing_signature":
        del headers["x-hilo-signature"]
    elif name == "wrong_signature":
        headers["x-hilo-signature"] = signing.sign("another-secret", good)
    elif name == "malformed_signature":
        headers["x-hilo-signature"] = "sha256=abc"
    elif name == "stale_timestamp":
        headers["x-hilo-signature"] = signing.sign(secret, good, int(time.time()) - 3600)
    elif name == "schema_violation":
        body = orjson.dumps({"id": "m1", "contact": {}, "text": "hi"})
        headers["x-hilo-signature"] = signing.sign(secret, body)
    elif name == "oversized":
        body = orjson.dumps({"id": "m1", "contact": {"external_id": "x"}, "text": "x" * 70_000})
        headers["x-hilo-signature"] = signing.sign(secret, body)
    # when
    response = app_client.post(url, content=body, headers=headers)
    # then
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert _stored(api) == 0


def test_unknown_channel_account_and_kind(api: Api, app_client: TestClient) -> None:
    # given
    channel = api.api_channel()
    body = orjson.dumps({"id": "m1", "contact": {"external_id": "x"}, "text": "hi"})
    headers = {"content-type": "application/json", "x-hilo-signature": signing.sign(channel["secret"], body)}
    # when
    missing = app_client.post("/webhooks/api/9999", content=body, headers=headers)
    wrong_kind = app_client.post(f"/webhooks/telegram/{channel['id']}", content=body, headers=headers)
    no_such_kind = app_client.post(f"/webhooks/carrier-pigeon/{channel['id']}", content=body, headers=headers)
    # then
    assert [r.status_code for r in (missing, wrong_kind, no_such_kind)] == [404, 404, 404]
    assert {r.json()["error"]["code"] for r in (missing, wrong_kind, no_such_kind)} == {"channel_not_found"}
    assert _stored(api) == 0


def test_disabled_channel_refuses_so_the_provider_retries_then_accepts_when_enabled(api: Api) -> None:
    # given
    channel = api.api_channel()
    api.ok(api.patch(f"/api/v1/channels/{channel['id']}", {"enabled": False}))
    payload = {"id": "m1", "contact": {"external_id": "x"}, "text": "hi"}
    # when
    refused = api.webhook(channel, payload)
    api.ok(api.patch(f"/api/v1/channels/{channel['id']}", {"enabled": True}))
    accepted = api.webhook(channel, payload)
    # then
    assert refused.status_code == 503 and refused.json()["error"]["code"] == "channel_disabled"
    assert accepted.status_code == 200 and accepted.json()["messages"] == 1


def test_batch_with_one_bad_event_stores_nothing(api: Api) -> None:
    # given
    channel = api.api_channel()
    payload = {
        "events": [
            {"id": "ok", "contact": {"external_id": "x"}, "text": "fine"},
            {"id": "bad", "contact": {"external_id": ""}, "text": "broken"},
        ]
    }
    # when
    response = api.webhook(channel, payload)
    # then
    assert response.status_code == 422 and response.json()["error"]["code"] == "payload_invalid"
    assert _stored(api) == 0


def test_bad_api_payloads_get_field_errors(api: Api) -> None:
    # when
    response = api.post("/api/v1/channels", {"kind": "api"})
    unknown_kind = api.post("/api/v1/channels", {"kind": "fax", "name": "x"})
    unknown_setting = api.post("/api/v1/channels", {"kind": "api", "name": "x", "settings": {"colour": "red"}})
    # then
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "payload_invalid"
    assert response.json()["error"]["details"][0]["field"] == "name"
    assert unknown_kind.json()["error"]["code"] == "channel_kind_unknown"
    assert unknown_setting.json()["error"]["code"] == "setting_unknown"


def test_flood_of_refused_requests_from_one_client_is_rate_limited(api: Api, app_client: TestClient) -> None:
    # given: the tests allow 20 refused webhook requests a minute per client
    channel = api.api_channel()
    body = orjson.dumps({"id": "x", "contact": {"external_id": "x"}, "text": "hi"})
    unsigned = {"content-type": "application/json"}
    # when
    statuses = [
        app_client.post(f"/webhooks/api/{channel['id']}", content=body, headers=unsigned).status_code for _ in range(22)
    ]
    # then
    assert statuses[:20] == [401] * 20
    assert statuses[20:] == [429, 429]
    assert _stored(api) == 0


# Both ways in: the plain ASGI fast path, and the FastAPI route that answers ids written
# otherwise ("+7" is 7 to the route, and not plain digits to the fast path).
PATHS = {"fast path": "/webhooks/api/{id}", "app route": "/webhooks/api/+{id}"}


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("non_ascii_digest", 401, "signature_invalid"),
        ("huge_timestamp", 401, "signature_malformed"),
        ("deeply_nested_json", 400, "payload_too_deep"),
        ("nested_past_the_json_parser", 400, "payload_malformed"),
    ],
)
def test_hostile_webhook_gets_a_precise_refusal(
    api: Api, app_client: TestClient, path: str, name: str, status: int, code: str
) -> None:
    # given
    channel = api.api_channel()
    good = orjson.dumps({"id": "m1", "contact": {"external_id": "x"}, "text": "hi"})
    body, signature = good, signing.sign(channel["secret"], good).encode()
    if name == "non_ascii_digest":
        signature = signature[:-2] + "é".encode()
    elif name == "huge_timestamp":
        signature = b"t=" + b"9" * 400 + b"," + signature.split(b",")[1]
    elif name == "deeply_nested_json":
        body = b'{"id": "m1", "contact": {"external_id": "x"}, "data": ' + b"[" * 900 + b"]" * 900 + b"}"
        signature = signing.sign(channel["secret"], body).encode()
    elif name == "nested_past_the_json_parser":
        body = b"[" * 5000 + b"]" * 5000
        signature = signing.sign(channel["secret"], body).encode()
    headers = {"content-type": "application/json", "x-hilo-signature": signature}
    # when
    response = app_client.post(PATHS[path].format(id=channel["id"]), content=body, headers=headers)
    # then
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert _stored(api) == 0


def test_hostile_refusals_count_against_the_client(api: Api, app_client: TestClient) -> None:
    # given: the tests allow 20 refused webhook requests a minute per client
    channel = api.api_channel()
    body = orjson.dumps({"id": "x", "contact": {"external_id": "x"}, "text": "hi"})
    non_ascii = {"content-type": "application/json", "x-hilo-signature": "t=1,v1=é".encode()}
    # when
    statuses = [
        app_client.post(f"/webhooks/api/{channel['id']}", content=body, headers=non_ascii).status_code
        for _ in range(22)
    ]
    # then
    assert statuses[:20] == [401] * 20
    assert statuses[20:] == [429, 429]


@pytest.mark.parametrize("path", sorted(PATHS))
def test_signed_webhook_is_served_from_a_client_over_its_refusal_budget(
    api: Api, app_client: TestClient, path: str
) -> None:
    # given: one address (a proxy in front of every provider) already refused past its budget
    channel = api.api_channel()
    url = PATHS[path].format(id=channel["id"])
    junk = orjson.dumps({"id": "junk", "contact": {"external_id": "x"}, "text": "junk"})
    flood = [
        app_client.post(url, content=junk, headers={"content-type": "application/json"}).status_code for _ in range(30)
    ]
    # when
    signed = api.webhook(channel, {"id": "m1", "contact": {"external_id": "x"}, "text": "hi"})
    unsigned = app_client.post(url, content=junk, headers={"content-type": "application/json"})
    # then
    assert flood[-1] == 429
    assert signed.status_code == 200, signed.text
    assert signed.json()["messages"] == 1
    assert unsigned.status_code == 429
    assert _stored(api) == 1
