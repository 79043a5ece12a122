"""Browser-test machinery for the widget: a real Hilo server, a customer's site on another origin, agents."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route
from websockets.sync.client import connect

from hilo.agents.actions import create_agent, create_token
from hilo.app import create_app
from hilo.clock import Clock
from hilo.settings import Settings
from hilo.widget.hub import WidgetHub
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: F401 - other modules import them from here
from tests.fakes.server import free_port, serve_asgi
from tests.support import live_client


class SettableClock(Clock):
    """The real time until a test sets it (to be outside business hours, say); then frozen there."""

    def __init__(self) -> None:
        self._at: datetime | None = None

    def now(self) -> datetime:
        return self._at or datetime.now(UTC)

    def set(self, when: datetime) -> None:
        self._at = when


@dataclass
class LiveHilo:
    """Hilo served by uvicorn (lifespan on, in-process worker) on a loopback port."""

    url: str
    app: FastAPI
    loop: asyncio.AbstractEventLoop
    api: httpx.Client
    token: str
    clock: SettableClock

    def drop_visitor_sockets(self) -> int:
        """Close every widget socket from the server side, as a proxy restart would."""
        hub: WidgetHub = self.app.state.widget_hub

        async def close_all() -> int:
            sockets = list(hub.sockets)
            for socket in sockets:
                with contextlib.suppress(Exception):
                    await socket.websocket.close(code=1012)
            return len(sockets)

        return asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(10)

    def conversations(self) -> list[dict[str, Any]]:
        response = self.api.get("/api/v1/conversations")
        response.raise_for_status()
        return response.json()["items"]  # type: ignore[no-any-return]

    def timeline(self, conversation_id: int) -> list[dict[str, Any]]:
        response = self.api.get(f"/api/v1/conversations/{conversation_id}/messages")
        response.raise_for_status()
        return response.json()["items"]  # type: ignore[no-any-return]

    def contacts(self) -> list[dict[str, Any]]:
        response = self.api.get("/api/v1/contacts")
        response.raise_for_status()
        return response.json()["items"]  # type: ignore[no-any-return]

    def reply(self, conversation_id: int, body: str) -> dict[str, Any]:
        response = self.api.post(f"/api/v1/conversations/{conversation_id}/messages", json={"body": body})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def channel(self, kind: str, **settings: Any) -> dict[str, Any]:
        response = self.api.post("/api/v1/channels", json={"kind": kind, "name": kind.title(), "settings": settings})
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]


def _started(server: uvicorn.Server, what: str) -> None:
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.02)


@contextmanager
def live_hilo(settings: Settings, port: int) -> Iterator[LiveHilo]:
    clock = SettableClock()
    app = create_app(settings, clock=clock)
    holder: dict[str, asyncio.AbstractEventLoop] = {}
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(instance: Any) -> AsyncIterator[Any]:
        holder["loop"] = asyncio.get_running_loop()
        async with inner(instance) as state:
            yield state

    app.router.lifespan_context = lifespan
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _started(server, "hilo")
    with app.state.runtime.transaction() as tx:
        agent = create_agent(
            tx, email="ana@example.com", name="Ana Ruiz", password="correct horse battery", role="admin"
        )
        _row, token = create_token(tx, agent, "e2e")
    url = f"http://127.0.0.1:{port}"
    client = live_client(url, headers={"Authorization": f"Bearer {token}"})
    try:
        yield LiveHilo(url=url, app=app, loop=holder["loop"], api=client, token=token, clock=clock)
    finally:
        client.close()
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def served_hilo(settings: Settings, **overrides: Any) -> Iterator[LiveHilo]:
    """`live_hilo` on a free port, with `overrides` of the settings."""
    port = free_port()
    with live_hilo(replace(settings, base_url=f"http://127.0.0.1:{port}", **overrides), port) as running:
        yield running


@contextmanager
def agent_online(live: LiveHilo) -> Iterator[None]:
    """An agent with the inbox open (an agent websocket, drained in a thread), online for routing."""
    ws = connect(live.url.replace("http", "ws", 1) + f"/api/v1/ws?token={live.token}")
    ws.recv(timeout=10)
    _wait_until_online(live)

    def drain() -> None:
        with contextlib.suppress(Exception):
            for _frame in ws:
                pass

    thread = threading.Thread(target=drain, daemon=True)
    thread.start()
    try:
        yield
    finally:
        ws.close()
        thread.join(timeout=10)


def _wait_until_online(live: LiveHilo) -> None:
    # Routing stores presence on its engine thread; the widget reads it from there.
    deadline = time.monotonic() + 10
    while not any(p["presence"] == "online" for p in live.api.get("/api/v1/presence").json()):
        if time.monotonic() > deadline:
            raise RuntimeError("the agent did not come online")
        time.sleep(0.02)


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>button {{ background: rgb(255, 0, 0) !important; font-size: 40px !important; }}</style>
</head><body><h1>The shop</h1>
<script>
  window.pageId = Math.random();
  window.shown = [];
  window.addEventListener("hilo:message", function (e) {{
    window.shown.push(Object.assign({{t: Date.now()}}, e.detail));
  }});
</script>
<script async src="{hilo}/widget/{token}/widget.js" data-token="{token}" {attributes}></script>
</body></html>"""

CONTACT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Contact</title></head><body>
<form method="post" action="{hilo}/forms/{token}">
  <input type="hidden" name="redirect" value="{site}/thanks">
  <label>E-mail <input name="email" id="email"></label>
  <label>Message <textarea name="message" id="message"></textarea></label>
  <input name="website" style="display:none" tabindex="-1" autocomplete="off">
  <button type="submit">Send</button>
</form></body></html>"""


@dataclass
class Site:
    """The business's own site, on another origin, with Hilo's snippet in its pages."""

    url: str
    hilo: str
    widget_token: str = ""
    form_token: str = ""


@contextmanager
def widget_site(live: LiveHilo) -> Iterator[Site]:
    """The customer's site with a widget of `live` ("Shop help", allowed there) in its pages."""
    with customer_site(live.url) as running:
        widget = live.channel("widget", allowed_origins=[running.url], title="Shop help")
        running.widget_token = widget["config"]["public_token"]
        yield running


@contextmanager
def customer_site(hilo_url: str) -> Iterator[Site]:
    site = Site(url="", hilo=hilo_url)

    def shop(request: Request) -> HTMLResponse:
        attributes = " ".join(
            f'data-{name.replace("_", "-")}="{value}"' for name, value in request.query_params.items()
        )
        return HTMLResponse(PAGE.format(hilo=site.hilo, token=site.widget_token, attributes=attributes))

    def contact(_request: Request) -> HTMLResponse:
        return HTMLResponse(CONTACT.format(hilo=site.hilo, token=site.form_token, site=site.url))

    def thanks(_request: Request) -> HTMLResponse:
        return HTMLResponse("<!doctype html><title>Thanks</title><h1>Thanks for writing</h1>")

    app = Starlette(routes=[Route("/shop", shop), Route("/contact", contact), Route("/thanks", thanks)])
    with serve_asgi(app, free_port()) as url:
        site.url = url
        yield site
