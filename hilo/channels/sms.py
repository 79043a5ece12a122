"""SMS and MMS through Twilio: webhooks, opt-out keywords, segment counting and sends."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from hilo.channels.base import InboundMessage, Refusal, SendContext, SettingField, WebhookResult
from hilo.channels.twilio_common import REASON_OPTED_OUT, TwilioMessagingAdapter
from hilo.i18n import N_

DEFAULT_MAX_SEGMENTS = 10
# Twilio refuses longer bodies (error 21617) whatever the segment count.
TWILIO_MAX_BODY_CHARACTERS = 1600

# Whole-message keywords, compared upper-cased after trimming (English and Spanish).
OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "BAJA"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP", "ALTA"})

# GSM 03.38 default alphabet (one septet each) and its extension table (escape + septet).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# (single-segment capacity, per-segment capacity once the user data header is needed)
GSM7_CAPACITY = (160, 153)
UCS2_CAPACITY = (70, 67)

REASON_TOO_MANY_SEGMENTS = N_(
    "This message is too long for SMS on this channel. Shorten it or reply on another channel."
)


def _pack(units: list[int], capacity: tuple[int, int]) -> tuple[int, int]:
    """Return (segments, units left in the last segment) for characters of the given widths.

    A character never straddles two segments: an escaped GSM character or a UTF-16
    surrogate pair that does not fit moves whole to the next segment, as handsets expect.
    """
    single, multi = capacity
    total = sum(units)
    if total <= single:
        return (1 if total else 0), single - total
    segments, used = 1, 0
    for width in units:
        if used + width > multi:
            segments += 1
            used = 0
        used += width
    return segments, multi - used


def segment_info(text: str) -> dict[str, Any]:
    """Describe how `text` goes out as SMS: encoding, segments, characters, room left.

    GSM-7 is used when every character is in the GSM alphabet (extension-table
    characters such as € and { take two septets); otherwise the whole message is UCS-2,
    counted in UTF-16 units so an emoji takes two. An empty text is zero segments.
    """
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        encoding = "GSM-7"
        units = [2 if char in GSM7_EXTENSION else 1 for char in text]
        segments, remaining = _pack(units, GSM7_CAPACITY)
    else:
        encoding = "UCS-2"
        units = [2 if ord(char) > 0xFFFF else 1 for char in text]
        segments, remaining = _pack(units, UCS2_CAPACITY)
    return {
        "encoding": encoding,
        "segments": segments,
        "characters": len(text),
        "remaining": remaining,
    }


def opt_keyword(text: str | None) -> bool | None:
    """Return True for an opt-out keyword, False for an opt-in keyword, None otherwise."""
    keyword = (text or "").strip().upper()
    if keyword in OPT_OUT_KEYWORDS:
        return True
    if keyword in OPT_IN_KEYWORDS:
        return False
    return None


def max_segments(config: Mapping[str, Any]) -> int:
    try:
        return int(config.get("max_segments") or DEFAULT_MAX_SEGMENTS)
    except (TypeError, ValueError):
        return DEFAULT_MAX_SEGMENTS


class SmsAdapter(TwilioMessagingAdapter):
    """Twilio SMS/MMS channel account."""

    kind: ClassVar[str] = "sms"
    config_keys: ClassVar[tuple[str, ...]] = (
        *TwilioMessagingAdapter.config_keys,
        "max_segments",
    )
    label: ClassVar[str] = N_("SMS (Twilio)")
    setting_fields: ClassVar[tuple[SettingField, ...]] = (
        *TwilioMessagingAdapter.setting_fields,
        SettingField(
            "max_segments",
            N_("Longest message (parts)"),
            N_("Refuse replies longer than this many SMS parts (each part is billed). Empty: 10."),
            placeholder="10",
        ),
    )

    def add_opt_changes(self, result: WebhookResult, params: Mapping[str, str], message: InboundMessage) -> None:
        # With Advanced Opt-Out Twilio names the keyword type itself (custom keywords too).
        opt_out_type = params.get("OptOutType", "").upper()
        opted_out = {"STOP": True, "START": False}.get(opt_out_type)
        if opted_out is None:
            opted_out = opt_keyword(message.text)
        if opted_out is not None:
            result.opt_changes[message.sender.value] = opted_out

    def check_send(self, ctx: SendContext) -> Refusal | None:
        if ctx.recipient_opted_out:
            return Refusal("sms_opted_out", REASON_OPTED_OUT)
        text = ctx.text or ""
        if segment_info(text)["segments"] > max_segments(ctx.account.config) or len(text) > TWILIO_MAX_BODY_CHARACTERS:
            return Refusal("sms_too_long", REASON_TOO_MANY_SEGMENTS)
        return None


ADAPTER = SmsAdapter()
