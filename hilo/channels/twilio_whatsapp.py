"""WhatsApp through Twilio: "whatsapp:" addresses, the 24-hour window, Content templates."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from hilo.channels.base import (
    SENDER_ADDRESS,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    Refusal,
    SendContext,
)
from hilo.channels.twilio_common import (
    REASON_WINDOW_CLOSED,
    TwilioMessagingAdapter,
    content_variables,
)
from hilo.i18n import N_
from hilo.normalize import InvalidIdentity, normalize_phone

CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)
REASON_TEMPLATE_INCOMPLETE = N_(
    "This WhatsApp template has no Twilio Content SID. An administrator must add it to the template."
)


def _as_utc(moment: datetime) -> datetime:
    # SQLite hands timestamps back without a zone; they are stored in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class TwilioWhatsAppAdapter(TwilioMessagingAdapter):
    """WhatsApp sender registered on a Twilio account."""

    kind: ClassVar[str] = "twilio_whatsapp"
    address_prefix: ClassVar[str] = "whatsapp:"
    # Replies go to the number the customer last wrote from (see `hilo.channels.whatsapp`).
    replies_to_sender_address: ClassVar[bool] = True
    label: ClassVar[str] = N_("WhatsApp (Twilio)")

    def parse_inbound(self, params: Mapping[str, str]) -> InboundMessage:
        message = super().parse_inbound(params)
        try:
            canonical = normalize_phone(message.sender.value, "US")
        except InvalidIdentity:
            canonical = message.sender.value
        if canonical != message.sender.value:
            # A Brazilian mobile WhatsApp names without its ninth digit: stored with it.
            message.data[SENDER_ADDRESS] = message.sender.value
        message.sender_name = params.get("ProfileName") or None
        replied = params.get("OriginalRepliedMessageSid")
        if replied:
            message.reply_to_provider_ids.append(replied)
        if params.get("ButtonPayload"):
            message.data["button_payload"] = params["ButtonPayload"]
        try:
            latitude, longitude = float(params["Latitude"]), float(params["Longitude"])
        except (KeyError, ValueError):
            return message
        message.kind = MessageKind.LOCATION
        message.data["location"] = {
            "latitude": latitude,
            "longitude": longitude,
            "address": params.get("Address") or None,
            "label": params.get("Label") or None,
        }
        return message

    def message_fields(self, message: OutboundMessage) -> list[tuple[str, str]]:
        if message.template is None:
            return super().message_fields(message)
        return [
            ("ContentSid", str(message.template["content_sid"])),
            ("ContentVariables", content_variables(message.template.get("variables"))),
        ]

    def check_send(self, ctx: SendContext) -> Refusal | None:
        if ctx.template is not None:
            if not ctx.template.get("content_sid"):
                return Refusal("whatsapp_template_incomplete", REASON_TEMPLATE_INCOMPLETE)
            return None
        if ctx.last_inbound_at is None or _as_utc(ctx.now) - _as_utc(ctx.last_inbound_at) > CUSTOMER_SERVICE_WINDOW:
            return Refusal("whatsapp_window_closed", REASON_WINDOW_CLOSED)
        return None


ADAPTER = TwilioWhatsAppAdapter()
