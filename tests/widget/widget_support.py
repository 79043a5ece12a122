"""Helpers for widget tests: a widget channel and a visitor's socket, used the way a site's page does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from tests.support import Api

ORIGIN = "https://shop.example"
SECRET = "site-identity-secret"


def widget_channel(api: Api, **settings: Any) -> dict[str, Any]:
    body = {"kind": "widget", "name": "Shop chat", "settings": {"allowed_origins": [ORIGIN], **settings}}
    return api.ok(api.post("/api/v1/channels", body), 201)  # type: ignore[no-any-return]


def email_channel(api: Api) -> dict[str, Any]:
    """An e-mail channel with an outgoing server (nothing is sent in these tests: the worker does not run)."""
    settings = {"address": "help@shop.example", "smtp_host": "127.0.0.1"}
    return api.ok(api.post("/api/v1/channels", {"kind": "email", "name": "Soporte", "settings": settings}), 201)  # type: ignore[no-any-return]


def token_of(channel: dict[str, Any]) -> str:
    return str(channel["config"]["public_token"])


class Widget:
    """One open widget: frames in and out over the visitor socket, never waiting forever.

    Frames a helper skips while looking for another kind stay queued for the next look.
    """

    def __init__(self, ws: WebSocketTestSession) -> None:
        self.ws = ws
        self.held: list[dict[str, Any]] = []

    def _wire(self, timeout: float) -> dict[str, Any]:
        async def get() -> Any:
            with anyio.fail_after(timeout):
                return await self.ws._send_rx.receive()

        message = self.ws.portal.call(get)
        if message["type"] == "websocket.close":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason", ""))
        return json.loads(message["text"])  # type: ignore[no-any-return]

    def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        return self.held.pop(0) if self.held else self._wire(timeout)

    def next_of(self, kind: str, **match: Any) -> dict[str, Any]:
        for index, frame in enumerate(self.held):
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return self.held.pop(index)
        for _ in range(100):
            frame = self._wire(10.0)
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame
            self.held.append(frame)
        raise AssertionError(f"no {kind} frame")

    def settle(self) -> list[dict[str, Any]]:
        """Every frame queued before a ping's pong: what the widget got for what already happened."""
        self.ws.send_json({"type": "ping"})
        self.next_of("pong")
        frames, self.held = self.held, []
        return frames

    def send(self, text: str, *, client_id: str | None = None, **extra: Any) -> str:
        client_id = client_id or str(uuid.uuid4())
        self.ws.send_json({"type": "message", "client_id": client_id, "text": text, **extra})
        return client_id

    def say(self, text: str, **extra: Any) -> dict[str, Any]:
        """Send a message and return the stored message the server acknowledged."""
        client_id = self.send(text, **extra)
        for _ in range(100):
            frame = self._wire(10.0)
            if frame["type"] == "ack" and frame["client_id"] == client_id:
                return frame["message"]  # type: ignore[no-any-return]
            if frame["type"] == "error" and frame.get("client_id") == client_id:
                raise AssertionError(f"message refused: {frame}")
            self.held.append(frame)
        raise AssertionError("no ack")

    def messages(self) -> list[dict[str, Any]]:
        """The messages the widget was sent so far (and not yet looked at), in order."""
        return [item for frame in self.settle() if frame["type"] == "messages" for item in frame["items"]]


@contextmanager
def open_widget(
    client: TestClient,
    token: str,
    *,
    visitor: str | None = None,
    user: dict[str, str] | None = None,
    last_id: int = 0,
    origin: str = ORIGIN,
    locale: str = "en",
) -> Iterator[Widget]:
    with client.websocket_connect(f"/widget/{token}/ws", headers={"origin": origin}) as ws:
        ws.send_json({"type": "hello", "visitor": visitor, "user": user, "last_id": last_id, "locale": locale})
        yield Widget(ws)


@contextmanager
def agent_online(client: TestClient, api: Api) -> Iterator[WebSocketTestSession]:
    """An agent with the inbox open (an agent websocket), online for routing once this returns."""
    with client.websocket_connect(f"/api/v1/ws?token={api.token}") as ws:
        assert ws.receive_json()["type"] == "hello"
        # Routing writes presence on its engine: run what it queued, so presence is stored.
        client.app.state.routing_engine.drain()  # type: ignore[attr-defined]
        yield ws


def business_hours(api: Api, timezone: str, **fields: Any) -> dict[str, Any]:
    """A routing calendar: Monday to Friday 09:00-18:00 unless `periods` says otherwise."""
    weekdays = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    body = {"name": f"Hours {timezone}", "timezone": timezone, "periods": weekdays, **fields}
    return api.ok(api.post("/api/v1/business-hours", body), 201)  # type: ignore[no-any-return]
