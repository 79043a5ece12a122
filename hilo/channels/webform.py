"""The web-form channel: contact forms on the business's site, hosted by Hilo or the site's own.

Submissions arrive at /forms/<public-token> (hilo.widget.forms) and go through the core
ingest path like any other channel's messages: the submitter's e-mail address is the
identity, so a submission joins that contact's thread. A form cannot carry a reply:
agents answer on an e-mail channel.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, ClassVar
from urllib.parse import urlsplit

from hilo.channels.base import (
    ChannelAccountView,
    IdentityKind,
    IdentityRef,
    InboundAttachment,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    Refusal,
    SendContext,
    SendError,
    SendResult,
    SettingField,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from hilo.channels.settings import SettingShape
from hilo.channels.widget import (
    DEFAULT_COLOR,
    FieldRule,
    css_color,
    localized,
    origin_allowed,
    parse_origins,
    structured_setting,
)
from hilo.contacts.identity import InvalidIdentity, normalize_email, normalize_phone
from hilo.i18n import N_, normalize_locale

# Bots fill every field they find; people never see this one.
HONEYPOT = "website"
RESERVED = ("name", "email", "phone", "subject", "message", "redirect", "locale", "submission_id", HONEYPOT)
MAX_EXTRA_FIELDS = 20
MAX_NAME = 255
MAX_SUBJECT = 200
MAX_MESSAGE = 10_000
MAX_EXTRA_VALUE = 2_000
MAX_REDIRECT = 2_048
_SUBMISSION_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_. -]{1,64}$")


@dataclass(frozen=True)
class WebformSettings:
    """A web-form channel account's settings with their defaults filled in."""

    public_token: str
    title: Any = ""
    intro: Any = ""
    thanks: Any = ""
    color: str = DEFAULT_COLOR
    phone: FieldRule = FieldRule.OFF
    allowed_origins: tuple[str, ...] = ()

    @classmethod
    def from_account(cls, account: ChannelAccountView) -> WebformSettings:
        config = account.config
        try:
            phone = FieldRule(str(config.get("phone") or "off").lower())
        except ValueError:
            phone = FieldRule.OFF
        return cls(
            public_token=str(config.get("public_token") or ""),
            title=structured_setting(config.get("title")) or account.name,
            intro=structured_setting(config.get("intro")) or "",
            thanks=structured_setting(config.get("thanks")) or "",
            color=css_color(config.get("color"), DEFAULT_COLOR),
            phone=phone,
            allowed_origins=parse_origins(config.get("allowed_origins")),
        )

    def text(self, name: str, locale: str) -> str:
        return localized(getattr(self, name), normalize_locale(locale))


class FormInvalid(ValueError):
    """A submission that does not pass; `errors` maps field -> msgid, `values` what was given."""

    def __init__(self, errors: dict[str, str], values: dict[str, str]) -> None:
        super().__init__(", ".join(sorted(errors)))
        self.errors = errors
        self.values = values


@dataclass
class Submission:
    """A checked submission. `message` is None when the honeypot caught a bot."""

    message: InboundMessage | None
    redirect: str | None
    values: dict[str, str] = field(default_factory=dict)


def redirect_allowed(url: str, allowed: tuple[str, ...]) -> bool:
    """An absolute http(s) URL on one of the allowed origins; never an open redirect."""
    if not allowed or len(url) > MAX_REDIRECT:
        return False
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or "\\" in url:
        return False
    return origin_allowed(f"{parts.scheme}://{parts.netloc}", allowed)


def _text(fields: Mapping[str, str], name: str) -> str:
    value = fields.get(name)
    return value.strip() if isinstance(value, str) else ""


def _provider_id(fields: Mapping[str, str], email: str, subject: str, message: str, day: date) -> str:
    submission_id = _text(fields, "submission_id")
    if _SUBMISSION_ID.match(submission_id):
        return f"form:{submission_id}"
    # A form without its own submission id: the same text from the same address on the
    # same day is a double click or a resend, not a new message.
    digest = hashlib.sha256(f"{email}\n{subject}\n{message}\n{day.isoformat()}".encode()).hexdigest()
    return f"form:{digest[:40]}"


def parse_submission(
    account: ChannelAccountView,
    fields: Mapping[str, str],
    *,
    region: str,
    day: date,
    attachments: Sequence[InboundAttachment] = (),
) -> Submission:
    """Check a submission's fields and turn it into the message ingest stores.

    Raises `FormInvalid` with one msgid per field that does not pass.
    """
    settings = WebformSettings.from_account(account)
    values = {name: _text(fields, name)[:MAX_EXTRA_VALUE] for name in RESERVED if name != HONEYPOT}
    errors: dict[str, str] = {}
    redirect = values["redirect"] or None
    if redirect is not None and not redirect_allowed(redirect, settings.allowed_origins):
        errors["redirect"] = N_("The page to return to is not on a site this form allows.")
    if _text(fields, HONEYPOT):
        if errors:
            raise FormInvalid(errors, values)
        return Submission(message=None, redirect=redirect, values=values)
    email = ""
    if not values["email"]:
        errors["email"] = N_("This field is required.")
    else:
        try:
            email = normalize_email(values["email"])
        except InvalidIdentity as exc:
            errors["email"] = exc.reason
    phone = ""
    if values["phone"]:
        try:
            phone = normalize_phone(values["phone"], region)
        except InvalidIdentity as exc:
            errors["phone"] = exc.reason
    elif settings.phone is FieldRule.REQUIRED:
        errors["phone"] = N_("This field is required.")
    message = _text(fields, "message")
    if not message:
        errors["message"] = N_("This field is required.")
    elif len(message) > MAX_MESSAGE:
        errors["message"] = N_("This is too long.")
    if len(values["name"]) > MAX_NAME:
        errors["name"] = N_("This is too long.")
    if len(values["subject"]) > MAX_SUBJECT:
        errors["subject"] = N_("This is too long.")
    values["message"] = message[:MAX_MESSAGE]
    if errors:
        raise FormInvalid(errors, values)
    extra = {
        name: _text(fields, name)[:MAX_EXTRA_VALUE]
        for name in list(fields)[: len(RESERVED) + MAX_EXTRA_FIELDS]
        if name not in RESERVED and _FIELD_NAME.match(name) and _text(fields, name)
    }
    extra = dict(list(extra.items())[:MAX_EXTRA_FIELDS])
    # Agents read the extra fields in the message itself; `data` keeps them structured.
    body = message if not extra else message + "\n\n" + "\n".join(f"{k}: {v}" for k, v in extra.items())
    kind = MessageKind.TEXT
    inbound = InboundMessage(
        provider_message_id=_provider_id(fields, email, values["subject"], message, day),
        sender=IdentityRef(IdentityKind.EMAIL, email),
        other_identities=[IdentityRef(IdentityKind.PHONE, phone)] if phone else [],
        sender_name=values["name"] or None,
        kind=kind,
        text=body,
        subject=values["subject"] or None,
        attachments=list(attachments),
        data={"form": {"fields": extra}} if extra else {"form": {}},
        locale=normalize_locale(values["locale"]) if values["locale"] else None,
    )
    return Submission(message=inbound, redirect=redirect, values=values)


class WebformChannel:
    kind: ClassVar[str] = "webform"
    identity_kind: ClassVar[IdentityKind] = IdentityKind.EMAIL
    config_keys: ClassVar[tuple[str, ...]] = (
        "public_token",
        "title",
        "intro",
        "thanks",
        "color",
        "phone",
        "allowed_origins",
    )
    secret_keys: ClassVar[tuple[str, ...]] = ()
    label: ClassVar[str] = N_("Web form")
    setting_fields: ClassVar[tuple[SettingField, ...]] = (
        SettingField("title", N_("Title"), N_("Heading of the hosted page: plain text or one text per language.")),
        SettingField("intro", N_("Introduction"), N_("Text under the title.")),
        SettingField("thanks", N_("Thank-you text"), N_("Shown after sending. Empty: a standard thank-you.")),
        SettingField("color", N_("Colour"), N_("Button and focus colour, #rgb or #rrggbb."), placeholder="#2563eb"),
        SettingField("phone", N_("Phone field"), N_("required, optional or off."), placeholder="off"),
        SettingField(
            "allowed_origins",
            N_("Allowed sites"),
            N_('Sites whose own forms may post here and be redirected back, e.g. ["https://shop.example.com"].'),
        ),
        SettingField("public_token", N_("Public token"), N_("The form's address /forms/<token>. Empty: generated.")),
    )
    structured_settings: ClassVar[Mapping[str, SettingShape]] = {
        "title": SettingShape.TEXT_OR_OBJECT,
        "intro": SettingShape.TEXT_OR_OBJECT,
        "thanks": SettingShape.TEXT_OR_OBJECT,
        "allowed_origins": SettingShape.TEXT_OR_LIST,
    }

    def parse_webhook(self, account: ChannelAccountView, request: WebhookRequest) -> WebhookResult:
        raise WebhookError(
            "webhook_not_supported", N_("Web forms are submitted to their /forms/ address, not by webhook."), 404
        )

    def check_send(self, ctx: SendContext) -> Refusal | None:
        return Refusal(
            "reply_by_email", N_("A web form cannot carry a reply: choose an e-mail channel to answer by e-mail.")
        )

    async def send(self, account: ChannelAccountView, message: OutboundMessage) -> SendResult:
        raise SendError(
            "reply_by_email",
            N_("A web form cannot carry a reply: choose an e-mail channel to answer by e-mail."),
            retryable=False,
        )


ADAPTER = WebformChannel()
