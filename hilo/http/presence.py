"""Who is viewing or typing in which conversation: ephemeral, never stored.

Browsers report `{"type": "viewing" | "typing" | "left", "conversation_id": N}` over the
agent websocket; the update goes out on the bus so agents on every API process see it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hilo.agents.access import Principal
from hilo.http.hub import Connection
from hilo.realtime.bus import Bus


class Presence:
    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        # Called with ("joined" | "heartbeat" | "left", principal) for agent availability
        # (hilo.routing); a watcher must return at once.
        self.watchers: list[Callable[[str, Principal], None]] = []

    def _notify(self, kind: str, connection: Connection) -> None:
        for watcher in list(self.watchers):
            watcher(kind, connection.principal)

    async def joined(self, connection: Connection) -> None:
        self._notify("joined", connection)

    async def heartbeat(self, connection: Connection) -> None:
        self._notify("heartbeat", connection)

    def _publish(self, connection: Connection, kind: str, conversation_id: int) -> None:
        self.bus.publish(
            {
                "type": f"presence.{kind}",
                "conversation_id": conversation_id,
                "team_id": None,
                "assignee_id": None,
                "agent_id": connection.principal.id,
                "agent_name": connection.principal.name,
            }
        )

    async def handle(self, connection: Connection, message: Any) -> None:
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        conversation_id = message.get("conversation_id")
        if kind not in ("viewing", "typing", "left") or not isinstance(conversation_id, int):
            return
        if kind == "viewing":
            connection.viewing.add(conversation_id)
        elif kind == "left":
            connection.viewing.discard(conversation_id)
        self._publish(connection, kind, conversation_id)

    async def left(self, connection: Connection) -> None:
        for conversation_id in list(connection.viewing):
            self._publish(connection, "left", conversation_id)
        connection.viewing.clear()
        self._notify("left", connection)
