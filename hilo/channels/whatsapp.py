"""WhatsApp Cloud API channel: webhooks in, messages and templates out via the Graph API."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar

import httpx

from hilo.channels.base import (
    SENDER_ADDRESS,
    ChannelAccountView,
    ConnectionCheck,
    DeliveryStatus,
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
    StatusUpdate,
    WebhookError,
    WebhookRequest,
    WebhookResult,
    send_parts,
)
from hilo.channels.meta_common import (
    API_BASE_URL_FIELD,
    API_VERSION_FIELD,
    APP_SECRET_FIELD,
    CUSTOMER_SERVICE_WINDOW,
    HTTP_TIMEOUT,
    MSG_INVALID_REQUEST,
    MSG_PAYLOAD_MALFORMED,
    MSG_PROVIDER_ERROR,
    MSG_PROVIDER_UNAVAILABLE,
    MSG_TEMPLATE_INVALID,
    MSG_WHATSAPP_WINDOW_CLOSED,
    VERIFY_TOKEN_FIELD,
    answer_handshake,
    api_root,
    as_dict,
    as_list,
    classify_error_code,
    graph_call,
    graph_check,
    graph_send_error,
    meta_time,
    opted_out_refusal,
    read_signed_entries,
    require_setting,
    retry_after_seconds,
    within,
)
from hilo.channels.settings import SettingShape
from hilo.i18n import N_
from hilo.normalize import InvalidIdentity, normalize_phone

logger = logging.getLogger(__name__)

WEBHOOK_OBJECT = "whatsapp_business_account"
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024

MSG_TEXT_TOO_LONG = N_(
    "The message is too long for WhatsApp (at most 4,096 characters). Shorten it or split it into several messages."
)
MSG_TEMPLATE_UNKNOWN = N_(
    "This template is not in the channel's list of approved WhatsApp templates. Sync "
    "the templates in the channel settings or choose another one."
)

STATUSES = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
}
MEDIA_KINDS = {
    "image": MessageKind.IMAGE,
    "video": MessageKind.VIDEO,
    "audio": MessageKind.AUDIO,
    "document": MessageKind.DOCUMENT,
    "sticker": MessageKind.STICKER,
}
CAPTION_TYPES = frozenset({"image", "video", "document"})


def phone_identity(wa_id: str) -> IdentityRef:
    """Name a WhatsApp user by phone; wa_id is digits without "+"."""
    return IdentityRef(IdentityKind.PHONE, f"+{wa_id}" if wa_id.isdigit() else wa_id)


def sender_address(wa_id: str) -> str | None:
    """The wa_id to keep beside the message when it is not the digits of its phone identity.

    A Brazilian mobile WhatsApp names without its ninth digit (551187650000) is stored as
    +5511987650000, the number SMS and calls know; Meta delivers to the wa_id it gave, so
    replies go back to that (`OutboundMessage.recipient_address`)."""
    try:
        canonical = normalize_phone(wa_id, "US")
    except InvalidIdentity:
        return None
    return wa_id if canonical.removeprefix("+") != wa_id else None


def _text_part(message: Mapping[str, Any], key: str) -> str | None:
    value = as_dict(message.get(key)).get("body" if key == "text" else "text")
    return value if isinstance(value, str) else None


def _location(body: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("latitude", "longitude", "name", "address", "url")
    return {key: body[key] for key in keys if key in body}


def _interactive_title(body: Mapping[str, Any]) -> str | None:
    """Title of the button or list row the customer picked."""
    for key in ("button_reply", "list_reply"):
        title = as_dict(body.get(key)).get("title")
        if isinstance(title, str):
            return title
    return None


def parse_message(message: Mapping[str, Any], contacts: Mapping[str, Mapping[str, Any]]) -> InboundMessage:
    """Normalise one `value.messages[]` item."""
    sender = message.get("from")
    message_id = message.get("id")
    if not isinstance(sender, str) or not sender or not isinstance(message_id, str):
        raise WebhookError("payload_malformed", MSG_PAYLOAD_MALFORMED, 400)
    contact = contacts.get(sender, {})
    name = as_dict(contact.get("profile")).get("name")
    inbound = InboundMessage(
        provider_message_id=message_id,
        sender=phone_identity(sender),
        sender_name=name if isinstance(name, str) and name else None,
        sent_at=meta_time(message.get("timestamp")),
        raw=dict(message),
    )
    address = sender_address(sender)
    if address is not None:
        inbound.data[SENDER_ADDRESS] = address
    if isinstance(contact.get("user_id"), str):
        # Business-scoped user id: Meta's coming replacement for the phone number as key.
        inbound.data["whatsapp_user_id"] = contact["user_id"]
    context = as_dict(message.get("context"))
    if isinstance(context.get("id"), str):
        inbound.reply_to_provider_ids.append(context["id"])
    if context.get("forwarded") or context.get("frequently_forwarded"):
        inbound.data["forwarded"] = True
    if "referred_product" in context:
        inbound.data["referred_product"] = context["referred_product"]
    if "referral" in message:
        inbound.data["referral"] = message["referral"]

    kind = message.get("type")
    body = as_dict(message.get(kind)) if isinstance(kind, str) else {}
    if kind == "text":
        inbound.text = _text_part(message, "text")
    elif kind in MEDIA_KINDS:
        media_kind = MEDIA_KINDS[kind]
        inbound.kind = media_kind
        inbound.attachments.append(
            InboundAttachment(
                kind=media_kind,
                content_type=body.get("mime_type"),
                filename=body.get("filename"),
                provider_media_id=body.get("id"),
            )
        )
        caption = body.get("caption")
        inbound.text = caption if isinstance(caption, str) else None
        if body.get("voice"):
            inbound.data["voice"] = True
        if body.get("animated"):
            inbound.data["animated"] = True
    elif kind == "location":
        inbound.kind = MessageKind.LOCATION
        inbound.data["location"] = _location(body)
    elif kind == "contacts":
        inbound.kind = MessageKind.CONTACTS
        inbound.data["contacts"] = as_list(message.get("contacts"))
    elif kind == "button":
        # A quick-reply button of a template the customer tapped.
        inbound.text = _text_part(message, "button")
        inbound.data["button_payload"] = body.get("payload")
    elif kind == "interactive":
        inbound.text = _interactive_title(body)
        inbound.data["interactive"] = body
    else:
        # Reactions, orders, system notices, "unsupported" and types Meta adds later are
        # kept whole so nothing the customer sent is lost.
        inbound.kind = MessageKind.UNKNOWN
        inbound.data["whatsapp_type"] = kind
        if kind == "reaction":
            inbound.data["reaction"] = {
                "message_id": body.get("message_id"),
                "emoji": body.get("emoji"),
            }
            if isinstance(body.get("message_id"), str):
                inbound.reply_to_provider_ids.append(body["message_id"])
        errors = as_list(message.get("errors"))
        if errors:
            inbound.data["errors"] = errors
    return inbound


def parse_status(status: Mapping[str, Any]) -> StatusUpdate | None:
    """Normalise one `value.statuses[]` item; None for statuses we do not track."""
    delivery = STATUSES.get(str(status.get("status")))
    message_id = status.get("id")
    if delivery is None or not isinstance(message_id, str):
        logger.info("Ignoring WhatsApp status %r", status.get("status"))
        return None
    error_code: str | None = None
    error_message: str | None = None
    errors = as_list(status.get("errors"))
    if errors:
        first = errors[0]
        code = first.get("code")
        error_code = str(code) if code is not None else None
        stable_code, msgid = classify_error_code(code if isinstance(code, int) else None)
        if stable_code == "provider_error":
            # Unknown code: Meta's own words are the best explanation we have.
            details = as_dict(first.get("error_data")).get("details")
            title = first.get("title") or first.get("message")
            error_message = ": ".join(str(part) for part in (title, details) if part) or msgid
        else:
            error_message = msgid
    return StatusUpdate(
        provider_message_id=message_id,
        status=delivery,
        error_code=error_code,
        error_message=error_message,
        at=meta_time(status.get("timestamp")),
    )


def template_payload(template: Mapping[str, Any]) -> dict[str, Any]:
    """Build the Cloud API `template` object from `OutboundMessage.template`."""
    name = template.get("name")
    language = template.get("language")
    if isinstance(language, str):
        language = {"code": language}
    if not isinstance(name, str) or not name or not isinstance(language, dict):
        raise SendError("template_invalid", MSG_TEMPLATE_INVALID, retryable=False)
    payload: dict[str, Any] = {"name": name, "language": dict(language)}
    components = template.get("components")
    if components:
        payload["components"] = list(components)
    return payload


def _language_code(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("code")
    return value if isinstance(value, str) else None


def media_type(attachment: OutboundAttachment) -> str:
    """Pick the Cloud API message type for an attachment from its content type."""
    content_type = attachment.content_type.lower()
    if content_type == "image/webp":
        return "sticker"
    for prefix in ("image", "video", "audio"):
        if content_type.startswith(f"{prefix}/"):
            return prefix
    return "document"


class WhatsAppAdapter:
    """The WhatsApp Cloud API adapter."""

    kind: ClassVar[str] = "whatsapp"
    identity_kind: ClassVar[IdentityKind] = IdentityKind.PHONE
    config_keys: ClassVar[tuple[str, ...]] = (
        "phone_number_id",
        "waba_id",
        "api_base_url",
        "api_version",
        "templates",
    )
    secret_keys: ClassVar[tuple[str, ...]] = ("access_token", "app_secret", "verify_token")
    # The approved templates, synced from WhatsApp Manager or entered by an admin as JSON.
    structured_settings: ClassVar[Mapping[str, SettingShape]] = {"templates": SettingShape.LIST}
    label: ClassVar[str] = N_("WhatsApp (Cloud API)")
    setting_fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField(
            "phone_number_id",
            N_("Phone number ID"),
            N_("WhatsApp Manager > API Setup: the ID shown under the number (digits, not the phone number itself)."),
            required=True,
            placeholder="106540352242922",
        ),
        SettingField(
            "access_token",
            N_("Access token"),
            N_("A system user's permanent token with the whatsapp_business_messaging permission."),
            required=True,
        ),
        APP_SECRET_FIELD,
        VERIFY_TOKEN_FIELD,
        SettingField(
            "waba_id",
            N_("WhatsApp Business Account ID"),
            N_("Needed to sync your approved message templates."),
            placeholder="102290129340398",
        ),
        SettingField(
            "templates",
            N_("Message templates"),
            N_('Filled in by "Sync templates"; or a JSON list of {name, language, components}.'),
        ),
        API_BASE_URL_FIELD,
        API_VERSION_FIELD,
    )
    # Text and each attachment go out as separate WhatsApp messages, each with a status.
    sends_in_parts: ClassVar[bool] = True
    # Replies go to the wa_id the customer last wrote from (see `sender_address`).
    replies_to_sender_address: ClassVar[bool] = True

    def parse_webhook(self, account: ChannelAccountView, request: WebhookRequest) -> WebhookResult:
        if request.method.upper() == "GET":
            return answer_handshake(account, request)
        entries = read_signed_entries(account, request, WEBHOOK_OBJECT)
        own_number = str(account.config.get("phone_number_id") or "")
        result = WebhookResult()
        for entry in entries:
            for change in as_list(entry.get("changes")):
                if change.get("field") != "messages":
                    # Template reviews, quality and account updates: not conversation data.
                    logger.info("Ignoring WhatsApp webhook field %r", change.get("field"))
                    continue
                value = as_dict(change.get("value"))
                number = str(as_dict(value.get("metadata")).get("phone_number_id") or "")
                if own_number and number and number != own_number:
                    # The app's callback URL receives every number of the business
                    # account; another channel account owns this one.
                    logger.warning(
                        "WhatsApp webhook for number %s reached channel account %s (number %s)",
                        number,
                        account.id,
                        own_number,
                    )
                    continue
                self._parse_value(value, result)
        return result

    async def check_connection(self, account: ChannelAccountView) -> ConnectionCheck:
        """Read the phone number's name and display number with the access token."""
        number_id = str(account.config.get("phone_number_id") or "")
        node = await graph_check(
            account,
            f"{api_root(account)}/{number_id}",
            token_setting="access_token",  # noqa: S106 - a setting's name
            id_setting="phone_number_id",
            params={"fields": "display_phone_number,verified_name"},
        )
        values = {
            "number": str(node.get("display_phone_number") or number_id),
            "name": str(node.get("verified_name") or ""),
        }
        return ConnectionCheck(True, "connected", N_("Connected to the WhatsApp number {number} ({name})."), values)

    def _parse_value(self, value: Mapping[str, Any], result: WebhookResult) -> None:
        contacts = {str(contact.get("wa_id")): contact for contact in as_list(value.get("contacts"))}
        for message in as_list(value.get("messages")):
            result.messages.append(parse_message(message, contacts))
        for status in as_list(value.get("statuses")):
            update = parse_status(status)
            if update is not None:
                result.statuses.append(update)
        for error in as_list(value.get("errors")):
            logger.warning("WhatsApp account error %s: %s", error.get("code"), error.get("title"))
            result.account_errors.append(error)

    def check_send(self, ctx: SendContext) -> Refusal | None:
        if ctx.recipient_opted_out:
            return opted_out_refusal()
        if ctx.template is not None:
            return self._check_template(ctx)
        if ctx.text and len(ctx.text) > MAX_TEXT_LENGTH:
            return Refusal("whatsapp_text_too_long", MSG_TEXT_TOO_LONG)
        if not within(ctx.last_inbound_at, ctx.now, CUSTOMER_SERVICE_WINDOW):
            return Refusal("whatsapp_window_closed", MSG_WHATSAPP_WINDOW_CLOSED)
        return None

    def _check_template(self, ctx: SendContext) -> Refusal | None:
        """Refuse templates missing from the account's list, when the admin keeps one."""
        known = as_list(ctx.account.config.get("templates"))
        if not known or ctx.template is None:
            return None
        name = ctx.template.get("name")
        language = _language_code(ctx.template.get("language"))
        for entry in known:
            if entry.get("name") == name and language in (
                None,
                _language_code(entry.get("language")),
            ):
                return None
        return Refusal("whatsapp_template_unknown", MSG_TEMPLATE_UNKNOWN)

    async def send(self, account: ChannelAccountView, message: OutboundMessage) -> SendResult:
        token = require_setting(account.secrets, "access_token")
        number_id = require_setting(account.config, "phone_number_id")
        root = api_root(account)
        url = f"{root}/{number_id}/messages"
        envelope: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": message.recipient_address or message.recipient.value.removeprefix("+"),
        }
        if message.in_reply_to:
            envelope["context"] = {"message_id": message.in_reply_to}

        # One WhatsApp message per part; the first id names the Hilo message, whose text
        # (or caption) it carries. Parts are numbered the same way on every attempt.
        parts: list[SendPart] = []
        if message.template is not None:
            # The template carries its own text and header media.
            body = {**envelope, "type": "template", "template": template_payload(message.template)}
            parts.append(partial(_post_message, url, token, body))
        else:
            text = message.text or None
            attachments = list(message.attachments)
            caption: str | None = None
            if text and attachments and media_type(attachments[0]) in CAPTION_TYPES and len(text) <= MAX_CAPTION_LENGTH:
                caption, text = text, None
            if text:
                body = {**envelope, "type": "text", "text": {"preview_url": "://" in text, "body": text}}
                parts.append(partial(_post_message, url, token, body))
            for index, attachment in enumerate(attachments):
                media_caption = caption if index == 0 else None
                parts.append(
                    partial(self._send_media, account, token, root, number_id, envelope, attachment, media_caption)
                )
        if not parts:
            raise SendError("invalid_request", MSG_INVALID_REQUEST, retryable=False)
        return await send_parts(message, parts)

    async def _send_media(
        self,
        account: ChannelAccountView,
        token: str,
        root: str,
        number_id: str,
        envelope: Mapping[str, Any],
        attachment: OutboundAttachment,
        caption: str | None,
    ) -> str:
        """Send one attachment as its own WhatsApp message (uploading it first if needed)."""
        kind = media_type(attachment)
        media = await self._media_reference(account, token, root, number_id, attachment)
        if kind == "document":
            media["filename"] = attachment.filename
        if caption:
            media["caption"] = caption
        return await _post_message(f"{root}/{number_id}/messages", token, {**envelope, "type": kind, kind: media})

    async def _media_reference(
        self,
        account: ChannelAccountView,
        token: str,
        root: str,
        number_id: str,
        attachment: OutboundAttachment,
    ) -> dict[str, Any]:
        """Give Meta a link it can fetch, or upload the bytes and use the media id."""
        if attachment.url:
            return {"link": attachment.url}
        uploaded = await graph_call(
            "POST",
            f"{root}/{number_id}/media",
            token,
            data={"messaging_product": "whatsapp", "type": attachment.content_type},
            files={"file": (attachment.filename, attachment.data, attachment.content_type)},
            context="media upload",
        )
        media_id = uploaded.get("id")
        if not isinstance(media_id, str):
            raise SendError("provider_response_invalid", MSG_PROVIDER_ERROR, retryable=False)
        return {"id": media_id}


async def _post_message(url: str, token: str, body: Mapping[str, Any]) -> str:
    """Send one Cloud API message and return its wamid."""
    return _sent_message_id(await graph_call("POST", url, token, json_body=body))


def _sent_message_id(response: Mapping[str, Any]) -> str:
    messages = as_list(response.get("messages"))
    message_id = messages[0].get("id") if messages else None
    if not isinstance(message_id, str):
        raise SendError("provider_response_invalid", MSG_PROVIDER_ERROR, retryable=False)
    return message_id


async def sync_templates(account: ChannelAccountView) -> list[dict[str, Any]]:
    """Fetch the business account's approved templates as {name, language, category,
    components} dicts, following Graph pages. Raise `SendError` if Meta refuses."""
    token = require_setting(account.secrets, "access_token")
    waba_id = require_setting(account.config, "waba_id")
    url = f"{api_root(account)}/{waba_id}/message_templates"
    params = {"fields": "name,language,status,category,components", "limit": "100"}
    templates: list[dict[str, Any]] = []
    while True:
        page = await graph_call("GET", url, token, params=params, context="template sync")
        for template in as_list(page.get("data")):
            if template.get("status", "APPROVED") != "APPROVED":
                continue
            templates.append(
                {
                    "name": template.get("name"),
                    "language": template.get("language"),
                    "category": template.get("category"),
                    "components": as_list(template.get("components")),
                }
            )
        paging = as_dict(page.get("paging"))
        after = as_dict(paging.get("cursors")).get("after")
        # `next` is only present when there is another page; its URL names Meta's host,
        # so follow the cursor against the configured base URL instead.
        if not paging.get("next") or not isinstance(after, str):
            return templates
        params = {**params, "after": after}


async def download_media(account: ChannelAccountView, media_id: str) -> tuple[bytes, str | None]:
    """Fetch an inbound attachment by `InboundAttachment.provider_media_id`.

    Meta first gives a short-lived URL, which needs the same bearer token. Returns the
    bytes and their content type; raises `SendError` (retryable when transient)."""
    token = require_setting(account.secrets, "access_token")
    info = await graph_call("GET", f"{api_root(account)}/{media_id}", token, context="media lookup")
    url = info.get("url")
    if not isinstance(url, str):
        raise SendError("provider_response_invalid", MSG_PROVIDER_ERROR, retryable=False)
    try:
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as client:
            response = await client.get(url, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise SendError("provider_unavailable", MSG_PROVIDER_UNAVAILABLE, retryable=True) from exc
    if not response.is_success:
        try:
            body = response.json()
        except ValueError:
            body = None
        raise graph_send_error(
            response.status_code,
            body,
            retry_after_seconds(response.headers),
            context="media download",
        )
    mime_type = info.get("mime_type")
    return response.content, mime_type if isinstance(mime_type, str) else None


ADAPTER = WhatsAppAdapter()
