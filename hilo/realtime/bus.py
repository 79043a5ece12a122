"""Event bus: carries committed changes to every API process's websocket hub.

The in-process backend serves a single process (the embedded default). The Redis
backend publishes on one pub/sub channel that every API process subscribes to, so an
agent connected to any process behind a load balancer sees every event. The channel is
named for the Redis database number, so installations (or test runs) on different
databases of one Redis never hear each other (pub/sub itself ignores the number).

`publish` never waits for Redis. Once the bus is started in an API process, every event
(from the loop: presence, the widget's typing; from worker threads: actions committing) is
queued for one task on the loop that sends whatever has gathered as one pub/sub message
(a JSON array of the events, in the order published). So neither the event loop nor the
ingest writer thread waits on Redis for each event, and a subscriber reads and decodes one
message per round, not one per event: with several API processes every one of them hears
every event, and a message apiece cost each process more than its own webhooks' parsing.
A committed transaction hands its events over with `publish_many`, one wake-up of the loop
for all of them. A process that never started the bus (`hilo worker`, the CLI) publishes
with the blocking client from its own threads. A message holding one event as a JSON
object (what earlier versions sent) is delivered too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, Protocol

import orjson
import redis
import redis.asyncio as aioredis

from hilo.loopwatch import guard_redis

log = logging.getLogger(__name__)

CHANNEL = "hilo:events"
# Events published and not yet taken by Redis; beyond it they are dropped (and logged).
LOOP_QUEUE_LIMIT = 10_000
# The most events sent in one pub/sub message.
SEND_BATCH = 500
Deliver = Callable[[dict[str, Any]], None]


class Bus(Protocol):
    def publish(self, event: dict[str, Any]) -> None:
        """Publish from any thread; returns without waiting for delivery."""

    def publish_many(self, events: list[dict[str, Any]]) -> None:
        """Publish several events in order, as `publish` does each, with one hand-over."""

    async def start(self, deliver: Deliver) -> None:
        """Start delivering every published event to `deliver` on the running loop."""

    async def stop(self) -> None: ...


class InProcessBus:
    def __init__(self) -> None:
        self._targets: list[tuple[asyncio.AbstractEventLoop, Deliver]] = []

    def publish(self, event: dict[str, Any]) -> None:
        for loop, deliver in list(self._targets):
            if not loop.is_closed():
                loop.call_soon_threadsafe(deliver, event)

    def publish_many(self, events: list[dict[str, Any]]) -> None:
        for loop, deliver in list(self._targets):
            if not loop.is_closed():
                loop.call_soon_threadsafe(_deliver_all, deliver, events)

    async def start(self, deliver: Deliver) -> None:
        self._targets.append((asyncio.get_running_loop(), deliver))

    async def stop(self) -> None:
        self._targets.clear()


def _deliver_all(deliver: Deliver, events: list[dict[str, Any]]) -> None:
    for event in events:
        deliver(event)


def channel_name(url: str) -> str:
    """The pub/sub channel of the Redis database `url` names (database 0: plain CHANNEL)."""
    database = int(redis.connection.parse_url(url).get("db", 0) or 0)
    return CHANNEL if database == 0 else f"{CHANNEL}:{database}"


class RedisBus:
    def __init__(self, url: str) -> None:
        self.url = url
        self.channel = channel_name(url)
        self._publisher = guard_redis(redis.Redis.from_url(url))
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outgoing: asyncio.Queue[dict[str, Any]] = asyncio.Queue(LOOP_QUEUE_LIMIT)
        self._sender: asyncio.Task[None] | None = None

    def publish(self, event: dict[str, Any]) -> None:
        self.publish_many([event])

    def publish_many(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            self._publish_now(events)
        elif self._on_loop():
            self._enqueue(events)
        else:
            try:
                loop.call_soon_threadsafe(self._enqueue, events)
            except RuntimeError:  # the loop closed meanwhile
                self._publish_now(events)

    def _publish_now(self, events: list[dict[str, Any]]) -> None:
        try:
            for first in range(0, len(events), SEND_BATCH):
                self._publisher.publish(self.channel, orjson.dumps(events[first : first + SEND_BATCH]))
        except redis.RedisError:
            # The change is committed; agents will see it on their next load. Never
            # fail the action because the bus is down.
            log.exception("redis publish failed for %d events (%s)", len(events), events[0].get("type"))

    def _enqueue(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            try:
                self._outgoing.put_nowait(event)
            except asyncio.QueueFull:
                log.error("redis publish queue full; dropped an event")

    def _on_loop(self) -> bool:
        """True when called on the loop the bus was started on (where a blocking call would stall it)."""
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    async def start(self, deliver: Deliver) -> None:
        self._outgoing = asyncio.Queue(LOOP_QUEUE_LIMIT)
        self._sender = asyncio.create_task(self._send())
        self._task = asyncio.create_task(self._listen(deliver))
        await asyncio.wait_for(self._ready.wait(), timeout=10)
        self._loop = asyncio.get_running_loop()

    async def _send(self) -> None:
        """Publish what was queued, in order: all that has gathered as one message."""
        client = aioredis.Redis.from_url(self.url)
        try:
            while True:
                batch = [await self._outgoing.get()]
                while len(batch) < SEND_BATCH and not self._outgoing.empty():
                    batch.append(self._outgoing.get_nowait())
                try:
                    await client.publish(self.channel, orjson.dumps(batch))
                except (redis.RedisError, OSError):
                    log.exception("redis publish failed for %d events", len(batch))
                finally:
                    for _ in batch:
                        self._outgoing.task_done()
        finally:
            await client.aclose()

    async def _listen(self, deliver: Deliver) -> None:
        while True:
            client = aioredis.Redis.from_url(self.url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._ready.set()
                    async for item in pubsub.listen():
                        if item.get("type") != "message":
                            continue
                        try:
                            data = orjson.loads(item["data"])
                        except orjson.JSONDecodeError:
                            # Not one of ours (something else published on the channel): skipped,
                            # the subscription goes on.
                            log.warning("redis bus: a message on %s that is not JSON, skipped", self.channel)
                            continue
                        for event in data if isinstance(data, list) else (data,):
                            deliver(event)
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError):
                log.exception("redis subscription lost; reconnecting")
                await asyncio.sleep(1)
            finally:
                await client.aclose()

    async def stop(self) -> None:
        if self._sender is not None and not self._sender.done():
            # What committed changes published before the shutdown still goes out.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._outgoing.join(), timeout=2)
        self._loop = None
        for task in (self._task, self._sender):
            if task:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._publisher.close()


def make_bus(redis_url: str) -> Bus:
    return RedisBus(redis_url) if redis_url else InProcessBus()
