"""Event bus: carries committed changes to every API process's websocket hub.

The in-process backend serves a single process (the embedded default). The Redis
backend publishes on one pub/sub channel that every API process subscribes to, so an
agent connected to any process behind a load balancer sees every event.
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

log = logging.getLogger(__name__)

CHANNEL = "hilo:events"
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


class RedisBus:
    def __init__(self, url: str) -> None:
        self.url = url
        self._publisher = redis.Redis.from_url(url)
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    def publish(self, event: dict[str, Any]) -> None:
        try:
            self._publisher.publish(CHANNEL, orjson.dumps(event))
        except redis.RedisError:
            # The change is committed; agents will see it on their next load. Never
            # fail the action because the bus is down.
            log.exception("redis publish failed for event %s", event.get("type"))

    async def start(self, deliver: Deliver) -> None:
        self._task = asyncio.create_task(self._listen(deliver))
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def _listen(self, deliver: Deliver) -> None:
        while True:
            client = aioredis.Redis.from_url(self.url)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
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
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._publisher.close()


def make_bus(redis_url: str) -> Bus:
    return RedisBus(redis_url) if redis_url else InProcessBus()
