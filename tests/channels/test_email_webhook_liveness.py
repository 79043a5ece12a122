"""Hostile e-mail webhooks never stall the server: it keeps answering while they arrive.

A liveness property rather than a performance claim: the old e-mail webhook parsed a
whole unsigned multipart body on the event loop, and a few of them froze every request
for seconds. Hilo runs here as in production, uvicorn in a process of its own.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def _send_hostile(url: str, channel_id: int, started: Any, answers: Any) -> None:
    """Post the hostile forms at once, from a process of their own (so that building and
    sending them costs the probing process nothing): unsigned forms of 1.1 MB in 20,000
    parts, and one within the limit on parts that is just as unsigned."""
    hostile = [_multipart(20_000, b"x" * 20) for _ in range(4)] + [_multipart(900, b"y" * 1_000)]
    clients = [httpx.Client(base_url=url, timeout=120) for _ in hostile]
    for client in clients:
        client.get("/healthz")

    def send(client: httpx.Client, body: bytes, content_type: str) -> None:
        answer = client.post(f"/webhooks/email/{channel_id}", content=body, headers={"content-type": content_type})
        answers.put(answer.status_code)

    senders = [
        threading.Thread(target=send, args=(client, body, content_type))
        for client, (body, content_type) in zip(clients, hostile, strict=True)
    ]
    started.set()
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()


def _probe_while_hostile_bodies_arrive(url: str, channel_id: int) -> tuple[list[float], list[int]]:
    context = multiprocessing.get_context("spawn")
    started, answers = context.Event(), context.Queue()
    sending = context.Process(target=_send_hostile, args=(url, channel_id, started, answers))
    probes: list[float] = []
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(3):
            client.get("/healthz")
        sending.start()
        assert started.wait(60), "the hostile sender did not start"
        while sending.is_alive() or len(probes) < 20:
            begun = time.perf_counter()
            assert client.get("/healthz").status_code == 200
            probes.append(time.perf_counter() - begun)
            time.sleep(0.01)
    sending.join()
    return probes, sorted(answers.get(timeout=10) for _ in range(5))


def test_health_answers_at_once_while_hostile_mail_webhooks_arrive(server: tuple[str, int]) -> None:
    # given: unsigned mail webhooks whose parsing once stalled every request for seconds
    url, channel_id = server
    # when: they arrive while a client keeps asking /healthz (up to three rounds: a round
    # slowed by something else on a shared machine is run again; the old code fails them all)
    rounds = []
    for _ in range(3):
        probes, refusals = _probe_while_hostile_bodies_arrive(url, channel_id)
        rounds.append(max(probes))
        # every one of them was refused, each round
        assert refusals == [401, 413, 413, 413, 413]
        if max(probes) < HEALTH_BOUND:
            break
    # then: in a round, no probe waited on the hostile bodies
    assert min(rounds) < HEALTH_BOUND, f"slowest health probe of each round: {[round(r, 3) for r in rounds]} s"
