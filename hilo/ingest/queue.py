"""The writer queue: webhooks that arrive together share one commit (group commit), answered after it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

# The batch insert casts every column it writes. A foreign-key column takes its type from
# the column it points at, known only once that table is loaded: load the tables they point at.
import hilo.agents.models  # noqa: F401
import hilo.channels.models  # noqa: F401
from hilo.channels.base import (
    ChannelAccountView,
    WebhookResult,
)
from hilo.ingest.deliveries import ingest_batch, ingest_delivery
from hilo.ingest.statements import DeliveryResult
from hilo.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class _Item:
    account: ChannelAccountView
    result: WebhookResult
    # Who waits: a thread (`submit`) or a coroutine on an event loop (`store`).
    future: concurrent.futures.Future[DeliveryResult] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    waiter: asyncio.Future[DeliveryResult] | None = None


class _Answers:
    """A batch's outcomes, handed to each waiting event loop in one call.

    One thread-safe wake-up per loop and batch, rather than one per webhook, which cost the
    event loop more than the webhook's own parsing under load.
    """

    def __init__(self) -> None:
        self.by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[DeliveryResult], Any]]] = {}

    def give(self, item: _Item, outcome: DeliveryResult | BaseException) -> None:
        if item.future is not None:
            if isinstance(outcome, BaseException):
                item.future.set_exception(outcome)
            else:
                item.future.set_result(outcome)
        elif item.loop is not None and item.waiter is not None:
            self.by_loop.setdefault(item.loop, []).append((item.waiter, outcome))

    def send(self) -> None:
        for loop, answers in self.by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, answers)
            except RuntimeError:
                log.warning("event loop closed before %d ingest answers reached it", len(answers))
        self.by_loop.clear()


def _settle(answers: list[tuple[asyncio.Future[DeliveryResult], Any]]) -> None:
    for waiter, outcome in answers:
        if waiter.done():
            continue  # the request was cancelled (its client went away); the data is stored
        if isinstance(outcome, BaseException):
            waiter.set_exception(outcome)
        else:
            waiter.set_result(outcome)


class IngestQueue:
    """One writer thread that commits webhook deliveries in shared transactions.

    Deliveries that arrive while a commit is in flight wait for the next one, so under
    load one durable commit carries many messages. If a batch fails (a race on a unique
    index, a bad row) it is rolled back and each delivery retried alone, so one bad
    delivery never takes its neighbours down.
    """

    def __init__(self, runtime: Runtime, max_batch: int = 128) -> None:
        self.runtime = runtime
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="hilo-ingest", daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._started = False

    def submit(self, account: ChannelAccountView, result: WebhookResult) -> concurrent.futures.Future[DeliveryResult]:
        """Queue a delivery; the future resolves once it is committed (or failed)."""
        future: concurrent.futures.Future[DeliveryResult] = concurrent.futures.Future()
        self._queue.put(_Item(account, result, future=future))
        return future

    async def store(self, account: ChannelAccountView, result: WebhookResult) -> DeliveryResult:
        """Queue a delivery from a coroutine and wait until it is committed."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[DeliveryResult] = loop.create_future()
        self._queue.put(_Item(account, result, loop=loop, waiter=waiter))
        return await waiter

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._answer(batch)
                    return
                batch.append(item)
            self._answer(batch)

    def _answer(self, batch: list[_Item]) -> None:
        answers = _Answers()
        try:
            self._process(batch, answers)
        finally:
            answers.send()

    def _process(self, batch: list[_Item], answers: _Answers) -> None:
        try:
            with self.runtime.transaction() as tx:
                results = ingest_batch(tx, [(item.account, item.result) for item in batch])
            for item, outcome in zip(batch, results, strict=True):
                answers.give(item, outcome)
            return
        except (IntegrityError, OperationalError, ValueError) as exc:
            if len(batch) == 1:
                self._process_alone(batch[0], answers, retry=isinstance(exc, IntegrityError | OperationalError))
                return
        except Exception:
            log.exception("ingest batch failed; retrying deliveries one by one")
        for item in batch:
            self._process_alone(item, answers, retry=True)

    def _process_alone(self, item: _Item, answers: _Answers, *, retry: bool) -> None:
        attempts = 3 if retry else 1
        for attempt in range(attempts):
            try:
                with self.runtime.transaction() as tx:
                    outcome = ingest_delivery(tx, item.account, item.result)
                answers.give(item, outcome)
                return
            except (IntegrityError, OperationalError) as exc:
                # A concurrent process created the same identity or conversation first;
                # the retry finds and joins it.
                if attempt == attempts - 1:
                    log.exception("ingest failed for channel account %s", item.account.id)
                    answers.give(item, exc)
            except Exception as exc:
                log.exception("ingest failed for channel account %s", item.account.id)
                answers.give(item, exc)
                return
