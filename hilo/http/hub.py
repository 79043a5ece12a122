"""Websocket hub: fans committed events out to the agents allowed to see them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket

from hilo.agents.access import Principal
from hilo.conversations.access import can_see

log = logging.getLogger(__name__)

QUEUE_LIMIT = 1000
# Queued instead of an event: the sender closes the socket (its session was revoked).
CLOSE = ""


@dataclass(eq=False)
class Connection:
    websocket: WebSocket
    principal: Principal
    # Events as JSON text, encoded once for every connection that gets them.
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    # Conversations this agent has open on screen (for presence / collision warnings).
    viewing: set[int] = field(default_factory=set)


def encode(event: dict[str, Any]) -> str:
    """The event as the text frame `WebSocket.send_json` sends (Starlette's own encoding)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


class Hub:
    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        # Other websocket hubs fed by the same bus (the chat widget's visitors).
        self.taps: list[Callable[[dict[str, Any]], None]] = []

    def deliver(self, event: dict[str, Any]) -> None:
        """Called on the event loop for every event from the bus."""
        if event.get("revoked_session_ids"):
            self.close_sessions(set(event["revoked_session_ids"]))
        for tap in self.taps:
            try:
                tap(event)
            except Exception:
                log.exception("websocket hub tap failed on %s", event.get("type"))
        text: str | None = None
        for connection in list(self.connections):
            if not self.allowed(connection.principal, event):
                continue
            if text is None:
                text = encode(event)
            try:
                connection.queue.put_nowait(text)
            except asyncio.QueueFull:
                # A client that cannot keep up reconnects and reloads; never block the others.
                log.warning("dropping slow websocket of agent %s", connection.principal.id)
                self.connections.discard(connection)
                with contextlib.suppress(Exception):
                    asyncio.get_running_loop().create_task(connection.websocket.close(code=1013))

    def close_sessions(self, session_ids: set[str]) -> None:
        """Close the sockets opened by sessions that were just revoked (4401: sign in again)."""
        for connection in list(self.connections):
            if connection.principal.session_id in session_ids:
                self.connections.discard(connection)
                try:
                    connection.queue.put_nowait(CLOSE)
                except asyncio.QueueFull:
                    with contextlib.suppress(Exception):
                        asyncio.get_running_loop().create_task(connection.websocket.close(code=4401))

    @staticmethod
    def allowed(principal: Principal, event: dict[str, Any]) -> bool:
        only = event.get("only_agent_ids")
        if only is not None and principal.id not in only:
            return False
        if event.get("conversation_id") is None:
            return True
        return can_see(principal, event.get("team_id"), event.get("assignee_id"))

    async def serve(self, connection: Connection) -> None:
        self.connections.add(connection)
        try:
            while True:
                text = await connection.queue.get()
                if text == CLOSE:
                    await connection.websocket.close(code=4401)
                    return
                await connection.websocket.send_text(text)
        finally:
            self.connections.discard(connection)
