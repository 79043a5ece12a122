"""Fixed-window rate limits and failure backoff, in memory or shared through Redis across processes.

The plain methods are for code in worker threads (`def` endpoints); code on the event loop
uses the `*_async` ones, which talk to Redis through `redis.asyncio` and so never hold the
loop for a round trip. In memory both kinds are a dict look-up under a lock.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from typing import cast

import redis
import redis.asyncio as aioredis

from hilo.loopwatch import guard_redis


class RateLimiter:
    def __init__(self, redis_url: str = "", now: Callable[[], float] = time.time) -> None:
        # Time comes from the runtime's clock, so tests with a frozen clock never straddle a window.
        self._now = now
        self._url = redis_url
        self._redis = guard_redis(redis.Redis.from_url(redis_url)) if redis_url else None
        # The asyncio client, made on the loop that first needs it (its connections belong to that loop).
        self._async: tuple[asyncio.AbstractEventLoop, aioredis.Redis] | None = None
        self._counts: dict[str, tuple[int, int]] = {}
        # Per key (`backoff_*`): failures, the time of the last one, when they are forgotten.
        self._backoff: dict[str, tuple[int, float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, window_seconds: int = 60) -> bool:
        """Count one hit on `key`; False when the limit for this window is exceeded."""
        if limit <= 0:
            return True
        window = int(self._now() // window_seconds)
        if self._redis is not None:
            name = f"hilo:rl:{key}:{window}"
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, window_seconds * 2)
            count = int(pipe.execute()[0])
            return count <= limit
        with self._lock:
            seen_window, count = self._counts.get(key, (window, 0))
            count = count + 1 if seen_window == window else 1
            self._counts[key] = (window, count)
            if len(self._counts) > 100_000:
                self._counts = {k: v for k, v in self._counts.items() if v[0] == window}
            return count <= limit

    def exceeded(self, key: str, limit: int, window_seconds: int = 60) -> bool:
        """True when `key` already has more than `limit` hits in this window (counts nothing)."""
        if limit <= 0:
            return False
        window = int(self._now() // window_seconds)
        if self._redis is not None:
            value = self._redis.get(f"hilo:rl:{key}:{window}")
            return value is not None and int(cast(bytes, value)) > limit
        with self._lock:
            seen_window, count = self._counts.get(key, (window, 0))
            return seen_window == window and count > limit

    def _async_redis(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async[0] is not loop:
            self._async = (loop, aioredis.Redis.from_url(self._url))
        return self._async[1]

    async def hit_async(self, key: str, limit: int, window_seconds: int = 60) -> bool:
        """`hit` for code on the event loop."""
        if self._redis is None or limit <= 0:
            return self.hit(key, limit, window_seconds)
        name = f"hilo:rl:{key}:{int(self._now() // window_seconds)}"
        pipe = self._async_redis().pipeline()
        pipe.incr(name)
        pipe.expire(name, window_seconds * 2)
        count = int((await pipe.execute())[0])
        return count <= limit

    async def aclose(self) -> None:
        """Close the asyncio client (on the loop that made it)."""
        if self._async is not None and self._async[0] is asyncio.get_running_loop():
            await self._async[1].aclose()
        self._async = None

    def retry_after(self, window_seconds: int = 60) -> int:
        """Seconds until the current window ends (for a Retry-After header)."""
        return max(1, math.ceil(window_seconds - self._now() % window_seconds))

    def backoff_wait(self, key: str, free: int, max_seconds: int) -> int:
        """Seconds `key` must still wait after its failures: none for the first `free`, then doubling."""
        with self._lock:
            failures, last = self._failures(key)
        if failures < max(free, 1):
            return 0
        delay = min(2 ** (failures - free), max_seconds)
        return max(0, math.ceil(last + delay - self._now()))

    def backoff_fail(self, key: str, forget_seconds: int) -> None:
        """Count one failure on `key`; the count is forgotten `forget_seconds` after the last one."""
        now = self._now()
        if self._redis is not None:
            name = f"hilo:bo:{key}"
            pipe = self._redis.pipeline()
            pipe.hincrby(name, "n", 1)
            pipe.hset(name, "at", repr(now))
            pipe.expire(name, forget_seconds)
            pipe.execute()
            return
        with self._lock:
            failures, _last = self._failures(key)
            self._backoff[key] = (failures + 1, now, now + forget_seconds)
            if len(self._backoff) > 100_000:
                self._backoff = {k: v for k, v in self._backoff.items() if v[2] > now}

    def backoff_clear(self, key: str) -> None:
        if self._redis is not None:
            self._redis.delete(f"hilo:bo:{key}")
        with self._lock:
            self._backoff.pop(key, None)

    def _failures(self, key: str) -> tuple[int, float]:
        """Failures on `key` and the time of the last one (in memory: call with the lock held)."""
        if self._redis is not None:
            stored, at = cast(list[bytes | None], self._redis.hmget(f"hilo:bo:{key}", ["n", "at"]))
            if stored is None or at is None:
                return 0, 0.0
            return int(stored), float(at)
        failures, last, forget_at = self._backoff.get(key, (0, 0.0, 0.0))
        if forget_at <= self._now():
            return 0, 0.0
        return failures, last

    def reset(self, key: str, window_seconds: int = 60) -> None:
        window = int(self._now() // window_seconds)
        if self._redis is not None:
            self._redis.delete(f"hilo:rl:{key}:{window}")
        with self._lock:
            self._counts.pop(key, None)
