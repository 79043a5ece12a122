"""Bad webhooks per provider channel: unsigned, wrongly signed, malformed or oversized
requests get a precise 4xx with a stable code, and nothing is stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import pytest

from tests.channels.provider_support import (
    META_APP_SECRET,
    TELEGRAM_SECRET,
    VERIFY_TOKEN,
    create_channel,
    fixture,
    meta_signature,
    webhook_url,
)
from tests.fakes.twilio import twilio_signature
from tests.support import Api

AUTH_TOKEN = "bad-input-auth-token"
OVERSIZED = b"x" * (70 * 1024)  # the tests' HILO_MAX_BODY_BYTES is 64 KiB


@dataclass(frozen=True)
class Scheme:
    """How one channel kind signs a webhook, and a valid captured body for it."""

    settings: dict[str, Any]
    content_type: str
    valid_body: bytes
    malformed_body: bytes
    # (channel, body, secret) -> the signature header pair, or None for "unsigned"
    sign: Callable[[dict[str, Any], bytes, str], tuple[str, str]]
    secret: str


def _meta(channel: dict[str, Any], body: bytes, secret: str) -> tuple[str, str]:
    return "x-hub-signature-256", meta_signature(body, secret)


def _twilio(channel: dict[str, Any], body: bytes, secret: str) -> tuple[str, str]:
    pairs = parse_qsl(body.decode(errors="replace"), keep_blank_values=True)
    return "x-twilio-signature", twilio_signature(secret, webhook_url(channel), pairs)


def _telegram(channel: dict[str, Any], body: bytes, secret: str) -> tuple[str, str]:
    return "x-telegram-bot-api-secret-token", secret


META_SECRETS = {"app_secret": META_APP_SECRET, "verify_token": VERIFY_TOKEN}
TWILIO = {"account_sid": "AC" + "b" * 32, "auth_token": AUTH_TOKEN, "from_number": "+12028831111"}
SCHEMES: dict[str, Scheme] = {
    "whatsapp": Scheme(
        {"phone_number_id": "106540352242922", "access_token": "t", **META_SECRETS},
        "application/json",
        fixture("whatsapp_text.json"),
        b'{"object": "whatsapp_business_account", "entry": [',
        _meta,
        META_APP_SECRET,
    ),
    "messenger": Scheme(
        {"page_id": "1234567890", "page_access_token": "t", **META_SECRETS},
        "application/json",
        fixture("messenger_text_courier.json"),
        b'{"object": "page", "entry": "not a list"}',
        _meta,
        META_APP_SECRET,
    ),
    "instagram": Scheme(
        {"instagram_account_id": "1234567890", "access_token": "t", **META_SECRETS},
        "application/json",
        fixture("instagram_text_courier.json"),
        b'{"object": "page", "entry": []}',  # a Messenger body sent to the Instagram URL
        _meta,
        META_APP_SECRET,
    ),
    "sms": Scheme(
        TWILIO,
        "application/x-www-form-urlencoded",
        fixture("twilio_sms_inbound_text_courier.form"),
        b"Body=hello&NumMedia=0",  # no MessageSid, no From
        _twilio,
        AUTH_TOKEN,
    ),
    "twilio_whatsapp": Scheme(
        TWILIO,
        "application/x-www-form-urlencoded",
        fixture("twilio_whatsapp_inbound_courier.form"),
        b"Body=%FF%FE&From=",
        _twilio,
        AUTH_TOKEN,
    ),
    "telegram": Scheme(
        {"bot_token": "1:x", "secret_token": TELEGRAM_SECRET},
        "application/json",
        fixture("telegram_text.json"),
        b'{"update_id": 1, "message": {"message_id": 1, "from": {"id": 5}',
        _telegram,
        TELEGRAM_SECRET,
    ),
}


def _post(api: Api, channel: dict[str, Any], body: bytes, content_type: str, header: tuple[str, str] | None) -> Any:
    headers = {"content-type": content_type}
    if header is not None:
        headers[header[0]] = header[1]
    return api.client.post(f"/webhooks/{channel['kind']}/{channel['id']}", content=body, headers=headers)


@pytest.mark.parametrize("kind", sorted(SCHEMES))
def test_bad_webhooks_are_refused_and_store_nothing(api: Api, kind: str) -> None:
    # given
    scheme = SCHEMES[kind]
    channel = create_channel(api, kind, scheme.settings)
    valid = scheme.valid_body
    # when
    answers = {
        "unsigned": _post(api, channel, valid, scheme.content_type, None),
        "wrongly signed": _post(
            api, channel, valid, scheme.content_type, scheme.sign(channel, valid, scheme.secret + "-wrong")
        ),
        "malformed": _post(
            api,
            channel,
            scheme.malformed_body,
            scheme.content_type,
            scheme.sign(channel, scheme.malformed_body, scheme.secret),
        ),
        "oversized": _post(
            api, channel, OVERSIZED, scheme.content_type, scheme.sign(channel, OVERSIZED, scheme.secret)
        ),
    }
    # then
    got = {case: (r.status_code, r.json()["error"]["code"]) for case, r in answers.items()}
    assert got == {
        "unsigned": (401, "signature_missing"),
        "wrongly signed": (401, "signature_invalid"),
        "malformed": (400, "payload_malformed"),
        "oversized": (413, "body_too_large"),
    }
    assert all(r.json()["error"]["message"] for r in answers.values())
    assert api.conversations() == []
    assert api.ok(api.get("/api/v1/contacts"))["items"] == []
    # and: the same channel takes the valid, signed body
    accepted = _post(api, channel, valid, scheme.content_type, scheme.sign(channel, valid, scheme.secret))
    assert accepted.status_code == 200, accepted.text
    assert len(api.conversations()) == 1
