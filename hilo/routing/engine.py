"""The background engine that routing, SLAs and automation run on.

A post-commit listener only queues the committed events; a worker thread hands each one
to the registered handlers, which run their own transactions. Periodic passes (SLA due
times, presence expiry, scheduled messages, idle rules) run on the same thread every
few seconds. A burst of queued events is handled in one database transaction (see
`Runtime.batch`), so the engine commits once per burst rather than several times per
event; before the burst's events are handled, the batch-prepare hooks read in one query
what handlers would otherwise read once per event (`before_batch`). Tests call `drain()`
and `tick()` instead of waiting: both run in the caller's thread, under the same lock as
the worker, so when they return every queued event has been handled whichever thread took it.

Events committed by a handler come back with a depth one higher than the event that
caused them (known from the thread that commits), which automation uses to stop loops.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from hilo.runtime import Runtime, Tx

log = logging.getLogger(__name__)

TICK_SECONDS = 10.0
# Under a stream of events (the previous pass ended less than BUSY_SECONDS ago) the engine
# waits LINGER_SECONDS before a pass, so the events of that moment gather into one batch:
# a lone event costs several transactions and re-reads every setting, a batch of them
# costs about one. An engine woken after a quiet spell handles its event at once.
LINGER_SECONDS = 0.05
BUSY_SECONDS = 0.2
# Events handled in one database transaction at most: enough to amortise the commit under
# a burst, few enough that the batch's locks are held only briefly.
BATCH_ITEMS = 32

EventHandler = Callable[[dict[str, Any], int], None]
Periodic = Callable[[], None]
BatchPrepare = Callable[[Tx, list[dict[str, Any]]], None]


@dataclass
class _Event:
    event: dict[str, Any]
    depth: int


@dataclass
class _Call:
    call: Callable[[], None]
    depth: int


class Engine:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        # Identifies this API process in presence sessions.
        self.node_id = uuid.uuid4().hex[:16]
        self._items: deque[_Event | _Call] = deque()
        self._work_lock = threading.RLock()
        self._wake = threading.Event()
        self._local = threading.local()
        self._handlers: list[tuple[int, EventHandler]] = []
        self._periodic: list[tuple[int, Periodic]] = []
        self._prepares: list[tuple[int, BatchPrepare]] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        runtime.on_committed(self._committed)

    def on_event(self, order: int, handler: EventHandler) -> None:
        """Call `handler(event, depth)` for every committed event, lowest `order` first."""
        self._handlers.append((order, handler))
        self._handlers.sort(key=lambda item: item[0])

    def before_batch(self, order: int, prepare: BatchPrepare) -> None:
        """Call `prepare(tx, events)` in a batch's transaction before its events are handled.

        For reads a handler would otherwise make once per event: it makes them once for the
        batch and keeps the answers with `tx.cached`. A batch redone one event at a time is
        handled without it, so handlers must work when it did not run.
        """
        self._prepares.append((order, prepare))
        self._prepares.sort(key=lambda item: item[0])

    def every_tick(self, order: int, periodic: Periodic) -> None:
        self._periodic.append((order, periodic))
        self._periodic.sort(key=lambda item: item[0])

    @property
    def depth(self) -> int:
        """The depth of the event being handled in this thread (-1 outside the engine)."""
        return int(getattr(self._local, "depth", -1))

    def _committed(self, events: list[dict[str, Any]]) -> None:
        depth = self.depth + 1
        self._items.extend(_Event(event, depth) for event in events)
        self._wake.set()

    def submit(self, call: Callable[[], None]) -> None:
        """Run `call` on the engine (after the events queued before it)."""
        self._items.append(_Call(call, self.depth + 1))
        self._wake.set()

    def drain(self) -> int:
        """Handle every queued item, including those the handling queues; return how many."""
        handled = 0
        with self._work_lock:
            while self._items:
                batch = self._take_batch()
                self._handle_batch(batch)
                handled += len(batch)
        return handled

    def _take_batch(self) -> list[_Event | _Call]:
        """The next queued items of one depth, at most BATCH_ITEMS of them."""
        batch = [self._items.popleft()]
        while self._items and len(batch) < BATCH_ITEMS and self._items[0].depth == batch[0].depth:
            batch.append(self._items.popleft())
        return batch

    def _handle_batch(self, batch: list[_Event | _Call]) -> None:
        """Handle a burst in one database transaction.

        If a handler raises or the shared commit fails (a lost lock race, a dropped
        connection), nothing of the batch is kept: its items are handled again, each
        handler in its own transaction, where a failure is logged and skipped.
        """
        if len(batch) == 1 and isinstance(batch[0], _Call):
            self._handle(batch[0])
            return
        self._local.depth = batch[0].depth
        try:
            with self.runtime.batch() as tx:
                events = [item.event for item in batch if isinstance(item, _Event)]
                for _order, prepare in self._prepares:
                    prepare(tx, events)
                for item in batch:
                    self._handle(item, strict=True)
        except Exception as exc:
            log.info("engine batch of %d items rolled back (%s); handling them one by one", len(batch), exc)
            for item in batch:
                self._handle(item)
        finally:
            self._local.depth = -1

    def tick(self) -> None:
        """Run the periodic passes once, then handle what they caused."""
        with self._work_lock:
            self.drain()
            for _order, periodic in self._periodic:
                try:
                    periodic()
                except Exception:
                    log.exception("periodic pass %s failed", getattr(periodic, "__name__", periodic))
            self.drain()

    def _handle(self, item: _Event | _Call, *, strict: bool = False) -> None:
        """Run one item; a failing handler is logged and skipped, or raises when `strict`."""
        outer = self.depth
        self._local.depth = item.depth
        try:
            if isinstance(item, _Call):
                try:
                    item.call()
                except Exception:
                    if strict:
                        raise
                    log.exception("engine call failed")
                return
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
            self._local.depth = outer

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="hilo-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)
        self._thread = None

    def _run(self) -> None:
        next_tick = time.monotonic()
        last_pass = 0.0
        while not self._stopping:
            self._wake.wait(timeout=max(0.0, next_tick - time.monotonic()))
            self._wake.clear()
            if self._stopping:
                return
            if time.monotonic() - last_pass < BUSY_SECONDS and len(self._items) < BATCH_ITEMS:
                time.sleep(LINGER_SECONDS)
            try:
                self.drain()
                last_pass = time.monotonic()
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + TICK_SECONDS
                    self.tick()
            except Exception:
                # The engine must outlive any bug in one pass; the next wake-up retries.
                log.exception("engine pass failed")


def engine_of(app: FastAPI) -> Engine:
    """The app's engine, created on first use and started and stopped with the app."""
    engine: Engine | None = getattr(app.state, "routing_engine", None)
    if engine is not None:
        return engine
    engine = Engine(app.state.runtime)
    app.state.routing_engine = engine
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        # A custom lifespan ignores on_startup/on_shutdown, so wrap it instead.
        async with inner(app) as state:
            engine.start()
            try:
                yield state
            finally:
                await asyncio.to_thread(engine.stop)

    app.router.lifespan_context = lifespan
    return engine
