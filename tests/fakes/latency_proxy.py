"""A TCP proxy on loopback that delays every reply by a fixed latency (a far-away Redis or PostgreSQL).

Data towards the server passes at once; data back waits `delay` seconds from its arrival,
in order, without limiting throughput (a stream of replies is delayed, not slowed). A
client that waits for a reply synchronously therefore waits at least `delay`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


async def _forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        while True:
            chunk = await reader.read(65536)
            await queue.put((time.monotonic() + delay, chunk))
            if not chunk:
                return

    async def write() -> None:
        while True:
            due, chunk = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not chunk:
                writer.close()
                return
            writer.write(chunk)
            await writer.drain()

    reading = asyncio.create_task(read())
    try:
        await write()
    finally:
        reading.cancel()


async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
    while chunk := await source.read(65536):
        target.write(chunk)
        await target.drain()
    target.close()


@contextmanager
def latency_proxy(upstream_port: int, delay: float) -> Iterator[int]:
    """Run the proxy to 127.0.0.1:`upstream_port` in a thread; yields the port it listens on."""
    loop = asyncio.new_event_loop()
    started: list[asyncio.Server] = []
    ready = threading.Event()

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_writer.close()
            return
        with contextlib.suppress(OSError, asyncio.CancelledError):
            await asyncio.gather(_pipe(client_reader, upstream_writer), _forward(upstream_reader, client_writer, delay))
        client_writer.close()
        upstream_writer.close()

    async def serve() -> None:
        started.append(await asyncio.start_server(handle, "127.0.0.1", 0))
        ready.set()

    def run() -> None:
        loop.run_until_complete(serve())
        loop.run_forever()

    thread = threading.Thread(target=run, name="latency-proxy", daemon=True)
    thread.start()
    ready.wait(10)
    try:
        yield int(started[0].sockets[0].getsockname()[1])
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
