"""Provider webhooks: /webhooks/<kind>/<channel-account-id>.

The adapter verifies the signature on the raw body and parses it; the ingest queue
stores the result; the answer goes back only after the commit that holds the data, so
a provider that sees a 2xx can forget the delivery.

Webhooks are most of the requests a server takes, and they use no session, no
dependency and no middleware: `hilo.app.HiloApp` hands them to `serve_webhook` as plain
ASGI, because the middleware stack, route matching and dependency solving cost more CPU
per webhook than the webhook itself. The FastAPI route stays for the OpenAPI schema and
for the odd requests `direct_target` leaves to the app (another method, an account id
that is not plain digits), which get their answers from the app as before.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import APIRouter, Request, Response
from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from hilo.api import errors
from hilo.channels.base import (
    ChannelAccountView,
    ChannelAdapter,
    StatusUpdate,
    WebhookError,
    WebhookRequest,
    WebhookResult,
)
from hilo.channels.forms import form_field_count
from hilo.channels.models import ChannelAccount
from hilo.channels.registry import MODULES, get_adapter
from hilo.db.encryption import SecretsUnreadable
from hilo.errors import ActionError, NotFound, secrets_unreadable
from hilo.http.deps import client_ip
from hilo.http.ratelimit import RateLimiter
from hilo.i18n import N_
from hilo.outbox.delivery import statuses_by_part
from hilo.runtime import Runtime
from hilo.settings import Settings

log = logging.getLogger("hilo.webhooks")
router = APIRouter(prefix="/webhooks", tags=["webhooks"])

CACHE_SECONDS = 2.0
# Bodies larger than this are read by the adapter in a worker thread, so that a big (or
# hostile) one never holds up the event loop and every other request with it.
INLINE_PARSE_BYTES = 64 * 1024
JSON = "application/json"


class ChannelCache:
    """Channel accounts by id for a couple of seconds: enabling or disabling applies within it."""

    def __init__(self) -> None:
        self._items: dict[int, tuple[float, ChannelAccountView | None, bool]] = {}

    def cached(self, account_id: int) -> tuple[ChannelAccountView | None, bool] | None:
        """The fresh entry for `account_id`, or None when it must be loaded."""
        hit = self._items.get(account_id)
        if hit and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1], hit[2]
        return None

    def get(self, runtime: Runtime, account_id: int) -> tuple[ChannelAccountView | None, bool]:
        hit = self.cached(account_id)
        if hit is not None:
            return hit
        now = time.monotonic()
        with runtime.db.read() as session:
            account = session.get(ChannelAccount, account_id)
            value = (account.view(), account.enabled) if account else (None, False)
        self._items[account_id] = (now, *value)
        return value

    def clear(self) -> None:
        self._items.clear()


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ActionError("body_too_large", N_("The request body is too large."), 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ActionError("body_too_large", N_("The request body is too large."), 413)
        chunks.append(chunk)
    return b"".join(chunks)


def _statuses_by_part(
    runtime: Runtime, account: ChannelAccountView, statuses: list[StatusUpdate]
) -> list[StatusUpdate]:
    with runtime.db.read() as session:
        return statuses_by_part(session, account.id, statuses)


def body_limit(kind: str, settings: Settings) -> int:
    """The largest webhook body taken: a forwarded mail holds its attachments, so e-mail gets more."""
    return settings.max_email_body_bytes if kind == "email" else settings.max_body_bytes


@dataclass(frozen=True)
class Reply:
    """What a 200 answer to a webhook carries."""

    body: bytes
    media_type: str


@router.api_route("/{kind}/{account_id}", methods=["GET", "POST"])
async def webhook(kind: str, account_id: int, request: Request) -> Response:
    """Receive a provider's webhook (and answer verification handshakes)."""
    reply = await accept_webhook(request.app.state, kind, account_id, request)
    return Response(reply.body, media_type=reply.media_type)


async def accept_webhook(app_state: State, kind: str, account_id: int, request: Request) -> Reply:
    """Check, parse and store one webhook; refuse it by raising ActionError or WebhookError."""
    if kind not in MODULES:
        raise NotFound("channel_not_found", N_("Channel not found."))
    settings = app_state.runtime.settings
    limiter: RateLimiter = app_state.limiter
    limit = settings.webhook_rate_limit
    if limit and not await limiter.hit_async(f"webhook:{account_id}", limit):
        raise ActionError("rate_limited", N_("Too many requests; wait a moment and try again."), 429)
    # A cache hit is a dict look-up, answered on the event loop; only a miss needs a thread.
    cached = app_state.channel_cache.cached(account_id)
    if cached is None:
        cached = await asyncio.to_thread(app_state.channel_cache.get, app_state.runtime, account_id)
    account, enabled = cached
    if account is None or account.kind != kind:
        log.warning("webhook for unknown channel account %s/%s", kind, account_id)
        raise NotFound("channel_not_found", N_("Channel not found."))
    if not enabled:
        # Refuse loudly rather than drop: the provider keeps the delivery and retries.
        log.warning("webhook for disabled channel account %s", account_id)
        raise ActionError("channel_disabled", N_("This channel is disabled by an administrator."), 503)
    adapter = get_adapter(kind)
    try:
        body = await read_body(request, body_limit(kind, settings))
        hook = webhook_request(request.scope, settings.base_url, body)
        if len(body) > INLINE_PARSE_BYTES:
            result = await asyncio.to_thread(parse, adapter, account, hook, settings.max_form_fields)
        else:
            result = parse(adapter, account, hook, settings.max_form_fields)
    except (WebhookError, ActionError) as exc:
        # Only refusals count, after the signature was checked: a correctly signed webhook
        # is served whatever else came from its address (behind a proxy, every provider's).
        refusal_key = f"webhook-refused:{client_ip(request)}"
        if not await limiter.hit_async(refusal_key, settings.webhook_refusal_limit):
            raise ActionError("rate_limited", N_("Too many requests; wait a moment and try again."), 429) from exc
        raise
    if result.statuses and getattr(adapter, "sends_in_parts", False):
        # A status may name a later part of a multi-part send (an attachment sent as its
        # own provider message); ingest finds messages by their first part's id.
        result.statuses = await asyncio.to_thread(_statuses_by_part, app_state.runtime, account, result.statuses)
    stored: dict[str, Any] = {"messages": 0, "duplicates": 0, "statuses": 0}
    if result.messages or not result.carries_messages_only():
        outcome = await app_state.ingest.store(account, result)
        stored = {
            "messages": sum(1 for m in outcome.messages if not m.duplicate),
            "duplicates": sum(1 for m in outcome.messages if m.duplicate),
            "statuses": outcome.statuses_applied,
        }
    if result.reply_body is not None:
        return Reply(result.reply_body, result.reply_content_type)
    return Reply(orjson.dumps({"ok": True, **stored}), JSON)


def parse(adapter: ChannelAdapter, account: ChannelAccountView, hook: WebhookRequest, max_fields: int) -> WebhookResult:
    """The adapter's reading of a webhook, once its form (if any) is known to be of a sane size."""
    fields = form_field_count(hook.headers.get("content-type", ""), hook.body)
    if fields > max_fields:
        raise WebhookError("too_many_fields", N_("The request has too many form fields."), 413)
    return adapter.parse_webhook(account, hook)


def webhook_request(scope: Scope, base_url: str, body: bytes) -> WebhookRequest:
    """The request as adapters see it, read straight off the ASGI scope.

    The URL is the one the provider called, on the configured base URL (what Twilio signs).
    Starlette's `Request.url`, `headers` and `query_params` would build the same from the
    scope through three more objects on every webhook.
    """
    query = scope.get("query_string", b"").decode()
    return WebhookRequest(
        method=scope["method"],
        url=f"{base_url}{scope['path']}" + (f"?{query}" if query else ""),
        headers={key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]},
        query=dict(parse_qsl(query, keep_blank_values=True)) if query else {},
        body=body,
    )


def direct_target(scope: Scope) -> tuple[str, int] | None:
    """The (kind, account id) of a request `serve_webhook` answers; None leaves it to the app."""
    if scope["type"] != "http" or scope["method"] not in ("GET", "POST") or scope.get("root_path"):
        return None
    parts = scope["path"].split("/")
    if len(parts) != 4 or parts[1] != "webhooks" or not parts[2]:
        return None
    # Plain digits read the same through int() as through FastAPI's validation; any other
    # id ("+7", " 7", hundreds of digits) gets the app's own answer.
    account = parts[3]
    if not (account.isascii() and account.isdigit() and len(account) <= 18):
        return None
    return parts[2], int(account)


async def serve_webhook(
    app_state: State, kind: str, account_id: int, scope: Scope, receive: Receive, send: Send
) -> None:
    """Answer one webhook as plain ASGI, with the answers the app's middleware and handlers gave."""
    request = Request(scope, receive)
    try:
        status, media_type, body = await _answer(app_state, kind, account_id, request)
    except Exception:
        # As Starlette's ServerErrorMiddleware: a bare 500, then the error goes on to the
        # server, which logs it (and to a test client, which raises it).
        await _respond(send, 500, "text/plain", b"Internal Server Error")
        raise
    await _respond(send, status, media_type, body)


async def _answer(app_state: State, kind: str, account_id: int, request: Request) -> tuple[int, str, bytes]:
    """Status, media type and body, with refusals rendered as `hilo.api.errors.install` does."""
    try:
        reply = await accept_webhook(app_state, kind, account_id, request)
    except WebhookError as exc:
        errors.log_webhook_refused(request, exc)
        return exc.status, JSON, orjson.dumps(errors.error_content(request, exc.code, exc.message))
    except ActionError as exc:
        return exc.status, JSON, orjson.dumps(errors.error_content(request, exc.code, exc.reason, **exc.values))
    except SecretsUnreadable as exc:
        # A 500 the provider retries: the webhook is taken once the right key is back.
        log.error("webhook %s: %s", request.url.path, exc)
        error = secrets_unreadable()
        return error.status, JSON, orjson.dumps(errors.error_content(request, error.code, error.reason))
    return 200, reply.media_type, reply.body


async def _respond(send: Send, status: int, media_type: str, body: bytes) -> None:
    if media_type.startswith("text/") and "charset=" not in media_type.lower():
        # Starlette's Response names the charset of text types; providers have always had it.
        media_type += "; charset=utf-8"
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", media_type.encode("latin-1"))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
