"""The widget hub: visitors' websockets in this API process, fed by the event bus.

Agents' replies are not pushed as payloads: a committed `message.created` on a widget
channel "pokes" the sockets of that contact or conversation, and each poked socket reads
its visitor's new messages. The same read serves reconnects (everything after the last
message id the widget saw), so live delivery and replay cannot disagree, and a message
is shown to the identity it was addressed to and to no one else.

The hub also tells widgets whether any agent is online and available (routing presence,
see `AgentBoard`) and relays typing and "seen".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.websockets import WebSocket

from hilo.channels.base import ChannelAccountView
from hilo.runtime import Runtime
from hilo.widget.history import visitor_messages
from hilo.widget.hours import agents_available
from hilo.widget.visitors import Visitor

log = logging.getLogger(__name__)

QUEUE_LIMIT = 256
# A message id assigned before another's may commit after it (PostgreSQL sequences): ids
# sent in the last few seconds are re-checked below, so a late commit is never skipped.
LATE_COMMIT_SECONDS = 10.0
# Heartbeats expire without an event until the next presence pass: read presence at least this often.
REFRESH_SECONDS = 15.0
POLL_SECONDS = 1.0
_POKE: dict[str, Any] = {"type": "_poke"}


@dataclass(eq=False)
class VisitorSocket:
    """One open widget."""

    websocket: WebSocket
    account: ChannelAccountView
    visitor: Visitor
    token: str
    locale: str
    contact_id: int | None = None
    conversation_id: int | None = None
    # Every message id up to `settled` was sent (or is not this visitor's); ids above it
    # that were sent recently are kept with the time they went out.
    settled: int = 0
    recent: dict[int, float] = field(default_factory=dict)
    initial: bool = True
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    poke_pending: bool = False
    last_typing: float = 0.0
    receipts: dict[str, int] = field(default_factory=dict)

    def floor(self, now: float) -> int:
        for message_id, sent_at in list(self.recent.items()):
            if now - sent_at > LATE_COMMIT_SECONDS:
                self.settled = max(self.settled, message_id)
                del self.recent[message_id]
        for message_id in [m for m in self.recent if m <= self.settled]:
            del self.recent[message_id]
        return self.settled

    def mark_sent(self, ids: list[int], now: float) -> None:
        for message_id in ids:
            if message_id > self.settled:
                self.recent[message_id] = now


class AgentBoard:
    """Whether some agent is online and available, by routing presence (shared by every process).

    Presence lives in the database. It is read again when the bus announces an agent's
    presence change (every process hears it) and every REFRESH_SECONDS besides, so a
    change on another process is seen within a second, and no visitor costs a query.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._available = False
        self._stale = True
        self._read_at = 0.0

    def online(self) -> bool:
        return self._available

    def heard(self) -> None:
        self._stale = True

    def due(self, now: float) -> bool:
        return self._stale or now - self._read_at >= REFRESH_SECONDS

    def refresh(self) -> None:
        """Read presence again (blocking: call from a thread)."""
        self._stale = False
        self._read_at = time.monotonic()
        with self.runtime.db.read() as session:
            self._available = agents_available(session, self.runtime.clock.now())


class WidgetHub:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.board = AgentBoard(runtime)
        self.sockets: set[VisitorSocket] = set()
        self.by_identity: dict[str, set[VisitorSocket]] = defaultdict(set)
        self.by_contact: dict[int, set[VisitorSocket]] = defaultdict(set)
        self.by_conversation: dict[int, set[VisitorSocket]] = defaultdict(set)
        self._online = False

    # -- index ---------------------------------------------------------------------------

    def add(self, socket: VisitorSocket) -> None:
        self.sockets.add(socket)
        self.by_identity[socket.visitor.identity].add(socket)
        if socket.contact_id is not None:
            self.by_contact[socket.contact_id].add(socket)

    def remove(self, socket: VisitorSocket) -> None:
        self.sockets.discard(socket)
        _discard(self.by_identity, socket.visitor.identity, socket)
        if socket.contact_id is not None:
            _discard(self.by_contact, socket.contact_id, socket)
        if socket.conversation_id is not None:
            _discard(self.by_conversation, socket.conversation_id, socket)

    def set_contact(self, socket: VisitorSocket, contact_id: int) -> None:
        if socket.contact_id == contact_id or socket not in self.sockets:
            return
        if socket.contact_id is not None:
            _discard(self.by_contact, socket.contact_id, socket)
        socket.contact_id = contact_id
        self.by_contact[contact_id].add(socket)

    def set_conversation(self, socket: VisitorSocket, conversation_id: int) -> None:
        if socket.conversation_id == conversation_id or socket not in self.sockets:
            return
        if socket.conversation_id is not None:
            _discard(self.by_conversation, socket.conversation_id, socket)
        socket.conversation_id = conversation_id
        self.by_conversation[conversation_id].add(socket)

    # -- sending -------------------------------------------------------------------------

    def push(self, socket: VisitorSocket, frame: dict[str, Any]) -> None:
        try:
            socket.queue.put_nowait(frame)
        except asyncio.QueueFull:
            # A widget that cannot keep up reconnects and replays; never block the others.
            log.warning("dropping slow widget socket of channel %s", socket.account.id)
            self.remove(socket)
            with contextlib.suppress(RuntimeError):
                asyncio.get_running_loop().create_task(_close(socket.websocket, 1013))

    def poke(self, socket: VisitorSocket) -> None:
        if not socket.poke_pending:
            socket.poke_pending = True
            self.push(socket, _POKE)

    def tap(self, event: dict[str, Any]) -> None:
        """Every bus event, on the event loop: find the widgets it concerns."""
        kind = event.get("type")
        conversation_id = event.get("conversation_id")
        if kind == "message.created" and event.get("channel_kind") == "widget":
            targets = set(self.by_conversation.get(conversation_id, ())) if conversation_id else set()
            targets.update(self.by_contact.get(event.get("contact_id") or 0, ()))
            for socket in targets:
                self.poke(socket)
        elif kind == "presence.typing" and conversation_id:
            name = str(event.get("agent_name") or "").split(" ")[0]
            for socket in list(self.by_conversation.get(conversation_id, ())):
                self.push(socket, {"type": "typing", "name": name})
        elif kind == "presence.viewing" and conversation_id:
            for socket in list(self.by_conversation.get(conversation_id, ())):
                self.push(socket, {"type": "seen"})
        elif kind == "widget.identity":
            # A visitor's first message created their contact; their other open widgets learn it.
            for socket in list(self.by_identity.get(str(event.get("identity")), ())):
                self.set_contact(socket, int(event["contact_id"]))
                self.poke(socket)
        elif kind == "agent.presence_changed":
            self.board.heard()

    def _agents_changed(self) -> None:
        online = self.board.online()
        if online != self._online:
            self._online = online
            for socket in list(self.sockets):
                self.push(socket, {"type": "agents", "online": online})

    # -- per-socket sender ---------------------------------------------------------------

    def _fetch(self, socket: VisitorSocket, after: int, exclude: set[int], initial: bool) -> list[dict[str, Any]]:
        with self.runtime.db.read() as session:
            return visitor_messages(
                session,
                account_id=socket.account.id,
                token=socket.token,
                identity_value=socket.visitor.identity,
                secret_key=self.runtime.settings.secret_key,
                after=after,
                exclude=exclude,
                initial=initial,
            )

    async def serve(self, socket: VisitorSocket) -> None:
        """Send the socket's queued frames; a poke becomes the visitor's new messages."""
        while True:
            frame = await socket.queue.get()
            if frame is _POKE:
                socket.poke_pending = False
                # The cursor is read and moved only here, on the event loop; the query runs in a thread.
                after = socket.floor(time.monotonic())
                items = await asyncio.to_thread(self._fetch, socket, after, set(socket.recent), socket.initial)
                if socket.initial:
                    socket.initial = False
                    if items:
                        socket.settled = max(socket.settled, items[0]["id"] - 1)
                if not items:
                    continue
                socket.mark_sent([item["id"] for item in items], time.monotonic())
                self.set_conversation(socket, items[-1]["conversation_id"])
                frame = {"type": "messages", "items": items}
            await socket.websocket.send_text(orjson.dumps(frame).decode())

    async def run(self) -> None:
        """Follow agents' presence and tell open widgets when availability changes."""
        while True:
            try:
                if self.board.due(time.monotonic()):
                    await asyncio.to_thread(self.board.refresh)
                self._agents_changed()
            except Exception:
                log.exception("widget agent presence tick failed")
            await asyncio.sleep(POLL_SECONDS)

    def publish(self, event: dict[str, Any]) -> None:
        self.runtime.bus.publish(event)


def _discard(index: dict[Any, set[VisitorSocket]], key: Any, socket: VisitorSocket) -> None:
    sockets = index.get(key)
    if sockets is not None:
        sockets.discard(socket)
        if not sockets:
            del index[key]


async def _close(websocket: WebSocket, code: int) -> None:
    with contextlib.suppress(Exception):
        await websocket.close(code=code)
