"""Several outbox workers on one database never send a job twice."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest
from fastapi.testclient import TestClient

from hilo.outbox.dispatcher import OutboxDispatcher
from tests.conftest import empty_postgres
from tests.fakes.receiver import receiver
from tests.support import Api


@pytest.fixture
def database_url(pg_database: str) -> str:
    """Several workers are a PostgreSQL deployment (FOR UPDATE SKIP LOCKED): PostgreSQL only."""
    empty_postgres(pg_database)
    return pg_database


def test_concurrent_workers_send_each_reply_once(api: Api, app_client: TestClient) -> None:
    with receiver() as source:
        # given: 40 queued replies in 40 conversations
        channel = api.api_channel(outbound_url=source.url)
        for n in range(40):
            api.inbound(channel, f"c{n}", "hi")
        for conversation in api.conversations(limit=100):
            api.ok(api.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "hello"}), 201)
        runtime = app_client.app.state.runtime  # type: ignore[attr-defined]

        # when: three dispatchers, each in its own thread and event loop, with small batches
        def drain() -> None:
            dispatcher = OutboxDispatcher(runtime, batch=3)

            async def loop() -> None:
                while await dispatcher.run_once():
                    pass

            asyncio.run(loop())

        threads = [threading.Thread(target=drain) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        # then
        per_message = Counter(d["body"]["message_id"] for d in source.received)
        assert len(per_message) == 40
        assert set(per_message.values()) == {1}
