"""The runtime every action runs in: database, bus, clock and post-commit work."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from hilo.clock import Clock
from hilo.db.engine import Database
from hilo.events.models import Event
from hilo.realtime.bus import Bus, make_bus
from hilo.settings import Settings
from hilo.storage import LocalStorage

log = logging.getLogger(__name__)

# Built once: every action records events, and building a statement per call is costly.
INSERT_EVENT = insert(cast(Table, Event.__table__))


@dataclass
class Tx:
    """One action transaction: the session, and what to publish once it commits."""

    session: Session
    runtime: Runtime
    actor_agent_id: int | None = None
    published: list[dict[str, Any]] = field(default_factory=list)
    wake_worker: bool = False

    @property
    def now(self) -> datetime:
        return self.runtime.clock.now()

    def record(
        self,
        kind: str,
        *,
        conversation_id: int | None = None,
        contact_id: int | None = None,
        message_id: int | None = None,
        data: dict[str, Any] | None = None,
        realtime: dict[str, Any] | None = None,
    ) -> None:
        """Store an event row and queue its real-time update for after the commit.

        `realtime` carries what the websocket hub needs beyond the event itself (the
        conversation's team and assignee, for access checks, and a summary to render).
        """
        payload = data or {}
        self.session.connection().execute(
            INSERT_EVENT,
            {
                "kind": kind,
                "conversation_id": conversation_id,
                "contact_id": contact_id,
                "message_id": message_id,
                "actor_agent_id": self.actor_agent_id,
                "data": payload,
                "created_at": self.now,
            },
        )
        if realtime is not None:
            self.published.append(
                {
                    "type": kind,
                    "conversation_id": conversation_id,
                    "contact_id": contact_id,
                    "message_id": message_id,
                    "actor_agent_id": self.actor_agent_id,
                    "at": self.now.isoformat(),
                    **realtime,
                }
            )


class Runtime:
    def __init__(self, settings: Settings, *, clock: Clock | None = None, bus: Bus | None = None):
        self.settings = settings
        self.db = Database(settings.database_url)
        self.clock = clock or Clock()
        self.bus = bus or make_bus(settings.redis_url)
        self.storage = LocalStorage(settings.data_dir / "media")
        self._worker_wakeups: list[Callable[[], None]] = []
        self._committed_listeners: list[Callable[[list[dict[str, Any]]], None]] = []
        self._lock = threading.Lock()

    def store_inline(self, data: bytes, filename: str | None) -> str:
        return self.storage.save(data, filename)

    def on_outbox_work(self, callback: Callable[[], None]) -> None:
        with self._lock:
            self._worker_wakeups.append(callback)

    def on_committed(self, listener: Callable[[list[dict[str, Any]]], None]) -> None:
        """Call `listener` with the events of every committed transaction, in the committing
        thread. Listeners must return quickly (hand work to a queue): ingest waits on them."""
        with self._lock:
            self._committed_listeners.append(listener)

    def wake_worker(self) -> None:
        for callback in list(self._worker_wakeups):
            callback()

    @contextmanager
    def transaction(self, actor_agent_id: int | None = None) -> Iterator[Tx]:
        """Run an action: commit on success, then publish its events and wake the worker."""
        with self.db.sessions() as session:
            with session.begin():
                tx = Tx(session=session, runtime=self, actor_agent_id=actor_agent_id)
                yield tx
            self.after_commit(tx)

    def after_commit(self, tx: Tx) -> None:
        for event in tx.published:
            self.bus.publish(event)
        if tx.published:
            for listener in list(self._committed_listeners):
                try:
                    listener(tx.published)
                except Exception:
                    log.exception("post-commit listener failed")
        if tx.wake_worker:
            self.wake_worker()

    def close(self) -> None:
        self.db.dispose()
