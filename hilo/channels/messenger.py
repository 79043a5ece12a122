"""Facebook Messenger channel: Page webhooks in, Send API out (24-hour and human-agent rules)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar

from hilo.channels.base import (
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
    Watermark,
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
    GRAPH_BASE_URL,
    HUMAN_AGENT_TAG,
    HUMAN_AGENT_TAG_FIELD,
    HUMAN_AGENT_WINDOW,
    MSG_INVALID_REQUEST,
    MSG_PAYLOAD_MALFORMED,
    MSG_PROVIDER_ERROR,
    VERIFY_TOKEN_FIELD,
    answer_handshake,
    api_root,
    as_dict,
    as_list,
    config_flag,
    graph_call,
    graph_check,
    meta_time,
    opted_out_refusal,
    read_signed_entries,
    require_setting,
    within,
)
from hilo.i18n import N_

logger = logging.getLogger(__name__)

MSG_TEXT_TOO_LONG = N_(
    "The message is too long for Messenger (at most 2,000 characters). Shorten it or split it into several messages."
)
MSG_NEVER_WROTE = N_(
    "The customer has not written on this channel yet, and Meta only allows replies to "
    "customers who wrote first. Reach them on another channel."
)
MSG_OUTSIDE_24H = N_(
    "More than 24 hours have passed since the customer last wrote. After that Meta only "
    "accepts replies from a human agent, within 7 days, and only when the human agent "
    "tag is enabled in the channel settings."
)
MSG_OUTSIDE_7_DAYS = N_(
    "More than 7 days have passed since the customer last wrote, so Meta accepts no reply "
    "on this channel. Wait for the customer to write again or reach them on another channel."
)

ATTACHMENT_KINDS = {
    "image": MessageKind.IMAGE,
    "video": MessageKind.VIDEO,
    "audio": MessageKind.AUDIO,
    "file": MessageKind.DOCUMENT,
    "story_mention": MessageKind.STORY_MENTION,
}
# Shared posts, reels and links: shown as text with the link, not as a file to fetch.
SHARE_TYPES = frozenset({"share", "ig_post", "ig_reel", "reel", "fallback"})
# Keys every messaging event has beside the one that names what happened.
ENVELOPE_KEYS = frozenset({"sender", "recipient", "timestamp"})
# The events Hilo reads field by field, in the order it looks for them; each names its
# sender, so one without is malformed.
KNOWN_EVENTS = ("message", "message_edit", "postback", "reaction", "delivery", "read")
# Events about the thread rather than from the person in it: the handover protocol
# between apps, and Meta's policy notices (which name no sender).
NOT_FROM_A_PERSON = frozenset(
    {
        "pass_thread_control",
        "take_thread_control",
        "request_thread_control",
        "app_roles",
        "policy_enforcement",
        "policy-enforcement",
    }
)


def attachment_type(attachment: OutboundAttachment) -> str:
    """Pick the Send API attachment type from a content type."""
    content_type = attachment.content_type.lower()
    for prefix in ("image", "video", "audio"):
        if content_type.startswith(f"{prefix}/"):
            return prefix
    return "file"


class MessengerAdapter:
    """The Messenger Platform adapter; Instagram reuses it with its own settings."""

    kind: ClassVar[str] = "messenger"
    identity_kind: ClassVar[IdentityKind] = IdentityKind.MESSENGER
    config_keys: ClassVar[tuple[str, ...]] = (
        "page_id",
        "api_base_url",
        "api_version",
        "human_agent_tag",
    )
    secret_keys: ClassVar[tuple[str, ...]] = ("page_access_token", "app_secret", "verify_token")
    webhook_object: ClassVar[str] = "page"
    own_id_key: ClassVar[str] = "page_id"
    credential_key: ClassVar[str] = "page_access_token"
    default_base_url: ClassVar[str] = GRAPH_BASE_URL
    text_too_long: ClassVar[str] = MSG_TEXT_TOO_LONG
    # Text and each attachment go out as separate messages, each with receipts.
    sends_in_parts: ClassVar[bool] = True
    label: ClassVar[str] = N_("Facebook Messenger")
    setting_fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField(
            "page_id",
            N_("Page ID"),
            N_("Your Facebook Page's ID: Page settings > About > Page transparency, or the app's Messenger settings."),
            required=True,
        ),
        SettingField(
            "page_access_token",
            N_("Page access token"),
            N_(
                "The app's Messenger settings > Access tokens: generate one for this Page (pages_messaging permission)."
            ),
            required=True,
        ),
        APP_SECRET_FIELD,
        VERIFY_TOKEN_FIELD,
        HUMAN_AGENT_TAG_FIELD,
        API_BASE_URL_FIELD,
        API_VERSION_FIELD,
    )
    # Connection test: what /me answers with the token, and the provider's name for messages.
    product_name: ClassVar[str] = "Messenger"

    # Webhooks ---------------------------------------------------------------------

    def parse_webhook(self, account: ChannelAccountView, request: WebhookRequest) -> WebhookResult:
        if request.method.upper() == "GET":
            return answer_handshake(account, request)
        entries = read_signed_entries(account, request, self.webhook_object)
        own_id = str(account.config.get(self.own_id_key) or "")
        result = WebhookResult()
        for entry in entries:
            if own_id and str(entry.get("id")) != own_id:
                # One app's callback URL receives every page subscribed to it.
                logger.warning(
                    "%s webhook for %s reached channel account %s (%s)",
                    self.kind,
                    entry.get("id"),
                    account.id,
                    own_id,
                )
                continue
            # `standby` carries events while another app (a bot) holds the thread under
            # the handover protocol; agents still need to see them.
            events = as_list(entry.get("messaging")) + as_list(entry.get("standby"))
            for event in events:
                self._parse_event(event, result, own_id)
        return result

    def _parse_event(self, event: Mapping[str, Any], result: WebhookResult, own_id: str) -> None:
        event_type = _event_type(event)
        if event_type in NOT_FROM_A_PERSON:
            logger.info("Ignoring %s %s event", self.kind, event_type)
            return
        sender_id = as_dict(event.get("sender")).get("id")
        if sender_id is None:
            if event_type in KNOWN_EVENTS:
                raise WebhookError("payload_malformed", MSG_PAYLOAD_MALFORMED, 400)
            # A plugin opt-in names the person by a `user_ref` only: no one to store it for.
            logger.info("Ignoring %s %s event without a sender", self.kind, event_type)
            return
        if own_id and str(sender_id) == own_id:
            # The page's own doings (echoes of our sends, its reactions): not the customer's.
            logger.info("Ignoring %s %s event sent by the account itself", self.kind, event_type)
            return
        sender = IdentityRef(self.identity_kind, str(sender_id))
        if event_type == "message":
            inbound = self._parse_message(sender, event)
            if inbound is not None:
                result.messages.append(inbound)
        elif event_type == "message_edit":
            result.messages.append(self._parse_edit(sender, event))
        elif event_type == "postback":
            result.messages.append(self._parse_postback(sender, event))
        elif event_type == "reaction":
            result.messages.append(self._parse_reaction(sender, event))
        elif event_type == "delivery":
            self._parse_receipt(sender, event, "delivery", DeliveryStatus.DELIVERED, result)
        elif event_type == "read":
            self._parse_receipt(sender, event, "read", DeliveryStatus.READ, result)
        else:
            # Opt-ins, referrals, feedback and whatever Meta adds later: a person did
            # something, so it is kept whole for the agent rather than dropped.
            result.messages.append(self._parse_other(sender, event, event_type))

    def _parse_message(self, sender: IdentityRef, event: Mapping[str, Any]) -> InboundMessage | None:
        message = as_dict(event.get("message"))
        if message.get("is_echo"):
            # Our own sends (and replies typed in the Page inbox) coming back: they are
            # not the customer's words.
            return None
        mid = message.get("mid")
        if not isinstance(mid, str) or not mid:
            raise WebhookError("payload_malformed", MSG_PAYLOAD_MALFORMED, 400)
        text = message.get("text")
        inbound = InboundMessage(
            provider_message_id=mid,
            sender=sender,
            text=text if isinstance(text, str) else None,
            sent_at=meta_time(event.get("timestamp")),
            raw=dict(event),
        )
        if message.get("is_deleted"):
            # The unsend repeats the original mid; a distinct id keeps ingest from
            # taking it for a retried delivery of the original.
            inbound.provider_message_id = f"{mid}#unsent"
            inbound.unsend_of_provider_id = mid
            return inbound
        quick_reply = as_dict(message.get("quick_reply"))
        if "payload" in quick_reply:
            inbound.data["quick_reply_payload"] = quick_reply["payload"]
        reply_to = as_dict(message.get("reply_to"))
        if isinstance(reply_to.get("mid"), str):
            inbound.reply_to_provider_ids.append(reply_to["mid"])
        if "story" in reply_to:
            inbound.data["story_reply"] = reply_to["story"]
        kinds = [self._add_attachment(inbound, item) for item in as_list(message.get("attachments"))]
        if kinds:
            inbound.kind = kinds[0]
        if message.get("is_unsupported") or (inbound.text is None and not kinds):
            inbound.kind = MessageKind.UNKNOWN
        return inbound

    def _add_attachment(self, inbound: InboundMessage, attachment: Mapping[str, Any]) -> MessageKind:
        """Record one `message.attachments[]` item; return the message kind it implies."""
        kind = attachment.get("type")
        payload = as_dict(attachment.get("payload"))
        url = payload.get("url") if isinstance(payload.get("url"), str) else None
        if kind == "location":
            coordinates = as_dict(payload.get("coordinates"))
            inbound.data["location"] = {
                "latitude": coordinates.get("lat"),
                "longitude": coordinates.get("long"),
                "name": attachment.get("title"),
            }
            return MessageKind.LOCATION
        if kind in SHARE_TYPES:
            title = payload.get("title") or attachment.get("title")
            inbound.data.setdefault("shares", []).append(
                {"type": kind, "url": url, "title": title, **_share_ids(payload)}
            )
            if inbound.text is None:
                inbound.text = "\n".join(str(part) for part in (title, url) if part) or None
            return MessageKind.TEXT
        message_kind = ATTACHMENT_KINDS.get(str(kind), MessageKind.UNKNOWN)
        if message_kind == MessageKind.IMAGE and "sticker_id" in payload:
            message_kind = MessageKind.STICKER
        if message_kind == MessageKind.UNKNOWN:
            inbound.data.setdefault("attachment_types", []).append(kind)
        inbound.attachments.append(InboundAttachment(kind=message_kind, url=url))
        return message_kind

    def _parse_edit(self, sender: IdentityRef, event: Mapping[str, Any]) -> InboundMessage:
        """The customer changed the text of an earlier message (`message_edits` field)."""
        edit = as_dict(event.get("message_edit"))
        mid = edit.get("mid")
        if not isinstance(mid, str) or not mid:
            raise WebhookError("payload_malformed", MSG_PAYLOAD_MALFORMED, 400)
        text = edit.get("text")
        # Each edit has its own number, so a retried delivery is recognised and a later
        # edit is not; Meta's own example sends it as a string.
        number = edit.get("num_edit")
        return InboundMessage(
            provider_message_id=f"{mid}#edit:{number if number is not None else event.get('timestamp')}",
            sender=sender,
            text=text if isinstance(text, str) else None,
            sent_at=meta_time(event.get("timestamp")),
            edit_of_provider_id=mid,
            raw=dict(event),
        )

    def _parse_other(self, sender: IdentityRef, event: Mapping[str, Any], event_type: str) -> InboundMessage:
        """Any other event from a person: an unknown-kind message with the raw event."""
        return InboundMessage(
            provider_message_id=f"{event_type}:{sender.value}:{event.get('timestamp')}",
            sender=sender,
            kind=MessageKind.UNKNOWN,
            sent_at=meta_time(event.get("timestamp")),
            data={"event_type": event_type},
            raw=dict(event),
        )

    def _parse_postback(self, sender: IdentityRef, event: Mapping[str, Any]) -> InboundMessage:
        """A tapped button or ice breaker: its title is what the customer "said"."""
        postback = as_dict(event.get("postback"))
        timestamp = event.get("timestamp")
        mid = postback.get("mid")
        title = postback.get("title")
        return InboundMessage(
            provider_message_id=mid if isinstance(mid, str) and mid else f"postback:{sender.value}:{timestamp}",
            sender=sender,
            text=title if isinstance(title, str) else None,
            sent_at=meta_time(timestamp),
            data={"postback_payload": postback.get("payload")},
            raw=dict(event),
        )

    def _parse_reaction(self, sender: IdentityRef, event: Mapping[str, Any]) -> InboundMessage:
        """Kept as an unknown-kind message that points at the message reacted to."""
        reaction = as_dict(event.get("reaction"))
        mid = str(reaction.get("mid") or "")
        action = reaction.get("action", "react")
        return InboundMessage(
            provider_message_id=f"{mid}#{action}:{sender.value}:{event.get('timestamp')}",
            sender=sender,
            kind=MessageKind.UNKNOWN,
            sent_at=meta_time(event.get("timestamp")),
            reply_to_provider_ids=[mid] if mid else [],
            data={"reaction": reaction},
            raw=dict(event),
        )

    def _parse_receipt(
        self,
        sender: IdentityRef,
        event: Mapping[str, Any],
        key: str,
        status: DeliveryStatus,
        result: WebhookResult,
    ) -> None:
        """Delivery and read receipts: per-message updates where mids are given (Instagram
        names one `mid`), plus the watermark, which covers every earlier message too."""
        receipt = as_dict(event.get(key))
        watermark = meta_time(receipt.get("watermark"))
        mids = [mid for mid in receipt.get("mids", []) if isinstance(mid, str)]
        if isinstance(receipt.get("mid"), str):
            mids.append(receipt["mid"])
        for mid in mids:
            at = watermark or meta_time(event.get("timestamp"))
            result.statuses.append(StatusUpdate(provider_message_id=mid, status=status, at=at))
        if watermark is not None:
            result.watermarks.append(Watermark(recipient=sender, status=status, at=watermark))

    # Sending ----------------------------------------------------------------------

    async def check_connection(self, account: ChannelAccountView) -> ConnectionCheck:
        """Ask Meta whose token this is (`/me`) and compare it with the configured account id."""
        node = await graph_check(
            account,
            f"{api_root(account, self.default_base_url)}/me",
            token_setting=self.credential_key,
            id_setting=self.own_id_key,
            params={"fields": "id,user_id,name,username"},
        )
        own = str(account.config.get(self.own_id_key) or "")
        found = {str(node.get(key)) for key in ("id", "user_id") if node.get(key)}
        name = str(node.get("name") or node.get("username") or "")
        if own not in found:
            values = {"own": own, "found": ", ".join(sorted(found)), "name": name}
            return ConnectionCheck(
                False,
                "account_mismatch",
                N_(
                    "The access token belongs to {name} ({found}), not to the account {own}. "
                    "Use this account's token, or correct the id."
                ),
                values,
                self.own_id_key,
            )
        values = {"product": self.product_name, "name": name or own}
        return ConnectionCheck(True, "connected", N_("Connected to {product} as {name}."), values)

    def check_send(self, ctx: SendContext) -> Refusal | None:
        if ctx.recipient_opted_out:
            return opted_out_refusal()
        if ctx.text and self.text_is_too_long(ctx.text):
            return Refusal(f"{self.kind}_text_too_long", self.text_too_long)
        if within(ctx.last_inbound_at, ctx.now, CUSTOMER_SERVICE_WINDOW):
            return None
        refusal_code = f"{self.kind}_window_closed"
        if ctx.last_inbound_at is None:
            return Refusal(refusal_code, MSG_NEVER_WROTE)
        if not within(ctx.last_inbound_at, ctx.now, HUMAN_AGENT_WINDOW):
            return Refusal(refusal_code, MSG_OUTSIDE_7_DAYS)
        if config_flag(ctx.account.config.get("human_agent_tag")):
            return None
        return Refusal(refusal_code, MSG_OUTSIDE_24H)

    def message_tag(self, ctx: SendContext) -> str | None:
        """HUMAN_AGENT for a reply 24 hours to 7 days after the customer last wrote, when the
        channel allows it (Hilo calls this for replies written by a person only)."""
        if within(ctx.last_inbound_at, ctx.now, CUSTOMER_SERVICE_WINDOW):
            return None
        if within(ctx.last_inbound_at, ctx.now, HUMAN_AGENT_WINDOW) and config_flag(
            ctx.account.config.get("human_agent_tag")
        ):
            return HUMAN_AGENT_TAG
        return None

    def text_is_too_long(self, text: str) -> bool:
        return len(text) > 2000

    def messaging_fields(self, message: OutboundMessage) -> dict[str, str]:
        """`messaging_type` (and `tag`) for a send: a tag is how a reply outside the
        24-hour window is allowed."""
        if message.tag:
            return {"messaging_type": "MESSAGE_TAG", "tag": message.tag}
        return {"messaging_type": "RESPONSE"}

    async def send(self, account: ChannelAccountView, message: OutboundMessage) -> SendResult:
        token = require_setting(account.secrets, self.credential_key)
        url = f"{api_root(account, self.default_base_url)}/me/messages"
        recipient = {"id": message.recipient.value}
        fields = self.messaging_fields(message)
        # Text and each attachment are separate Messenger messages; the text goes first,
        # so the first id names the Hilo message.
        parts: list[SendPart] = []
        if message.text:
            body = {"recipient": recipient, **fields, "message": {"text": message.text}}
            parts.append(partial(_send_text, url, token, body))
        for attachment in message.attachments:
            parts.append(partial(self._send_attachment_part, url, token, recipient, fields, attachment))
        if not parts:
            raise SendError("invalid_request", MSG_INVALID_REQUEST, retryable=False)
        return await send_parts(message, parts)

    async def _send_attachment_part(
        self,
        url: str,
        token: str,
        recipient: Mapping[str, str],
        fields: Mapping[str, str],
        attachment: OutboundAttachment,
    ) -> str:
        return _sent_message_id(await self.send_attachment(url, token, recipient, fields, attachment))

    async def send_attachment(
        self,
        url: str,
        token: str,
        recipient: Mapping[str, str],
        fields: Mapping[str, str],
        attachment: OutboundAttachment,
    ) -> dict[str, Any]:
        """Send by public link when there is one, else upload the bytes with the send."""
        kind = attachment_type(attachment)
        if attachment.url:
            body = {
                "recipient": recipient,
                **fields,
                "message": {
                    "attachment": {
                        "type": kind,
                        "payload": {"url": attachment.url, "is_reusable": True},
                    }
                },
            }
            return await graph_call("POST", url, token, json_body=body)
        form = {
            "recipient": json.dumps(recipient),
            "message": json.dumps({"attachment": {"type": kind, "payload": {"is_reusable": True}}}),
            **fields,
        }
        return await graph_call(
            "POST",
            url,
            token,
            data=form,
            files={"filedata": (attachment.filename, attachment.data, attachment.content_type)},
        )


def _event_type(event: Mapping[str, Any]) -> str:
    """Name a messaging event by its payload key ("message", "optin", "referral"...)."""
    for key in KNOWN_EVENTS:
        if key in event:
            return key
    others = sorted(key for key in event if key not in ENVELOPE_KEYS)
    return others[0] if others else "unknown"


def _share_ids(payload: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("ig_post_media_id", "id")
    return {key: payload[key] for key in keys if key in payload}


async def _send_text(url: str, token: str, body: Mapping[str, Any]) -> str:
    return _sent_message_id(await graph_call("POST", url, token, json_body=body))


def _sent_message_id(response: Mapping[str, Any]) -> str:
    message_id = response.get("message_id")
    if not isinstance(message_id, str) or not message_id:
        raise SendError("provider_response_invalid", MSG_PROVIDER_ERROR, retryable=False)
    return message_id


ADAPTER = MessengerAdapter()
