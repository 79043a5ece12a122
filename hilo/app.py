"""The ASGI application: API, webhooks, websockets and the agent UI in one process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import importlib.util
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from hilo import __version__
from hilo.actions.ingest import IngestQueue
from hilo.api import admin, attachments, auth, contacts, conversations, errors, inputs, realtime, webhooks
from hilo.api.ratelimit import RateLimiter
from hilo.clock import Clock
from hilo.mailbox.service import MailboxService
from hilo.realtime.hub import Hub
from hilo.realtime.presence import Presence
from hilo.runtime import Runtime
from hilo.settings import Settings, load_settings
from hilo.worker.dispatcher import OutboxDispatcher

log = logging.getLogger("hilo")

FEATURE_MODULES = (
    "hilo.web.views",
    "hilo.web.admin_automation",
    "hilo.widget.routes",
    "hilo.routing.api",
    "hilo.automation.api",
    "hilo.messaging.api",
)


class HiloApp(FastAPI):
    """The FastAPI app, with provider webhooks answered ahead of its middleware and router.

    Webhooks are most of the traffic and use none of that machinery, which cost more CPU
    per webhook than the webhook's own code (see `hilo.api.webhooks`).
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = webhooks.direct_target(scope)
        if target is None:
            await super().__call__(scope, receive, send)
        else:
            await webhooks.serve_webhook(self.state, *target, scope, receive, send)


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> HiloApp:
    settings = settings or load_settings()
    runtime = Runtime(settings, clock=clock)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.bus.start(app.state.hub.deliver)
        app.state.ingest.start()
        worker_task = None
        if settings.run_worker:
            dispatcher = OutboxDispatcher(runtime)
            app.state.dispatcher = dispatcher
            worker_task = asyncio.create_task(dispatcher.run())
            # The in-process worker also polls the IMAP mailboxes (hilo.mailbox).
            app.state.mailboxes = MailboxService(runtime, app.state.ingest)
            app.state.mailboxes.start()
        try:
            yield
        finally:
            if worker_task is not None:
                await app.state.mailboxes.close()
                app.state.dispatcher.stop()
                worker_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker_task
            app.state.ingest.stop()
            await runtime.bus.stop()
            runtime.close()

    app = HiloApp(
        title="Hilo",
        version=__version__,
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        lifespan=lifespan,
        dependencies=[Depends(inputs.check_request_input)],
    )
    app.state.runtime = runtime
    app.state.hub = Hub()
    app.state.presence = Presence(runtime.bus)
    app.state.ingest = IngestQueue(runtime)
    app.state.limiter = RateLimiter(settings.redis_url, now=lambda: runtime.clock.now().timestamp())
    app.state.channel_cache = webhooks.ChannelCache()
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="hilo_session",
        same_site="lax",
        https_only=settings.secure_cookies,
        max_age=14 * 24 * 3600,
    )
    errors.install(app)
    inputs.install(app)
    for module in (auth, conversations, contacts, admin, attachments, webhooks, realtime):
        app.include_router(module.router)
    for name in FEATURE_MODULES:
        # Feature packages plug in with `install(app)`; one not yet present is skipped,
        # but one that is present and fails to import fails loudly.
        package = name.rsplit(".", 1)[0]
        if importlib.util.find_spec(package) is not None and importlib.util.find_spec(name) is not None:
            importlib.import_module(name).install(app)

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


class _RememberedTrust:
    """uvicorn's trusted-proxy set, with its answer kept per client address.

    uvicorn parses the client's address with `ipaddress` on every request to ask whether
    it is a trusted proxy; the few addresses a server sees (its proxies, or the clients
    themselves) get the same answer every time.
    """

    LIMIT = 10_000

    def __init__(self, hosts: Any) -> None:
        self._hosts = hosts
        self._known: dict[str | None, bool] = {}

    def __contains__(self, host: str | None) -> bool:
        known = self._known.get(host)
        if known is None:
            known = host in self._hosts
            if len(self._known) >= self.LIMIT:
                self._known.clear()
            self._known[host] = known
        return known

    def get_trusted_client_host(self, x_forwarded_for: str) -> str:
        return str(self._hosts.get_trusted_client_host(x_forwarded_for))


class ProxyHeaders(ProxyHeadersMiddleware):
    """uvicorn's X-Forwarded-For/-Proto handling, from the proxies in FORWARDED_ALLOW_IPS."""

    def __init__(self, app: Any, trusted_hosts: list[str] | str) -> None:
        super().__init__(app, trusted_hosts)
        self.trusted_hosts = _RememberedTrust(self.trusted_hosts)  # type: ignore[assignment]


def create_served_app() -> ProxyHeaders:
    """The app as `hilo serve` runs it, behind uvicorn's proxy-header handling.

    Once it has started, everything made so far (modules, ORM mappers, templates, caches)
    is moved out of the garbage collector's sight with `gc.freeze()`: a full collection
    otherwise walks all of it and stalls a request for 100 ms or more now and then.
    """
    app = create_app()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan
    # uvicorn's own default for which proxies are trusted, and the same variable.
    return ProxyHeaders(app, os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))
