"""Hilo's own webhook signature: HMAC-SHA256 over "<timestamp>.<raw body>".

Used by the generic API channel in both directions, and by outgoing webhooks. The
header reads `X-Hilo-Signature: t=<unix seconds>,v1=<hex digest>`; a timestamp more
than five minutes away from now is refused, so a captured request cannot be replayed.
"""

from __future__ import annotations

import hmac
import time

from hilo import constant_time
from hilo.channels.base import WebhookError
from hilo.i18n import N_

HEADER = "x-hilo-signature"
TOLERANCE_SECONDS = 300
TIMESTAMP_DIGITS = 12


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.digest(secret.encode(), f"{ts}.".encode() + body, "sha256").hex()
    return f"t={ts},v1={digest}"


def verify(secret: str, body: bytes, header: str | None, now: float | None = None) -> None:
    """Raise WebhookError unless `header` is a fresh, valid signature of `body`."""
    if not header:
        raise WebhookError("signature_missing", N_("The request is not signed."), 401)
    parts = dict(piece.split("=", 1) for piece in header.split(",") if "=" in piece)
    stamp, given = parts.get("t", ""), parts.get("v1")
    # Unix seconds have ten digits for centuries; hundreds would overflow the float arithmetic below.
    if given is None or not (stamp.isascii() and stamp.isdigit() and len(stamp) <= TIMESTAMP_DIGITS):
        raise WebhookError("signature_malformed", N_("The signature header is malformed."), 401)
    timestamp = int(stamp)
    current = time.time() if now is None else now
    if abs(current - timestamp) > TOLERANCE_SECONDS:
        raise WebhookError("timestamp_stale", N_("The request timestamp is too old or in the future."), 401)
    expected = hmac.digest(secret.encode(), f"{timestamp}.".encode() + body, "sha256").hex()
    if not constant_time.equal(expected, given):
        raise WebhookError("signature_invalid", N_("The request signature does not match."), 401)
