"""Kill -9 an API process in the middle of a stream of signed webhooks and replies.

A real `hilo serve` runs on a scratch PostgreSQL database, with a receiving server as the
API channel's outbound URL; in the second case two of them run side by side with Redis, as
behind a load balancer, each taking half the clients and each running the background work
(engines, sends). Concurrent clients stream 5,000 signed webhooks and one agent reply per
ten of them; the first process is killed with SIGKILL part-way and restarted (its clients
wait for it, the other process's go on). As a provider would, the clients then re-send
every webhook that got no 2xx. Afterwards every
acknowledged webhook is stored exactly once, every reply answered 201 reached the
receiving server (at least once, always with the same idempotency key), and nothing is
stored twice.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest

from hilo.channels import signing
from tests.conftest import fresh_redis
from tests.fakes.receiver import receiver
from tests.fakes.server import free_port
from tests.fault.processes import Hilo

pytestmark = pytest.mark.slow

WEBHOOKS = 5000
CONTACTS = 500
REPLY_EVERY = 10
CLIENTS = 16
KILL_AFTER = 2000  # acknowledged webhooks before the kill
# A Redis database of its own, for the two-process case.
REDIS_DATABASE = 12


@dataclass
class Stream:
    """What the clients saw: acknowledged webhooks and replies answered 201."""

    hilos: list[Hilo]
    channel_id: int
    secret: str
    token: str
    acked: set[int] = field(default_factory=set)
    unacked: set[int] = field(default_factory=set)
    replies: dict[int, int] = field(default_factory=dict)  # Hilo message id -> webhook number
    up: asyncio.Event = field(default_factory=asyncio.Event)
    killed: bool = False

    def body(self, n: int) -> bytes:
        contact: dict[str, str] = {"external_id": f"c-{n % CONTACTS}"}
        if n < CONTACTS:
            # A customer's first message names their e-mail address; the agent finds them by it.
            contact["email"] = f"c{n % CONTACTS}@fault.example.com"
        return orjson.dumps({"id": f"w-{n}", "contact": contact, "text": f"message {n}"})

    async def post_webhook(self, client: httpx.AsyncClient, n: int) -> bool:
        body = self.body(n)
        headers = {"content-type": "application/json", "x-hilo-signature": signing.sign(self.secret, body)}
        try:
            answer = await client.post(f"/webhooks/api/{self.channel_id}", content=body, headers=headers)
        except httpx.TransportError:
            return False
        return 200 <= answer.status_code < 300

    async def reply(self, client: httpx.AsyncClient, n: int) -> None:
        """Answer the customer of webhook `n`, as an agent would through the API."""
        auth = {"authorization": f"Bearer {self.token}"}
        try:
            found = await client.get(
                "/api/v1/conversations",
                params={"q": f"c{n % CONTACTS}@fault.example.com", "status": "open"},
                headers=auth,
            )
            if found.status_code != 200 or not found.json()["items"]:
                return
            conversation_id = found.json()["items"][0]["id"]
            answer = await client.post(
                f"/api/v1/conversations/{conversation_id}/messages", json={"body": f"reply {n}"}, headers=auth
            )
        except httpx.TransportError:
            return
        if answer.status_code == 201:
            self.replies[answer.json()["id"]] = n

    async def client(self, queue: asyncio.Queue[int], hilo: Hilo) -> None:
        killed = hilo is self.hilos[0]
        async with httpx.AsyncClient(base_url=hilo.url, timeout=30) as client:
            while not queue.empty():
                n = queue.get_nowait()
                if killed:
                    await self.up.wait()
                if await self.post_webhook(client, n):
                    self.acked.add(n)
                    if n % REPLY_EVERY == REPLY_EVERY - 1:
                        await self.reply(client, n)
                else:
                    self.unacked.add(n)
                    # A provider holds off while the endpoint is down; wait for the restart.
                    await asyncio.sleep(0.05)

    async def killer(self, database_url: str) -> None:
        while len(self.acked) < KILL_AFTER:
            await asyncio.sleep(0.01)
        self.up.clear()
        self.hilos[0].kill9()
        self.killed = True
        # The dead process's send leases would only run out after 120 s: move them to now,
        # as if that time had passed, so the restarted worker claims those jobs again.
        with psycopg.connect(database_url) as conn:
            conn.execute("UPDATE outbox_jobs SET locked_until = NULL WHERE state = 'pending'")
        await asyncio.to_thread(self.hilos[0].start)
        self.up.set()

    async def run(self, database_url: str) -> None:
        queue: asyncio.Queue[int] = asyncio.Queue()
        for n in range(WEBHOOKS):
            queue.put_nowait(n)
        self.up.set()
        killer = asyncio.create_task(self.killer(database_url))
        await asyncio.gather(*(self.client(queue, self.hilos[i % len(self.hilos)]) for i in range(CLIENTS)))
        await killer
        # As a provider would: re-send what was never acknowledged until it is.
        async with httpx.AsyncClient(base_url=self.hilos[-1].url, timeout=30) as client:
            for n in sorted(self.unacked - self.acked):
                for _attempt in range(5):
                    if await self.post_webhook(client, n):
                        self.acked.add(n)
                        break


def _wait_for_outbox(database_url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(database_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT count(*) FROM outbox_jobs WHERE state <> 'done'").fetchone()
            if row is not None and row[0] == 0:
                return
            time.sleep(0.2)
    raise AssertionError("the outbox did not drain")


@pytest.mark.parametrize("processes", [1, 2])
def test_kill9_mid_stream_loses_and_doubles_nothing(scratch_postgres: str, tmp_path: Path, processes: int) -> None:
    # given: hilo serve on PostgreSQL (two of them with Redis), an API channel whose replies
    # go to a receiving server
    env = {
        **os.environ,
        "HILO_DATABASE_URL": scratch_postgres,
        "HILO_DATA_DIR": str(tmp_path / "data"),
        "HILO_SECRET_KEY": "fault-test",
        "HILO_REDIS_URL": "",
        "HILO_LOG_LEVEL": "WARNING",
        "HILO_OUTBOUND_ALLOW_NETWORKS": "127.0.0.0/8",
    }
    if processes > 1:
        env["HILO_REDIS_URL"] = fresh_redis(REDIS_DATABASE)
    hilos = [Hilo(env=env, port=free_port(), log=tmp_path / f"server-{n}.log") for n in range(processes)]
    with receiver() as receiving:
        admin = ["--email", "ops@example.com", "--name", "Ops", "--role", "admin", "--password", "a long password"]
        hilos[0].cli("agents", "create", *admin)
        token = hilos[0].cli("tokens", "create", "--email", "ops@example.com")["token"]
        outbound = f"outbound_url={receiving.url}"
        channel = hilos[0].cli("channels", "add", "api", "--name", "Shop", "--set", outbound, "--json")
        receiving.secret = channel["secret"]
        try:
            for hilo in hilos:
                hilo.start()
            stream = Stream(hilos=hilos, channel_id=channel["id"], secret=channel["secret"], token=token)
            # when: the stream runs, the first process is killed -9 mid-way and restarted
            asyncio.run(stream.run(scratch_postgres))
            _wait_for_outbox(scratch_postgres)
        finally:
            for hilo in hilos:
                hilo.stop()
        deliveries = list(receiving.received)
    # then
    assert stream.killed and stream.unacked, "the kill must interrupt the stream"
    assert stream.acked == set(range(WEBHOOKS))
    keys = _assert_stored_once(scratch_postgres, channel["id"], stream)
    _assert_replies_delivered(stream, keys, deliveries)


def _assert_stored_once(database_url: str, channel_id: int, stream: Stream) -> dict[int, str]:
    """Check the database; return each reply's idempotency key by message id."""
    with psycopg.connect(database_url) as conn:
        inbound = conn.execute(
            "SELECT provider_message_id, count(*) FROM messages "
            "WHERE channel_account_id = %s AND direction = 'inbound' GROUP BY provider_message_id",
            (channel_id,),
        ).fetchall()
        assert dict(inbound) == {f"w-{n}": 1 for n in stream.acked}
        doubled_events = conn.execute(
            "SELECT message_id FROM events WHERE kind = 'message.created' GROUP BY message_id HAVING count(*) > 1"
        ).fetchall()
        assert doubled_events == []
        assert conn.execute("SELECT count(*) FROM contacts").fetchone() == (CONTACTS,)
        outbound = conn.execute("SELECT id, body FROM messages WHERE direction = 'outbound'").fetchall()
        assert len({body for _id, body in outbound}) == len(outbound)
        assert set(stream.replies) <= {message_id for message_id, _body in outbound}
        jobs = conn.execute("SELECT message_id, idempotency_key FROM outbox_jobs").fetchall()
    assert len({message_id for message_id, _key in jobs}) == len(jobs)
    return dict(jobs)


def _assert_replies_delivered(stream: Stream, keys: dict[int, str], deliveries: list[dict[str, Any]]) -> None:
    seen: dict[int, set[str]] = {}
    for delivery in deliveries:
        seen.setdefault(delivery["body"]["message_id"], set()).add(delivery["headers"]["idempotency-key"])
    assert stream.replies, "some replies must have been accepted"
    assert {message_id: seen.get(message_id) for message_id in stream.replies} == {
        message_id: {keys[message_id]} for message_id in stream.replies
    }
    assert all(len(sent_keys) == 1 for sent_keys in seen.values())
