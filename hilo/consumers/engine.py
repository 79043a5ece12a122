"""The engine: a durable consumer of committed events, and the periodic passes beside it.

Features register handlers (`on_event`, run in `order` for every committed event), handlers
that take a whole batch at once (`on_batch`, after the event handlers), reads a batch of
events needs once (`before_batch`) and periodic passes (`every_tick`: SLA due times,
presence expiry, scheduled messages, idle rules). The engine reads committed events
from the events table after its stored position (`hilo.consumers.positions`) and handles a
batch of them in one database transaction (`Runtime.batch`) together with moving its
position on: a crash or restart loses no reaction and repeats none that took effect, and
any number of processes may run the same engine (one holds its lease and does the work;
the others take over when that lease lapses).

A commit in this process wakes the engine at once; commits of other processes are seen
within POLL_SECONDS. An engine built with a `pass_interval` starts its passes at least that
far apart, so that under a stream of commits each pass takes what gathered since the last.
Tests call `drain()` and `tick()` instead of waiting: both run in the caller's thread, under
the same lock as the worker, unpaced.

Events recorded while a handler runs are one level deeper than the event it handles (kept
in the row, `events.depth`), which automation uses to stop loops.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hilo.consumers import positions
from hilo.consumers.positions import Committed
from hilo.runtime import Runtime, Tx

log = logging.getLogger(__name__)

TICK_SECONDS = 10.0
# Events read in one pass, handled in one database transaction: enough to amortise the pass's
# bookkeeping and commit under a burst (most events need nothing from most handlers), few
# enough that the batch's locks are held only briefly.
BATCH_ITEMS = 256
# How often the engine holding the lease looks for events other processes committed.
POLL_SECONDS = 0.1
# The longest wait between two attempts while passes fail (the database is unreachable).
FAILURE_BACKOFF_SECONDS = 5.0
# How long a process holds an engine's lease without renewing it: after a crash, another
# process takes the work over within this time.
LEASE_SECONDS = 10.0
# How often a process that found the lease held by another asks again. Asking on every
# wake-up cost a transaction per commit of its own ingest writer, for nothing.
LEASE_RETRY_SECONDS = 1.0

EventHandler = Callable[[dict[str, Any], int], None]
BatchHandler = Callable[[list[dict[str, Any]]], None]
Periodic = Callable[[], None]
BatchPrepare = Callable[[Tx, list[dict[str, Any]]], None]


@dataclass
class _Call:
    call: Callable[[], None]
    depth: int


def _one_at_a_time(handler: BatchHandler) -> EventHandler:
    def handle(event: dict[str, Any], _depth: int) -> None:
        handler([event])

    handle.__name__ = getattr(handler, "__name__", "batch handler")
    return handle


class Engine:
    def __init__(
        self,
        runtime: Runtime,
        name: str = "reactions",
        kinds: frozenset[str] | None = None,
        *,
        gather_seconds: float = 0.0,
        pass_interval: float = 0.0,
    ) -> None:
        """`kinds`: the only event kinds its handlers react to, if they are known (the rest are
        passed over without being decoded). `gather_seconds`: how long a wake-up waits for more
        commits before the pass, for a consumer whose reactions may come a moment late: fewer,
        fuller passes under a stream of events, for less CPU (each pass has its own bookkeeping).
        `pass_interval`: the least time between the starts of two passes of the engine's thread,
        for a consumer whose reactions should come at once when events are few: an event after
        a quiet spell is handled without waiting, while under a stream a pass gathers what was
        committed since the last one instead of one pass per commit."""
        self.runtime = runtime
        self.name = name
        self.kinds = kinds
        self.gather_seconds = gather_seconds
        self.pass_interval = pass_interval
        self._last_pass = 0.0
        # Identifies this process in presence sessions and as the holder of the lease.
        self.node_id = uuid.uuid4().hex[:16]
        self._calls: deque[_Call] = deque()
        self._work_lock = threading.RLock()
        self._wake = threading.Event()
        self._handlers: list[tuple[int, EventHandler]] = []
        self._batch_handlers: list[tuple[int, BatchHandler]] = []
        self._periodic: list[tuple[int, Periodic, bool]] = []
        # Whether this process handles events and the shared passes, or only its local passes.
        self._consume = True
        self._prepares: list[tuple[int, BatchPrepare]] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        # The position this engine last saw, to look for new events without locking (None: unknown).
        self._seen: int | None = None
        self._holes = False
        # Set by every commit of this process that published events: there is something to read.
        self._dirty = True
        self._lease_until = 0.0
        self._lease_retry_at = 0.0
        with runtime.transaction() as tx:
            positions.start(tx.session, name, tx.now)
        runtime.on_committed(self._committed)

    def on_event(self, order: int, handler: EventHandler) -> None:
        """Call `handler(event, depth)` for every committed event, lowest `order` first."""
        self._handlers.append((order, handler))
        self._handlers.sort(key=lambda item: item[0])

    def on_batch(self, order: int, handler: BatchHandler) -> None:
        """Call `handler(events)` with every committed event of a batch, after the event handlers.

        For a reaction cheaper done for many events at once than one by one (its reads and
        writes become one statement each). When a batch is redone one event at a time, the
        handler is called with one event per transaction.
        """
        self._batch_handlers.append((order, handler))
        self._batch_handlers.sort(key=lambda item: item[0])

    def before_batch(self, order: int, prepare: BatchPrepare) -> None:
        """Call `prepare(tx, events)` in a batch's transaction before its events are handled.

        For reads a handler would otherwise make once per event: it makes them once for the
        batch and keeps the answers with `tx.cached`. A batch redone one event at a time is
        handled without it, so handlers must work when it did not run.
        """
        self._prepares.append((order, prepare))
        self._prepares.sort(key=lambda item: item[0])

    def every_tick(self, order: int, periodic: Periodic, *, local: bool = False) -> None:
        """Run `periodic` every TICK_SECONDS. A shared pass (the default) claims its work with
        row locks and runs where events are handled; a `local` one keeps this process's own
        state (its websockets' presence) and runs in every process."""
        self._periodic.append((order, periodic, local))
        self._periodic.sort(key=lambda item: item[0])

    @property
    def depth(self) -> int:
        """The depth of the event being handled in this thread (-1 outside the engine)."""
        return self.runtime.reaction_depth

    def _committed(self, _events: list[dict[str, Any]]) -> None:
        self._dirty = True
        self._wake.set()

    def nudge(self) -> None:
        """Another process committed events (its live updates came over the bus): look for
        them now rather than at the next poll."""
        self._wake.set()

    def submit(self, call: Callable[[], None]) -> None:
        """Run `call` on the engine (after the events committed before it)."""
        self._calls.append(_Call(call, self.depth + 1))
        self._wake.set()

    def drain(self) -> int:
        """Handle every committed event and queued call, including what the handling causes;
        return how many."""
        return self._drain(paced=False)

    def _drain(self, *, paced: bool) -> int:
        handled = 0
        with self._work_lock:
            while True:
                if paced:
                    self._pace()
                read = self._pass()
                calls = 0
                while self._calls:
                    self._run_call(self._calls.popleft())
                    calls += 1
                handled += read + calls
                # Caught up with what is visible, and nothing committed since: done.
                if read < BATCH_ITEMS and not calls and not self._dirty:
                    return handled

    def _pace(self) -> None:
        """Wait out what is left of `pass_interval` since the last pass began."""
        now = time.monotonic()
        wait = self._last_pass + self.pass_interval - now
        if wait > 0:
            time.sleep(wait)
            now += wait
        self._last_pass = now

    def position(self) -> int | None:
        """Where this engine stands in the events table."""
        with self.runtime.db.read() as session:
            return positions.position_of(session, self.name)

    def _maybe_pending(self) -> bool:
        if self._dirty or self._seen is None or self._holes:
            return True
        with self.runtime.db.read() as session:
            return positions.anything_after(session, self._seen)

    def _pass(self) -> int:
        """Handle the next batch of committed events in one transaction with the new position."""
        if not self._maybe_pending():
            return 0
        self._dirty = False
        try:
            with self.runtime.batch() as tx:
                place = positions.lock(tx.session, self.name, tx.now)
                items = positions.read(tx.session, place, BATCH_ITEMS, self.kinds)
                if items:
                    events = [item.event for item in items if item.event is not None]
                    for _order, prepare in self._prepares:
                        prepare(tx, events)
                    for item in items:
                        self._handle(item, strict=True)
                    self._handle_batch(items)
                    positions.advance(tx.session, place, items)
            self._seen, self._holes = place.position, bool(place.holes)
            return len(items)
        except Exception as exc:
            log.info("engine batch rolled back (%s); handling its events one by one", exc)
            return self._one_by_one()

    def _one_by_one(self) -> int:
        """Handle the next batch one event per transaction; a handler that fails there is
        logged and skipped, each in a transaction of its own."""
        with self.runtime.db.read() as session:
            items = positions.read(session, positions.peek(session, self.name), BATCH_ITEMS, self.kinds)
        for item in items:
            try:
                with self.runtime.batch() as tx:
                    place = positions.lock(tx.session, self.name, tx.now)
                    if self._handled_already(place, item):
                        continue
                    self._handle(item, strict=True)
                    self._handle_batch([item])
                    positions.advance(tx.session, place, [item])
            except Exception:
                for _order, handler in self._handlers:
                    self._isolated(handler, item)
                for _order, batch_handler in self._batch_handlers:
                    self._isolated(_one_at_a_time(batch_handler), item)
                with self.runtime.batch() as tx:
                    place = positions.lock(tx.session, self.name, tx.now)
                    if not self._handled_already(place, item):
                        positions.advance(tx.session, place, [item])
        self._seen = None
        return len(items)

    @staticmethod
    def _handled_already(place: positions.Place, item: Committed) -> bool:
        return item.id <= place.position and item.id not in place.holes

    def _isolated(self, handler: EventHandler, item: Committed) -> None:
        if item.event is None:
            return
        outer = self.runtime.reaction_depth
        self.runtime.reaction_depth = item.depth
        try:
            with self.runtime.batch():
                handler(item.event, item.depth)
        except Exception:
            log.exception("handler %s failed on %s", getattr(handler, "__name__", handler), item.event.get("type"))
        finally:
            self.runtime.reaction_depth = outer

    def tick(self) -> None:
        """Run the periodic passes once, then handle what they caused."""
        with self._work_lock:
            self.drain()
            self._periodic_passes()
            self.drain()

    def _periodic_passes(self, *, local_only: bool = False) -> None:
        for _order, periodic, local in self._periodic:
            if local_only and not local:
                continue
            try:
                periodic()
            except Exception:
                log.exception("periodic pass %s failed", getattr(periodic, "__name__", periodic))

    def _handle(self, item: Committed, *, strict: bool = False) -> None:
        """Run every handler on one event; a failing one is logged and skipped, or raises when `strict`."""
        if item.event is None:
            return
        outer = self.runtime.reaction_depth
        self.runtime.reaction_depth = item.depth
        try:
            for _order, handler in self._handlers:
                try:
                    handler(item.event, item.depth)
                except Exception:
                    if strict:
                        raise
                    log.exception(
                        "handler %s failed on %s", getattr(handler, "__name__", handler), item.event.get("type")
                    )
        finally:
            self.runtime.reaction_depth = outer

    def _handle_batch(self, items: list[Committed]) -> None:
        if not self._batch_handlers:
            return
        events = [item.event for item in items if item.event is not None]
        if not events:
            return
        outer = self.runtime.reaction_depth
        self.runtime.reaction_depth = max(item.depth for item in items)
        try:
            for _order, handler in self._batch_handlers:
                handler(events)
        finally:
            self.runtime.reaction_depth = outer

    def _run_call(self, item: _Call) -> None:
        outer = self.runtime.reaction_depth
        self.runtime.reaction_depth = item.depth - 1
        try:
            item.call()
        except Exception:
            log.exception("engine call failed")
        finally:
            self.runtime.reaction_depth = outer

    def holds_lease(self) -> bool:
        """Whether this process does the engine's work now (renewing its lease when half spent)."""
        now = time.monotonic()
        if self._lease_until - now > LEASE_SECONDS / 2:
            return True
        if now < self._lease_retry_at:
            return False
        with self.runtime.transaction() as tx:
            held = positions.take_lease(
                tx.session, self.name, self.node_id, tx.now, tx.now + timedelta(seconds=LEASE_SECONDS)
            )
        self._lease_until = now + LEASE_SECONDS if held else 0.0
        self._lease_retry_at = 0.0 if held else now + LEASE_RETRY_SECONDS
        return held

    def start(self, *, consume: bool = True) -> None:
        """Run the engine in a thread of its own; without `consume`, only its local passes."""
        if self._thread is not None:
            return
        self._consume = consume
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"hilo-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)
        self._thread = None

    def _run(self) -> None:
        # Without `gather_seconds`, no waiting to gather a burst: under a stream of events, those
        # committed while a pass runs make the next pass's batch (a lone event is handled at once).
        next_tick = time.monotonic()
        failures = 0
        while not self._stopping:
            if failures:
                # The database is away (or a pass keeps failing): wait longer each time rather
                # than spin, logging a traceback on every turn, until it is back.
                self._wake.wait(timeout=min(FAILURE_BACKOFF_SECONDS, POLL_SECONDS * 2**failures))
            else:
                self._wake.wait(timeout=max(0.0, min(POLL_SECONDS, next_tick - time.monotonic())))
            self._wake.clear()
            if self._stopping:
                return
            if self.gather_seconds and not failures:
                time.sleep(self.gather_seconds)
            try:
                if self._consume and self.holds_lease():
                    self._drain(paced=bool(self.pass_interval))
                else:
                    # Under the work lock, so that a `drain()` waiting on it sees what the calls committed.
                    with self._work_lock:
                        while self._calls:
                            self._run_call(self._calls.popleft())
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK_SECONDS
                    with self._work_lock:
                        self._periodic_passes(local_only=not self._consume)
                failures = 0
            except Exception:
                # The engine must outlive any bug in one pass and any outage; it retries.
                failures = min(failures + 1, 16)
                if failures == 1:
                    log.exception("engine %s pass failed; retrying", self.name)
                else:
                    log.warning("engine %s pass failed again (%d in a row)", self.name, failures)
