"""The ASGI application: API, webhooks, websockets and the agent UI in one process."""

from __future__ import annotations

import asyncio
import gc
import importlib
import importlib.util
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from hilo import __version__, i18n
from hilo.api import admin, attachments, auth, contacts, conversations, errors, inputs, realtime, webhooks
from hilo.clock import Clock
from hilo.features import FEATURES, Background
from hilo.http.hub import Hub
from hilo.http.presence import Presence
from hilo.http.ratelimit import RateLimiter
from hilo.ingest.queue import IngestQueue
from hilo.loopwatch import guard_engine, watch
from hilo.runtime import Runtime
from hilo.settings import Settings, load_settings
from hilo.web import api_docs, rendering

log = logging.getLogger("hilo")


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


def _deliver(to_sockets: Callable[[dict[str, Any]], None], background: Background) -> Callable[[dict[str, Any]], None]:
    """What a live update from the bus does beside reaching this process's websockets: with
    other processes on Redis, it tells the engines here that events were committed."""

    def deliver(event: dict[str, Any]) -> None:
        to_sockets(event)
        background.nudge()

    return deliver


def create_app(settings: Settings | None = None, *, clock: Clock | None = None) -> HiloApp:
    settings = settings or load_settings()
    runtime = Runtime(settings, clock=clock)
    if settings.loop_slow_callback_ms > 0:
        guard_engine(runtime.db.engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        watch(asyncio.get_running_loop(), settings.loop_slow_callback_ms)
        hub_deliver = app.state.hub.deliver
        await runtime.bus.start(_deliver(hub_deliver, background) if settings.redis_url else hub_deliver)
        app.state.ingest.start()
        # The features' background work: all of it, or with HILO_RUN_WORKER=0 (separate
        # `hilo worker` processes do the rest) only what belongs to this process's websockets.
        await background.start(full=settings.run_worker)
        try:
            yield
        finally:
            await background.stop()
            app.state.ingest.stop()
            await app.state.limiter.aclose()
            await runtime.bus.stop()
            runtime.close()

    app = HiloApp(
        title="Hilo",
        version=__version__,
        # The docs page is Hilo's own (hilo.web.api_docs): Swagger UI from the package, under a CSP.
        docs_url=None,
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
    background = Background(runtime, app.state.ingest)
    app.state.background = background
    # Handles the features' routes and the tests reach for.
    app.state.routing_engine = background.reactions
    app.state.routing_handlers = background.handles["routing"]
    app.state.automation_handlers = background.handles["automation"]
    app.state.notifier = background.consumers["workspace"]
    app.state.dispatcher = background.services["outbox"]
    app.state.mailboxes = background.services["mailboxes"].service  # type: ignore[attr-defined]
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
    for feature in FEATURES:
        for name in feature.routes:
            importlib.import_module(name).install(app)

    api_docs.install(app)

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


def _warm_caches() -> None:
    for locale in i18n.LOCALES:
        i18n.load(locale)
    rendering.compile_templates()


def create_served_app() -> ProxyHeaders:
    """The app as `hilo serve` runs it, behind uvicorn's proxy-header handling.

    Before it listens, the message catalogs are read and every template is compiled, on a
    thread: done lazily, the first request in each language paid for that on the event loop
    (reading the English catalog alone takes 15-25 ms of CPU) and the first page for its
    template. Then everything made so far (modules, ORM mappers, templates, caches) is
    moved out of the garbage collector's sight with `gc.freeze()`: a full collection
    otherwise walks all of it and stalls a request for 100 ms or more now and then.
    """
    app = create_app()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            await asyncio.to_thread(_warm_caches)
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan
    # uvicorn's own default for which proxies are trusted, and the same variable.
    return ProxyHeaders(app, os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1"))
