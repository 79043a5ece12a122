"""Fixed-window rate limits, in memory or shared through Redis across processes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

import redis


class RateLimiter:
    def __init__(self, redis_url: str = "", now: Callable[[], float] = time.time) -> None:
        # Time comes from the runtime's clock, so tests with a frozen clock never straddle a window.
        self._now = now
        self._redis = redis.Redis.from_url(redis_url) if redis_url else None
        self._counts: dict[str, tuple[int, int]] = {}
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

    async def hit_async(self, key: str, limit: int, window_seconds: int = 60) -> bool:
        """`hit` for code on the event loop: the Redis round trip waits in a worker thread."""
        if self._redis is None or limit <= 0:
            return self.hit(key, limit, window_seconds)
        return await asyncio.to_thread(self.hit, key, limit, window_seconds)

    def reset(self, key: str, window_seconds: int = 60) -> None:
        window = int(self._now() // window_seconds)
        if self._redis is not None:
            self._redis.delete(f"hilo:rl:{key}:{window}")
        with self._lock:
            self._counts.pop(key, None)
