"""A visitor's message as the core ingest path takes it: checked, scoped, and stored exactly once."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI

from hilo.channels.base import (
    ChannelAccountView,
    IdentityKind,
    IdentityRef,
    InboundAttachment,
    InboundMessage,
    MessageKind,
    WebhookResult,
)
from hilo.channels.widget import FieldRule, WidgetSettings, prechat_identities, validate_prechat
from hilo.contacts.identity import InvalidIdentity, normalize_email, normalize_phone
from hilo.errors import ActionError
from hilo.i18n import N_
from hilo.ingest.statements import IngestResult
from hilo.widget.visitors import Visitor

MAX_TEXT = 5_000
MAX_PAGE_URL = 2_048
_CLIENT_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")


def client_id_of(value: Any) -> str:
    """The widget's own id for a message (a UUID): what makes a resend harmless."""
    if not isinstance(value, str) or not _CLIENT_ID.match(value):
        raise ActionError("message_invalid", N_("The message has no valid id."), 422)
    return value


def text_of(value: Any, *, required: bool) -> str | None:
    text = value.strip() if isinstance(value, str) else ""
    if not text:
        if required:
            raise ActionError("body_required", N_("Write something first."), 422)
        return None
    if len(text) > MAX_TEXT:
        raise ActionError("message_too_long", N_("This message is too long."), 422)
    return text


def form_rules(settings: WidgetSettings, *, offline: bool, first: bool) -> dict[str, FieldRule]:
    """Which fields the visitor must fill: the pre-chat form on a first message, and the
    offline form always needs an e-mail address (the only way to answer)."""
    rules = dict(settings.prechat) if first else {}
    if offline:
        rules["email"] = FieldRule.REQUIRED
        if rules.get("name", FieldRule.OFF) is FieldRule.OFF:
            rules["name"] = FieldRule.OPTIONAL
    # A field given although not asked for (a returning visitor updating it) is still checked.
    return rules


def build_inbound(
    settings: WidgetSettings,
    visitor: Visitor,
    *,
    client_id: str,
    text: str | None,
    values: Mapping[str, Any],
    offline: bool,
    first: bool,
    page: Any,
    locale: str,
    region: str,
    attachment: InboundAttachment | None = None,
    browser: str | None = None,
) -> InboundMessage:
    """The InboundMessage for a widget message; `PrechatInvalid` when the form does not pass."""
    if visitor.verified:
        # The site vouches for who the user is; the name, address and phone number it passes
        # along, and what the user typed in a form, are linked like a pre-chat form's
        # (unverified), never required. The site's values win over typed ones.
        cleaned = validate_prechat(_given(values), values, region)
        cleaned.update(_site_claims(visitor, region))
    else:
        rules = form_rules(settings, offline=offline, first=first)
        for name, rule in _given(values).items():
            rules.setdefault(name, rule)
        cleaned = validate_prechat(rules, values, region)
    page_url = page[:MAX_PAGE_URL] if isinstance(page, str) else None
    return InboundMessage(
        provider_message_id=f"{visitor.key}:{client_id}",
        sender=IdentityRef(IdentityKind.WIDGET, visitor.identity, verified=visitor.verified),
        other_identities=prechat_identities(cleaned),
        sender_name=cleaned.get("name"),
        kind=attachment.kind if attachment and not text else MessageKind.TEXT,
        text=text,
        attachments=[attachment] if attachment else [],
        data={"widget": {"page": page_url, "browser": browser, "offline_form": offline}},
        locale=locale,
    )


def _given(values: Mapping[str, Any]) -> dict[str, FieldRule]:
    """A field given although not asked for (a returning visitor updating it) is still checked."""
    return {name: FieldRule.OPTIONAL for name, value in values.items() if isinstance(value, str) and value.strip()}


def _site_claims(visitor: Visitor, region: str) -> dict[str, str]:
    """The name, e-mail address and phone number a site passed for its signed-in user; a
    value that is not an address or a number is left out rather than refuse the message."""
    claims: dict[str, str] = {}
    if visitor.name:
        claims["name"] = visitor.name
    if visitor.email:
        with contextlib.suppress(InvalidIdentity):
            claims["email"] = normalize_email(visitor.email)
    if visitor.phone:
        with contextlib.suppress(InvalidIdentity):
            claims["phone"] = normalize_phone(visitor.phone, region)
    return claims


async def submit(app: FastAPI, account: ChannelAccountView, inbound: InboundMessage) -> IngestResult:
    """Store through the core ingest queue (group commit); returns once it is committed."""
    try:
        outcome = await app.state.ingest.store(account, WebhookResult(messages=[inbound]))
    except Exception as exc:  # the ingest writer already logged it; the sender may try again
        raise ActionError("not_stored", N_("Your message could not be saved; please try again."), 503) from exc
    return outcome.messages[0]
