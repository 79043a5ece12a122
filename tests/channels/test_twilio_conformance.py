"""Twilio SMS and WhatsApp-via-Twilio adapters against the captured fixtures and a fake Twilio."""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from babel.messages.pofile import read_po
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hilo.channels import sms, twilio_common, twilio_whatsapp
from hilo.channels.base import (
    ChannelAccountView,
    DeliveryStatus,
    IdentityKind,
    IdentityRef,
    MessageKind,
    OutboundAttachment,
    OutboundMessage,
    SendContext,
    SendError,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from hilo.channels.sms import segment_info
from hilo.channels.twilio_common import compute_signature, is_valid_signature
from tests.channels.provider_support import skip_module_without_fixtures
from tests.fakes.server import free_port, serve_asgi
from tests.fakes.twilio import FakeTwilio, twilio_signature

FIXTURES = Path(__file__).parents[3] / "shared" / "fixtures"
skip_module_without_fixtures()
VECTORS = json.loads((FIXTURES / "signature_vectors.json").read_text())
TWILIO_PYTHON_VECTOR = json.loads((FIXTURES / "twilio_signature_test_vector.json").read_text())
SMS_VECTOR = VECTORS["twilio_sms_inbound_text_courier.form"]
WEBHOOK_URL = SMS_VECTOR["url"]
AUTH_TOKEN = SMS_VECTOR["auth_token"]
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def form_pairs(body: bytes) -> list[tuple[str, str]]:
    return parse_qsl(body.decode(), keep_blank_values=True)


def account(kind: str = "sms", auth_token: str = AUTH_TOKEN, **config: Any) -> ChannelAccountView:
    return ChannelAccountView(id=7, kind=kind, name="Support line", config=config, secrets={"auth_token": auth_token})


def webhook(
    body: bytes,
    *,
    url: str = WEBHOOK_URL,
    signature: str | None = None,
    signed_url: str | None = None,
    headers: dict[str, str] | None = None,
) -> WebhookRequest:
    """Build a POSTed webhook, signed for `signed_url` (default: `url`) unless told otherwise."""
    if signature is None:
        signature = twilio_signature(AUTH_TOKEN, signed_url or url, form_pairs(body))
    all_headers = {"content-type": "application/x-www-form-urlencoded"}
    if signature:
        all_headers["x-twilio-signature"] = signature
    all_headers.update(headers or {})
    return WebhookRequest(method="POST", url=url, headers=all_headers, query={}, body=body)


def parse_sms(body: bytes) -> WebhookResult:
    return sms.ADAPTER.parse_webhook(account(), webhook(body))


def outbound(text: str | None = "Hello from support", **fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "message_id": 1,
        "conversation_id": 1,
        "recipient": IdentityRef(IdentityKind.PHONE, "+14155552345"),
        "text": text,
        "idempotency_key": "msg-1",
    }
    values.update(fields)
    return OutboundMessage(**values)


def context(
    adapter_kind: str = "sms",
    text: str | None = "Hello",
    *,
    last_inbound_at: datetime | None = None,
    template: dict[str, Any] | None = None,
    opted_out: bool = False,
    **config: Any,
) -> SendContext:
    return SendContext(
        account=account(adapter_kind, **config),
        recipient=IdentityRef(IdentityKind.PHONE, "+14155552345"),
        text=text,
        has_attachments=False,
        template=template,
        last_inbound_at=last_inbound_at,
        now=NOW,
        recipient_opted_out=opted_out,
    )


@pytest.fixture
def twilio() -> Iterator[tuple[FakeTwilio, str]]:
    fake = FakeTwilio(auth_token="fake_auth_token")  # noqa: S106 - a test value
    with fake.running() as base_url:
        yield fake, base_url


def api_account(fake: FakeTwilio, base_url: str, kind: str = "sms", **config: Any) -> ChannelAccountView:
    return account(
        kind,
        auth_token=fake.auth_token,
        account_sid=fake.account_sid,
        api_base_url=base_url,
        **config,
    )


def send_error(coro: Any) -> SendError:
    with pytest.raises(SendError) as caught:
        asyncio.run(coro)
    return caught.value


# --- X-Twilio-Signature ------------------------------------------------------------


def test_signature_matches_twilio_python_vector() -> None:
    # given
    vector = TWILIO_PYTHON_VECTOR
    params = list(vector["params"].items())

    # when
    signature = compute_signature(vector["auth_token"], vector["url"], params)

    # then
    assert signature == vector["expected_X-Twilio-Signature"]


def test_signature_with_default_port_is_accepted_both_ways() -> None:
    # given
    vector = TWILIO_PYTHON_VECTOR
    params = list(vector["params"].items())
    url_with_port = vector["url"].replace("mycompany.com", "mycompany.com:443")

    # when
    signed_with_port = compute_signature(vector["auth_token"], url_with_port, params)

    # then
    assert signed_with_port == vector["expected_with_port_443"]
    assert is_valid_signature(vector["auth_token"], vector["url"], params, signed_with_port)
    assert is_valid_signature(vector["auth_token"], url_with_port, params, vector["expected_X-Twilio-Signature"])


def test_signature_sorts_and_deduplicates_repeated_params() -> None:
    # given
    case = TWILIO_PYTHON_VECTOR["duplicate_params_case"]
    params = [(name, value) for name, value in case["params_multi"]]

    # when
    signature = compute_signature(TWILIO_PYTHON_VECTOR["auth_token"], TWILIO_PYTHON_VECTOR["url"], params)

    # then
    assert signature == case["expected"]


def test_json_body_signature_checks_body_hash() -> None:
    # given
    case = TWILIO_PYTHON_VECTOR["json_body_case"]
    token = TWILIO_PYTHON_VECTOR["auth_token"]

    # when
    genuine = is_valid_signature(token, case["url"], [], case["expected"], body=case["body"].encode())
    tampered = is_valid_signature(
        token,
        case["url"],
        [],
        case["expected"],
        body=case["body"].replace("true", "false").encode(),
    )

    # then
    assert genuine is True
    assert tampered is False


@pytest.mark.parametrize(
    "name",
    [
        name
        for name, vector in VECTORS.items()
        if isinstance(vector, dict) and vector.get("header") == "X-Twilio-Signature"
    ],
)
def test_signature_vectors_hold_and_fail_when_altered(name: str) -> None:
    # given
    vector = VECTORS[name]
    params = form_pairs(fixture(name))
    altered_params = [(key, value + "1") if key == "To" else (key, value) for key, value in params]

    # when / then
    assert is_valid_signature(vector["auth_token"], vector["url"], params, vector["value"])
    assert not is_valid_signature("54321", vector["url"], params, vector["value"])
    assert not is_valid_signature(vector["auth_token"], vector["url"], altered_params, vector["value"])
    assert not is_valid_signature(vector["auth_token"], vector["url"] + "x", params, vector["value"])


def test_webhook_with_fixture_signature_is_accepted() -> None:
    # given
    request = webhook(fixture("twilio_sms_inbound_text_courier.form"), signature=SMS_VECTOR["value"])

    # when
    result = sms.ADAPTER.parse_webhook(account(), request)

    # then
    assert [message.provider_message_id for message in result.messages] == ["SMe287d7109a5a925f182f0e07fe5b223b"]


def test_webhook_without_signature_is_refused() -> None:
    # given
    request = webhook(fixture("twilio_sms_inbound_text_courier.form"), signature="")

    # when
    with pytest.raises(WebhookError) as caught:
        sms.ADAPTER.parse_webhook(account(), request)

    # then
    assert (caught.value.code, caught.value.status) == ("signature_missing", 401)


@pytest.mark.parametrize(
    "body",
    [
        fixture("twilio_sms_inbound_text_courier.form").replace(b"Body=Msg", b"Body=Msh"),
        fixture("twilio_sms_inbound_text_courier.form") + b"&Extra=1",
    ],
)
def test_webhook_with_altered_body_is_refused(body: bytes) -> None:
    # given
    request = webhook(body, signature=SMS_VECTOR["value"])

    # when
    with pytest.raises(WebhookError) as caught:
        sms.ADAPTER.parse_webhook(account(), request)

    # then
    assert (caught.value.code, caught.value.status) == ("signature_invalid", 401)


def test_webhook_signed_with_another_token_is_refused() -> None:
    # given
    request = webhook(fixture("twilio_sms_inbound_text_courier.form"), signature=SMS_VECTOR["value"])

    # when
    with pytest.raises(WebhookError) as caught:
        sms.ADAPTER.parse_webhook(account(auth_token="another"), request)  # noqa: S106

    # then
    assert caught.value.code == "signature_invalid"


def test_webhook_behind_tls_proxy_is_checked_against_public_url() -> None:
    # given: Twilio signed the https URL; the app behind the proxy sees http and :8000
    body = fixture("twilio_sms_inbound_text_courier.form")
    inner_url = "http://hilo-internal:8000/webhooks/twilio/sms"
    proxied = webhook(
        body,
        url=inner_url,
        signed_url=WEBHOOK_URL,
        headers={"x-forwarded-proto": "https", "x-forwarded-host": "example.com"},
    )
    direct = webhook(body, url=inner_url, signed_url=WEBHOOK_URL)

    # when
    result = sms.ADAPTER.parse_webhook(account(), proxied)

    # then
    assert len(result.messages) == 1
    with pytest.raises(WebhookError):
        sms.ADAPTER.parse_webhook(account(), direct)


def test_webhook_url_with_default_port_accepts_portless_signature() -> None:
    # given
    request = webhook(
        fixture("twilio_sms_inbound_text_courier.form"),
        url="https://example.com:443/webhooks/twilio/sms",
        signature=SMS_VECTOR["value"],
    )

    # when
    result = sms.ADAPTER.parse_webhook(account(), request)

    # then
    assert len(result.messages) == 1


def test_get_webhook_is_checked_over_its_url() -> None:
    # given: a webhook configured as GET carries its parameters in the query string
    url = WEBHOOK_URL + "?MessageSid=SM1&From=%2B14133881111&Body=Hi"
    request = WebhookRequest(
        method="GET",
        url=url,
        headers={"x-twilio-signature": twilio_signature(AUTH_TOKEN, url, [])},
        query={"MessageSid": "SM1", "From": "+14133881111", "Body": "Hi"},
        body=b"",
    )

    # when
    result = sms.ADAPTER.parse_webhook(account(), request)

    # then
    assert [(m.provider_message_id, m.text) for m in result.messages] == [("SM1", "Hi")]


def test_webhook_without_configured_token_is_refused() -> None:
    # given
    request = webhook(fixture("twilio_sms_inbound_text_courier.form"))

    # when
    with pytest.raises(WebhookError) as caught:
        sms.ADAPTER.parse_webhook(account(auth_token=""), request)

    # then
    assert caught.value.code == "channel_not_configured"


def test_body_that_is_not_a_form_is_malformed() -> None:
    # given
    request = webhook(b"\xff\xfeBody=1", signature="c2lnbmF0dXJl")

    # when
    with pytest.raises(WebhookError) as caught:
        sms.ADAPTER.parse_webhook(account(), request)

    # then
    assert (caught.value.code, caught.value.status) == ("payload_malformed", 400)


def test_signed_form_without_message_fields_is_malformed() -> None:
    # given
    request = webhook(b"AccountSid=acctid&Body=hello")

    # when
    with pytest.raises(WebhookError) as caught:
        sms.ADAPTER.parse_webhook(account(), request)

    # then
    assert (caught.value.code, caught.value.status) == ("payload_malformed", 400)


# --- inbound messages ------------------------------------------------------------------


def test_inbound_text_fixture() -> None:
    # given
    body = fixture("twilio_sms_inbound_text_courier.form")

    # when
    result = parse_sms(body)

    # then
    [message] = result.messages
    assert message.provider_message_id == "SMe287d7109a5a925f182f0e07fe5b223b"
    assert message.sender == IdentityRef(IdentityKind.PHONE, "+14133881111")
    assert message.kind is MessageKind.TEXT
    assert message.text == "Msg"
    assert message.attachments == []
    assert message.data == {"to": "+12028831111", "num_segments": "1", "from_country": "US"}
    assert message.raw["SmsStatus"] == "received"
    assert result.statuses == [] and result.opt_changes == {}
    assert result.reply_body == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert result.reply_content_type == "text/xml"


def test_inbound_media_fixture() -> None:
    # given: courier's capture has MediaUrlN but no MediaContentTypeN
    body = fixture("twilio_sms_inbound_media_courier.form")

    # when
    [message] = parse_sms(body).messages

    # then
    assert message.kind is MessageKind.IMAGE
    assert message.text == "Msg"
    assert [(a.kind, a.url, a.content_type) for a in message.attachments] == [
        (MessageKind.IMAGE, "cat.jpg", None),
        (MessageKind.IMAGE, "dog.jpg", None),
    ]


def test_inbound_mms_with_content_types() -> None:
    # given
    media_url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME42"
    body = (
        "MessageSid=MM1&From=%2B14133881111&To=%2B12028831111&Body=&NumMedia=2"
        f"&MediaUrl0={media_url}&MediaContentType0=video%2Fmp4"
        f"&MediaUrl1={media_url}x&MediaContentType1=application%2Fpdf"
    ).encode()

    # when
    [message] = parse_sms(body).messages

    # then
    assert message.kind is MessageKind.VIDEO
    assert message.text is None
    assert [(a.kind, a.content_type, a.provider_media_id) for a in message.attachments] == [
        (MessageKind.VIDEO, "video/mp4", "ME42"),
        (MessageKind.DOCUMENT, "application/pdf", "ME42x"),
    ]


def test_whatsapp_inbound_fixture_strips_prefix() -> None:
    # given
    body = fixture("twilio_whatsapp_inbound_courier.form")

    # when
    result = twilio_whatsapp.ADAPTER.parse_webhook(account("twilio_whatsapp"), webhook(body))

    # then
    [message] = result.messages
    assert message.sender == IdentityRef(IdentityKind.PHONE, "+14133881111")
    assert message.text == "Msg"
    assert message.data["to"] == "whatsapp:+12028831111"
    assert result.reply_content_type == "text/xml"


def test_whatsapp_inbound_profile_name_reply_and_location() -> None:
    # given: the parameters Twilio adds for WhatsApp
    body = (
        b"MessageSid=SM2&From=whatsapp%3A%2B5215512345678&To=whatsapp%3A%2B14155238886"
        b"&Body=&NumMedia=0&ProfileName=Ana+L%C3%B3pez&WaId=5215512345678"
        b"&OriginalRepliedMessageSid=SM1&Latitude=19.4326&Longitude=-99.1332"
        b"&Address=Z%C3%B3calo&Label=Centro"
    )

    # when
    [message] = twilio_whatsapp.ADAPTER.parse_webhook(account("twilio_whatsapp"), webhook(body)).messages

    # then
    assert message.sender.value == "+5215512345678"
    assert message.sender_name == "Ana López"
    assert message.reply_to_provider_ids == ["SM1"]
    assert message.kind is MessageKind.LOCATION
    assert message.data["location"] == {
        "latitude": 19.4326,
        "longitude": -99.1332,
        "address": "Zócalo",
        "label": "Centro",
    }


# --- status callbacks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "twilio_sms_status_sent_courier.form",
            ("SM0b6e2697aae04182a9f5b5c7a8994c7f", DeliveryStatus.SENT),
        ),
        (
            "twilio_sms_status_delivered_courier.form",
            ("SMe287d7109a5a925f182f0e07fe5b223b", DeliveryStatus.DELIVERED),
        ),
    ],
)
def test_status_fixtures(name: str, expected: tuple[str, DeliveryStatus]) -> None:
    # given
    body = fixture(name)

    # when
    result = parse_sms(body)

    # then
    [update] = result.statuses
    assert (update.provider_message_id, update.status) == expected
    assert (update.error_code, update.error_message, update.opted_out) == (None, None, False)
    assert result.messages == []
    assert result.reply_content_type == "text/xml"


def test_failed_21610_status_fixture_marks_opt_out() -> None:
    # given
    body = fixture("twilio_sms_status_failed_21610_courier.form")

    # when
    [update] = parse_sms(body).statuses

    # then
    assert update.status is DeliveryStatus.FAILED
    assert update.error_code == "21610"
    assert update.opted_out is True
    assert update.error_message == twilio_common.REASON_OPTED_OUT


@pytest.mark.parametrize("code", ["30003", "30005", "30006", "30007", "30008"])
def test_undelivered_status_carries_readable_reason(code: str) -> None:
    # given
    body = f"ErrorCode={code}&MessageSid=SM9&MessageStatus=undelivered&To=%2B12028831111".encode()

    # when
    [update] = parse_sms(body).statuses

    # then
    assert update.status is DeliveryStatus.FAILED
    assert update.error_code == code
    assert update.error_message == twilio_common.STATUS_ERROR_REASONS[code]
    assert update.opted_out is False


def test_every_status_error_reason_is_distinct() -> None:
    # given
    reasons = [twilio_common.STATUS_ERROR_REASONS[code] for code in ("30003", "30005", "30006", "30007", "30008")]

    # then
    assert len(set(reasons)) == len(reasons)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("queued", DeliveryStatus.QUEUED),
        ("sending", DeliveryStatus.QUEUED),
        ("read", DeliveryStatus.READ),
        ("failed", DeliveryStatus.FAILED),
    ],
)
def test_status_values_map_to_delivery_status(status: str, expected: DeliveryStatus) -> None:
    # given
    body = f"MessageSid=SM9&MessageStatus={status}".encode()

    # when
    [update] = twilio_whatsapp.ADAPTER.parse_webhook(account("twilio_whatsapp"), webhook(body)).statuses

    # then
    assert update.status is expected


def test_failed_status_without_known_code_has_generic_reason() -> None:
    # given
    body = b"MessageSid=SM9&MessageStatus=failed&ErrorCode=30410"

    # when
    [update] = parse_sms(body).statuses

    # then
    assert update.error_code == "30410"
    assert update.error_message == twilio_common.REASON_UNDELIVERED


# --- opt-out keywords ------------------------------------------------------------------


def inbound_text(text: str) -> bytes:
    return urlencode({"MessageSid": "SM5", "From": "+14133881111", "Body": text}).encode()


@pytest.mark.parametrize(
    ("text", "opted_out"),
    [
        ("STOP", True),
        ("stop", True),
        ("  Stop \n", True),
        ("STOPALL", True),
        ("unsubscribe", True),
        ("Cancel", True),
        ("END", True),
        ("quit", True),
        ("BAJA", True),
        ("baja", True),
        ("START", False),
        ("yes", False),
        ("Unstop", False),
        ("alta", False),
    ],
)
def test_opt_keywords_change_opt_status_and_keep_message(text: str, opted_out: bool) -> None:
    # given
    body = inbound_text(text)

    # when
    result = parse_sms(body)

    # then
    assert result.opt_changes == {"+14133881111": opted_out}
    assert [message.text for message in result.messages] == [text]


@pytest.mark.parametrize("text", ["please stop", "STOP!", "no", "start over", "bajar"])
def test_other_texts_are_not_opt_keywords(text: str) -> None:
    # given
    body = inbound_text(text)

    # when
    result = parse_sms(body)

    # then
    assert result.opt_changes == {}


def test_advanced_opt_out_type_is_honoured() -> None:
    # given: a custom keyword configured in Twilio's Advanced Opt-Out
    body = inbound_text("NO MAS") + b"&OptOutType=STOP"

    # when
    result = parse_sms(body)

    # then
    assert result.opt_changes == {"+14133881111": True}


def test_whatsapp_does_not_treat_stop_as_sms_opt_out() -> None:
    # given
    body = inbound_text("STOP")

    # when
    result = twilio_whatsapp.ADAPTER.parse_webhook(account("twilio_whatsapp"), webhook(body))

    # then
    assert result.opt_changes == {}
    assert len(result.messages) == 1


# --- segment counting ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ("GSM-7", 0, 0, 160)),
        ("Hola, ¿qué tal? Ñoño @ 5€", ("GSM-7", 1, 25, 134)),
        ("a" * 160, ("GSM-7", 1, 160, 0)),
        ("a" * 161, ("GSM-7", 2, 161, 145)),
        ("a" * 306, ("GSM-7", 2, 306, 0)),
        ("a" * 307, ("GSM-7", 3, 307, 152)),
        ("€" * 80, ("GSM-7", 1, 80, 0)),
        ("{" * 81, ("GSM-7", 2, 81, 143)),
        # The escaped character does not fit in the first segment's last septet.
        ("a" * 152 + "^" + "a" * 10, ("GSM-7", 2, 163, 141)),
        ("á", ("UCS-2", 1, 1, 69)),
        ("a" * 70 + "ç", ("UCS-2", 2, 71, 63)),
        ("😀" * 35, ("UCS-2", 1, 35, 0)),
        # An emoji (a surrogate pair) is never split between segments.
        ("😀" * 36, ("UCS-2", 2, 36, 61)),
        ("a" * 66 + "😀" + "bbb", ("UCS-2", 2, 70, 62)),
        ("Ω" * 134, ("GSM-7", 1, 134, 26)),
        ("Привет" * 23, ("UCS-2", 3, 138, 63)),
    ],
)
def test_segment_info(text: str, expected: tuple[str, int, int, int]) -> None:
    # when
    info = segment_info(text)

    # then
    assert (info["encoding"], info["segments"], info["characters"], info["remaining"]) == expected


# --- check_send rules ------------------------------------------------------------------


def test_sms_refuses_opted_out_recipient() -> None:
    # when
    refusal = sms.ADAPTER.check_send(context(opted_out=True))

    # then
    assert refusal is not None
    assert refusal.code == "sms_opted_out"
    assert refusal.reason == twilio_common.REASON_OPTED_OUT


def test_sms_allows_ten_segments_and_refuses_eleven() -> None:
    # given
    ten = "a" * (153 * 10)
    eleven = ten + "a"

    # when
    allowed = sms.ADAPTER.check_send(context(text=ten))
    refused = sms.ADAPTER.check_send(context(text=eleven))

    # then
    assert allowed is None
    assert refused is not None
    assert refused.code == "sms_too_long"


def test_sms_max_segments_is_configurable() -> None:
    # given
    three_segments = "😀" * 70

    # when
    with_two = sms.ADAPTER.check_send(context(text=three_segments, max_segments=2))
    with_three = sms.ADAPTER.check_send(context(text=three_segments, max_segments=3))

    # then
    assert with_two is not None and with_two.code == "sms_too_long"
    assert with_three is None


def test_sms_refuses_body_over_twilio_limit_even_with_many_segments() -> None:
    # when
    refusal = sms.ADAPTER.check_send(context(text="a" * 1601, max_segments=50))

    # then
    assert refusal is not None and refusal.code == "sms_too_long"


@pytest.mark.parametrize(
    ("last_inbound_at", "refused"),
    [
        (NOW - timedelta(hours=23, minutes=59), False),
        (NOW - timedelta(hours=24), False),
        (NOW - timedelta(hours=24, minutes=1), True),
        (None, True),
        # A timestamp read back from SQLite has no zone: it is UTC.
        ((NOW - timedelta(hours=2)).replace(tzinfo=None), False),
        ((NOW - timedelta(days=3)).replace(tzinfo=None), True),
    ],
)
def test_whatsapp_24_hour_window(last_inbound_at: datetime | None, refused: bool) -> None:
    # when
    refusal = twilio_whatsapp.ADAPTER.check_send(context("twilio_whatsapp", last_inbound_at=last_inbound_at))

    # then
    if refused:
        assert refusal is not None
        assert refusal.code == "whatsapp_window_closed"
        assert refusal.reason == twilio_common.REASON_WINDOW_CLOSED
    else:
        assert refusal is None


def test_whatsapp_template_is_allowed_outside_window() -> None:
    # given
    template = {"content_sid": "HX123", "variables": {"1": "Ana"}}

    # when
    refusal = twilio_whatsapp.ADAPTER.check_send(
        context("twilio_whatsapp", text=None, template=template, last_inbound_at=None)
    )

    # then
    assert refusal is None


def test_whatsapp_template_without_content_sid_is_refused() -> None:
    # when
    refusal = twilio_whatsapp.ADAPTER.check_send(
        context("twilio_whatsapp", template={"name": "welcome"}, last_inbound_at=NOW)
    )

    # then
    assert refusal is not None and refusal.code == "whatsapp_template_incomplete"


# --- send against the fake Twilio ------------------------------------------------------


def test_send_posts_documented_form_with_basic_auth(twilio: tuple[FakeTwilio, str]) -> None:
    # given
    fake, base_url = twilio
    channel = api_account(
        fake,
        base_url,
        from_number="+14155550000",
        status_callback_url="https://example.com/webhooks/twilio/status",
    )

    # when
    result = asyncio.run(sms.ADAPTER.send(channel, outbound()))

    # then
    [request] = fake.requests
    assert request.path == f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json"
    assert request.body == fixture("twilio_sms_send_request_constructed.form")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.headers["authorization"].startswith("Basic ")
    assert result.provider_message_id in fake.messages
    assert result.provider_message_id.startswith("SM")
    assert result.status is DeliveryStatus.QUEUED


def test_send_with_messaging_service_and_media(twilio: tuple[FakeTwilio, str]) -> None:
    # given
    fake, base_url = twilio
    channel = api_account(fake, base_url, messaging_service_sid="MG" + "b" * 32)
    message = outbound(
        "Your invoice",
        attachments=(
            OutboundAttachment("a.pdf", "application/pdf", b"%PDF", url="https://files.example/a.pdf"),
            OutboundAttachment("b.png", "image/png", b"png", url="https://files.example/b.png"),
        ),
    )

    # when
    asyncio.run(sms.ADAPTER.send(channel, message))

    # then
    assert fake.requests[0].form == [
        ("To", "+14155552345"),
        ("MessagingServiceSid", "MG" + "b" * 32),
        ("Body", "Your invoice"),
        ("MediaUrl", "https://files.example/a.pdf"),
        ("MediaUrl", "https://files.example/b.png"),
    ]


def test_send_attachment_without_public_url_is_refused(twilio: tuple[FakeTwilio, str]) -> None:
    # given
    fake, base_url = twilio
    channel = api_account(fake, base_url, from_number="+14155550000")
    message = outbound(attachments=(OutboundAttachment("a.pdf", "application/pdf", b"%PDF"),))

    # when
    error = send_error(sms.ADAPTER.send(channel, message))

    # then
    assert (error.code, error.retryable) == ("media_url_missing", False)
    assert fake.requests == []


def test_send_rate_limited_is_retryable_after(twilio: tuple[FakeTwilio, str]) -> None:
    # given
    fake, base_url = twilio
    fake.rate_limit_next(1, retry_after=7)
    channel = api_account(fake, base_url, from_number="+14155550000")

    # when
    error = send_error(sms.ADAPTER.send(channel, outbound()))
    retried = asyncio.run(sms.ADAPTER.send(channel, outbound()))

    # then
    assert (error.code, error.retryable, error.retry_after) == ("rate_limited", True, 7.0)
    assert error.reason == twilio_common.REASON_RATE_LIMITED
    assert retried.provider_message_id in fake.messages


def test_send_to_unsubscribed_recipient_is_opted_out(twilio: tuple[FakeTwilio, str]) -> None:
    # given
    fake, base_url = twilio
    fake.opt_out("+14155552345")
    channel = api_account(fake, base_url, from_number="+14155550000")

    # when
    error = send_error(sms.ADAPTER.send(channel, outbound()))

    # then
    assert (error.code, error.retryable, error.opted_out) == ("opted_out", False, True)
    assert error.reason == twilio_common.REASON_OPTED_OUT


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, 21211, ("invalid_number", False)),
        (400, 21614, ("not_mobile_number", False)),
        (400, 21617, ("body_too_long", False)),
        (400, 63016, ("whatsapp_window_closed", False)),
        (400, 21999, ("twilio_21999", False)),
        (503, 20500, ("provider_unavailable", True)),
    ],
)
def test_send_errors_map_by_twilio_code(
    twilio: tuple[FakeTwilio, str], status: int, code: int, expected: tuple[str, bool]
) -> None:
    # given
    fake, base_url = twilio
    fake.fail_next_with_code(1, status, code, "Scripted failure")
    channel = api_account(fake, base_url, from_number="+14155550000")

    # when
    error = send_error(sms.ADAPTER.send(channel, outbound()))

    # then
    assert (error.code, error.retryable) == expected
    assert error.needs_template is (code == 63016)


def test_send_with_wrong_credentials_fails_auth(twilio: tuple[FakeTwilio, str]) -> None:
    # given
    fake, base_url = twilio
    channel = account(
        auth_token="wrong",  # noqa: S106 - a test value
        account_sid=fake.account_sid,
        api_base_url=base_url,
        from_number="+1",
    )

    # when
    error = send_error(sms.ADAPTER.send(channel, outbound()))

    # then
    assert (error.code, error.retryable) == ("auth_failed", False)


def test_send_when_twilio_unreachable_is_retryable() -> None:
    # given: nothing listens on this port
    channel = account(account_sid="AC1", api_base_url=f"http://127.0.0.1:{free_port()}", from_number="+1")

    # when
    error = send_error(sms.ADAPTER.send(channel, outbound()))

    # then
    assert (error.code, error.retryable) == ("network_error", True)


def test_send_without_sender_is_not_configured() -> None:
    # when
    error = send_error(sms.ADAPTER.send(account(account_sid="AC1"), outbound()))

    # then
    assert (error.code, error.retryable) == ("channel_not_configured", False)


def test_whatsapp_send_prefixes_addresses(twilio: tuple[FakeTwilio, str]) -> None:
    # given
    fake, base_url = twilio
    channel = api_account(fake, base_url, "twilio_whatsapp", from_number="+14155238886")

    # when
    asyncio.run(twilio_whatsapp.ADAPTER.send(channel, outbound("Hola")))

    # then
    assert fake.requests[0].form == [
        ("To", "whatsapp:+14155552345"),
        ("From", "whatsapp:+14155238886"),
        ("Body", "Hola"),
    ]


def test_whatsapp_template_is_sent_as_content_sid(twilio: tuple[FakeTwilio, str]) -> None:
    # given
    fake, base_url = twilio
    channel = api_account(fake, base_url, "twilio_whatsapp", from_number="whatsapp:+14155238886")
    template = {
        "content_sid": "HXb5b62575e6e4ff6129ad7c8efe1f983e",
        "variables": {"1": "12/1", "2": "3pm"},
    }

    # when
    asyncio.run(twilio_whatsapp.ADAPTER.send(channel, outbound(None, template=template)))

    # then
    form = dict(fake.requests[0].form)
    assert form["From"] == "whatsapp:+14155238886"
    assert form["ContentSid"] == "HXb5b62575e6e4ff6129ad7c8efe1f983e"
    assert json.loads(form["ContentVariables"]) == {"1": "12/1", "2": "3pm"}
    assert "Body" not in form


# --- signed status callback from the fake to a receiving app ------------------------------


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[WebhookResult | WebhookError], dict[str, ChannelAccountView]]]:
    """A minimal webhook endpoint that hands the request to the SMS adapter, as the core does."""
    results: list[WebhookResult | WebhookError] = []
    accounts: dict[str, ChannelAccountView] = {}

    async def endpoint(request: Request) -> Response:
        webhook_request = WebhookRequest(
            method=request.method,
            url=str(request.url),
            headers={key.lower(): value for key, value in request.headers.items()},
            query=dict(request.query_params),
            body=await request.body(),
        )
        try:
            result = sms.ADAPTER.parse_webhook(accounts["sms"], webhook_request)
        except WebhookError as error:
            results.append(error)
            return Response(error.code, status_code=error.status)
        results.append(result)
        return Response(result.reply_body, media_type=result.reply_content_type)

    app = Starlette(routes=[Route("/webhooks/sms/7", endpoint, methods=["POST"])])
    with serve_asgi(app) as base_url:
        yield f"{base_url}/webhooks/sms/7", results, accounts


def test_status_callback_from_twilio_reaches_adapter(
    twilio: tuple[FakeTwilio, str],
    receiver: tuple[str, list[WebhookResult | WebhookError], dict[str, ChannelAccountView]],
) -> None:
    # given
    fake, base_url = twilio
    callback_url, results, accounts = receiver
    accounts["sms"] = api_account(fake, base_url, from_number="+14155550000", status_callback_url=callback_url)
    sent = asyncio.run(sms.ADAPTER.send(accounts["sms"], outbound()))

    # when
    response = fake.send_status_callback(sent.provider_message_id, "undelivered", 30003)

    # then
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    [result] = results
    assert isinstance(result, WebhookResult)
    [update] = result.statuses
    assert update.provider_message_id == sent.provider_message_id
    assert update.status is DeliveryStatus.FAILED
    assert update.error_message == twilio_common.STATUS_ERROR_REASONS["30003"]


def test_status_callback_signed_with_other_token_is_refused(
    twilio: tuple[FakeTwilio, str],
    receiver: tuple[str, list[WebhookResult | WebhookError], dict[str, ChannelAccountView]],
) -> None:
    # given
    fake, _base_url = twilio
    callback_url, results, accounts = receiver
    accounts["sms"] = account(auth_token="not-the-fake-one")  # noqa: S106 - a test value

    # when
    response = fake.post_signed(callback_url, [("MessageSid", "SM1"), ("MessageStatus", "sent")])

    # then
    assert response.status_code == 401
    [error] = results
    assert isinstance(error, WebhookError) and error.code == "signature_invalid"


# --- translations ------------------------------------------------------------------------


def catalog_messages(locale: str) -> dict[str, str]:
    path = Path(twilio_common.__file__).parents[1] / "locale" / locale / "LC_MESSAGES" / "twilio.po"
    with path.open("rb") as handle:
        return {str(m.id): str(m.string) for m in read_po(handle) if m.id}


def module_msgids() -> set[str]:
    msgids: set[str] = set()
    for module in (twilio_common, sms, twilio_whatsapp):
        tree = ast.parse(Path(str(module.__file__)).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "N_":
                assert isinstance(node.args[0], ast.Constant)
                msgids.add(str(node.args[0].value))
    return msgids


def test_every_msgid_is_in_both_catalogs() -> None:
    # given
    msgids = module_msgids()

    # when
    english = catalog_messages("en")
    spanish = catalog_messages("es")

    # then
    assert msgids and msgids <= set(english) and msgids <= set(spanish)
    assert all(english[msgid] == msgid for msgid in msgids)
    assert all(spanish[msgid] and spanish[msgid] != msgid for msgid in msgids)
