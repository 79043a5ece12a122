"""Provider webhooks: /webhooks/<kind>/<channel-account-id>.

The adapter verifies the signature on the raw body and parses it; the ingest queue
stores the result; the answer goes back only after the commit that holds the data, so
a provider that sees a 2xx can forget the delivery.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from hilo.actions.delivery import statuses_by_part
from hilo.actions.errors import ActionError, NotFound
from hilo.api.deps import client_ip
from hilo.channels.base import ChannelAccountView, StatusUpdate, WebhookError, WebhookRequest
from hilo.channels.models import ChannelAccount
from hilo.channels.registry import MODULES, get_adapter
from hilo.i18n import N_
from hilo.runtime import Runtime
from hilo.settings import Settings

log = logging.getLogger("hilo.webhooks")
router = APIRouter(prefix="/webhooks", tags=["webhooks"])

CACHE_SECONDS = 2.0


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

    def get(self, request: Request, account_id: int) -> tuple[ChannelAccountView | None, bool]:
        hit = self.cached(account_id)
        if hit is not None:
            return hit
        now = time.monotonic()
        with request.app.state.runtime.db.read() as session:
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


@router.api_route("/{kind}/{account_id}", methods=["GET", "POST"])
async def webhook(kind: str, account_id: int, request: Request) -> Response:
    """Receive a provider's webhook (and answer verification handshakes)."""
    app_state = request.app.state
    if kind not in MODULES:
        raise NotFound("channel_not_found", N_("Channel not found."))
    limiter = app_state.limiter
    # A client that keeps sending unsigned or malformed requests is slowed down before any
    # parsing; correctly signed provider traffic never counts against this limit.
    refusal_key = f"webhook-refused:{client_ip(request)}"
    if limiter.exceeded(refusal_key, app_state.runtime.settings.webhook_refusal_limit):
        raise ActionError("rate_limited", N_("Too many requests; wait a moment and try again."), 429)
    limit = app_state.runtime.settings.webhook_rate_limit
    if limit and not limiter.hit(f"webhook:{account_id}", limit):
        raise ActionError("rate_limited", N_("Too many requests; wait a moment and try again."), 429)
    # A cache hit is a dict look-up, answered on the event loop; only a miss needs a thread.
    cached = app_state.channel_cache.cached(account_id)
    if cached is None:
        cached = await asyncio.to_thread(app_state.channel_cache.get, request, account_id)
    account, enabled = cached
    if account is None or account.kind != kind:
        log.warning("webhook for unknown channel account %s/%s", kind, account_id)
        raise NotFound("channel_not_found", N_("Channel not found."))
    if not enabled:
        # Refuse loudly rather than drop: the provider keeps the delivery and retries.
        log.warning("webhook for disabled channel account %s", account_id)
        raise ActionError("channel_disabled", N_("This channel is disabled by an administrator."), 503)
    body = await read_body(request, body_limit(kind, app_state.runtime.settings))
    base = app_state.runtime.settings.base_url
    url = f"{base}{request.url.path}" + (f"?{request.url.query}" if request.url.query else "")
    hook = WebhookRequest(
        method=request.method,
        url=url,
        headers={k.lower(): v for k, v in request.headers.items()},
        query=dict(request.query_params),
        body=body,
    )
    adapter = get_adapter(kind)
    try:
        result = adapter.parse_webhook(account, hook)
    except WebhookError:
        limiter.hit(refusal_key, app_state.runtime.settings.webhook_refusal_limit)
        raise
    if result.statuses and getattr(adapter, "sends_in_parts", False):
        # A status may name a later part of a multi-part send (an attachment sent as its
        # own provider message); ingest finds messages by their first part's id.
        result.statuses = await asyncio.to_thread(_statuses_by_part, app_state.runtime, account, result.statuses)
    stored: dict[str, Any] = {"messages": 0, "duplicates": 0, "statuses": 0}
    # Messenger/Instagram read receipts and WhatsApp account errors ride on MetaWebhookResult.
    extras = getattr(result, "watermarks", None) or getattr(result, "account_errors", None)
    if result.messages or result.statuses or result.opt_changes or extras:
        outcome = await asyncio.wrap_future(app_state.ingest.submit(account, result))
        stored = {
            "messages": sum(1 for m in outcome.messages if not m.duplicate),
            "duplicates": sum(1 for m in outcome.messages if m.duplicate),
            "statuses": outcome.statuses_applied,
        }
    if result.reply_body is not None:
        return Response(result.reply_body, media_type=result.reply_content_type)
    return JSONResponse({"ok": True, **stored})
