"""The runtime every action runs in: database, bus, clock and post-commit work."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Table
from sqlalchemy import event as sa_event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction
from sqlalchemy.sql import util as sql_util

from hilo import outbound
from hilo.clock import Clock
from hilo.db import bulk, encryption
from hilo.db.engine import Database
from hilo.events.models import Event
from hilo.realtime.bus import Bus, make_bus
from hilo.settings import Settings
from hilo.storage import LocalStorage

log = logging.getLogger(__name__)

EVENTS = cast(Table, Event.__table__)


T = TypeVar("T")


def session_cached(session: Session, key: Hashable, load: Callable[[], T]) -> T:
    cache: dict[Hashable, Any] = session.info.setdefault("hilo_cached", {})
    if key not in cache:
        cache[key] = load()
    return cast(T, cache[key])


# How long another process may go on treating a setting as empty (no rules, no policies)
# after one was added: the same as channel accounts and sign-ins (hilo.api.webhooks).
KEEP_NOTHING_SET = timedelta(seconds=2)


class NothingSet:
    """Which settings this process last read as empty (no rules for an event, no SLA policy).

    A help desk with nothing configured would otherwise read the same empty answers for
    every engine batch, most of the engine's work under a stream of messages. Only empty
    answers are kept: they are plain values (no ORM objects bound to a closed session), and
    a desk that has rules runs them anyway. A change made through this process's actions
    applies at once (`Tx.forget_settings`); one made by another process within
    KEEP_NOTHING_SET.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._read: dict[Hashable, tuple[datetime, int, Any]] = {}
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        now = self._clock.now()
        hit = self._read.get(key)
        if hit is not None and hit[1] == self._generation and hit[0] <= now < hit[0] + KEEP_NOTHING_SET:
            return cast(T, hit[2])
        generation = self._generation
        value = load()
        if not value:
            with self._lock:
                # A change that committed while this was read leaves it unkept.
                if generation == self._generation:
                    self._read[key] = (now, generation, value)
        return value

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._read.clear()


@dataclass
class Record:
    """One event for `Tx.record_many`: the row behind the timeline, and its real-time update."""

    kind: str
    conversation_id: int | None = None
    contact_id: int | None = None
    message_id: int | None = None
    data: dict[str, Any] | None = None
    realtime: dict[str, Any] | None = None


@dataclass
class Tx:
    """One action transaction: the session, and what to publish once it commits."""

    session: Session
    runtime: Runtime
    actor_agent_id: int | None = None
    published: list[dict[str, Any]] = field(default_factory=list)
    # Live updates with no stored event (`publish_live`): for the screens, not the consumers.
    live_only: list[dict[str, Any]] = field(default_factory=list)
    wake_worker: bool = False
    # Work with effects outside the database (HTTP calls), run once the data is committed.
    deferred: list[Callable[[], None]] = field(default_factory=list)
    retained: list[object] = field(default_factory=list)
    # Event rows stored through this Tx (and the actions a batch joined): a consumer's pass
    # reads on while its reactions record more.
    recorded: int = 0

    def cached(self, key: Hashable, load: Callable[[], T]) -> T:
        """`load()` once per session: settings read by every event (rules, policies, calendars).

        A session lives for one transaction (or one engine batch), so a change committed
        elsewhere is seen by the next one.
        """
        return session_cached(self.session, key, load)

    def cached_setting(self, key: Hashable, load: Callable[[], T]) -> T:
        """`cached`, and an empty answer is shared across transactions (see `NothingSet`).

        `load` must return a value that is false when nothing is set ([] or False).
        """
        return session_cached(self.session, key, lambda: self.runtime.nothing_set.get(key, load))

    def forget_settings(self) -> None:
        """Call before changing rules, SLA policies or calendars: what was read is read again.

        Forgotten again after the commit, so a read that raced the change keeps nothing.
        """
        self.session.info.pop("hilo_cached", None)  # what `session_cached` kept
        self.runtime.nothing_set.forget()
        self.deferred.append(self.runtime.nothing_set.forget)

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
        self.record_many(
            [
                Record(
                    kind,
                    conversation_id=conversation_id,
                    contact_id=contact_id,
                    message_id=message_id,
                    data=data,
                    realtime=realtime,
                )
            ]
        )

    def publish_live(
        self,
        kind: str,
        *,
        conversation_id: int | None = None,
        contact_id: int | None = None,
        realtime: dict[str, Any],
    ) -> None:
        """Queue a live update for after the commit without storing an event.

        For a change of what a screen shows that is derived from events already stored
        (a conversation's SLA summary): open pages re-render, the timeline gains nothing,
        and the durable consumers (which read stored events) are not woken for it.
        """
        self.live_only.append(
            {
                "type": kind,
                "conversation_id": conversation_id,
                "contact_id": contact_id,
                "message_id": None,
                "actor_agent_id": self.actor_agent_id,
                "at": self.now.isoformat(),
                **realtime,
            }
        )

    def record_many(self, records: list[Record]) -> None:
        """`record` for several events at once: one statement for all their rows."""
        if not records:
            return
        now = self.now
        at = now.isoformat()
        # Events recorded while a consumer handles an event are one reaction deeper.
        depth = self.runtime.reaction_depth + 1
        rows = [
            {
                "kind": item.kind,
                "conversation_id": item.conversation_id,
                "contact_id": item.contact_id,
                "message_id": item.message_id,
                "actor_agent_id": self.actor_agent_id,
                "data": item.data or {},
                "payload": item.realtime,
                "depth": depth,
                "created_at": now,
            }
            for item in records
        ]
        deferred = self.session.info.get(_DEFERRED_EVENTS)
        if deferred is not None:
            deferred.extend(rows)
        else:
            # No RETURNING (a single-row insert() would ask for the new id): this may run in
            # a pipeline (`bulk.pipeline`), where no result is read.
            bulk.insert_rows(self.session.connection(), EVENTS, rows)
        self.recorded += len(rows)
        for item in records:
            if item.realtime is not None:
                self.published.append(
                    {
                        "type": item.kind,
                        "conversation_id": item.conversation_id,
                        "contact_id": item.contact_id,
                        "message_id": item.message_id,
                        "actor_agent_id": self.actor_agent_id,
                        "at": at,
                        **item.realtime,
                    }
                )


_RETAINED = "hilo_retained"
# An engine batch's event rows, stored in one statement before it commits (`Runtime.batch`):
# a batch whose reactions record a few events each (a rule's team, routing's assignee) would
# otherwise make a round trip for every one of them.
_DEFERRED_EVENTS = "hilo_deferred_events"


# Where each savepoint of a batch began in its deferred rows: a savepoint rolled back drops
# the rows recorded since, as it drops the rows it wrote (a released one's mark is left, unused).
_SAVEPOINT_MARKS = "hilo_savepoint_marks"


def _store_deferred_events(session: Session) -> None:
    rows = session.info.get(_DEFERRED_EVENTS)
    if rows:
        session.info[_DEFERRED_EVENTS] = []
        bulk.insert_rows(session.connection(), EVENTS, rows)
        # Stored inside the open savepoints: rolling one back now takes them out of the table.
        marks = session.info.get(_SAVEPOINT_MARKS)
        if marks:
            session.info[_SAVEPOINT_MARKS] = dict.fromkeys(marks, 0)


def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    rows = session.info.get(_DEFERRED_EVENTS)
    if transaction.nested and rows is not None:
        session.info.setdefault(_SAVEPOINT_MARKS, {})[transaction] = len(rows)


def _drop_rolled_back_events(session: Session, previous_transaction: SessionTransaction) -> None:
    marks = session.info.get(_SAVEPOINT_MARKS)
    if marks and previous_transaction in marks:
        del session.info[_DEFERRED_EVENTS][marks.pop(previous_transaction) :]


def _reads_events(statement: Any) -> bool:
    return any(table is EVENTS for table in sql_util.find_tables(statement, include_joins=True))


def _events_before_reading_them(state: ORMExecuteState) -> None:
    """A query of the events table inside a batch sees the events the batch recorded so far."""
    if state.session.info.get(_DEFERRED_EVENTS) and _reads_events(state.statement):
        _store_deferred_events(state.session)


def _retain(session: Session, instance: object) -> None:
    """Keep `instance` alive for the rest of a `Runtime.batch` (a no-op in other sessions)."""
    retained = session.info.get(_RETAINED)
    if retained is not None:
        retained.append(instance)


class Runtime:
    def __init__(self, settings: Settings, *, clock: Clock | None = None, bus: Bus | None = None):
        self.settings = settings
        # Secret columns decrypt with the keys of the latest runtime: one per process outside tests.
        encryption.use_keys(encryption.resolve_keys(settings.secret_keys, settings.secret_key))
        self.db = Database(settings.database_url)
        # Listeners on the session factory, once: adding and removing them per batch cost more
        # CPU than the rest of an engine pass's bookkeeping.
        sa_event.listen(self.db.sessions, "loaded_as_persistent", _retain)
        sa_event.listen(self.db.sessions, "pending_to_persistent", _retain)
        sa_event.listen(self.db.sessions, "do_orm_execute", _events_before_reading_them)
        sa_event.listen(self.db.sessions, "after_transaction_create", _mark_savepoint)
        sa_event.listen(self.db.sessions, "after_soft_rollback", _drop_rolled_back_events)
        self.clock = clock or Clock()
        self.bus = bus or make_bus(settings.redis_url)
        self.storage = LocalStorage(settings.data_dir / "media")
        # Channel adapters get no runtime, so the outbound address policy is process-wide.
        outbound.allow(outbound.parse_networks(settings.outbound_allow_networks))
        self._worker_wakeups: list[Callable[[], None]] = []
        self._committed_listeners: list[Callable[[list[dict[str, Any]]], None]] = []
        self._lock = threading.Lock()
        self._ambient = threading.local()
        # Who a bearer token or session cookie stands for, kept for a few seconds so an
        # API request costs no sign-in queries (see hilo.http.deps.load_principal).
        self.principals: dict[tuple[str, object], tuple[float, Any]] = {}
        self.nothing_set = NothingSet(self.clock)

    @property
    def reaction_depth(self) -> int:
        """The depth of the event this thread is reacting to (-1 when it reacts to none)."""
        return int(getattr(self._ambient, "depth", -1))

    @reaction_depth.setter
    def reaction_depth(self, depth: int) -> None:
        self._ambient.depth = depth

    def forget_principals(self) -> None:
        """Drop cached sign-ins: an agent, a team membership or a token changed."""
        self.principals.clear()

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
        """Run an action: commit on success, then publish its events and wake the worker.

        Inside `batch()` (same thread) the action joins the batch's transaction instead,
        and its events are published when the batch commits. An action that raises there
        spoils the whole batch: the batch's owner rolls it back and redoes the work one
        action per transaction.
        """
        batch: Tx | None = getattr(self._ambient, "batch", None)
        if batch is not None:
            tx = Tx(session=batch.session, runtime=self, actor_agent_id=actor_agent_id)
            yield tx
            batch.published.extend(tx.published)
            batch.live_only.extend(tx.live_only)
            batch.wake_worker = batch.wake_worker or tx.wake_worker
            batch.deferred.extend(tx.deferred)
            batch.recorded += tx.recorded
            return
        with self.db.sessions() as session:
            with session.begin():
                tx = Tx(session=session, runtime=self, actor_agent_id=actor_agent_id)
                yield tx
            self.after_commit(tx)

    @contextmanager
    def batch(self) -> Iterator[Tx]:
        """Group every `transaction()` this thread opens into one database transaction.

        The background engine handles a burst of events this way: one commit (and one
        connection checkout) for the burst instead of several per event. If any action
        raises, or the commit fails, nothing of the batch is kept and the caller redoes
        the work one action at a time.
        """
        if getattr(self._ambient, "batch", None) is not None:
            raise RuntimeError("batches do not nest")
        with self.db.sessions() as session:
            tx = Tx(session=session, runtime=self)
            # The session's identity map holds objects weakly: `_retain` keeps what the batch's
            # actions load, so that the next action finds the same conversation without a query.
            session.info[_RETAINED] = tx.retained
            session.info[_DEFERRED_EVENTS] = []
            with session.begin():
                self._ambient.batch = tx
                try:
                    yield tx
                    _store_deferred_events(session)
                finally:
                    self._ambient.batch = None
            self.after_commit(tx)

    def after_commit(self, tx: Tx) -> None:
        if tx.published or tx.live_only:
            self.bus.publish_many([*tx.published, *tx.live_only])
        if tx.published:
            for listener in list(self._committed_listeners):
                try:
                    listener(tx.published)
                except Exception:
                    log.exception("post-commit listener failed")
        if tx.wake_worker:
            self.wake_worker()
        for call in tx.deferred:
            try:
                call()
            except Exception:
                log.exception("post-commit call failed")

    def close(self) -> None:
        self.db.dispose()
