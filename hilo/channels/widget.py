"""The live-chat widget channel: visitors chat from the business's own site (see hilo.widget).

Visitors' messages do not arrive by webhook: the widget's websocket (hilo.widget.routes)
hands them to the core ingest path. Agent replies reach the visitor's open widgets as
soon as they commit (the widget hub follows the event bus), so `send` only confirms the
message is available to the widget; the widget reports "delivered" and "read" itself.
This module holds what needs no network nor database: settings, identity values, the
identity-verification HMAC and pre-chat form validation.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson

from hilo import constant_time
from hilo.channels.base import (
    ChannelAccountView,
    IdentityKind,
    IdentityRef,
    OutboundMessage,
    Refusal,
    SendContext,
    SendResult,
    SettingField,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from hilo.channels.settings import SettingShape
from hilo.contacts.identity import InvalidIdentity, normalize_email, normalize_phone
from hilo.i18n import DEFAULT_LOCALE, N_, normalize_locale

log = logging.getLogger(__name__)

MAX_USER_ID = 200
MAX_FIELD = 255
DEFAULT_COLOR = "#2563eb"
DEFAULT_TEXT_COLOR = "#ffffff"
DEFAULT_UPLOAD_MB = 10
DEFAULT_EMAIL_FALLBACK_MINUTES = 3
REPLY_TIMES: dict[str, str] = {
    "minutes": N_("Usually replies in a few minutes"),
    "hours": N_("Usually replies in a few hours"),
    "day": N_("Usually replies within a day"),
}


class FieldRule(enum.StrEnum):
    """How a pre-chat form asks for one field."""

    REQUIRED = "required"
    OPTIONAL = "optional"
    OFF = "off"


PRECHAT_FIELDS = ("name", "email", "phone")


def user_hash(secret: str, user_id: str) -> str:
    """The hash a site computes on its server for a signed-in user: HMAC-SHA256, hex."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_user(secret: str, user_id: str, given_hash: str) -> bool:
    """True when `given_hash` is the site's HMAC of `user_id` under `secret` (constant time)."""
    if not secret or not user_id or not given_hash or len(user_id) > MAX_USER_ID:
        return False
    if any(ord(ch) < 32 for ch in user_id):
        return False
    return constant_time.equal(user_hash(secret, user_id), given_hash.strip().lower())


def visitor_identity(account_id: int, visitor_id: str) -> str:
    """Identity value of an anonymous visitor: scoped to the channel account."""
    return f"{account_id}:{visitor_id}"


def user_identity(account_id: int, user_id: str) -> str:
    """Identity value of a verified site user: scoped to the channel account."""
    return f"{account_id}:user:{user_id}"


class PrechatInvalid(ValueError):
    """Pre-chat or offline-form values that do not pass; `errors` maps field -> msgid."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(", ".join(sorted(errors)))
        self.errors = errors


def validate_prechat(rules: Mapping[str, FieldRule], values: Mapping[str, Any], region: str) -> dict[str, str]:
    """Check the pre-chat values against the form's rules; return the cleaned, non-empty ones.

    A field the form does not ask for is ignored; an optional one may be empty; every value
    given is checked (an e-mail address must be one) whatever the rule.
    """
    cleaned: dict[str, str] = {}
    errors: dict[str, str] = {}
    for name in PRECHAT_FIELDS:
        rule = rules.get(name, FieldRule.OFF)
        if rule is FieldRule.OFF:
            continue
        raw = values.get(name)
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            if rule is FieldRule.REQUIRED:
                errors[name] = N_("This field is required.")
            continue
        if len(text) > MAX_FIELD:
            errors[name] = N_("This is too long.")
            continue
        try:
            if name == "email":
                text = normalize_email(text)
            elif name == "phone":
                text = normalize_phone(text, region)
        except InvalidIdentity as exc:
            errors[name] = exc.reason
            continue
        cleaned[name] = text
    if errors:
        raise PrechatInvalid(errors)
    return cleaned


def prechat_identities(values: Mapping[str, str]) -> list[IdentityRef]:
    """The identities a visitor's own form vouches for (never verified)."""
    refs = []
    if values.get("email"):
        refs.append(IdentityRef(IdentityKind.EMAIL, values["email"]))
    if values.get("phone"):
        refs.append(IdentityRef(IdentityKind.PHONE, values["phone"]))
    return refs


def localized(value: Any, locale: str) -> str:
    """A setting given as plain text or as {"en": ..., "es": ...}, in `locale`."""
    if isinstance(value, Mapping):
        chosen = value.get(locale) or value.get(DEFAULT_LOCALE) or next(iter(value.values()), "")
        return str(chosen or "")
    return str(value or "")


def structured_setting(value: Any) -> Any:
    """Settings set from the command line arrive as JSON text; the API sends JSON values."""
    if isinstance(value, str) and value.strip()[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            log.warning("widget setting is not valid JSON; ignored")
            return None
    return value


def parse_origins(value: Any) -> tuple[str, ...]:
    """Allowed origins from a list or a comma-separated string, normalised without a slash."""
    value = structured_setting(value)
    items = value if isinstance(value, list) else str(value or "").split(",")
    return tuple(str(item).strip().rstrip("/").lower() for item in items if str(item).strip())


def origin_allowed(origin: str | None, allowed: tuple[str, ...]) -> bool:
    """True when no origins are configured, or `origin` matches one ("https://*.shop.com" too)."""
    if not allowed:
        return True
    if not origin:
        return False
    origin = origin.rstrip("/").lower()
    for pattern in allowed:
        if pattern == origin:
            return True
        scheme, _, host = pattern.partition("://")
        if host.startswith("*."):
            given_scheme, _, given_host = origin.partition("://")
            if given_scheme == scheme and given_host.endswith(host[1:]):
                return True
    return False


@dataclass(frozen=True)
class ProactiveRule:
    """Open the widget with a message when every condition the rule names holds."""

    message: Any
    after_seconds: int | None = None
    url: str | None = None
    returning: bool | None = None


@dataclass(frozen=True)
class WidgetSettings:
    """A widget channel account's settings with their defaults filled in."""

    public_token: str
    title: Any = ""
    greeting: Any = ""
    color: str = DEFAULT_COLOR
    text_color: str = DEFAULT_TEXT_COLOR
    position: str = "right"
    prechat: dict[str, FieldRule] = field(default_factory=dict)
    proactive: tuple[ProactiveRule, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    business_hours: Any = ""
    # A routing business-hours calendar: when set, it says whether the team is open and
    # when it is back; `business_hours` (free text) is the fallback without one.
    business_hours_id: int | None = None
    reply_time: str | None = None
    max_upload_bytes: int = DEFAULT_UPLOAD_MB * 1024 * 1024
    email_fallback_minutes: float = DEFAULT_EMAIL_FALLBACK_MINUTES
    email_channel_account_id: int | None = None

    @classmethod
    def from_account(cls, account: ChannelAccountView) -> WidgetSettings:
        config = account.config
        prechat_raw = structured_setting(config.get("prechat_fields"))
        prechat: dict[str, FieldRule] = {}
        if isinstance(prechat_raw, Mapping):
            for name in PRECHAT_FIELDS:
                try:
                    prechat[name] = FieldRule(str(prechat_raw.get(name) or "off").lower())
                except ValueError:
                    log.warning("widget %s: unknown pre-chat rule for %s", account.id, name)
        rules = []
        for item in structured_setting(config.get("proactive")) or []:
            if isinstance(item, Mapping) and item.get("message"):
                returning = item.get("returning")
                rules.append(
                    ProactiveRule(
                        message=item["message"],
                        after_seconds=_whole(_number(item.get("after_seconds"))),
                        url=str(item["url"]) if item.get("url") else None,
                        returning=bool(returning) if returning is not None else None,
                    )
                )
        reply_time = str(config.get("reply_time") or "") or None
        upload_mb = _number(config.get("max_upload_mb")) or DEFAULT_UPLOAD_MB
        fallback = _number(config.get("email_fallback_minutes"))
        return cls(
            public_token=str(config.get("public_token") or ""),
            title=structured_setting(config.get("title")) or account.name,
            greeting=structured_setting(config.get("greeting")) or "",
            color=css_color(config.get("color"), DEFAULT_COLOR),
            text_color=css_color(config.get("text_color"), DEFAULT_TEXT_COLOR),
            position="left" if str(config.get("position") or "").lower() == "left" else "right",
            prechat=prechat,
            proactive=tuple(rules),
            allowed_origins=parse_origins(config.get("allowed_origins")),
            business_hours=structured_setting(config.get("business_hours")) or "",
            business_hours_id=_whole(_number(config.get("business_hours_id"))),
            reply_time=reply_time if reply_time in REPLY_TIMES else None,
            max_upload_bytes=int(upload_mb * 1024 * 1024),
            email_fallback_minutes=DEFAULT_EMAIL_FALLBACK_MINUTES if fallback is None else fallback,
            email_channel_account_id=_whole(_number(config.get("email_channel_account_id"))),
        )

    def text(self, name: str, locale: str) -> str:
        return localized(getattr(self, name), normalize_locale(locale))


def _number(value: Any) -> float | None:
    """A number from a setting given as a number or as text; None when absent or not a number."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        log.warning("widget setting %r is not a number; ignored", value)
        return None


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def css_color(value: Any, default: str) -> str:
    # Colours end up in CSS: accept only #rgb / #rrggbb so no setting can inject style.
    text = str(value or "").strip()
    if len(text) in (4, 7) and text.startswith("#") and all(c in "0123456789abcdefABCDEF" for c in text[1:]):
        return text
    return default


class WidgetChannel:
    kind: ClassVar[str] = "widget"
    identity_kind: ClassVar[IdentityKind] = IdentityKind.WIDGET
    config_keys: ClassVar[tuple[str, ...]] = (
        "public_token",
        "title",
        "greeting",
        "color",
        "text_color",
        "position",
        "prechat_fields",
        "proactive",
        "allowed_origins",
        "business_hours",
        "business_hours_id",
        "reply_time",
        "max_upload_mb",
        "email_fallback_minutes",
        "email_channel_account_id",
    )
    secret_keys: ClassVar[tuple[str, ...]] = ("identity_secret",)
    label: ClassVar[str] = N_("Chat widget")
    setting_fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField(
            "title", N_("Title"), N_('Header text: plain text or {"en": "...", "es": "..."}. Empty: the channel name.')
        ),
        SettingField(
            "greeting", N_("Greeting"), N_("First bubble when the chat opens: plain text or one text per language.")
        ),
        SettingField("color", N_("Colour"), N_("Brand colour, #rgb or #rrggbb."), placeholder="#2563eb"),
        SettingField("text_color", N_("Text colour"), N_("The text on the brand colour."), placeholder="#ffffff"),
        SettingField("position", N_("Position"), N_("right or left (bottom corner)."), placeholder="right"),
        SettingField(
            "allowed_origins",
            N_("Allowed sites"),
            N_('Sites that may embed the chat, e.g. ["https://shop.example.com"]. Empty: any site.'),
        ),
        SettingField(
            "prechat_fields",
            N_("Pre-chat form"),
            N_('{"name": R, "email": R, "phone": R} with R = required, optional or off.'),
        ),
        SettingField(
            "proactive", N_("Proactive messages"), N_("Rules that open the chat with a message (see the docs).")
        ),
        SettingField(
            "business_hours_id", N_("Business hours"), N_("Id of a business-hours calendar: when the team is open.")
        ),
        SettingField(
            "business_hours", N_("Opening hours text"), N_("Shown when nobody is available; only without a calendar.")
        ),
        SettingField("reply_time", N_("Usual reply time"), N_("minutes, hours or day.")),
        SettingField("max_upload_mb", N_("Largest file (MB)"), placeholder="10"),
        SettingField(
            "email_fallback_minutes",
            N_("E-mail unread replies after (minutes)"),
            N_("A reply no widget received is e-mailed after this long; 0 turns it off."),
            placeholder="3",
        ),
        SettingField(
            "email_channel_account_id",
            N_("E-mail channel for those e-mails"),
            N_("Its id. Empty: the first enabled e-mail channel."),
        ),
        SettingField(
            "identity_secret",
            N_("Identity verification secret"),
            N_("Key of the HMAC your site computes for signed-in visitors."),
        ),
        SettingField(
            "public_token",
            N_("Public token"),
            N_("The token in the snippet. Empty: generated; set a new one to cut off old embeds."),
        ),
    )
    # Settings naming a business-hours calendar: checked to exist when saved.
    calendar_settings: ClassVar[tuple[str, ...]] = ("business_hours_id",)
    structured_settings: ClassVar[Mapping[str, SettingShape]] = {
        "title": SettingShape.TEXT_OR_OBJECT,
        "greeting": SettingShape.TEXT_OR_OBJECT,
        "prechat_fields": SettingShape.OBJECT,
        "proactive": SettingShape.LIST,
        "allowed_origins": SettingShape.TEXT_OR_LIST,
        "business_hours": SettingShape.TEXT_OR_OBJECT,
    }

    def parse_webhook(self, account: ChannelAccountView, request: WebhookRequest) -> WebhookResult:
        raise WebhookError(
            "webhook_not_supported",
            N_("Widget messages arrive over the widget's own connection, not by webhook."),
            404,
        )

    def check_send(self, ctx: SendContext) -> Refusal | None:
        if not ctx.recipient.value.startswith(f"{ctx.account.id}:"):
            return Refusal("no_identity_on_channel", N_("This contact has no address on this channel."))
        return None

    async def send(self, account: ChannelAccountView, message: OutboundMessage) -> SendResult:
        # The widget hub already pushed the reply to the visitor's open widgets when it
        # committed, and replays it to any widget that connects later: nothing to call.
        return SendResult(provider_message_id=f"widget:{message.idempotency_key}")


ADAPTER = WidgetChannel()
