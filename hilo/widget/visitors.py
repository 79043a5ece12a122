"""Who is at the other end of a widget: an anonymous visitor's signed token, or a verified site user.

An anonymous visitor holds a token the server signed (`<visitor id>.<signature>`), kept in
the browser's storage: the visitor id names their identity, the signature stops anyone who
sees an identity value (agents, logs) from taking over the visitor's chat. A signed-in
user of the site is named by the site's own user id and the HMAC-SHA256 of that id under
the channel's `identity_secret`, computed by the site's server; the name, e-mail address
and phone number the site passes with it are claims about that user, never identities
the hash vouches for.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from hilo import constant_time
from hilo.channels.base import ChannelAccountView
from hilo.channels.widget import MAX_FIELD, MAX_USER_ID, user_identity, verify_user, visitor_identity
from hilo.errors import ActionError
from hilo.i18n import N_

_TOKEN = re.compile(r"^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{22})$")


@dataclass(frozen=True)
class Credentials:
    """What a widget presents: its visitor token, or a signed-in user's id and hash."""

    visitor: str | None = None
    user_id: str | None = None
    user_hash: str | None = None
    user_name: str | None = None
    user_email: str | None = None
    user_phone: str | None = None


@dataclass(frozen=True)
class Visitor:
    """An authenticated widget visitor."""

    account_id: int
    identity: str  # the identity value (kind "widget")
    verified: bool
    # Scopes the widget's own message ids, so one visitor can never collide with another's.
    key: str
    token: str | None = None  # the anonymous token the widget must keep
    new: bool = False  # the token was issued just now
    name: str | None = None
    # What the site says about a signed-in user: claims, linked like a pre-chat form's.
    email: str | None = None
    phone: str | None = None


def _signature(secret_key: str, account_id: int, visitor_id: str) -> str:
    digest = hmac.new(secret_key.encode(), f"hilo-widget-visitor:{account_id}:{visitor_id}".encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode()[:22]


def issue_token(secret_key: str, account_id: int) -> str:
    """A new anonymous visitor's token."""
    visitor_id = secrets.token_urlsafe(16)
    return f"{visitor_id}.{_signature(secret_key, account_id, visitor_id)}"


def read_token(secret_key: str, account_id: int, token: str | None) -> str | None:
    """The visitor id inside a token this server signed for this channel account, else None."""
    match = _TOKEN.match(token or "")
    if match is None:
        return None
    visitor_id, signature = match.groups()
    if not constant_time.equal(_signature(secret_key, account_id, visitor_id), signature):
        return None
    return visitor_id


def authenticate(account: ChannelAccountView, secret_key: str, credentials: Credentials, *, allow_new: bool) -> Visitor:
    """Check the widget's credentials. A signed-in user whose hash does not match is refused
    (403 `identity_invalid`); a missing or foreign visitor token gets a new one when allowed."""
    if credentials.user_id or credentials.user_hash:
        secret = account.secrets.get("identity_secret", "")
        if not secret:
            raise ActionError(
                "identity_verification_off",
                N_("This site sent a signed-in user, but identity verification is not set up for this chat."),
                403,
            )
        user_id = (credentials.user_id or "").strip()
        if not verify_user(secret, user_id, credentials.user_hash or ""):
            reason = N_("The signed-in user could not be verified: the identity hash does not match.")
            raise ActionError("identity_invalid", reason, 403)
        return Visitor(
            account_id=account.id,
            identity=user_identity(account.id, user_id),
            verified=True,
            key=f"user:{user_id}"[: MAX_USER_ID + 5],
            name=(credentials.user_name or "").strip()[:255] or None,
            email=(credentials.user_email or "").strip()[:320] or None,
            phone=(credentials.user_phone or "").strip()[:MAX_FIELD] or None,
        )
    visitor_id = read_token(secret_key, account.id, credentials.visitor)
    token = credentials.visitor
    new = False
    if visitor_id is None:
        if not allow_new:
            raise ActionError("visitor_invalid", N_("This chat session is not valid any more; reload the page."), 401)
        token = issue_token(secret_key, account.id)
        visitor_id = token.split(".", 1)[0]
        new = True
    return Visitor(
        account_id=account.id,
        identity=visitor_identity(account.id, visitor_id),
        verified=False,
        key=visitor_id,
        token=token,
        new=new,
    )
