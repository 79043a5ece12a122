"""Hostile e-mail webhooks never stall the server: it keeps answering while they arrive.

A liveness property rather than a performance claim: the old e-mail webhook parsed a
whole unsigned multipart body on the event loop, and a few of them froze every request
for seconds. Hilo runs here as in production, uvicorn in a process of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hilo.channels.actions import create_channel_account
from hilo.runtime import Runtime
from tests.conftest import make_settings
from tests.fakes.server import free_port

pytestmark = [pytest.mark.slow, pytest.mark.serial]

HEALTH_BOUND = 0.1  # seconds a health probe may take while the hostile bodies arrive


@pytest.fixture
def server(database_url: str, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """Hilo under uvicorn on a loopback port, with one e-mail channel; yields (base URL, channel id)."""
    runtime = Runtime(make_settings(database_url, tmp_path))
    with runtime.transaction() as tx:
        channel = create_channel_account(
            tx, "email", "Support", {"address": "help@example.com", "mailgun_signing_key": "liveness-key"}
        )
        channel_id = channel.id
    runtime.close()
    port = free_port()
    env = {
        **os.environ,
        "HILO_DATABASE_URL": database_url,
        "HILO_DATA_DIR": str(tmp_path),
        "HILO_SECRET_KEY": "test-secret-key",  # the key make_settings encrypted the channel with
        "HILO_RUN_WORKER": "0",
        "HILO_LOG_LEVEL": "ERROR",
    }
    command = [sys.executable, "-m", "uvicorn", "hilo.app:create_app", "--factory", "--port", str(port)]
    process = subprocess.Popen([*command, "--host", "127.0.0.1", "--log-level", "error"], env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("Hilo did not start")
            time.sleep(0.1)
        yield url, channel_id
    finally:
        process.terminate()
        process.wait(timeout=10)


def _multipart(parts: int, value: bytes) -> tuple[bytes, str]:
    """An unsigned multipart form of `parts` fields, each holding `value`."""
    boundary = "hostile"
    body = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\n'.encode() + value + b"\r\n"
        for i in range(parts)
    )
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_health_answers_at_once_while_hostile_mail_webhooks_arrive(server: tuple[str, int]) -> None:
    # given: unsigned forms of 1.1 MB in 20,000 parts (each stalled every request for
    # seconds), and one within the limit on parts that is just as unsigned
    url, channel_id = server
    hostile = [_multipart(20_000, b"x" * 20) for _ in range(4)] + [_multipart(900, b"y" * 1_000)]
    refusals: list[int] = []
    probes: list[float] = []
    # Clients made and connected beforehand: building one costs the test process enough
    # CPU (its TLS context) to delay its own probes.
    clients = [httpx.Client(base_url=url, timeout=120) for _ in range(len(hostile) + 1)]
    client, senders_clients = clients[0], clients[1:]
    for each in clients:
        for _ in range(3):
            each.get("/healthz")

    def send(sender: httpx.Client, body: bytes, content_type: str) -> None:
        answer = sender.post(f"/webhooks/email/{channel_id}", content=body, headers={"content-type": content_type})
        refusals.append(answer.status_code)

    senders = [
        threading.Thread(target=send, args=(sender, body, content_type))
        for sender, (body, content_type) in zip(senders_clients, hostile, strict=True)
    ]
    try:
        # when
        for sender in senders:
            sender.start()
        while any(sender.is_alive() for sender in senders) or len(probes) < 20:
            started = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            probes.append(time.perf_counter() - started)
            time.sleep(0.01)
        for sender in senders:
            sender.join()
    finally:
        for each in clients:
            each.close()
    # then: no probe waited on the hostile bodies, and every one of them was refused
    assert max(probes) < HEALTH_BOUND, f"slowest of {len(probes)} health probes: {max(probes):.3f} s"
    assert sorted(refusals) == [401, 413, 413, 413, 413]
