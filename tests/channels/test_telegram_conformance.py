"""Telegram adapter against the official and captured updates and a fake Bot API."""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.messages.pofile import read_po

from hilo.channels import telegram
from hilo.channels.base import (
    ChannelAccountView,
    IdentityKind,
    IdentityRef,
    InboundAttachment,
    InboundMessage,
    MessageKind,
    OutboundAttachment,
    OutboundMessage,
    SendContext,
    SendError,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from hilo.channels.telegram import get_file_url
from tests.channels.provider_support import skip_module_without_fixtures
from tests.fakes.server import free_port
from tests.fakes.telegram import FakeTelegram

FIXTURES = Path(__file__).parents[3] / "shared" / "fixtures"
skip_module_without_fixtures()
SECRET_VECTOR = json.loads((FIXTURES / "signature_vectors.json").read_text())["telegram"]
SECRET = SECRET_VECTOR["value"]
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LARGEST_PHOTO = "AgADAQADtKcxG4LRUUQSQVUjfJIiiF8G6C8ABA9NJzFdXskaincBAAEC"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def account(secrets: dict[str, str] | None = None, api_base_url: str | None = None) -> ChannelAccountView:
    config = {"api_base_url": api_base_url} if api_base_url else {}
    return ChannelAccountView(
        id=3,
        kind="telegram",
        name="Support bot",
        config=config,
        secrets={"secret_token": SECRET} if secrets is None else secrets,
    )


def webhook(body: bytes, secret: str | None = SECRET) -> WebhookRequest:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers[SECRET_VECTOR["header"].lower()] = secret
    return WebhookRequest(
        method="POST",
        url="https://example.com/webhooks/telegram/3",
        headers=headers,
        query={},
        body=body,
    )


def parse(body: bytes) -> WebhookResult:
    return telegram.ADAPTER.parse_webhook(account(), webhook(body))


def parse_one(body: bytes) -> InboundMessage:
    [message] = parse(body).messages
    return message


def update(**fields: Any) -> bytes:
    """A modern private-chat update from user 1111111 carrying `fields` in its message."""
    message = {
        "message_id": 1370,
        "from": {
            "id": 1111111,
            "is_bot": False,
            "first_name": "Ana",
            "last_name": "López",
            "username": "analopez",
            "language_code": "es",
        },
        "chat": {"id": 1111111, "first_name": "Ana", "type": "private"},
        "date": 1741000000,
        **fields,
    }
    return json.dumps({"update_id": 20000, "message": message}).encode()


def outbound(text: str | None = "Hi! An agent will be with you shortly.", **fields: Any) -> OutboundMessage:
    values: dict[str, Any] = {
        "message_id": 1,
        "conversation_id": 1,
        "recipient": IdentityRef(IdentityKind.TELEGRAM, "1111111"),
        "text": text,
        "idempotency_key": "msg-1",
    }
    values.update(fields)
    return OutboundMessage(**values)


def context(text: str | None = "Hello", opted_out: bool = False) -> SendContext:
    return SendContext(
        account=account(),
        recipient=IdentityRef(IdentityKind.TELEGRAM, "1111111"),
        text=text,
        has_attachments=False,
        template=None,
        last_inbound_at=None,
        now=NOW,
        recipient_opted_out=opted_out,
    )


@pytest.fixture
def bot() -> Iterator[tuple[FakeTelegram, ChannelAccountView]]:
    fake = FakeTelegram()
    with fake.running() as base_url:
        yield fake, account({"bot_token": fake.token, "secret_token": SECRET}, base_url)


def send_error(coro: Any) -> SendError:
    with pytest.raises(SendError) as caught:
        asyncio.run(coro)
    return caught.value


# --- secret token ---------------------------------------------------------------------


def test_secret_token_vector_is_accepted() -> None:
    # given
    request = webhook(fixture("telegram_text.json"), secret=SECRET_VECTOR["value"])

    # when
    result = telegram.ADAPTER.parse_webhook(account(), request)

    # then
    assert len(result.messages) == 1


@pytest.mark.parametrize("secret", [SECRET + "x", SECRET.upper(), SECRET[:-1], " " + SECRET])
def test_wrong_secret_token_is_refused(secret: str) -> None:
    # given
    request = webhook(fixture("telegram_text.json"), secret=secret)

    # when
    with pytest.raises(WebhookError) as caught:
        telegram.ADAPTER.parse_webhook(account(), request)

    # then
    assert (caught.value.code, caught.value.status) == ("signature_invalid", 401)


def test_missing_secret_token_is_refused() -> None:
    # given
    request = webhook(fixture("telegram_text.json"), secret=None)

    # when
    with pytest.raises(WebhookError) as caught:
        telegram.ADAPTER.parse_webhook(account(), request)

    # then
    assert (caught.value.code, caught.value.status) == ("signature_missing", 401)


def test_channel_without_secret_token_refuses_webhooks() -> None:
    # given
    request = webhook(fixture("telegram_text.json"))

    # when
    with pytest.raises(WebhookError) as caught:
        telegram.ADAPTER.parse_webhook(account(secrets={"bot_token": "1:x"}), request)

    # then
    assert caught.value.code == "channel_not_configured"


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'{"update_id": 1, "message": {"from": {"id": 5}, "chat": {"id": 5}}}']
)
def test_unparseable_update_is_malformed(body: bytes) -> None:
    # when
    with pytest.raises(WebhookError) as caught:
        parse(body)

    # then
    assert (caught.value.code, caught.value.status) == ("payload_malformed", 400)


# --- fixtures -------------------------------------------------------------------------


def test_text_fixture() -> None:
    # when
    message = parse_one(fixture("telegram_text.json"))

    # then
    assert message.provider_message_id == "1111111:1365"
    assert message.sender == IdentityRef(IdentityKind.TELEGRAM, "1111111")
    assert message.sender_name == "Test Firstname Test Lastname"
    assert (message.kind, message.text) == (MessageKind.TEXT, "/start")
    assert message.sent_at == datetime(2015, 9, 7, 17, 5, 32, tzinfo=UTC)
    assert message.data == {"chat_id": 1111111, "username": "Testusername"}
    assert message.raw["update_id"] == 10000
    assert message.reply_to_provider_ids == [] and message.edit_of_provider_id is None


def test_courier_text_fixture() -> None:
    # when
    message = parse_one(fixture("telegram_text_courier.json"))

    # then
    assert message.provider_message_id == "3527065:41"
    assert message.sender.value == "3527065"
    assert message.sender_name == "Nic Pottier"
    assert message.text == "Hello World"


def test_reply_fixture_names_the_quoted_message() -> None:
    # when
    message = parse_one(fixture("telegram_reply.json"))

    # then
    assert message.provider_message_id == "1111111:1365"
    assert message.reply_to_provider_ids == ["1111111:1334"]


def test_edited_message_fixture_names_the_original() -> None:
    # when
    message = parse_one(fixture("telegram_edited_message.json"))

    # then
    assert message.edit_of_provider_id == "1111111:1365"
    assert message.provider_message_id == "1111111:1365:edit:1441646600"
    assert message.text == "Edited text"
    assert message.sent_at == datetime.fromtimestamp(1441646600, UTC)


def test_photo_fixture_keeps_the_largest_size() -> None:
    # when
    message = parse_one(fixture("telegram_photo_courier.json"))

    # then
    assert message.provider_message_id == "3527065:85"
    assert message.kind is MessageKind.IMAGE
    assert message.text == "Photo Caption"
    assert message.attachments == [
        InboundAttachment(
            kind=MessageKind.IMAGE,
            content_type="image/jpeg",
            provider_media_id=LARGEST_PHOTO,
            size=104737,
        )
    ]


def test_voice_fixture() -> None:
    # when
    message = parse_one(fixture("telegram_voice.json"))

    # then
    assert message.kind is MessageKind.AUDIO
    assert message.text is None
    [voice] = message.attachments
    assert (voice.provider_media_id, voice.content_type, voice.size) == (
        "AwADBAADbXXXXXXXXXXXGBdhD2l6_XX",
        "audio/ogg",
        23000,
    )
    assert message.data["duration"] == 5


def test_document_fixture() -> None:
    # when
    message = parse_one(fixture("telegram_document.json"))

    # then
    assert message.kind is MessageKind.DOCUMENT
    [document] = message.attachments
    assert (document.filename, document.content_type, document.size) == (
        "Testfile.pdf",
        "application/pdf",
        536392,
    )
    assert document.provider_media_id == "AwADBAADbXXXXXXXXXXXGBdhD2l6_XX"


def test_callback_query_fixture_becomes_text_of_button_data() -> None:
    # when
    result = parse(fixture("telegram_callback_query.json"))

    # then
    [message] = result.messages
    assert message.provider_message_id == "callback:4382bfdwdsb323b2d9"
    assert message.sender == IdentityRef(IdentityKind.TELEGRAM, "1111111")
    assert (message.kind, message.text) == (MessageKind.TEXT, "Data from button callback")
    assert message.data["callback_query_id"] == "4382bfdwdsb323b2d9"
    assert message.data["inline_message_id"] == "1234csdbsk4839"
    assert json.loads(result.reply_body or b"") == {
        "method": "answerCallbackQuery",
        "callback_query_id": "4382bfdwdsb323b2d9",
    }
    assert result.reply_content_type == "application/json"


def test_callback_query_on_a_bot_message_threads_on_it() -> None:
    # given
    body = json.dumps(
        {
            "update_id": 1,
            "callback_query": {
                "id": "77",
                "from": {"id": 1111111, "is_bot": False, "first_name": "Ana"},
                "message": {"message_id": 1401, "chat": {"id": 1111111, "type": "private"}},
                "chat_instance": "-1",
                "data": "order:42",
            },
        }
    ).encode()

    # when
    message = parse_one(body)

    # then
    assert message.reply_to_provider_ids == ["1111111:1401"]
    assert message.text == "order:42"


# --- other message kinds (documented Bot API shapes) -----------------------------------


def test_modern_message_sets_locale_and_sender() -> None:
    # when
    message = parse_one(update(text="Hola"))

    # then
    assert message.locale == "es"
    assert message.sender_name == "Ana López"


def test_sticker() -> None:
    # given
    sticker = {"file_id": "CAAC1", "file_unique_id": "u1", "width": 512, "height": 512}
    body = update(sticker={**sticker, "emoji": "👍", "is_animated": False, "is_video": False})

    # when
    message = parse_one(body)

    # then
    assert message.kind is MessageKind.STICKER
    [attachment] = message.attachments
    assert (attachment.provider_media_id, attachment.content_type) == ("CAAC1", "image/webp")
    assert message.data["emoji"] == "👍"


def test_location_and_venue() -> None:
    # given
    location = {"latitude": 40.4168, "longitude": -3.7038}
    venue = {"location": location, "title": "Sol", "address": "Puerta del Sol"}

    # when
    plain = parse_one(update(location=location))
    with_venue = parse_one(update(location=location, venue=venue))

    # then
    assert plain.kind is MessageKind.LOCATION
    assert plain.data["location"] == {
        "latitude": 40.4168,
        "longitude": -3.7038,
        "name": None,
        "address": None,
    }
    assert with_venue.data["location"]["name"] == "Sol"


def test_own_contact_adds_a_verified_phone_identity() -> None:
    # given: the user pressed a "share my phone number" button
    contact = {"phone_number": "34600111222", "first_name": "Ana", "user_id": 1111111}

    # when
    message = parse_one(update(contact=contact))

    # then
    assert message.kind is MessageKind.CONTACTS
    assert message.data["contacts"] == [{"name": "Ana", "phone": "+34600111222", "telegram_user_id": 1111111}]
    assert message.other_identities == [IdentityRef(IdentityKind.PHONE, "+34600111222", verified=True)]


def test_someone_elses_contact_adds_no_identity() -> None:
    # given
    contact = {"phone_number": "+34600999888", "first_name": "Luis", "user_id": 2222222}

    # when
    message = parse_one(update(contact=contact))

    # then
    assert message.data["contacts"][0]["phone"] == "+34600999888"
    assert message.other_identities == []


def test_video_and_animation() -> None:
    # given
    video = {"file_id": "BAAC1", "file_unique_id": "v", "width": 1, "height": 1, "duration": 3}
    animation = {**video, "file_id": "CgAC1", "mime_type": "video/mp4"}

    # when
    as_video = parse_one(update(video=video))
    as_animation = parse_one(update(animation=animation, document=animation))

    # then
    assert (as_video.kind, as_video.attachments[0].content_type) == (MessageKind.VIDEO, "video/mp4")
    assert as_animation.kind is MessageKind.VIDEO
    assert [a.provider_media_id for a in as_animation.attachments] == ["CgAC1"]


def test_unknown_message_content_is_kept_as_unknown() -> None:
    # given
    body = update(dice={"emoji": "🎲", "value": 4})

    # when
    message = parse_one(body)

    # then
    assert message.kind is MessageKind.UNKNOWN
    assert message.provider_message_id == "1111111:1370"
    assert message.raw["message"]["dice"] == {"emoji": "🎲", "value": 4}


def test_unknown_update_type_from_a_person_is_kept_as_unknown() -> None:
    # given
    body = json.dumps(
        {
            "update_id": 30000,
            "message_reaction": {
                "chat": {"id": 1111111, "type": "private"},
                "message_id": 1401,
                "user": {"id": 1111111, "is_bot": False, "first_name": "Ana"},
                "date": 1741000000,
                "old_reaction": [],
                "new_reaction": [{"type": "emoji", "emoji": "👍"}],
            },
        }
    ).encode()

    # when
    message = parse_one(body)

    # then
    assert message.kind is MessageKind.UNKNOWN
    assert message.provider_message_id == "update:30000"
    assert message.data == {"update_type": "message_reaction"}
    assert message.raw == json.loads(body)


def test_channel_post_without_a_person_yields_nothing() -> None:
    # given
    body = json.dumps(
        {
            "update_id": 5,
            "channel_post": {
                "message_id": 9,
                "chat": {"id": -1001, "type": "channel"},
                "date": 1,
                "text": "News",
            },
        }
    ).encode()

    # when
    result = parse(body)

    # then
    assert result.messages == [] and result.statuses == []


@pytest.mark.parametrize(("status", "opted_out"), [("kicked", True), ("member", False)])
def test_blocking_and_restarting_the_bot_change_opt_status(status: str, opted_out: bool) -> None:
    # given
    user = {"id": 1111111, "is_bot": False, "first_name": "Ana"}
    body = json.dumps(
        {
            "update_id": 6,
            "my_chat_member": {
                "chat": {"id": 1111111, "type": "private"},
                "from": user,
                "date": 1,
                "old_chat_member": {"status": "member", "user": {"id": 7}},
                "new_chat_member": {"status": status, "user": {"id": 7}},
            },
        }
    ).encode()

    # when
    result = parse(body)

    # then
    assert result.opt_changes == {"1111111": opted_out}
    assert result.messages == []


# --- check_send -------------------------------------------------------------------------


def test_blocked_recipient_is_refused() -> None:
    # when
    refusal = telegram.ADAPTER.check_send(context(opted_out=True))

    # then
    assert refusal is not None and refusal.code == "telegram_blocked"
    assert refusal.reason == telegram.REASON_BLOCKED


@pytest.mark.parametrize(
    ("text", "refused"),
    [("a" * 4096, False), ("a" * 4097, True), ("😀" * 2048, False), ("😀" * 2049, True)],
)
def test_text_length_limit_counts_utf16_units(text: str, refused: bool) -> None:
    # when
    refusal = telegram.ADAPTER.check_send(context(text))

    # then
    assert (refusal is not None and refusal.code == "telegram_text_too_long") is refused


# --- send against the fake Bot API ------------------------------------------------------


def test_send_message_matches_documented_request(
    bot: tuple[FakeTelegram, ChannelAccountView],
) -> None:
    # given
    fake, channel = bot
    expected = json.loads(fixture("telegram_send_message_request.json"))

    # when
    result = asyncio.run(telegram.ADAPTER.send(channel, outbound(in_reply_to="1111111:1365")))

    # then
    [call] = fake.calls
    assert call.path == f"/bot{fake.token}/sendMessage"
    assert call.content_type == "application/json"
    assert call.params["chat_id"] == expected["chat_id"]
    assert call.params["text"] == expected["text"]
    assert call.params["reply_parameters"]["message_id"] == expected["reply_parameters"]["message_id"]
    assert result.provider_message_id == "1111111:1400"


def test_reply_to_a_message_of_another_chat_is_not_sent_as_reply(
    bot: tuple[FakeTelegram, ChannelAccountView],
) -> None:
    # given
    fake, channel = bot

    # when
    asyncio.run(telegram.ADAPTER.send(channel, outbound(in_reply_to="999:12")))

    # then
    assert "reply_parameters" not in fake.calls[0].params


def test_send_photo_uploads_with_caption(bot: tuple[FakeTelegram, ChannelAccountView]) -> None:
    # given
    fake, channel = bot
    photo = OutboundAttachment("receipt.jpg", "image/jpeg", b"\xff\xd8jpeg-bytes")

    # when
    result = asyncio.run(
        telegram.ADAPTER.send(channel, outbound("Your receipt", attachments=(photo,), in_reply_to="1111111:1365"))
    )

    # then
    [call] = fake.calls
    assert call.method == "sendPhoto"
    assert call.content_type.startswith("multipart/form-data")
    assert call.params["caption"] == "Your receipt"
    assert call.params["chat_id"] == "1111111"
    assert json.loads(call.params["reply_parameters"])["message_id"] == 1365
    upload = call.files["photo"]
    assert (upload.filename, upload.content_type, upload.data) == (
        "receipt.jpg",
        "image/jpeg",
        b"\xff\xd8jpeg-bytes",
    )
    assert result.provider_message_id == "1111111:1400"


def test_long_text_goes_before_documents(bot: tuple[FakeTelegram, ChannelAccountView]) -> None:
    # given
    fake, channel = bot
    text = "x" * 1500
    files = (
        OutboundAttachment("a.pdf", "application/pdf", b"%PDF-1"),
        OutboundAttachment("b.gif", "image/gif", b"GIF89a"),
    )

    # when
    result = asyncio.run(telegram.ADAPTER.send(channel, outbound(text, attachments=files)))

    # then
    assert [call.method for call in fake.calls] == ["sendMessage", "sendDocument", "sendDocument"]
    assert all("caption" not in call.params for call in fake.calls[1:])
    assert [call.files["document"].filename for call in fake.calls[1:]] == ["a.pdf", "b.gif"]
    assert result.provider_message_id == "1111111:1400"


def test_rate_limit_is_retryable_after_given_seconds(
    bot: tuple[FakeTelegram, ChannelAccountView],
) -> None:
    # given
    fake, channel = bot
    fake.fail_next(1, "telegram_error_429_courier.json")

    # when
    error = send_error(telegram.ADAPTER.send(channel, outbound()))
    retried = asyncio.run(telegram.ADAPTER.send(channel, outbound()))

    # then
    assert (error.code, error.retryable, error.retry_after) == ("rate_limited", True, 30.0)
    assert retried.provider_message_id == "1111111:1400"


def test_blocked_by_user_is_opted_out(bot: tuple[FakeTelegram, ChannelAccountView]) -> None:
    # given
    fake, channel = bot
    fake.block(1111111)

    # when
    error = send_error(telegram.ADAPTER.send(channel, outbound()))

    # then
    assert (error.code, error.retryable, error.opted_out) == ("bot_blocked", False, True)
    assert error.reason == telegram.REASON_BLOCKED


def test_blocked_fixture_body_is_opted_out(bot: tuple[FakeTelegram, ChannelAccountView]) -> None:
    # given
    fake, channel = bot
    fake.fail_next(1, "telegram_error_403_blocked_courier.json")

    # when
    error = send_error(telegram.ADAPTER.send(channel, outbound()))

    # then
    assert error.opted_out is True


def bot_api_error(code: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "description": description}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (bot_api_error(400, "Bad Request: chat not found"), ("chat_not_found", False, False)),
        (
            bot_api_error(403, "Forbidden: bot was kicked from the group chat"),
            ("forbidden", False, False),
        ),
        (bot_api_error(403, "Forbidden: user is deactivated"), ("bot_blocked", False, True)),
        (bot_api_error(502, "Bad Gateway"), ("provider_unavailable", True, False)),
        (bot_api_error(400, "Bad Request: message is too long"), ("text_too_long", False, False)),
        (bot_api_error(400, "Bad Request: wrong file identifier"), ("telegram_400", False, False)),
    ],
)
def test_send_errors_map_by_description(
    bot: tuple[FakeTelegram, ChannelAccountView], body: dict[str, Any], expected: tuple[str, bool, bool]
) -> None:
    # given
    fake, channel = bot
    fake.fail_next(1, body)

    # when
    error = send_error(telegram.ADAPTER.send(channel, outbound()))

    # then
    assert (error.code, error.retryable, error.opted_out) == expected


def test_wrong_bot_token_fails_auth(bot: tuple[FakeTelegram, ChannelAccountView]) -> None:
    # given
    _fake, channel = bot
    wrong = account({"bot_token": "1:wrong"}, channel.config["api_base_url"])

    # when
    error = send_error(telegram.ADAPTER.send(wrong, outbound()))

    # then
    assert (error.code, error.retryable) == ("auth_failed", False)


def test_unreachable_telegram_is_retryable() -> None:
    # given
    channel = account({"bot_token": "1:x"}, f"http://127.0.0.1:{free_port()}")

    # when
    error = send_error(telegram.ADAPTER.send(channel, outbound()))

    # then
    assert (error.code, error.retryable) == ("network_error", True)


def test_missing_bot_token_is_not_configured() -> None:
    # when
    error = send_error(telegram.ADAPTER.send(account({}), outbound()))

    # then
    assert (error.code, error.retryable) == ("channel_not_configured", False)


def test_empty_message_is_refused(bot: tuple[FakeTelegram, ChannelAccountView]) -> None:
    # given
    fake, channel = bot

    # when
    error = send_error(telegram.ADAPTER.send(channel, outbound(None)))

    # then
    assert error.code == "empty_message"
    assert fake.calls == []


def test_get_file_url_downloads_media(bot: tuple[FakeTelegram, ChannelAccountView]) -> None:
    # given
    fake, channel = bot
    fake.add_file(LARGEST_PHOTO, "photos/file_1.jpg", b"\xff\xd8photo")

    # when
    url = asyncio.run(get_file_url(channel, LARGEST_PHOTO))

    # then
    assert url == f"{channel.config['api_base_url']}/file/bot{fake.token}/photos/file_1.jpg"
    assert httpx.get(url).content == b"\xff\xd8photo"
    assert fake.calls[0].params == {"file_id": LARGEST_PHOTO}


def test_get_file_url_for_unknown_file_fails(bot: tuple[FakeTelegram, ChannelAccountView]) -> None:
    # given
    _fake, channel = bot

    # when
    error = send_error(get_file_url(channel, "nope"))

    # then
    assert (error.code, error.retryable) == ("telegram_400", False)


# --- translations ------------------------------------------------------------------------


def catalog_messages(locale: str) -> dict[str, str]:
    path = Path(str(telegram.__file__)).parents[1] / "locale" / locale / "LC_MESSAGES" / "telegram.po"
    with path.open("rb") as handle:
        return {str(m.id): str(m.string) for m in read_po(handle) if m.id}


def test_every_msgid_is_in_both_catalogs() -> None:
    # given
    tree = ast.parse(Path(str(telegram.__file__)).read_text())
    msgids = {
        str(node.args[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "N_"
        and isinstance(node.args[0], ast.Constant)
    }

    # when
    english = catalog_messages("en")
    spanish = catalog_messages("es")

    # then
    assert msgids and msgids <= set(english) and msgids <= set(spanish)
    assert all(english[msgid] == msgid for msgid in msgids)
    assert all(spanish[msgid] and spanish[msgid] != msgid for msgid in msgids)
