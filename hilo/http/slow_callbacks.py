"""Report callbacks that hold the event loop too long (HILO_LOOP_SLOW_CALLBACK_MS).

Everything an API process serves (webhooks, websockets, pages) shares one event loop: a
callback that blocks it (a synchronous Redis or database round trip, a big render) delays
every other request by as much. With HILO_LOOP_SLOW_CALLBACK_MS set, the loop runs in
asyncio's debug mode with `slow_callback_duration` at that many milliseconds, and each
callback that takes longer is logged by `hilo.loop` as one line starting with MARKER.
Debug mode costs CPU on every callback, so it is off unless asked for (tests, diagnosis).
"""

from __future__ import annotations

import asyncio
import logging

MARKER = "slow_callback"
log = logging.getLogger("hilo.loop")
# What asyncio (and uvloop) log, in debug mode, for a callback slower than slow_callback_duration.
_ASYNCIO_MESSAGE = "Executing %s took %.3f seconds"


class _SlowCallbacks(logging.Filter):
    """Turn asyncio's slow-callback warnings into one `hilo.loop` line each, with MARKER."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != _ASYNCIO_MESSAGE or not isinstance(record.args, tuple) or len(record.args) != 2:
            return True
        handle, seconds = record.args
        if not isinstance(seconds, int | float):
            return True
        log.warning("%s %.1f ms: %s", MARKER, seconds * 1000, handle)
        return False


_FILTER = _SlowCallbacks()


def watch(loop: asyncio.AbstractEventLoop, milliseconds: float) -> None:
    """Log every callback of `loop` that runs longer than `milliseconds` (0: leave the loop alone)."""
    if milliseconds <= 0:
        return
    loop.set_debug(True)
    loop.slow_callback_duration = milliseconds / 1000
    asyncio_log = logging.getLogger("asyncio")
    if _FILTER not in asyncio_log.filters:
        asyncio_log.addFilter(_FILTER)
