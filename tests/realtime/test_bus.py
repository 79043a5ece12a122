"""The Redis event bus: a transaction's events travel as one pub/sub message, in order."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis

from hilo.realtime.bus import RedisBus, channel_name
from tests.conftest import fresh_redis

BUS_REDIS_DATABASE = 11


def _events(n: int) -> list[dict[str, Any]]:
    return [{"type": "message.created", "message_id": i} for i in range(n)]


async def _next_messages(pubsub: aioredis.client.PubSub, count: int) -> list[Any]:
    messages: list[Any] = []
    while len(messages) < count:
        item = await asyncio.wait_for(pubsub.get_message(ignore_subscribe_messages=True, timeout=5), 10)
        if item is not None:
            messages.append(orjson.loads(item["data"]))
    return messages


def test_events_published_together_from_a_thread_reach_every_process_as_one_message() -> None:
    url = fresh_redis(BUS_REDIS_DATABASE)

    async def scenario() -> tuple[list[Any], list[dict[str, Any]]]:
        # given: a started bus (an API process) and a second process's subscription
        heard: list[dict[str, Any]] = []
        bus = RedisBus(url)
        await bus.start(heard.append)
        other = aioredis.Redis.from_url(url)
        pubsub = other.pubsub()
        await pubsub.subscribe(channel_name(url))
        await pubsub.get_message(timeout=5)  # the subscription's confirmation
        try:
            # when: a committed transaction's events, handed over from the ingest writer's thread
            writer = threading.Thread(target=bus.publish_many, args=(_events(3),))
            writer.start()
            writer.join()
            raw = await _next_messages(pubsub, 1)
            for _ in range(50):
                if len(heard) == 3:
                    break
                await asyncio.sleep(0.02)
            return raw, heard
        finally:
            await pubsub.aclose()
            await other.aclose()
            await bus.stop()

    raw, heard = asyncio.run(scenario())
    # then
    assert raw == [_events(3)]
    assert heard == _events(3)


def test_a_message_of_one_event_from_an_earlier_version_is_delivered() -> None:
    url = fresh_redis(BUS_REDIS_DATABASE)

    async def scenario() -> list[dict[str, Any]]:
        heard: list[dict[str, Any]] = []
        bus = RedisBus(url)
        await bus.start(heard.append)
        try:
            # when: a process of the previous version publishes an event as a bare object
            redis.Redis.from_url(url).publish(channel_name(url), orjson.dumps({"type": "presence", "agent_id": 7}))
            for _ in range(100):
                if heard:
                    break
                await asyncio.sleep(0.02)
            return heard
        finally:
            await bus.stop()

    # then
    assert asyncio.run(scenario()) == [{"type": "presence", "agent_id": 7}]


def test_a_process_without_a_started_bus_publishes_a_transaction_as_one_message() -> None:
    url = fresh_redis(BUS_REDIS_DATABASE)
    listener = redis.Redis.from_url(url).pubsub()
    listener.subscribe(channel_name(url))
    listener.get_message(timeout=5)
    try:
        # when: `hilo worker` commits a transaction of two events
        RedisBus(url).publish_many(_events(2))
        item = None
        for _ in range(50):
            item = listener.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if item is not None:
                break
        # then
        assert item is not None
        assert orjson.loads(item["data"]) == _events(2)
    finally:
        listener.close()


def test_a_message_that_is_not_json_is_skipped_and_the_subscription_goes_on() -> None:
    url = fresh_redis(BUS_REDIS_DATABASE)

    async def scenario() -> list[dict[str, Any]]:
        heard: list[dict[str, Any]] = []
        bus = RedisBus(url)
        await bus.start(heard.append)
        try:
            # when: something else publishes a message that is not JSON on the channel, then an event comes
            publisher = redis.Redis.from_url(url)
            publisher.publish(channel_name(url), b"\x00not json")
            publisher.publish(channel_name(url), orjson.dumps([{"type": "presence", "agent_id": 7}]))
            for _ in range(100):
                if heard:
                    break
                await asyncio.sleep(0.02)
            return heard
        finally:
            await bus.stop()

    # then: the event still reached the listener
    assert asyncio.run(scenario()) == [{"type": "presence", "agent_id": 7}]
