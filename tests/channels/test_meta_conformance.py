"""Meta channels (WhatsApp, Messenger, Instagram) against the shared captured payloads."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from babel.messages.pofile import read_po

from hilo.channels import instagram, messenger, meta_common, whatsapp
from hilo.channels.base import (
    ChannelAccountView,
    ChannelAdapter,
    DeliveryStatus,
    IdentityKind,
    IdentityRef,
    MessageKind,
    OutboundAttachment,
    OutboundMessage,
    SendContext,
    SendError,
    Watermark,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from tests.fakes import meta as fake_meta
from tests.fakes.meta import FakeGraphAPI, running_fake_graph
from tests.fakes.server import free_port

FIXTURES = Path(__file__).parents[3] / "shared" / "fixtures"
APP_SECRET = "test_app_secret"  # noqa: S105 -- the dummy secret of signature_vectors.json
TOKEN = "test-access-token"  # noqa: S105 -- the fake Graph API's token
LOCALE_DIR = Path(meta_common.__file__).parents[1] / "locale"
NOW = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)

ADAPTERS: dict[str, ChannelAdapter] = {
    "whatsapp": whatsapp.ADAPTER,
    "messenger": messenger.ADAPTER,
    "instagram": instagram.ADAPTER,
}


def fixture_bytes(name: str) -> bytes:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(
            f"shared provider fixture {name} is absent: expected the fixtures folder at "
            f"{FIXTURES} (the shared/ folder next to the repository)"
        )
    return path.read_bytes()


def fixture_json(name: str) -> Any:
    return json.loads(fixture_bytes(name))


def account(kind: str, config: dict[str, Any] | None = None, **secrets: str) -> ChannelAccountView:
    token_name = "page_access_token" if kind == "messenger" else "access_token"
    return ChannelAccountView(
        id=7,
        kind=kind,
        name=f"Test {kind}",
        config=config or {},
        secrets={
            "app_secret": APP_SECRET,
            "verify_token": "my-verify-token",
            token_name: TOKEN,
            **secrets,
        },
    )


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(body: bytes, signature: str | None = None) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    headers["x-hub-signature-256"] = signature if signature is not None else sign(body)
    return WebhookRequest(
        method="POST",
        url="https://hilo.example/webhooks/meta/7",
        headers=headers,
        query={},
        body=body,
    )


def parse(kind: str, body: bytes, config: dict[str, Any] | None = None) -> WebhookResult:
    result = ADAPTERS[kind].parse_webhook(account(kind, config), post(body))
    assert isinstance(result, WebhookResult)
    return result


def wrap_event(event: Any, object_name: str = "page", entry_id: str = "<PAGE_ID>") -> bytes:
    """Put one `entry[].messaging[]` event from Meta's docs into a full webhook body."""
    entry = {"id": entry_id, "time": 1458692752478, "messaging": [event]}
    return json.dumps({"object": object_name, "entry": [entry]}).encode()


def ms(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def seconds(value: int) -> datetime:
    return datetime.fromtimestamp(value, tz=UTC)


# Inbound fixtures ---------------------------------------------------------------------


def check_whatsapp_text(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.provider_message_id == ("wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=")
    assert message.sender == IdentityRef(IdentityKind.PHONE, "+16505551234")
    assert message.sender_name == "Sheena Nelson"
    assert message.kind == MessageKind.TEXT
    assert message.text == "Does it come in another color?"
    assert message.sent_at == seconds(1749416383)
    assert message.raw["type"] == "text"
    assert result.statuses == []


def check_whatsapp_text_pywa(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.sender == IdentityRef(IdentityKind.PHONE, "+972987654321")
    assert message.sender_name == "Test Name"
    assert message.text == "Body Text"
    assert message.data["whatsapp_user_id"] == "US.13491208655302741918"


def check_whatsapp_image(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.kind == MessageKind.IMAGE
    assert message.text is None
    (attachment,) = message.attachments
    assert attachment.kind == MessageKind.IMAGE
    assert attachment.provider_media_id == "65463453"
    assert attachment.content_type == "image/jpeg"


def check_whatsapp_image_caption(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.provider_message_id == "external_id"
    assert message.sender == IdentityRef(IdentityKind.PHONE, "+5678")
    assert message.sender_name == "Kerry Fisher"
    assert message.kind == MessageKind.IMAGE
    assert message.text == "Check out my new phone!"
    assert message.attachments[0].provider_media_id == "id_image"


def check_whatsapp_document(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.kind == MessageKind.DOCUMENT
    assert message.text == "caption"
    (attachment,) = message.attachments
    assert attachment.filename == "filename.pdf"
    assert attachment.content_type == "application/pdf"
    assert attachment.provider_media_id == "1234567890987654321"
    assert message.data["forwarded"] is True
    assert message.reply_to_provider_ids == []


def check_whatsapp_voice(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.kind == MessageKind.AUDIO
    assert message.attachments[0].content_type == "audio/ogg; codecs=opus"
    assert message.data["voice"] is True


def check_whatsapp_reply(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.text == "replied text"
    assert message.reply_to_provider_ids == ["wamid.xyzxyz=="]


def status_check(status: DeliveryStatus, at: int) -> Callable[[WebhookResult], None]:
    def check(result: WebhookResult) -> None:
        assert result.messages == []
        (update,) = result.statuses
        assert update.provider_message_id == "wamid.xyzxyz"
        assert update.status == status
        assert update.at == seconds(at)
        assert update.error_code is None

    return check


def check_whatsapp_failed(result: WebhookResult) -> None:
    (update,) = result.statuses
    assert update.status == DeliveryStatus.FAILED
    assert update.error_code == "130472"
    assert update.error_message == meta_common.MSG_RECIPIENT_UNAVAILABLE


def check_whatsapp_failed_131014(result: WebhookResult) -> None:
    (update,) = result.statuses
    assert update.provider_message_id == "external_id"
    assert update.status == DeliveryStatus.FAILED
    assert update.error_code == "131014"
    assert update.error_message == meta_common.MSG_MEDIA_FAILED


def check_whatsapp_errors_webhook(result: WebhookResult) -> None:
    assert result.messages == []
    assert result.statuses == []
    (error,) = result.account_errors
    assert error["code"] == 130429
    assert error["title"] == "Rate limit hit"


def check_messenger_text(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.provider_message_id == "external_id"
    assert message.sender == IdentityRef(IdentityKind.MESSENGER, "5678")
    assert message.text == "Hello World"
    assert message.kind == MessageKind.TEXT
    assert message.sent_at == ms(1459991487970)


def check_messenger_attachment(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.kind == MessageKind.IMAGE
    (attachment,) = message.attachments
    assert attachment.kind == MessageKind.IMAGE
    assert attachment.url == "https://image-url/foo.png"


def check_messenger_attachment_placeholder(result: WebhookResult) -> None:
    # Meta's docs example keeps "<image|video|audio|file>" as the type: an unknown kind,
    # which must be kept with its raw payload rather than dropped.
    (message,) = result.messages
    assert message.provider_message_id == "mid.$cAAJdkrCd2ORnva8ErFhjGm0X_Q_c"
    assert message.kind == MessageKind.UNKNOWN
    assert message.attachments[0].url == "<ATTACHMENT_URL>"
    assert message.raw["message"]["attachments"][0]["type"] == "<image|video|audio|file>"


def check_messenger_delivery(sender: str) -> Callable[[WebhookResult], None]:
    def check(result: WebhookResult) -> None:
        assert result.messages == []
        (update,) = result.statuses
        assert update.provider_message_id == "mid.1458668856218:ed81099e15d3f4f233"
        assert update.status == DeliveryStatus.DELIVERED
        assert update.at == ms(1458668856253)
        assert result.watermarks == [
            Watermark(
                IdentityRef(IdentityKind.MESSENGER, sender),
                DeliveryStatus.DELIVERED,
                ms(1458668856253),
            )
        ]

    return check


def check_messenger_echo(result: WebhookResult) -> None:
    assert result.messages == []
    assert result.statuses == []
    assert result.watermarks == []


def check_messenger_read(result: WebhookResult) -> None:
    assert result.messages == []
    assert result.statuses == []
    assert result.watermarks == [
        Watermark(IdentityRef(IdentityKind.MESSENGER, "<PSID>"), DeliveryStatus.READ, ms(1458668856253))
    ]


def check_messenger_quick_reply(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.sender == IdentityRef(IdentityKind.MESSENGER, "<PSID>")
    assert message.text == "hello, world!"
    assert message.data["quick_reply_payload"] == "<DEVELOPER_DEFINED_PAYLOAD>"
    assert message.sent_at == ms(1458692752478)


def check_messenger_reply(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.provider_message_id == "m_1457764197618:41d102a3e1ae206a38"
    assert message.reply_to_provider_ids == ["m_1fTq8oLumEyIp3Q2MR-aY7IfLZDamVrALniheU"]


def check_messenger_hackage(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.provider_message_id == "mid.1457764197618:41d102a3e1ae206a38"
    assert message.sender == IdentityRef(IdentityKind.MESSENGER, "USER_ID")
    assert message.text == "hello, world!"


def check_instagram_text(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.sender == IdentityRef(IdentityKind.INSTAGRAM, "5678")
    assert message.text == "Hello World"
    assert message.provider_message_id == "external_id"


def check_instagram_attachment(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.sender.kind == IdentityKind.INSTAGRAM
    assert message.kind == MessageKind.IMAGE
    assert message.attachments[0].url == "https://image-url/foo.png"


def check_instagram_story_mention(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.kind == MessageKind.STORY_MENTION
    (attachment,) = message.attachments
    assert attachment.kind == MessageKind.STORY_MENTION
    assert attachment.url == "https://story-url"


def check_instagram_unsent(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.unsend_of_provider_id == "external_id"
    assert message.provider_message_id != "external_id"
    assert message.sent_at == ms(1569262485349)


def check_instagram_share(result: WebhookResult) -> None:
    (message,) = result.messages
    assert message.provider_message_id == "{MESSAGE_ID}"
    assert message.sender == IdentityRef(IdentityKind.INSTAGRAM, "{SENDER_ID}")
    assert message.kind == MessageKind.TEXT
    (share,) = message.data["shares"]
    assert share["type"] == "share"
    assert share["ig_post_media_id"] == "18139494541428835"
    assert share["url"].startswith("https://lookaside.fbsbx.com/ig_messaging_cdn/")
    assert message.text is not None and share["url"] in message.text


def full_body(name: str) -> bytes:
    return fixture_bytes(name)


def messaging_event(name: str) -> bytes:
    return wrap_event(fixture_json(name))


def messenger_entry(name: str) -> bytes:
    return json.dumps({"object": "page", "entry": [fixture_json(name)]}).encode()


# fixture file -> (adapter kind, how to build the POST body, expectations)
INBOUND: dict[str, tuple[str, Callable[[str], bytes], Callable[[WebhookResult], None]]] = {
    "whatsapp_text.json": ("whatsapp", full_body, check_whatsapp_text),
    "whatsapp_text_pywa.json": ("whatsapp", full_body, check_whatsapp_text_pywa),
    "whatsapp_image.json": ("whatsapp", full_body, check_whatsapp_image),
    "whatsapp_image_with_caption_courier.json": (
        "whatsapp",
        full_body,
        check_whatsapp_image_caption,
    ),
    "whatsapp_document.json": ("whatsapp", full_body, check_whatsapp_document),
    "whatsapp_voice.json": ("whatsapp", full_body, check_whatsapp_voice),
    "whatsapp_reply_context.json": ("whatsapp", full_body, check_whatsapp_reply),
    "whatsapp_status_sent.json": (
        "whatsapp",
        full_body,
        status_check(DeliveryStatus.SENT, 1698266945),
    ),
    "whatsapp_status_delivered.json": (
        "whatsapp",
        full_body,
        status_check(DeliveryStatus.DELIVERED, 1698266945),
    ),
    "whatsapp_status_read.json": (
        "whatsapp",
        full_body,
        status_check(DeliveryStatus.READ, 1689380458),
    ),
    "whatsapp_status_failed.json": ("whatsapp", full_body, check_whatsapp_failed),
    "whatsapp_status_failed_131014_courier.json": (
        "whatsapp",
        full_body,
        check_whatsapp_failed_131014,
    ),
    "whatsapp_errors_webhook_130429.json": ("whatsapp", full_body, check_whatsapp_errors_webhook),
    "messenger_text_courier.json": ("messenger", full_body, check_messenger_text),
    "messenger_attachment_courier.json": ("messenger", full_body, check_messenger_attachment),
    "messenger_attachment_entry_metadocs.json": (
        "messenger",
        messenger_entry,
        check_messenger_attachment_placeholder,
    ),
    "messenger_delivery_courier.json": ("messenger", full_body, check_messenger_delivery("5678")),
    "messenger_delivery_event_metadocs.json": (
        "messenger",
        messaging_event,
        check_messenger_delivery("<PSID>"),
    ),
    "messenger_echo_courier.json": ("messenger", full_body, check_messenger_echo),
    "messenger_read_event_metadocs.json": ("messenger", messaging_event, check_messenger_read),
    "messenger_text_event_metadocs.json": (
        "messenger",
        messaging_event,
        check_messenger_quick_reply,
    ),
    "messenger_reply_event_metadocs.json": ("messenger", messaging_event, check_messenger_reply),
    "messenger_text_hackage_fbmessenger-api.json": (
        "messenger",
        full_body,
        check_messenger_hackage,
    ),
    "instagram_text_courier.json": ("instagram", full_body, check_instagram_text),
    "instagram_attachment_courier.json": ("instagram", full_body, check_instagram_attachment),
    "instagram_story_mention_courier.json": ("instagram", full_body, check_instagram_story_mention),
    "instagram_unsent_courier.json": ("instagram", full_body, check_instagram_unsent),
    "instagram_share_attachment_metadocs.json": ("instagram", full_body, check_instagram_share),
}
# Send-side fixtures, checked against what the adapters put on the wire further down.
SEND_SIDE = {
    "whatsapp_send_text_request.json",
    "whatsapp_send_template_request.json",
    "whatsapp_send_response.json",
    "whatsapp_send_error_response_130429.json",
    "messenger_send_text_request.json",
    "messenger_send_response_metadocs.json",
    "messenger_send_error_response_metadocs.json",
    "instagram_send_text_request.json",
}


def test_every_meta_fixture_is_covered() -> None:
    # given
    if not FIXTURES.is_dir():
        pytest.skip(f"shared provider fixtures folder {FIXTURES} is absent")
    present = {
        path.name for prefix in ("whatsapp_", "messenger_", "instagram_") for path in FIXTURES.glob(f"{prefix}*.json")
    }

    # when
    uncovered = present - set(INBOUND) - SEND_SIDE

    # then
    assert uncovered == set()
    assert present >= set(INBOUND) | SEND_SIDE


@pytest.mark.parametrize("name", sorted(INBOUND))
def test_fixture_parses(name: str) -> None:
    # given
    kind, build_body, check = INBOUND[name]
    body = build_body(name)

    # when
    result = parse(kind, body)

    # then
    check(result)


# Signatures and the handshake ---------------------------------------------------------

VECTOR_FIXTURES = {
    "whatsapp_text.json": "whatsapp",
    "messenger_text_courier.json": "messenger",
    "instagram_text_courier.json": "instagram",
}


def vectors() -> dict[str, Any]:
    return dict(fixture_json("signature_vectors.json"))


@pytest.mark.parametrize("name", sorted(VECTOR_FIXTURES))
def test_signature_vector_accepted(name: str) -> None:
    # given
    vector = vectors()[name]
    body = fixture_bytes(name)
    assert vector["header"].lower() == meta_common.SIGNATURE_HEADER
    assert len(body) == vector["body_bytes"]
    adapter = ADAPTERS[VECTOR_FIXTURES[name]]
    view = account(VECTOR_FIXTURES[name], app_secret=vector["app_secret"])

    # when
    result = adapter.parse_webhook(view, post(body, vector["value"]))

    # then
    assert len(result.messages) == 1


@pytest.mark.parametrize("name", sorted(VECTOR_FIXTURES))
def test_signature_vector_rejects_tampered_body(name: str) -> None:
    # given
    vector = vectors()[name]
    body = fixture_bytes(name).replace(b"Hello World", b"Hello Worle").replace(b"another color", b"another colour")
    adapter = ADAPTERS[VECTOR_FIXTURES[name]]

    # when
    with pytest.raises(WebhookError) as caught:
        adapter.parse_webhook(account(VECTOR_FIXTURES[name]), post(body, vector["value"]))

    # then
    assert caught.value.code == "signature_invalid"
    assert caught.value.status == 401


@pytest.mark.parametrize("name", sorted(VECTOR_FIXTURES))
def test_signature_vector_rejects_other_secret(name: str) -> None:
    # given
    vector = vectors()[name]
    view = account(VECTOR_FIXTURES[name], app_secret="another_app_secret")  # noqa: S106

    # when
    with pytest.raises(WebhookError) as caught:
        ADAPTERS[VECTOR_FIXTURES[name]].parse_webhook(view, post(fixture_bytes(name), vector["value"]))

    # then
    assert caught.value.code == "signature_invalid"


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_missing_signature_is_refused(kind: str) -> None:
    # given
    request = WebhookRequest("POST", "https://hilo.example/", {}, {}, b'{"object":"page"}')

    # when
    with pytest.raises(WebhookError) as caught:
        ADAPTERS[kind].parse_webhook(account(kind), request)

    # then
    assert (caught.value.code, caught.value.status) == ("signature_missing", 401)


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_unsigned_sha1_header_is_not_enough(kind: str) -> None:
    # given: only the legacy sha1 scheme, computed correctly
    body = b'{"object":"page","entry":[]}'
    digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha1).hexdigest()

    # when
    with pytest.raises(WebhookError) as caught:
        ADAPTERS[kind].parse_webhook(account(kind), post(body, f"sha1={digest}"))

    # then
    assert caught.value.code == "signature_invalid"


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_signed_garbage_is_malformed(kind: str) -> None:
    # given
    bodies = [b"not json", b"[1, 2]", b'{"object": "somethingelse", "entry": []}']

    for body in bodies:
        # when
        with pytest.raises(WebhookError) as caught:
            ADAPTERS[kind].parse_webhook(account(kind), post(body))

        # then
        assert (caught.value.code, caught.value.status) == ("payload_malformed", 400)


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_signed_webhook_without_entries_carries_nothing(kind: str) -> None:
    # given
    object_name = {"whatsapp": "whatsapp_business_account", "messenger": "page", "instagram": "instagram"}
    body = json.dumps({"object": object_name[kind]}).encode()

    # when
    result = ADAPTERS[kind].parse_webhook(account(kind), post(body))

    # then
    assert (result.messages, result.statuses, result.reply_body) == ([], [], None)


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_missing_app_secret_is_a_configuration_error(kind: str) -> None:
    # given
    view = account(kind, app_secret="")

    # when
    with pytest.raises(WebhookError) as caught:
        ADAPTERS[kind].parse_webhook(view, post(b"{}"))

    # then
    assert caught.value.code == "channel_not_configured"


def handshake_request(token: str | None = None) -> tuple[WebhookRequest, dict[str, Any]]:
    vector = vectors()["meta_verify_handshake"]
    method, target = vector["request"].split(" ", 1)
    query = dict(parse_qsl(urlsplit(target).query))
    if token is not None:
        query["hub.verify_token"] = token
    request = WebhookRequest(method, f"https://hilo.example{target}", {}, query, b"")
    return request, vector


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_handshake_vector_echoes_challenge(kind: str) -> None:
    # given
    request, vector = handshake_request()
    expected = vector["expected_response"]

    # when
    result = ADAPTERS[kind].parse_webhook(account(kind), request)

    # then
    assert isinstance(result, WebhookResult)
    assert result.reply_body == expected["body"].encode()
    assert result.reply_content_type == expected["content_type"]
    assert result.messages == []


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_handshake_vector_refuses_wrong_token(kind: str) -> None:
    # given
    request, vector = handshake_request(token="not-my-token")  # noqa: S106

    # when
    with pytest.raises(WebhookError) as caught:
        ADAPTERS[kind].parse_webhook(account(kind), request)

    # then
    assert caught.value.code == "verify_token_invalid"
    assert caught.value.status == vector["on_mismatch"]["status"]


def test_handshake_refused_when_no_verify_token_is_configured() -> None:
    # given
    request, _vector = handshake_request(token="")

    # when
    with pytest.raises(WebhookError) as caught:
        whatsapp.ADAPTER.parse_webhook(account("whatsapp", verify_token=""), request)

    # then
    assert caught.value.code == "verify_token_invalid"


def test_handshake_without_subscribe_mode_is_malformed() -> None:
    # given
    request = WebhookRequest("GET", "https://hilo.example/", {}, {"hub.challenge": "1"}, b"")

    # when
    with pytest.raises(WebhookError) as caught:
        messenger.ADAPTER.parse_webhook(account("messenger"), request)

    # then
    assert caught.value.code == "payload_malformed"


# WhatsApp kinds the captures do not cover (bodies written from Meta's webhook reference) ---


def whatsapp_body(*messages: dict[str, Any], number_id: str = "106540352242922") -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550783881", "phone_number_id": number_id},
        "contacts": [{"profile": {"name": "Ana Ruiz"}, "wa_id": "5215512345678"}],
        "messages": list(messages),
    }
    entry = {"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


def wa_message(kind: str, body: Any, **extra: Any) -> dict[str, Any]:
    return {
        "from": "5215512345678",
        "id": f"wamid.{kind}",
        "timestamp": "1749416383",
        "type": kind,
        kind: body,
        **extra,
    }


def test_whatsapp_location_contacts_sticker_video() -> None:
    # given
    location = {"latitude": 19.43, "longitude": -99.13, "name": "Zócalo", "address": "CDMX"}
    contacts = [{"name": {"formatted_name": "Luis"}, "phones": [{"phone": "+5215500000000"}]}]
    body = whatsapp_body(
        wa_message("location", location),
        {**wa_message("contacts", None), "contacts": contacts},
        wa_message("sticker", {"id": "st1", "mime_type": "image/webp", "animated": False}),
        wa_message("video", {"id": "vid1", "mime_type": "video/mp4", "caption": "mira"}),
    )

    # when
    loc, shared, sticker, video = parse("whatsapp", body).messages

    # then
    assert (loc.kind, loc.data["location"]) == (MessageKind.LOCATION, location)
    assert (shared.kind, shared.data["contacts"]) == (MessageKind.CONTACTS, contacts)
    assert sticker.kind == MessageKind.STICKER
    assert sticker.attachments[0].provider_media_id == "st1"
    assert (video.kind, video.text) == (MessageKind.VIDEO, "mira")
    assert all(m.sender_name == "Ana Ruiz" for m in (loc, shared, sticker, video))


def test_whatsapp_reaction_and_unknown_types_are_kept() -> None:
    # given
    reaction = wa_message("reaction", {"message_id": "wamid.OURS", "emoji": "👍"})
    unsupported = wa_message(
        "unsupported",
        None,
        errors=[{"code": 131051, "title": "Message type unknown"}],
    )
    future = wa_message("hologram", {"id": "h1"})

    # when
    first, second, third = parse("whatsapp", whatsapp_body(reaction, unsupported, future)).messages

    # then
    assert first.kind == MessageKind.UNKNOWN
    assert first.data["reaction"] == {"message_id": "wamid.OURS", "emoji": "👍"}
    assert first.reply_to_provider_ids == ["wamid.OURS"]
    assert second.kind == MessageKind.UNKNOWN
    assert second.data["errors"][0]["code"] == 131051
    assert third.kind == MessageKind.UNKNOWN
    assert third.raw["hologram"] == {"id": "h1"}


def test_whatsapp_buttons_give_their_titles_as_text() -> None:
    # given
    button = wa_message("button", {"text": "Sí, confirmar", "payload": "CONFIRM"})
    interactive = wa_message(
        "interactive",
        {"type": "list_reply", "list_reply": {"id": "r1", "title": "Soporte"}},
    )

    # when
    tapped, picked = parse("whatsapp", whatsapp_body(button, interactive)).messages

    # then
    assert (tapped.text, tapped.data["button_payload"]) == ("Sí, confirmar", "CONFIRM")
    assert picked.text == "Soporte"


def test_whatsapp_skips_other_numbers_of_the_business_account() -> None:
    # given
    body = whatsapp_body(wa_message("text", {"body": "hola"}), number_id="999")

    # when
    ours = parse("whatsapp", body, {"phone_number_id": "999"})
    theirs = parse("whatsapp", body, {"phone_number_id": "106540352242922"})

    # then
    assert [m.text for m in ours.messages] == ["hola"]
    assert theirs.messages == []


def test_whatsapp_message_without_sender_is_malformed() -> None:
    # given
    message = wa_message("text", {"body": "hola"})
    del message["from"]

    # when
    with pytest.raises(WebhookError) as caught:
        parse("whatsapp", whatsapp_body(message))

    # then
    assert caught.value.code == "payload_malformed"


def test_whatsapp_failed_status_with_131047_names_the_window() -> None:
    # given
    status = {
        "id": "wamid.OUT",
        "status": "failed",
        "timestamp": "1749416383",
        "recipient_id": "5215512345678",
        "errors": [{"code": 131047, "title": "Re-engagement message"}],
    }
    value = {"messaging_product": "whatsapp", "metadata": {}, "statuses": [status]}
    entry = {"id": "1", "changes": [{"value": value, "field": "messages"}]}
    body = json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()

    # when
    (update,) = parse("whatsapp", body).statuses

    # then
    assert update.error_code == "131047"
    assert update.error_message == meta_common.MSG_WHATSAPP_WINDOW_CLOSED


# Messenger / Instagram events the captures do not cover ---------------------------------


def test_messenger_postback_fallback_location_sticker_and_standby() -> None:
    # given
    sender, page = {"id": "PSID1"}, {"id": "PAGE1"}
    postback = {
        "sender": sender,
        "recipient": page,
        "timestamp": 1700000000000,
        "postback": {"title": "Hablar con un agente", "payload": "AGENT", "mid": "m_pb"},
    }
    shared_link = {
        "sender": sender,
        "recipient": page,
        "timestamp": 1700000000001,
        "message": {
            "mid": "m_fb",
            "attachments": [{"type": "fallback", "title": "Hilo", "payload": {"url": "https://hilo.example"}}],
        },
    }
    location = {
        "sender": sender,
        "recipient": page,
        "timestamp": 1700000000002,
        "message": {
            "mid": "m_loc",
            "attachments": [{"type": "location", "payload": {"coordinates": {"lat": 40.4, "long": -3.7}}}],
        },
    }
    sticker = {
        "sender": sender,
        "recipient": page,
        "timestamp": 1700000000003,
        "message": {
            "mid": "m_st",
            "sticker_id": 369239263222822,
            "attachments": [
                {
                    "type": "image",
                    "payload": {"url": "https://cdn/st.png", "sticker_id": 369239263222822},
                }
            ],
        },
    }
    entry = {
        "id": "PAGE1",
        "time": 1,
        "messaging": [postback, shared_link, location],
        "standby": [sticker],
    }
    body = json.dumps({"object": "page", "entry": [entry]}).encode()

    # when
    tapped, link, where, stuck = parse("messenger", body, {"page_id": "PAGE1"}).messages

    # then
    assert (tapped.provider_message_id, tapped.text) == ("m_pb", "Hablar con un agente")
    assert tapped.data["postback_payload"] == "AGENT"
    assert link.kind == MessageKind.TEXT
    assert link.text == "Hilo\nhttps://hilo.example"
    assert where.kind == MessageKind.LOCATION
    assert where.data["location"]["latitude"] == 40.4
    assert stuck.kind == MessageKind.STICKER


def test_messenger_skips_other_pages() -> None:
    # given
    body = fixture_bytes("messenger_text_courier.json")

    # when
    ours = parse("messenger", body, {"page_id": "1234567890"})
    theirs = parse("messenger", body, {"page_id": "55555"})

    # then
    assert len(ours.messages) == 1
    assert theirs.messages == []


def test_instagram_read_reaction_story_reply_and_echo() -> None:
    # given: shapes from Meta's Instagram webhook reference (no verbatim capture exists)
    sender, ig = {"id": "IGSID1"}, {"id": "IGID1"}
    events = [
        {
            "sender": sender,
            "recipient": ig,
            "timestamp": 1569262485349,
            "read": {"mid": "aWdfZAG1"},
        },
        {
            "sender": sender,
            "recipient": ig,
            "timestamp": 1569262485350,
            "reaction": {"mid": "aWdfZAG1", "action": "react", "reaction": "love", "emoji": "❤️"},
        },
        {
            "sender": sender,
            "recipient": ig,
            "timestamp": "1527459824",
            "message": {
                "mid": "aWdfZAG2",
                "text": "¡Qué bonito!",
                "reply_to": {"story": {"url": "https://cdn/story", "id": "1791"}},
            },
        },
        {
            "sender": ig,
            "recipient": sender,
            "timestamp": 1569262485351,
            "message": {"mid": "aWdfZAG3", "text": "our reply", "is_echo": True},
        },
    ]
    body = json.dumps({"object": "instagram", "entry": [{"id": "IGID1", "time": 1, "messaging": events}]}).encode()

    # when
    result = parse("instagram", body, {"instagram_account_id": "IGID1"})

    # then
    (read,) = result.statuses
    assert (read.provider_message_id, read.status) == ("aWdfZAG1", DeliveryStatus.READ)
    assert read.at == ms(1569262485349)
    reaction, story_reply = result.messages
    assert reaction.kind == MessageKind.UNKNOWN
    assert reaction.reply_to_provider_ids == ["aWdfZAG1"]
    assert reaction.data["reaction"]["emoji"] == "❤️"
    assert story_reply.text == "¡Qué bonito!"
    assert story_reply.data["story_reply"]["id"] == "1791"
    assert story_reply.sent_at == seconds(1527459824)


# Channel rules -------------------------------------------------------------------------


def send_context(
    kind: str,
    *,
    last_inbound_at: datetime | None,
    text: str | None = "hola",
    template: dict[str, Any] | None = None,
    opted_out: bool = False,
    config: dict[str, Any] | None = None,
) -> SendContext:
    identity = {"whatsapp": IdentityKind.PHONE, "messenger": IdentityKind.MESSENGER}
    return SendContext(
        account=account(kind, config),
        recipient=IdentityRef(identity.get(kind, IdentityKind.INSTAGRAM), "+5215512345678"),
        text=text,
        has_attachments=False,
        template=template,
        last_inbound_at=last_inbound_at,
        now=NOW,
        recipient_opted_out=opted_out,
    )


def test_whatsapp_free_form_allowed_inside_24_hours() -> None:
    # given
    ctx = send_context("whatsapp", last_inbound_at=NOW - timedelta(hours=23, minutes=59))

    # when
    refusal = whatsapp.ADAPTER.check_send(ctx)

    # then
    assert refusal is None


@pytest.mark.parametrize("last", [NOW - timedelta(hours=24, seconds=1), None])
def test_whatsapp_free_form_refused_after_24_hours(last: datetime | None) -> None:
    # given
    ctx = send_context("whatsapp", last_inbound_at=last)

    # when
    refusal = whatsapp.ADAPTER.check_send(ctx)

    # then
    assert refusal is not None
    assert refusal.code == "whatsapp_window_closed"
    assert refusal.reason == meta_common.MSG_WHATSAPP_WINDOW_CLOSED
    assert "template" in refusal.reason


def test_whatsapp_template_allowed_after_24_hours() -> None:
    # given
    ctx = send_context(
        "whatsapp",
        last_inbound_at=NOW - timedelta(days=30),
        template={"name": "hello_world", "language": "en_US"},
        config={"templates": [{"name": "hello_world", "language": "en_US", "components": []}]},
    )

    # when
    refusal = whatsapp.ADAPTER.check_send(ctx)

    # then
    assert refusal is None


def test_whatsapp_template_missing_from_the_synced_list_is_refused() -> None:
    # given
    ctx = send_context(
        "whatsapp",
        last_inbound_at=None,
        template={"name": "hello_world", "language": {"code": "es"}},
        config={"templates": [{"name": "hello_world", "language": "en_US", "components": []}]},
    )

    # when
    refusal = whatsapp.ADAPTER.check_send(ctx)

    # then
    assert refusal is not None
    assert refusal.code == "whatsapp_template_unknown"


@pytest.mark.parametrize("kind", sorted(ADAPTERS))
def test_opted_out_recipient_is_refused(kind: str) -> None:
    # given
    ctx = send_context(
        kind,
        last_inbound_at=NOW - timedelta(minutes=5),
        template={"name": "hello_world", "language": "en_US"} if kind == "whatsapp" else None,
        opted_out=True,
    )

    # when
    refusal = ADAPTERS[kind].check_send(ctx)

    # then
    assert refusal is not None
    assert refusal.code == "recipient_opted_out"


@pytest.mark.parametrize(
    ("kind", "limit_text", "too_long_text"),
    [
        ("whatsapp", "a" * 4096, "a" * 4097),
        ("messenger", "ñ" * 2000, "ñ" * 2001),
        ("instagram", "a" * 1000, "ñ" * 501),
    ],
)
def test_text_length_limits(kind: str, limit_text: str, too_long_text: str) -> None:
    # given
    recent = NOW - timedelta(minutes=1)

    # when
    at_limit = ADAPTERS[kind].check_send(send_context(kind, last_inbound_at=recent, text=limit_text))
    over = ADAPTERS[kind].check_send(send_context(kind, last_inbound_at=recent, text=too_long_text))

    # then
    assert at_limit is None
    assert over is not None
    assert over.code == f"{kind}_text_too_long"


@pytest.mark.parametrize("kind", ["messenger", "instagram"])
def test_messaging_window_rules(kind: str) -> None:
    # given
    adapter = ADAPTERS[kind]
    tagged = {"human_agent_tag": "true"}

    def refusal_for(last: datetime | None, config: dict[str, Any] | None = None) -> str | None:
        refusal = adapter.check_send(send_context(kind, last_inbound_at=last, config=config))
        if refusal is not None:
            assert refusal.code == f"{kind}_window_closed"
        return refusal.reason if refusal else None

    # when / then
    assert refusal_for(NOW - timedelta(hours=24)) is None
    assert refusal_for(NOW - timedelta(days=3)) == messenger.MSG_OUTSIDE_24H
    assert refusal_for(NOW - timedelta(days=3), tagged) is None
    assert refusal_for(NOW - timedelta(days=7, seconds=1), tagged) == messenger.MSG_OUTSIDE_7_DAYS
    assert refusal_for(None, tagged) == messenger.MSG_NEVER_WROTE


# Sending against the fake Graph API ------------------------------------------------------


@pytest.fixture(scope="module")
def graph_server() -> Iterator[FakeGraphAPI]:
    with running_fake_graph(TOKEN) as fake:
        yield fake


@pytest.fixture
def graph(graph_server: FakeGraphAPI) -> FakeGraphAPI:
    graph_server.reset()
    return graph_server


def wa_account(graph: FakeGraphAPI, **secrets: str) -> ChannelAccountView:
    config = {
        "phone_number_id": "106540352242922",
        "waba_id": "102290129340398",
        "api_base_url": graph.base_url,
    }
    return account("whatsapp", config, **secrets)


def outbound(
    recipient: IdentityRef,
    text: str | None = "Yes, it also comes in blue and green.",
    **extra: Any,
) -> OutboundMessage:
    return OutboundMessage(
        message_id=1,
        conversation_id=1,
        recipient=recipient,
        text=text,
        idempotency_key="msg-1",
        **extra,
    )


WA_CUSTOMER = IdentityRef(IdentityKind.PHONE, "+16505551234")
PSID = IdentityRef(IdentityKind.MESSENGER, "<PSID>")
IGSID = IdentityRef(IdentityKind.INSTAGRAM, "<IGSID>")


def test_whatsapp_send_text_matches_the_documented_request(graph: FakeGraphAPI) -> None:
    # given
    expected = fixture_json("whatsapp_send_text_request.json")

    # when
    result = asyncio.run(whatsapp.ADAPTER.send(wa_account(graph), outbound(WA_CUSTOMER)))

    # then
    (request,) = graph.requests
    assert request.path == "/v21.0/106540352242922/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json == expected
    assert result.provider_message_id.startswith("wamid.FAKE")


def test_whatsapp_send_reads_the_documented_response() -> None:
    # given: the captured success body, as the real API returns it
    response = fixture_json("whatsapp_send_response.json")

    # when
    provider_id = whatsapp._sent_message_id(response)

    # then
    assert provider_id == "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA"


def test_whatsapp_send_template_matches_the_documented_request(graph: FakeGraphAPI) -> None:
    # given
    expected = fixture_json("whatsapp_send_template_request.json")
    message = outbound(WA_CUSTOMER, text=None, template={"name": "hello_world", "language": "en_US"})

    # when
    asyncio.run(whatsapp.ADAPTER.send(wa_account(graph), message))

    # then
    (request,) = graph.requests
    assert request.json == {**expected, "recipient_type": "individual"}


def test_whatsapp_send_reply_context_and_media_link(graph: FakeGraphAPI) -> None:
    # given
    photo = OutboundAttachment("blue.jpg", "image/jpeg", b"", url="https://files.example/blue.jpg")
    message = outbound(WA_CUSTOMER, text="Aquí está", attachments=(photo,), in_reply_to="wamid.IN")

    # when
    asyncio.run(whatsapp.ADAPTER.send(wa_account(graph), message))

    # then
    (request,) = graph.requests
    assert request.json["type"] == "image"
    assert request.json["image"] == {
        "link": "https://files.example/blue.jpg",
        "caption": "Aquí está",
    }
    assert request.json["context"] == {"message_id": "wamid.IN"}


def test_whatsapp_send_uploads_bytes_then_sends_by_media_id(graph: FakeGraphAPI) -> None:
    # given
    invoice = OutboundAttachment("factura.pdf", "application/pdf", b"%PDF-1.7 fake")
    voice = OutboundAttachment("nota.ogg", "audio/ogg", b"OggS fake")
    message = outbound(WA_CUSTOMER, text="Su factura", attachments=(invoice, voice))

    # when
    result = asyncio.run(whatsapp.ADAPTER.send(wa_account(graph), message))

    # then
    uploads = graph.requests_to("/media")
    assert [u.files["file"] for u in uploads] == [
        ("factura.pdf", "application/pdf", b"%PDF-1.7 fake"),
        ("nota.ogg", "audio/ogg", b"OggS fake"),
    ]
    assert uploads[0].form == {"messaging_product": "whatsapp", "type": "application/pdf"}
    document, audio = (r.json for r in graph.requests_to("/messages"))
    assert document["document"]["filename"] == "factura.pdf"
    assert document["document"]["caption"] == "Su factura"
    assert set(document["document"]) == {"id", "filename", "caption"}
    assert audio["type"] == "audio"
    assert "caption" not in audio["audio"]
    # each file is uploaded just before its own message (id 1, then the document's id 2),
    # so a retry uploads only what it still sends; the captioned document names it
    assert result.provider_message_id == "wamid.FAKE000002"


def test_whatsapp_rate_limit_with_retry_after_is_retryable(graph: FakeGraphAPI) -> None:
    # given
    graph.fail_next(429, fake_meta.RATE_LIMIT_ERROR, headers={"Retry-After": "7"})

    # when
    with pytest.raises(SendError) as caught:
        asyncio.run(whatsapp.ADAPTER.send(wa_account(graph), outbound(WA_CUSTOMER)))

    # then
    error = caught.value
    assert (error.code, error.retryable, error.retry_after) == ("rate_limited", True, 7.0)
    assert error.reason == meta_common.MSG_RATE_LIMITED


def test_whatsapp_131047_needs_a_template(graph: FakeGraphAPI) -> None:
    # given
    graph.fail_next(400, fake_meta.RE_ENGAGEMENT_ERROR)

    # when
    with pytest.raises(SendError) as caught:
        asyncio.run(whatsapp.ADAPTER.send(wa_account(graph), outbound(WA_CUSTOMER)))

    # then
    error = caught.value
    assert error.needs_template is True
    assert error.retryable is False
    assert error.code == "whatsapp_window_closed"


def test_whatsapp_bad_token_is_not_retryable(graph: FakeGraphAPI) -> None:
    # given
    view = wa_account(graph, access_token="expired-token")  # noqa: S106

    # when
    with pytest.raises(SendError) as caught:
        asyncio.run(whatsapp.ADAPTER.send(view, outbound(WA_CUSTOMER)))

    # then
    assert (caught.value.code, caught.value.retryable) == ("auth_failed", False)
    assert caught.value.reason == meta_common.MSG_AUTH_FAILED


def test_server_error_then_success(graph: FakeGraphAPI) -> None:
    # given
    graph.fail_next(503, {"error": {"message": "Service temporarily unavailable", "code": 2}})

    # when
    with pytest.raises(SendError) as caught:
        asyncio.run(whatsapp.ADAPTER.send(wa_account(graph), outbound(WA_CUSTOMER)))
    retried = asyncio.run(whatsapp.ADAPTER.send(wa_account(graph), outbound(WA_CUSTOMER)))

    # then
    assert caught.value.retryable is True
    assert retried.provider_message_id.startswith("wamid.FAKE")
    assert len(graph.requests) == 2


def test_unreachable_provider_is_retryable() -> None:
    # given
    view = account("whatsapp", {"phone_number_id": "1", "api_base_url": f"http://127.0.0.1:{free_port()}"})

    # when
    with pytest.raises(SendError) as caught:
        asyncio.run(whatsapp.ADAPTER.send(view, outbound(WA_CUSTOMER)))

    # then
    assert (caught.value.code, caught.value.retryable) == ("provider_unavailable", True)


def test_missing_settings_are_not_retryable() -> None:
    # given
    view = account("whatsapp", {})

    # when
    with pytest.raises(SendError) as caught:
        asyncio.run(whatsapp.ADAPTER.send(view, outbound(WA_CUSTOMER)))

    # then
    assert (caught.value.code, caught.value.retryable) == ("channel_not_configured", False)


def test_sync_templates_follows_pages_and_keeps_approved(graph: FakeGraphAPI) -> None:
    # given
    graph.templates.extend(
        {
            "name": f"t{i}",
            "language": "es",
            "status": "APPROVED",
            "category": "UTILITY",
            "components": [],
        }
        for i in range(120)
    )

    # when
    templates = asyncio.run(whatsapp.sync_templates(wa_account(graph)))

    # then
    requests = graph.requests_to("/message_templates")
    assert [r.path for r in requests] == ["/v21.0/102290129340398/message_templates"] * 2
    assert requests[1].query["after"] == "100"
    names = [t["name"] for t in templates]
    assert names[:2] == ["hello_world", "order_update"]
    assert "spring_sale" not in names
    assert len(names) == 122
    assert templates[0]["language"] == "en_US"
    assert templates[0]["components"][1]["type"] == "BODY"


def test_download_media_uses_the_short_lived_url(graph: FakeGraphAPI) -> None:
    # given
    graph.media["65463453"] = (b"\xff\xd8jpeg", "image/jpeg")

    # when
    data, content_type = asyncio.run(whatsapp.download_media(wa_account(graph), "65463453"))

    # then
    assert (data, content_type) == (b"\xff\xd8jpeg", "image/jpeg")
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in graph.requests)


def msgr_account(graph: FakeGraphAPI, kind: str = "messenger", **secrets: str) -> ChannelAccountView:
    return account(kind, {"api_base_url": graph.base_url}, **secrets)


def test_messenger_send_text_matches_the_documented_request(graph: FakeGraphAPI) -> None:
    # given
    expected = fixture_json("messenger_send_text_request.json")

    # when
    result = asyncio.run(messenger.ADAPTER.send(msgr_account(graph), outbound(PSID, text="hello, world!")))

    # then
    (request,) = graph.requests
    assert request.path == "/v21.0/me/messages"
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.json == expected
    assert result.provider_message_id.startswith("m_FAKE")


def test_messenger_send_reads_the_documented_response() -> None:
    # given
    response = fixture_json("messenger_send_response_metadocs.json")

    # when
    provider_id = messenger._sent_message_id(response)

    # then
    assert provider_id == "AG5Hz2U..."


def test_messenger_human_agent_tag(graph: FakeGraphAPI) -> None:
    # given
    message = outbound(PSID, text="Seguimos con su caso", tag=meta_common.HUMAN_AGENT_TAG)

    # when
    asyncio.run(messenger.ADAPTER.send(msgr_account(graph), message))

    # then
    (request,) = graph.requests
    assert request.json["messaging_type"] == "MESSAGE_TAG"
    assert request.json["tag"] == "HUMAN_AGENT"


def test_messenger_uploads_attachment_bytes_with_the_send(graph: FakeGraphAPI) -> None:
    # given
    photo = OutboundAttachment("foto.png", "image/png", b"\x89PNG fake")
    message = outbound(PSID, text=None, attachments=(photo,))

    # when
    asyncio.run(messenger.ADAPTER.send(msgr_account(graph), message))

    # then
    (request,) = graph.requests
    assert json.loads(request.form["recipient"]) == {"id": "<PSID>"}
    assert json.loads(request.form["message"]) == {"attachment": {"type": "image", "payload": {"is_reusable": True}}}
    assert request.form["messaging_type"] == "RESPONSE"
    assert request.files["filedata"] == ("foto.png", "image/png", b"\x89PNG fake")


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable", "opted_out"),
    [
        (400, fake_meta.PAGE_RATE_LIMIT_ERROR, "rate_limited", True, False),
        (400, fake_meta.OUTSIDE_WINDOW_ERROR, "messaging_window_closed", False, False),
        (400, fake_meta.USER_UNAVAILABLE_ERROR, "recipient_unavailable", False, True),
        (400, fake_meta.INVALID_TOKEN_ERROR, "auth_failed", False, False),
    ],
)
def test_messenger_error_mapping(
    graph: FakeGraphAPI,
    status: int,
    body: dict[str, Any],
    code: str,
    retryable: bool,
    opted_out: bool,
) -> None:
    # given
    graph.fail_next(status, body)

    # when
    with pytest.raises(SendError) as caught:
        asyncio.run(messenger.ADAPTER.send(msgr_account(graph), outbound(PSID)))

    # then
    error = caught.value
    assert (error.code, error.retryable, error.opted_out) == (code, retryable, opted_out)
    assert error.needs_template is False


def test_instagram_send_text_matches_the_documented_request(graph: FakeGraphAPI) -> None:
    # given
    expected = fixture_json("instagram_send_text_request.json")
    text = expected["message"]["text"]

    # when
    result = asyncio.run(instagram.ADAPTER.send(msgr_account(graph, "instagram"), outbound(IGSID, text=text)))

    # then
    (request,) = graph.requests
    assert request.path == "/v21.0/me/messages"
    assert request.json == expected
    assert result.provider_message_id.startswith("m_FAKE")


def test_instagram_default_host_is_graph_instagram() -> None:
    # given
    view = account("instagram")

    # when
    root = meta_common.api_root(view, instagram.ADAPTER.default_base_url)

    # then
    assert root == "https://graph.instagram.com/v21.0"


def test_instagram_attachment_needs_a_public_link(graph: FakeGraphAPI) -> None:
    # given
    linked = OutboundAttachment("a.jpg", "image/jpeg", b"", url="https://files.example/a.jpg")
    unlinked = OutboundAttachment("b.jpg", "image/jpeg", b"bytes")

    # when
    asyncio.run(
        instagram.ADAPTER.send(msgr_account(graph, "instagram"), outbound(IGSID, text=None, attachments=(linked,)))
    )
    with pytest.raises(SendError) as caught:
        asyncio.run(
            instagram.ADAPTER.send(
                msgr_account(graph, "instagram"),
                outbound(IGSID, text=None, attachments=(unlinked,)),
            )
        )

    # then
    (request,) = graph.requests
    assert request.json["message"] == {
        "attachment": {"type": "image", "payload": {"url": "https://files.example/a.jpg"}}
    }
    assert (caught.value.code, caught.value.retryable) == ("attachment_url_missing", False)


# Error mapping and the fake's bodies ---------------------------------------------------


def test_fake_error_bodies_are_the_captured_ones() -> None:
    # given
    captured_rate_limit = fixture_json("whatsapp_send_error_response_130429.json")
    captured_auth = fixture_json("messenger_send_error_response_metadocs.json")

    # then
    assert captured_rate_limit == fake_meta.RATE_LIMIT_ERROR
    assert captured_auth == fake_meta.INVALID_TOKEN_ERROR


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable"),
    [
        (500, None, "provider_unavailable", True),
        (429, None, "rate_limited", True),
        (403, None, "auth_failed", False),
        (400, {"error": {"code": 131026}}, "recipient_unavailable", False),
        (400, {"error": {"code": 131051}}, "invalid_request", False),
        (400, {"error": {"code": 132001}}, "template_invalid", False),
        (400, {"error": {"code": 131056}}, "rate_limited", True),
        (400, {"error": {"code": 999999}}, "provider_error", False),
        (400, {"error": {"code": 999999, "is_transient": True}}, "provider_unavailable", True),
        (400, {"error": {"code": 10, "error_subcode": 2534022}}, "messaging_window_closed", False),
        (400, {"error": {"code": 10}}, "permission_denied", False),
    ],
)
def test_graph_error_mapping(status: int, body: Any, code: str, retryable: bool) -> None:
    # when
    error = meta_common.graph_send_error(status, body)

    # then
    assert (error.code, error.retryable) == (code, retryable)


def test_retry_after_accepts_an_http_date() -> None:
    # given
    later = datetime.now(UTC) + timedelta(seconds=90)
    header = later.strftime("%a, %d %b %Y %H:%M:%S GMT")

    # when
    seconds_left = meta_common.retry_after_seconds({"retry-after": header})

    # then
    assert seconds_left is not None and 80 <= seconds_left <= 90


# Translations --------------------------------------------------------------------------


def msgids() -> set[str]:
    modules = (meta_common, whatsapp, messenger, instagram)
    return {
        value
        for module in modules
        for name, value in vars(module).items()
        if name.startswith("MSG_") and isinstance(value, str)
    }


@pytest.mark.parametrize("locale", ["en", "es"])
def test_every_msgid_is_in_the_catalog(locale: str) -> None:
    # given
    with (LOCALE_DIR / locale / "LC_MESSAGES" / "meta.po").open("rb") as handle:
        catalog = {str(m.id): str(m.string) for m in read_po(handle, locale=locale) if m.id}

    # when
    missing = msgids() - set(catalog)

    # then
    assert missing == set()
    for msgid in msgids():
        assert catalog[msgid]
        assert (catalog[msgid] == msgid) == (locale == "en")
