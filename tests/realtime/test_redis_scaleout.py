"""Two API processes on Redis: an event from one reaches an agent's websocket on the other."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import psycopg
import pytest
import redis
import websockets

from hilo.agents.actions import create_agent, create_token
from hilo.channels import signing
from hilo.channels.actions import create_channel_account
from hilo.db.migrate import upgrade
from hilo.runtime import Runtime
from tests.conftest import (
    PG_URL,
    REDIS_URL,
    create_scratch_database,
    drop_scratch_database,
    make_settings,
    scratch_database_name,
)
from tests.fakes.server import free_port

pytestmark = pytest.mark.slow


def _require_services() -> None:
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except (redis.RedisError, psycopg.OperationalError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Redis and PostgreSQL are required in CI: {exc}")
        pytest.skip(f"services unavailable: {exc}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, object]]:
    _require_services()
    name = scratch_database_name("hilo_scaleout")
    url = create_scratch_database(name)
    env = {
        **os.environ,
        "HILO_DATABASE_URL": url,
        "HILO_REDIS_URL": REDIS_URL,
        "HILO_DATA_DIR": str(tmp_path),
        # The key the channel secret below was encrypted with (make_settings), as in production.
        "HILO_SECRET_KEY": "test-secret-key",
        "HILO_RUN_WORKER": "0",
        "HILO_LOG_LEVEL": "WARNING",
    }
    upgrade(url)
    runtime = Runtime(make_settings(url, tmp_path))
    with runtime.transaction() as tx:
        agent = create_agent(tx, email="ops@example.com", name="Ops", password="a long password", role="admin")
        _row, token = create_token(tx, agent, "test")
        channel = create_channel_account(tx, "api", "Shop", {})
        channel_id, secret = channel.id, channel.secrets["secret"]
    runtime.close()
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "hilo.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 90
        for port in ports:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("API process did not start")
                time.sleep(0.2)
        yield {"ports": ports, "token": token, "channel_id": channel_id, "secret": secret}
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)
        drop_scratch_database(name)


def test_event_from_one_process_reaches_websocket_on_the_other(cluster: dict[str, object]) -> None:
    # given: an agent connected to process B
    port_a, port_b = cluster["ports"]  # type: ignore[misc]

    async def scenario() -> tuple[dict[str, object], int]:
        async with websockets.connect(f"ws://127.0.0.1:{port_b}/api/v1/ws?token={cluster['token']}") as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            # when: a webhook arrives at process A
            body = orjson.dumps({"id": "scale-1", "contact": {"external_id": "x"}, "text": "via A"})
            async with httpx.AsyncClient() as client:
                response = await client.post(
                    f"http://127.0.0.1:{port_a}/webhooks/api/{cluster['channel_id']}",
                    content=body,
                    headers={
                        "content-type": "application/json",
                        "x-hilo-signature": signing.sign(str(cluster["secret"]), body),
                    },
                )
            while True:
                event = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
                if event["type"] == "message.created":
                    return event, response.status_code

    event, status = asyncio.run(scenario())
    # then
    assert status == 200
    assert event["preview"] == "via A" and event["direction"] == "inbound"
