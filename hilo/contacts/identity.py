"""Identities: their kinds, the reference a provider gives, and normalisation to the canonical form."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hilo.i18n import N_
from hilo.normalize import InvalidIdentity, normalize_email, normalize_phone

__all__ = [
    "CHANNEL_IDENTITY_KIND",
    "IdentityKind",
    "IdentityRef",
    "InvalidIdentity",
    "normalize",
    "normalize_email",
    "normalize_phone",
]


class IdentityKind(enum.StrEnum):
    """Kinds of identity a contact can own (see DESIGN invariant 1)."""

    EMAIL = "email"
    PHONE = "phone"  # E.164; shared by SMS, WhatsApp and voice
    TELEGRAM = "telegram"
    MESSENGER = "messenger"  # page-scoped id (PSID)
    INSTAGRAM = "instagram"  # Instagram-scoped id (IGSID)
    WIDGET = "widget"  # web-widget visitor id, or the site's user id when verified
    API = "api"  # external id from a custom source


@dataclass(frozen=True)
class IdentityRef:
    """An identity as a provider names it; `normalize` puts it in canonical form."""

    kind: IdentityKind
    value: str
    verified: bool = False


# Which identity kind each channel kind reaches a customer on.
CHANNEL_IDENTITY_KIND: dict[str, IdentityKind] = {
    "api": IdentityKind.API,
    "email": IdentityKind.EMAIL,
    "sms": IdentityKind.PHONE,
    "whatsapp": IdentityKind.PHONE,
    "twilio_whatsapp": IdentityKind.PHONE,
    "voice": IdentityKind.PHONE,
    "telegram": IdentityKind.TELEGRAM,
    "messenger": IdentityKind.MESSENGER,
    "instagram": IdentityKind.INSTAGRAM,
    "widget": IdentityKind.WIDGET,
    "webform": IdentityKind.EMAIL,
}


def normalize(ref: IdentityRef, default_region: str) -> IdentityRef:
    """Return `ref` with its value in canonical form for its kind."""
    kind = IdentityKind(ref.kind)
    if kind is IdentityKind.PHONE:
        value = normalize_phone(ref.value, default_region)
    elif kind is IdentityKind.EMAIL:
        value = normalize_email(ref.value)
    else:
        value = ref.value.strip()
        if not value or len(value) > 320:
            raise InvalidIdentity("identity_invalid", N_("This identity value is not valid."))
    return IdentityRef(kind=kind, value=value, verified=ref.verified)
