"""Event bus: carries committed changes to every API process's websocket hub.

The in-process backend serves a single process (the embedded default). The Redis
backend publishes on one pub/sub channel that every API process subscribes to, so an
agent connected to any process behind a load balancer sees every event. The channel is
named for the Redis database number, so installations (or test runs) on different
databases of one Redis never hear each other (pub/sub itself ignores the number).

`publish` never waits for Redis. Once the bus is started in an API process, every event
(from the loop: presence, the widget's typing; from worker threads: actions committing) is
queued for one task on the loop that sends whatever has gathered in one pipelined round
trip with the asyncio client, in the order published. So neither the event loop nor the
ingest writer thread waits on Redis for each event. A process that never started the bus
(`hilo worker`, the CLI) publishes with the blocking client from its own threads.
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
# The most events sent in one pipelined round trip.
SEND_BATCH = 500
Deliver = Callable[[dict[str, Any]], None]


class Bus(Protocol):
    def publish(self, event: dict[str, Any]) -> None:
        """Publish from any thread; returns without waiting for delivery."""

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

    async def start(self, deliver: Deliver) -> None:
        self._targets.append((asyncio.get_running_loop(), deliver))

    async def stop(self) -> None:
        self._targets.clear()


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
        self._outgoing: asyncio.Queue[bytes] = asyncio.Queue(LOOP_QUEUE_LIMIT)
        self._sender: asyncio.Task[None] | None = None

    def publish(self, event: dict[str, Any]) -> None:
        data = orjson.dumps(event)
        loop = self._loop
        if loop is None or loop.is_closed():
            self._publish_now(data, event)
        elif self._on_loop():
            self._enqueue(data)
        else:
            try:
                loop.call_soon_threadsafe(self._enqueue, data)
            except RuntimeError:  # the loop closed meanwhile
                self._publish_now(data, event)

    def _publish_now(self, data: bytes, event: dict[str, Any]) -> None:
        try:
            self._publisher.publish(self.channel, data)
        except redis.RedisError:
            # The change is committed; agents will see it on their next load. Never
            # fail the action because the bus is down.
            log.exception("redis publish failed for event %s", event.get("type"))

    def _enqueue(self, data: bytes) -> None:
        try:
            self._outgoing.put_nowait(data)
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
        """Publish what was queued, in order: all that has gathered in one pipelined round trip."""
        client = aioredis.Redis.from_url(self.url)
        try:
            while True:
                batch = [await self._outgoing.get()]
                while len(batch) < SEND_BATCH and not self._outgoing.empty():
                    batch.append(self._outgoing.get_nowait())
                pipe = client.pipeline(transaction=False)
                for data in batch:
                    pipe.publish(self.channel, data)
                try:
                    await pipe.execute()
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
                        if item.get("type") == "message":
                            deliver(orjson.loads(item["data"]))
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
