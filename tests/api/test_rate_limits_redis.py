"""Rate limits shared through Redis: every API process counts against the same limit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hilo.app import create_app
from hilo.clock import FrozenClock
from hilo.http.ratelimit import RateLimiter
from tests.conftest import fresh_redis, make_settings
from tests.support import Api

# A database of its own on the shared Redis, emptied by each test.
LIMITS_REDIS_DATABASE = 14


@pytest.fixture
def redis_url() -> str:
    return fresh_redis(LIMITS_REDIS_DATABASE)


def test_webhook_limit_is_shared_by_two_processes(
    database_url: str, tmp_path: Path, clock: FrozenClock, redis_url: str
) -> None:
    # given: two API processes on one database and one Redis, 3 webhooks a minute per channel
    settings = make_settings(database_url, tmp_path / "data", redis_url=redis_url, webhook_rate_limit=3)
    first, second = create_app(settings, clock=clock), create_app(settings, clock=clock)
    with TestClient(first) as one, TestClient(second) as other:
        api = Api.bootstrap(one)
        channel = api.api_channel()
        payloads = [{"id": f"m{i}", "contact": {"external_id": "x"}, "text": "hi"} for i in range(4)]
        # when: two arrive at the first process and two at the second
        answers = [api.webhook(channel, payloads[0]), api.webhook(channel, payloads[1])]
        api.client = other
        answers += [api.webhook(channel, payloads[2]), api.webhook(channel, payloads[3])]
    # then
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[3].json()["error"]["code"] == "rate_limited"


def test_counts_are_shared_by_blocking_and_asyncio_clients_on_any_loop(redis_url: str) -> None:
    # given: a limiter on Redis, 3 hits a minute
    limiter = RateLimiter(redis_url, now=lambda: 1_000_000.0)

    async def on_a_loop() -> tuple[bool, bool]:
        allowed = await limiter.hit_async("k", 3)
        return allowed, limiter.exceeded("k", 3)

    # when: hits from a worker thread's blocking client, then from two event loops one after the other
    from_thread = limiter.hit("k", 3)
    first_loop = asyncio.run(on_a_loop())
    second_loop = asyncio.run(on_a_loop())
    third_loop = asyncio.run(on_a_loop())
    # then: one count for all of them
    assert from_thread and first_loop == (True, False) and second_loop == (True, False)
    assert third_loop == (False, True)
    assert not limiter.hit("k", 3)
