"""Signed, expiring public links to stored attachments, for providers that only take
media by URL (Instagram, Twilio SMS/MMS and WhatsApp): `<HILO_BASE_URL>/media/<token>`.

The token signs the attachment id and an expiry with the installation's secret key
(itsdangerous); the expiry is checked against Hilo's clock, so tests can move time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

from hilo.errors import ActionError
from hilo.i18n import N_
from hilo.settings import Settings

SALT = "hilo.media-link"
# Every send attempt builds a fresh link, so it only has to outlive one provider fetch.
LINK_TTL = timedelta(hours=2)


def _serializer(settings: Settings) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret_key, salt=SALT)


def media_link(settings: Settings, now: datetime, attachment_id: int, ttl: timedelta = LINK_TTL) -> str:
    """A public URL for one attachment, valid until `now + ttl`."""
    token = _serializer(settings).dumps([attachment_id, int((now + ttl).timestamp())])
    return f"{settings.base_url}/media/{token}"


def read_media_link(settings: Settings, now: datetime, token: str) -> int:
    """The attachment id a link names; `ActionError` if forged or expired."""
    try:
        attachment_id, expires = _serializer(settings).loads(token)
    except (BadSignature, ValueError, TypeError) as exc:
        raise ActionError("media_link_invalid", N_("This media link is not valid."), 404) from exc
    if not isinstance(attachment_id, int) or not isinstance(expires, int):
        raise ActionError("media_link_invalid", N_("This media link is not valid."), 404)
    if now.timestamp() > expires:
        raise ActionError("media_link_expired", N_("This media link has expired."), 410)
    return attachment_id
