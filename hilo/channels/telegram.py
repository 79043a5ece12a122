"""Telegram Bot API channel: secret-token webhooks, update parsing, sends and file downloads."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any, ClassVar

import httpx

from hilo import constant_time
from hilo.channels import json_body
from hilo.channels.base import (
    ChannelAccountView,
    ConnectionCheck,
    IdentityKind,
    IdentityRef,
    InboundAttachment,
    InboundMessage,
    MessageKind,
    OutboundAttachment,
    OutboundMessage,
    Refusal,
    SendContext,
    SendError,
    SendPart,
    SendResult,
    SettingField,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    send_parts,
)
from hilo.channels.setup import CheckFailed, json_object, probe, provider_error
from hilo.i18n import N_

DEFAULT_API_BASE_URL = "https://api.telegram.org"
SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name
SEND_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
# sendPhoto re-encodes and caps photos at 10 MB; anything else goes out as a document.
PHOTO_CONTENT_TYPES = frozenset({"image/jpeg", "image/png"})
MAX_PHOTO_BYTES = 10 * 1024 * 1024

REASON_MALFORMED = N_("The request body is not a Telegram update.")
REASON_BLOCKED = N_(
    "The customer has blocked the bot or deleted their Telegram account. "
    "You can message them there again once they restart the bot."
)
REASON_RATE_LIMITED = N_("Telegram is rate limiting this bot.")
REASON_AUTH_FAILED = N_("Telegram rejected the bot token. An administrator must check the channel's bot token.")
REASON_CHAT_NOT_FOUND = N_(
    "Telegram does not know this chat. The customer must start a conversation with the bot first."
)
REASON_FORBIDDEN = N_("Telegram does not allow the bot to message this chat.")
REASON_TEXT_TOO_LONG = N_("The message is longer than Telegram accepts (4096 characters). Shorten it or split it.")
REASON_REFUSED = N_("Telegram refused the message. The error code tells an administrator why.")
REASON_PROVIDER_DOWN = N_("Telegram is temporarily unavailable.")
REASON_NETWORK = N_("Could not reach Telegram.")
REASON_UNREADABLE = N_(
    "Telegram accepted the request but its answer could not be read. Check the chat before sending again."
)
REASON_EMPTY = N_("There is nothing to send: the message has no text and no attachments.")
REASON_NOT_CONFIGURED = N_("This channel has no bot token. An administrator must set it in the channel settings.")

# 403 descriptions that mean the person no longer wants (or can get) our messages.
_GONE_DESCRIPTIONS = ("bot was blocked by the user", "user is deactivated")
# Update fields that carry a new message, and those that carry an edit of one.
_MESSAGE_FIELDS = ("message", "business_message")
_EDIT_FIELDS = ("edited_message", "edited_business_message")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _sent_at(timestamp: Any) -> datetime | None:
    if isinstance(timestamp, int | float):
        return datetime.fromtimestamp(timestamp, UTC)
    return None


def _person_name(user: Mapping[str, Any]) -> str | None:
    full = " ".join(str(user[key]) for key in ("first_name", "last_name") if user.get(key))
    return full or (str(user["username"]) if user.get("username") else None)


def _phone_value(number: str) -> str:
    # Telegram gives shared phone numbers without the "+" for most users.
    digits = number.strip()
    return f"+{digits}" if digits.isdigit() else digits


def _file_attachment(kind: MessageKind, file: Mapping[str, Any], content_type: str | None = None) -> InboundAttachment:
    return InboundAttachment(
        kind=kind,
        content_type=file.get("mime_type") or content_type,
        filename=file.get("file_name"),
        provider_media_id=str(file["file_id"]),
        size=file.get("file_size"),
    )


def _sticker_content_type(sticker: Mapping[str, Any]) -> str:
    if sticker.get("is_video"):
        return "video/webm"
    if sticker.get("is_animated"):
        return "application/x-tgsticker"
    return "image/webp"


def _message_content(message: InboundMessage, payload: Mapping[str, Any]) -> None:
    """Fill kind, attachments and data from the one content field a Message carries."""
    if "text" in payload:
        message.kind = MessageKind.TEXT
    elif payload.get("photo"):
        largest = max(
            payload["photo"],
            key=lambda size: (
                size.get("width", 0) * size.get("height", 0),
                size.get("file_size", 0),
            ),
        )
        message.kind = MessageKind.IMAGE
        message.attachments.append(_file_attachment(MessageKind.IMAGE, largest, "image/jpeg"))
    # An animation also carries a `document` copy for old clients: check it first.
    elif "animation" in payload:
        message.kind = MessageKind.VIDEO
        message.attachments.append(_file_attachment(MessageKind.VIDEO, payload["animation"]))
    elif "video" in payload or "video_note" in payload:
        video = payload.get("video") or payload["video_note"]
        message.kind = MessageKind.VIDEO
        message.attachments.append(_file_attachment(MessageKind.VIDEO, video, "video/mp4"))
    elif "voice" in payload or "audio" in payload:
        audio = payload.get("voice") or payload["audio"]
        message.kind = MessageKind.AUDIO
        message.attachments.append(_file_attachment(MessageKind.AUDIO, audio))
        if "duration" in audio:
            message.data["duration"] = audio["duration"]
    elif "document" in payload:
        message.kind = MessageKind.DOCUMENT
        message.attachments.append(_file_attachment(MessageKind.DOCUMENT, payload["document"]))
    elif "sticker" in payload:
        sticker = payload["sticker"]
        message.kind = MessageKind.STICKER
        message.attachments.append(_file_attachment(MessageKind.STICKER, sticker, _sticker_content_type(sticker)))
        if sticker.get("emoji"):
            message.data["emoji"] = sticker["emoji"]
    elif "location" in payload:
        location = payload["location"]
        venue = _mapping(payload.get("venue"))
        message.kind = MessageKind.LOCATION
        message.data["location"] = {
            "latitude": location["latitude"],
            "longitude": location["longitude"],
            "name": venue.get("title"),
            "address": venue.get("address"),
        }
    elif "contact" in payload:
        contact = payload["contact"]
        message.kind = MessageKind.CONTACTS
        shared = {
            "name": _person_name(contact),
            "phone": _phone_value(str(contact.get("phone_number", ""))) or None,
            "telegram_user_id": contact.get("user_id"),
        }
        message.data["contacts"] = [shared]
        # A contact whose user id is the sender's own is their phone number (the
        # "share my phone number" button): Telegram vouches for it.
        if shared["phone"] and str(contact.get("user_id")) == message.sender.value:
            message.other_identities.append(IdentityRef(IdentityKind.PHONE, shared["phone"], verified=True))
    else:
        message.kind = MessageKind.UNKNOWN


def _parse_message(update: Mapping[str, Any], payload: Mapping[str, Any]) -> InboundMessage | None:
    sender = _mapping(payload.get("from"))
    if "id" not in sender:
        # Channel posts and anonymous group admins have no person behind them.
        return None
    chat = _mapping(payload.get("chat"))
    chat_id = chat.get("id", sender["id"])
    message = InboundMessage(
        provider_message_id=f"{chat_id}:{payload['message_id']}",
        sender=IdentityRef(IdentityKind.TELEGRAM, str(sender["id"])),
        sender_name=_person_name(sender),
        text=payload.get("text") or payload.get("caption"),
        sent_at=_sent_at(payload.get("date")),
        locale=sender.get("language_code"),
        data={"chat_id": chat_id},
        raw=update,
    )
    if sender.get("username"):
        message.data["username"] = sender["username"]
    reply_to = _mapping(payload.get("reply_to_message"))
    if "message_id" in reply_to:
        # A reply always quotes a message of the same chat, and ids are per chat.
        message.reply_to_provider_ids.append(f"{chat_id}:{reply_to['message_id']}")
    _message_content(message, payload)
    return message


def _parse_callback_query(query: Mapping[str, Any], update: Mapping[str, Any]) -> InboundMessage:
    """Store a button press as the customer's text: the button's callback data."""
    sender = _mapping(query.get("from"))
    button_message = _mapping(query.get("message"))
    chat_id = _mapping(button_message.get("chat")).get("id", sender["id"])
    message = InboundMessage(
        provider_message_id=f"callback:{query['id']}",
        sender=IdentityRef(IdentityKind.TELEGRAM, str(sender["id"])),
        sender_name=_person_name(sender),
        kind=MessageKind.TEXT,
        text=query.get("data") or query.get("game_short_name"),
        locale=sender.get("language_code"),
        data={"chat_id": chat_id, "callback_query_id": query["id"]},
        raw=update,
    )
    if "message_id" in button_message:
        message.reply_to_provider_ids.append(f"{chat_id}:{button_message['message_id']}")
    if query.get("inline_message_id"):
        message.data["inline_message_id"] = query["inline_message_id"]
    return message


def _parse_deletions(update: Mapping[str, Any]) -> list[InboundMessage]:
    """Messages deleted in a business account's chat: one unsend per message.

    Telegram tells bots about deletions only there; the chat is the private chat with the
    customer, so its id is theirs."""
    deleted = _mapping(update["deleted_business_messages"])
    chat = _mapping(deleted["chat"])
    unsends = []
    for message_id in deleted["message_ids"]:
        original = f"{chat['id']}:{int(message_id)}"
        unsends.append(
            InboundMessage(
                provider_message_id=f"{original}:deleted",
                sender=IdentityRef(IdentityKind.TELEGRAM, str(chat["id"])),
                sender_name=_person_name(chat),
                kind=MessageKind.UNKNOWN,
                unsend_of_provider_id=original,
                data={"chat_id": chat["id"], "update_type": "deleted_business_messages"},
                raw=update,
            )
        )
    return unsends


def _parse_unknown(update: Mapping[str, Any]) -> InboundMessage | None:
    """Keep an update of a type we do not model, if a person sent it."""
    for field, value in update.items():
        payload = _mapping(value)
        sender = _mapping(payload.get("from") or payload.get("user"))
        if "id" in sender:
            return InboundMessage(
                provider_message_id=f"update:{update.get('update_id')}",
                sender=IdentityRef(IdentityKind.TELEGRAM, str(sender["id"])),
                sender_name=_person_name(sender),
                kind=MessageKind.UNKNOWN,
                locale=sender.get("language_code"),
                data={"update_type": field},
                raw=update,
            )
    return None


def _chat_id(value: str) -> int | str:
    try:
        return int(value)
    except ValueError:
        return value


def _reply_parameters(in_reply_to: str | None, chat_id: int | str) -> dict[str, Any] | None:
    """Turn our "chat:message" provider id into Bot API reply_parameters for that chat."""
    if not in_reply_to:
        return None
    chat, _, message_id = in_reply_to.rpartition(":")
    if str(chat) != str(chat_id) or not message_id.isdigit():
        return None
    # A deleted original must not block the answer.
    return {"message_id": int(message_id), "allow_sending_without_reply": True}


def send_error_from_response(response: httpx.Response) -> SendError:
    """Map a Bot API error answer (`{"ok": false, "error_code", "description"}`) to a SendError."""
    try:
        payload = _mapping(response.json())
    except ValueError:
        payload = {}
    code = payload.get("error_code") or response.status_code
    description = str(payload.get("description", "")).lower()
    parameters = _mapping(payload.get("parameters"))
    if code == 429:
        retry_after = parameters.get("retry_after") or response.headers.get("retry-after")
        return SendError(
            "rate_limited",
            REASON_RATE_LIMITED,
            retryable=True,
            retry_after=float(retry_after) if retry_after else None,
        )
    if code == 403:
        if any(gone in description for gone in _GONE_DESCRIPTIONS):
            return SendError("bot_blocked", REASON_BLOCKED, retryable=False, opted_out=True)
        return SendError("forbidden", REASON_FORBIDDEN, retryable=False)
    # A wrong token in the path is answered 404 Not Found, a revoked one 401.
    if code in (401, 404):
        return SendError("auth_failed", REASON_AUTH_FAILED, retryable=False)
    if isinstance(code, int) and code >= 500:
        return SendError("provider_unavailable", REASON_PROVIDER_DOWN, retryable=True)
    if "chat not found" in description:
        return SendError("chat_not_found", REASON_CHAT_NOT_FOUND, retryable=False)
    if "message is too long" in description:
        return SendError("text_too_long", REASON_TEXT_TOO_LONG, retryable=False)
    return SendError(f"telegram_{code}", REASON_REFUSED, retryable=False)


def _utf16_length(text: str) -> int:
    # Bot API limits count UTF-16 code units, so an emoji takes two.
    return len(text.encode("utf-16-le")) // 2


class _BotApi:
    """One bot's Bot API calls over a shared HTTP client."""

    def __init__(self, account: ChannelAccountView, client: httpx.AsyncClient) -> None:
        self.token = account.secrets.get("bot_token", "")
        if not self.token:
            raise SendError("channel_not_configured", REASON_NOT_CONFIGURED, retryable=False)
        self.base = str(account.config.get("api_base_url") or DEFAULT_API_BASE_URL).rstrip("/")
        self.client = client

    async def call(
        self,
        method: str,
        payload: Mapping[str, Any],
        file: tuple[str, OutboundAttachment] | None = None,
    ) -> Any:
        url = f"{self.base}/bot{self.token}/{method}"
        try:
            if file is None:
                response = await self.client.post(url, json=dict(payload))
            else:
                # Multipart fields are strings; nested objects travel as JSON.
                fields = {key: value if isinstance(value, str) else json.dumps(value) for key, value in payload.items()}
                name, attachment = file
                response = await self.client.post(
                    url,
                    data=fields,
                    files={name: (attachment.filename, attachment.data, attachment.content_type)},
                )
        except httpx.HTTPError as exc:
            raise SendError("network_error", REASON_NETWORK, retryable=True) from exc
        try:
            answer = _mapping(response.json())
        except ValueError:
            answer = {}
        if not response.is_success or answer.get("ok") is not True:
            raise send_error_from_response(response)
        return answer.get("result")

    async def send_attachment(
        self, chat_id: int | str, attachment: OutboundAttachment, extra: Mapping[str, Any]
    ) -> Any:
        as_photo = attachment.content_type in PHOTO_CONTENT_TYPES and len(attachment.data) <= MAX_PHOTO_BYTES
        method, field = ("sendPhoto", "photo") if as_photo else ("sendDocument", "document")
        payload = {"chat_id": chat_id, **extra}
        if not attachment.data and attachment.url:
            return await self.call(method, {**payload, field: attachment.url})
        return await self.call(method, payload, file=(field, attachment))


def _provider_id(result: Any, chat_id: int | str) -> str:
    message = _mapping(result)
    if "message_id" not in message:
        raise SendError("unexpected_response", REASON_UNREADABLE, retryable=False)
    chat = _mapping(message.get("chat")).get("id", chat_id)
    return f"{chat}:{message['message_id']}"


async def get_file_url(account: ChannelAccountView, file_id: str) -> str:
    """Return the download URL of an inbound file (valid for at least an hour).

    Raises SendError, retryable for rate limits and outages, like a send would.
    """
    async with httpx.AsyncClient(timeout=SEND_TIMEOUT) as client:
        api = _BotApi(account, client)
        result = _mapping(await api.call("getFile", {"file_id": file_id}))
    if not result.get("file_path"):
        raise SendError("unexpected_response", REASON_UNREADABLE, retryable=False)
    return f"{api.base}/file/bot{api.token}/{result['file_path']}"


class TelegramAdapter:
    """Telegram bot channel account."""

    kind: ClassVar[str] = "telegram"
    identity_kind: ClassVar[IdentityKind] = IdentityKind.TELEGRAM
    config_keys: ClassVar[tuple[str, ...]] = ("api_base_url",)
    secret_keys: ClassVar[tuple[str, ...]] = ("bot_token", "secret_token")
    label: ClassVar[str] = N_("Telegram bot")
    setting_fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField(
            "bot_token",
            N_("Bot token"),
            N_("The token @BotFather gave when you created the bot (digits, a colon and letters)."),
            required=True,
            placeholder="123456789:AA...",
        ),
        SettingField(
            "secret_token",
            N_("Webhook secret token"),
            N_("Any random text (letters, digits, _ and -). Pass the same text as secret_token to setWebhook."),
            required=True,
        ),
        SettingField(
            "api_base_url",
            N_("API base URL"),
            N_("Leave empty to use Telegram's Bot API; set it for a local Bot API server."),
            placeholder=DEFAULT_API_BASE_URL,
        ),
    )

    async def check_connection(self, account: ChannelAccountView) -> ConnectionCheck:
        """Ask the Bot API who the bot is (getMe) with the bot token."""
        base = str(account.config.get("api_base_url") or DEFAULT_API_BASE_URL).rstrip("/")
        response = await probe("GET", f"{base}/bot{account.secrets.get('bot_token', '')}/getMe", provider="Telegram")
        answer = json_object(response, provider="Telegram")
        # A malformed token is answered 404 Not Found, a revoked or wrong one 401.
        if response.status_code in (401, 404) or answer.get("error_code") in (401, 404):
            raise CheckFailed(
                ConnectionCheck(
                    False,
                    "token_invalid",
                    N_("Telegram rejected the bot token. Copy it again from @BotFather (/mybots > API Token)."),
                    setting="bot_token",
                )
            )
        bot = _mapping(answer.get("result"))
        if not response.is_success or answer.get("ok") is not True or not bot.get("username"):
            return provider_error("Telegram", response.status_code)
        return ConnectionCheck(
            True, "connected", N_("Connected to the Telegram bot @{username}."), {"username": str(bot["username"])}
        )

    def parse_webhook(self, account: ChannelAccountView, request: WebhookRequest) -> WebhookResult:
        expected = account.secrets.get("secret_token", "")
        if not expected:
            raise WebhookError(
                "channel_not_configured",
                N_("This channel has no webhook secret token configured."),
                503,
            )
        given = request.headers.get(SECRET_HEADER)
        if not given:
            raise WebhookError(
                "signature_missing",
                N_("The request has no X-Telegram-Bot-Api-Secret-Token header."),
                401,
            )
        if not constant_time.equal(expected, given):
            raise WebhookError(
                "signature_invalid",
                N_("The X-Telegram-Bot-Api-Secret-Token header does not match this channel."),
                401,
            )
        update = json_body.decode(request.body, REASON_MALFORMED, exact=True)
        if not isinstance(update, dict):
            raise WebhookError("payload_malformed", REASON_MALFORMED, 400)
        try:
            return self._parse_update(update)
        except (KeyError, TypeError, ValueError) as exc:
            raise WebhookError("payload_malformed", REASON_MALFORMED, 400) from exc

    def _parse_update(self, update: dict[str, Any]) -> WebhookResult:
        result = WebhookResult()
        for field in _MESSAGE_FIELDS:
            if field in update:
                message = _parse_message(update, _mapping(update[field]))
                if message is not None:
                    result.messages.append(message)
                return result
        for field in _EDIT_FIELDS:
            if field in update:
                edit = _parse_message(update, _mapping(update[field]))
                if edit is not None:
                    edited_at = update[field].get("edit_date")
                    edit.edit_of_provider_id = edit.provider_message_id
                    edit.provider_message_id = f"{edit.provider_message_id}:edit:{edited_at}"
                    edit.sent_at = _sent_at(edited_at) or edit.sent_at
                    result.messages.append(edit)
                return result
        if "deleted_business_messages" in update:
            result.messages.extend(_parse_deletions(update))
            return result
        if "callback_query" in update:
            query = _mapping(update["callback_query"])
            result.messages.append(_parse_callback_query(query, update))
            # Answering in the webhook response stops the button's loading spinner
            # without a separate API call.
            result.reply_body = json.dumps({"method": "answerCallbackQuery", "callback_query_id": query["id"]}).encode()
            return result
        if "my_chat_member" in update:
            change = _mapping(update["my_chat_member"])
            status = _mapping(change.get("new_chat_member")).get("status")
            chat = _mapping(change.get("chat"))
            # In a private chat "kicked" means the person blocked the bot.
            if chat.get("type") == "private" and status in ("kicked", "member"):
                user_id = str(_mapping(change.get("from"))["id"])
                result.opt_changes[user_id] = status == "kicked"
            return result
        unknown = _parse_unknown(update)
        if unknown is not None:
            result.messages.append(unknown)
        return result

    def check_send(self, ctx: SendContext) -> Refusal | None:
        if ctx.recipient_opted_out:
            return Refusal("telegram_blocked", REASON_BLOCKED)
        if ctx.text and _utf16_length(ctx.text) > MAX_TEXT_LENGTH:
            return Refusal("telegram_text_too_long", REASON_TEXT_TOO_LONG)
        return None

    async def send(self, account: ChannelAccountView, message: OutboundMessage) -> SendResult:
        chat_id = _chat_id(message.recipient.value)
        reply = _reply_parameters(message.in_reply_to, chat_id)
        first_extra: dict[str, Any] = {"reply_parameters": reply} if reply else {}
        text = message.text or ""
        # Short text rides along as the first attachment's caption; longer text goes first.
        caption = text if message.attachments and _utf16_length(text) <= MAX_CAPTION_LENGTH else ""
        async with httpx.AsyncClient(timeout=SEND_TIMEOUT) as client:
            api = _BotApi(account, client)
            # One Telegram message per part; the first one quotes the customer's message.
            parts: list[SendPart] = []
            if text and not caption:
                payload = {"chat_id": chat_id, "text": text, **first_extra}
                parts.append(partial(_send_text, api, chat_id, payload))
            for attachment in message.attachments:
                extra = dict(first_extra) if not parts else {}
                if caption:
                    extra["caption"] = caption
                    caption = ""
                parts.append(partial(_send_file, api, chat_id, attachment, extra))
            if not parts:
                raise SendError("empty_message", REASON_EMPTY, retryable=False)
            return await send_parts(message, parts)


async def _send_text(api: _BotApi, chat_id: int | str, payload: Mapping[str, Any]) -> str:
    return _provider_id(await api.call("sendMessage", payload), chat_id)


async def _send_file(api: _BotApi, chat_id: int | str, attachment: OutboundAttachment, extra: Mapping[str, Any]) -> str:
    return _provider_id(await api.send_attachment(chat_id, attachment, extra), chat_id)


ADAPTER = TelegramAdapter()
