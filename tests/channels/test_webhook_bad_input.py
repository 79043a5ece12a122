"""Bad webhooks per provider channel: unsigned, wrongly signed, malformed or oversized
requests get a precise 4xx with a stable code, and nothing is stored."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from hilo.channels.email import mailgun_signature
from hilo.settings import Settings
from tests.channels.provider_support import (
    META_APP_SECRET,
    TELEGRAM_SECRET,
    VERIFY_TOKEN,
    create_channel,
    fixture,
    meta_signature,
    webhook_url,
)
from tests.conftest import make_settings
from tests.fakes.twilio import twilio_signature
from tests.support import Api

AUTH_TOKEN = "bad-input-auth-token"
MAILGUN_KEY = "bad-input-mailgun-key"
BODY_LIMIT = 64 * 1024  # the tests' HILO_MAX_BODY_BYTES
EMAIL_BODY_LIMIT = 256 * 1024  # HILO_MAX_EMAIL_BODY_BYTES here: mail carries attachments


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path / "data", max_email_body_bytes=EMAIL_BODY_LIMIT)


Signed = tuple[bytes, dict[str, str]]


@dataclass(frozen=True)
class Scheme:
    """How one channel kind signs a webhook, and a valid body for it."""

    settings: dict[str, Any]
    content_type: str
    # A captured fixture's name, or the body itself; read only when the test runs, so a
    # checkout without ../shared/fixtures skips instead of failing to collect.
    valid_body: str | bytes
    malformed_body: bytes
    # (channel, body, secret) -> the body and headers as the provider would send them signed
    sign: Callable[[dict[str, Any], bytes, str], Signed]
    secret: str
    body_limit: int = BODY_LIMIT

    def valid(self) -> bytes:
        return fixture(self.valid_body) if isinstance(self.valid_body, str) else self.valid_body

    def oversized(self) -> bytes:
        return b"x" * (self.body_limit + 6 * 1024)


def _meta(channel: dict[str, Any], body: bytes, secret: str) -> Signed:
    return body, {"x-hub-signature-256": meta_signature(body, secret)}


def _twilio(channel: dict[str, Any], body: bytes, secret: str) -> Signed:
    pairs = parse_qsl(body.decode(errors="replace"), keep_blank_values=True)
    return body, {"x-twilio-signature": twilio_signature(secret, webhook_url(channel), pairs)}


def _telegram(channel: dict[str, Any], body: bytes, secret: str) -> Signed:
    return body, {"x-telegram-bot-api-secret-token": secret}


def _mailgun(channel: dict[str, Any], body: bytes, secret: str) -> Signed:
    """Mailgun signs inside the form: timestamp, token and their HMAC with the signing key."""
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    signature = mailgun_signature(secret, timestamp, token)
    fields = urlencode({"timestamp": timestamp, "token": token, "signature": signature}).encode()
    return body + b"&" + fields, {}


MAIL = urlencode(
    {
        "sender": "ana@example.com",
        "from": "Ana <ana@example.com>",
        "recipient": "support@example.com",
        "subject": "Pedido",
        "body-plain": "Hola, ¿dónde está mi pedido?",
        "message-headers": json.dumps(
            [
                ["From", "Ana <ana@example.com>"],
                ["To", "support@example.com"],
                ["Message-Id", "<bad-input@example.com>"],
            ]
        ),
    }
).encode()
META_SECRETS = {"app_secret": META_APP_SECRET, "verify_token": VERIFY_TOKEN}
TWILIO = {"account_sid": "AC" + "b" * 32, "auth_token": AUTH_TOKEN, "from_number": "+12028831111"}
SCHEMES: dict[str, Scheme] = {
    "whatsapp": Scheme(
        {"phone_number_id": "106540352242922", "access_token": "t", **META_SECRETS},
        "application/json",
        "whatsapp_text.json",
        b'{"object": "whatsapp_business_account", "entry": [',
        _meta,
        META_APP_SECRET,
    ),
    "messenger": Scheme(
        {"page_id": "1234567890", "page_access_token": "t", **META_SECRETS},
        "application/json",
        "messenger_text_courier.json",
        b'{"object": "page", "entry": "not a list"}',
        _meta,
        META_APP_SECRET,
    ),
    "instagram": Scheme(
        {"instagram_account_id": "1234567890", "access_token": "t", **META_SECRETS},
        "application/json",
        "instagram_text_courier.json",
        b'{"object": "page", "entry": []}',  # a Messenger body sent to the Instagram URL
        _meta,
        META_APP_SECRET,
    ),
    "sms": Scheme(
        TWILIO,
        "application/x-www-form-urlencoded",
        "twilio_sms_inbound_text_courier.form",
        b"Body=hello&NumMedia=0",  # no MessageSid, no From
        _twilio,
        AUTH_TOKEN,
    ),
    "twilio_whatsapp": Scheme(
        TWILIO,
        "application/x-www-form-urlencoded",
        "twilio_whatsapp_inbound_courier.form",
        b"Body=%FF%FE&From=",
        _twilio,
        AUTH_TOKEN,
    ),
    "telegram": Scheme(
        {"bot_token": "1:x", "secret_token": TELEGRAM_SECRET},
        "application/json",
        "telegram_text.json",
        b'{"update_id": 1, "message": {"message_id": 1, "from": {"id": 5}',
        _telegram,
        TELEGRAM_SECRET,
    ),
    "email": Scheme(
        {"address": "support@example.com", "mailgun_signing_key": MAILGUN_KEY},
        "application/x-www-form-urlencoded",
        MAIL,
        b"subject=no+sender&body-plain=hello",  # signed, but no address to answer
        _mailgun,
        MAILGUN_KEY,
        EMAIL_BODY_LIMIT,
    ),
}


def _post(api: Api, channel: dict[str, Any], content_type: str, signed: Signed) -> Any:
    body, headers = signed
    return api.client.post(
        f"/webhooks/{channel['kind']}/{channel['id']}", content=body, headers={"content-type": content_type, **headers}
    )


@pytest.mark.parametrize("kind", sorted(SCHEMES))
def test_bad_webhooks_are_refused_and_store_nothing(api: Api, kind: str) -> None:
    # given
    scheme = SCHEMES[kind]
    channel = create_channel(api, kind, scheme.settings)
    valid, oversized = scheme.valid(), scheme.oversized()
    # when
    answers = {
        "unsigned": _post(api, channel, scheme.content_type, (valid, {})),
        "wrongly signed": _post(
            api, channel, scheme.content_type, scheme.sign(channel, valid, scheme.secret + "-wrong")
        ),
        "malformed": _post(
            api, channel, scheme.content_type, scheme.sign(channel, scheme.malformed_body, scheme.secret)
        ),
        "oversized": _post(api, channel, scheme.content_type, scheme.sign(channel, oversized, scheme.secret)),
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
    accepted = _post(api, channel, scheme.content_type, scheme.sign(channel, valid, scheme.secret))
    assert accepted.status_code == 200, accepted.text
    assert len(api.conversations()) == 1


# Both ways in: the plain ASGI fast path, and the FastAPI route that answers ids written
# otherwise ("+7" is 7 to the route, and not plain digits to the fast path).
ROUTES = {"fast path": "", "app route": "+"}


def _url(channel: dict[str, Any], route: str) -> str:
    return f"/webhooks/{channel['kind']}/{ROUTES[route]}{channel['id']}"


def _signed_twilio(channel: dict[str, Any], route: str, body: bytes, secret: str) -> dict[str, str]:
    pairs = parse_qsl(body.decode(), keep_blank_values=True)
    return {"x-twilio-signature": twilio_signature(secret, f"http://testserver{_url(channel, route)}", pairs)}


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


DEEP_BODIES = {
    "whatsapp": lambda inner: b'{"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": '
    + inner
    + b"}]}",
    "messenger": lambda inner: b'{"object": "page", "entry": [{"id": "1", "messaging": ' + inner + b"}]}",
    "instagram": lambda inner: b'{"object": "instagram", "entry": [{"id": "1", "messaging": ' + inner + b"}]}",
    "telegram": lambda inner: b'{"update_id": 1, "message": {"message_id": 1, "text": ' + inner + b"}}",
}


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("depth", [200, 5000])
@pytest.mark.parametrize("kind", sorted(DEEP_BODIES))
def test_signed_but_deeply_nested_json_is_refused(api: Api, kind: str, depth: int, route: str) -> None:
    # given
    scheme = SCHEMES[kind]
    channel = create_channel(api, kind, scheme.settings)
    body, headers = scheme.sign(channel, DEEP_BODIES[kind](_nested(depth)), scheme.secret)
    # when
    response = api.client.post(_url(channel, route), content=body, headers={"content-type": JSON, **headers})
    # then
    assert (response.status_code, response.json()["error"]["code"]) == (400, "payload_too_deep")
    assert response.json()["error"]["message"]
    assert api.conversations() == []


JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("kind", ["sms", "twilio_whatsapp"])
def test_twilio_hostile_headers_get_a_precise_refusal(api: Api, kind: str, route: str) -> None:
    # given
    scheme = SCHEMES[kind]
    channel = create_channel(api, kind, scheme.settings)
    body = scheme.valid()
    url = _url(channel, route)
    good = _signed_twilio(channel, route, body, scheme.secret)
    # when
    non_ascii = api.client.post(
        url, content=body, headers={"content-type": FORM, "x-twilio-signature": "é".encode() * 20}
    )
    forged_host = api.client.post(
        url,
        content=body,
        headers={"content-type": FORM, "x-forwarded-host": "evil:abc", **_signed_twilio(channel, route, body, "x")},
    )
    bracket_host = api.client.post(
        url, content=body, headers={"content-type": FORM, "x-forwarded-host": "[evil", **good}
    )
    signed_with_forged_host = api.client.post(
        url, content=body, headers={"content-type": FORM, "x-forwarded-host": "evil:abc", **good}
    )
    # then
    got = [(r.status_code, r.json()["error"]["code"]) for r in (non_ascii, forged_host)]
    assert got == [(401, "signature_invalid"), (401, "signature_invalid")]
    assert bracket_host.status_code == 200, bracket_host.text
    assert signed_with_forged_host.status_code == 200, signed_with_forged_host.text
    assert len(api.conversations()) == 1


def _multipart(fields: list[tuple[str, bytes]], boundary: str = "hilo-test-boundary") -> tuple[bytes, str]:
    parts = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value + b"\r\n"
        for name, value in fields
    )
    return parts + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def _mailgun_fields(secret: str) -> list[tuple[str, bytes]]:
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    return [
        ("timestamp", timestamp.encode()),
        ("token", token.encode()),
        ("signature", mailgun_signature(secret, timestamp, token).encode()),
    ]


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_mailgun_form_with_too_many_parts_is_refused_before_parsing(api: Api, route: str) -> None:
    # given: the tests' settings take 1000 form fields (HILO_MAX_FORM_FIELDS)
    scheme = SCHEMES["email"]
    channel = create_channel(api, "email", scheme.settings)
    mail = [(name, value.encode()) for name, value in parse_qsl(MAIL.decode())]
    many_parts, multipart_type = _multipart(
        [*_mailgun_fields(MAILGUN_KEY), *mail, *[(f"x{i}", b"") for i in range(1000)]]
    )
    many_fields = MAIL + b"&" + urlencode(_mailgun_fields(MAILGUN_KEY)).encode() + b"&x=" * 1000
    unsigned, _type = _multipart([*mail, *[(f"x{i}", b"") for i in range(900)]])
    signed, _type = _multipart([*_mailgun_fields(MAILGUN_KEY), *mail])
    url = _url(channel, route)
    # when
    answers = [
        api.client.post(url, content=many_parts, headers={"content-type": multipart_type}),
        api.client.post(url, content=many_fields, headers={"content-type": FORM}),
        api.client.post(url, content=unsigned, headers={"content-type": multipart_type}),
    ]
    accepted = api.client.post(url, content=signed, headers={"content-type": multipart_type})
    # then
    assert [(r.status_code, r.json()["error"]["code"]) for r in answers] == [
        (413, "too_many_fields"),
        (413, "too_many_fields"),
        (401, "signature_missing"),
    ]
    assert accepted.status_code == 200, accepted.text
    assert len(api.conversations()) == 1


@pytest.mark.parametrize(
    ("header", "stored_from"),
    [
        ("Bob <boss> Smith <bob@example.com>", "bob@example.com"),  # the header's own address
        ('"x" <a> <b@example.com>', "b@example.com"),
        ("Bob <boss>", "envelope@example.com"),  # no address in the header: the envelope sender
    ],
)
def test_mailgun_from_with_angle_brackets_in_the_name_is_stored(api: Api, header: str, stored_from: str) -> None:
    # given
    scheme = SCHEMES["email"]
    channel = create_channel(api, "email", scheme.settings)
    mail = urlencode(
        {
            "sender": "envelope@example.com",
            "from": header,
            "recipient": "support@example.com",
            "subject": "Pedido",
            "body-plain": "Hola",
            "message-headers": json.dumps([["From", header], ["Message-Id", "<odd-from@example.com>"]]),
        }
    ).encode()
    # when
    response = _post(api, channel, FORM, scheme.sign(channel, mail, scheme.secret))
    # then
    assert response.status_code == 200, response.text
    [conversation] = api.conversations()
    identities = api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}"))["identities"]
    assert [(i["kind"], i["value"]) for i in identities] == [("email", stored_from)]
