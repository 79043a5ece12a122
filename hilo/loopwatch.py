"""Find work that holds the event loop (HILO_LOOP_SLOW_CALLBACK_MS): slow callbacks, blocking I/O.

Everything an API process serves (webhooks, websockets, pages) shares one event loop: a
callback that blocks it (a synchronous Redis or database round trip, a big render) delays
every other request by as much. With HILO_LOOP_SLOW_CALLBACK_MS set, `watch` runs the loop
in asyncio's debug mode with `slow_callback_duration` at that many milliseconds, and

- each callback that takes longer is logged by `hilo.loop` as one line starting with
  SLOW_CALLBACK: its wall-clock time (what asyncio measures), then how much of it the loop's
  thread ran on a CPU and how much it waited for one; the rest it was blocked (in a system
  call, or waiting for the GIL while another thread ran Python). On a busy machine the
  scheduler pauses a process for tens of milliseconds at a time, which asyncio counts as the
  callback's. The split is estimated from Linux's /proc/thread-self/schedstat, sampled on the
  loop every SAMPLE_SECONDS, over the callback and a little before it (where that file is
  missing, only the wall-clock time is given);
- each database statement (`guard_engine`) or Redis command of a blocking client
  (`guard_redis`) issued on the event loop's thread is logged as one line starting with
  BLOCKING_IO, with where it came from: however fast the server answered, that call
  stalled the loop, and no scheduler makes it up.

Debug mode costs CPU on every callback, so all of it is off unless asked for (tests, diagnosis).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
import traceback
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import Engine, event

SLOW_CALLBACK = "slow_callback"
BLOCKING_IO = "blocking_io_on_loop"
log = logging.getLogger("hilo.loop")
# What asyncio (and uvloop) log, in debug mode, for a callback slower than slow_callback_duration.
_ASYNCIO_MESSAGES = ("Executing %s took %.3f seconds", "Executing %r took %.3f seconds")
_watching = False


SAMPLE_SECONDS = 0.01
_SCHEDSTAT = Path("/proc/thread-self/schedstat")


def _schedstat() -> tuple[float, float] | None:
    """Seconds this thread has run on a CPU and waited for one (None where Linux does not say)."""
    try:
        fields = _SCHEDSTAT.read_text().split()
        return int(fields[0]) / 1e9, int(fields[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


class _Samples:
    """The loop thread's CPU time and run-queue wait, sampled on the loop every SAMPLE_SECONDS."""

    def __init__(self) -> None:
        self.items: collections.deque[tuple[float, float, float]] = collections.deque(maxlen=400)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        def sample() -> None:
            stat = _schedstat()
            if stat is None:
                return
            self.items.append((time.monotonic(), *stat))
            loop.call_later(SAMPLE_SECONDS, sample)

        sample()

    def shares(self, seconds: float) -> tuple[float, float] | None:
        """The shares of the last `seconds` (and a little before) this thread ran on a CPU and waited for one."""
        stat = _schedstat()
        if stat is None or not self.items:
            return None
        now = time.monotonic()
        start = self.items[0]
        for item in reversed(self.items):
            if item[0] <= now - seconds:
                start = item
                break
        window = now - start[0]
        if window <= 0:
            return None
        return min(1.0, (stat[0] - start[1]) / window), min(1.0, (stat[1] - start[2]) / window)


_SAMPLES = _Samples()


class _SlowCallbacks(logging.Filter):
    """Turn asyncio's slow-callback warnings into one `hilo.loop` line each, with SLOW_CALLBACK."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg not in _ASYNCIO_MESSAGES or not isinstance(record.args, tuple) or len(record.args) != 2:
            return True
        handle, seconds = record.args
        if not isinstance(seconds, int | float):
            return True
        shares = _SAMPLES.shares(seconds)
        if shares is None:
            log.warning("%s %.1f ms: %s", SLOW_CALLBACK, seconds * 1000, handle)
        else:
            log.warning(
                "%s %.1f ms, %.1f ms on a CPU, %.1f ms waiting for one: %s",
                SLOW_CALLBACK,
                seconds * 1000,
                seconds * shares[0] * 1000,
                seconds * shares[1] * 1000,
                handle,
            )
        return False


_FILTER = _SlowCallbacks()


def watch(loop: asyncio.AbstractEventLoop, milliseconds: float) -> None:
    """Report `loop`'s callbacks slower than `milliseconds` and blocking I/O on it (0: leave it alone)."""
    global _watching
    if milliseconds <= 0:
        return
    loop.set_debug(True)
    loop.slow_callback_duration = milliseconds / 1000
    asyncio_log = logging.getLogger("asyncio")
    if _FILTER not in asyncio_log.filters:
        asyncio_log.addFilter(_FILTER)
    _SAMPLES.start(loop)
    _watching = True


def on_loop() -> bool:
    """True when the calling thread is running an event loop (a blocking call here stalls it)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _report(kind: str, what: str) -> None:
    if _watching and on_loop():
        where = "".join(traceback.format_stack(limit=12)[:-2])
        log.warning("%s %s %s\n%s", BLOCKING_IO, kind, what[:120], where)


def guard_engine(engine: Engine) -> None:
    """Report every statement `engine` runs on an event loop's thread (while `watch` is on)."""

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if _watching:
            _report("sql", " ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", before)


class _RedisGuard:
    """Mixed into a blocking Redis client's connection class: report commands sent on a loop."""

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        if _watching:
            first = command[0] if isinstance(command, list) and command else command
            # The RESP encoding: the command's words, without their "*n" and "$n" lengths.
            words = bytes(first[:200]).decode("latin-1", "replace").split("\r\n")
            _report("redis", " ".join(word for word in words if word and word[0] not in "*$"))
        super().send_packed_command(command, check_health)  # type: ignore[misc]


def guard_redis(client: redis.Redis) -> redis.Redis:
    """`client`, reporting each command it sends on an event loop's thread (while `watch` is on)."""
    pool = client.connection_pool
    base = pool.connection_class
    pool.connection_class = type(f"LoopGuarded{base.__name__}", (_RedisGuard, base), {})
    return client
