"""Kill -9 the worker that reacts to events in the middle of a stream of new conversations.

`hilo serve` runs with HILO_RUN_WORKER=0, so it only stores what arrives: every reaction
(routing's assignment, the SLA timer, a rule's action, the assignee's notification) happens in
`hilo worker` processes, which read the committed events from their stored positions. While new
customers write, the worker doing that work is killed with SIGKILL and a second one is started;
it takes the work over when the dead one's lease runs out. Afterwards every conversation got
each of its reactions exactly once: none lost with the dead worker, none repeated by the new one.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
import websockets

from hilo.channels import signing
from tests.fakes.server import free_port
from tests.fault.processes import Hilo, Worker

pytestmark = pytest.mark.slow

CUSTOMERS = 90
KILL_AFTER = 30  # acknowledged messages at least before the kill
BEFORE_ANY_WORKER = 5  # messages stored while no worker runs: nothing may react to them


def _api(hilo: Hilo, token: str) -> httpx.Client:
    return httpx.Client(base_url=hilo.url, headers={"authorization": f"Bearer {token}"}, timeout=30)


def _ok(answer: httpx.Response) -> Any:
    assert answer.status_code < 300, answer.text
    return answer.json()


def _desk(hilo: Hilo, token: str) -> list[str]:
    """A team of two agents routed by load, every new conversation to it, an SLA policy and a
    labelling rule; returns the agents' tokens."""
    tokens = []
    with _api(hilo, token) as api:
        members = []
        for name in ("ana", "bruno"):
            fields = {"email": f"{name}@example.com", "name": name, "role": "agent", "password": "a long password"}
            agent = _ok(api.post("/api/v1/agents", json=fields))
            members.append(agent["id"])
            tokens.append(hilo.cli("tokens", "create", "--email", fields["email"])["token"])
            _ok(api.put(f"/api/v1/routing/agents/{agent['id']}", json={"capacity": {"chat": 1000}}))
        team = _ok(api.post("/api/v1/teams", json={"name": "Support", "member_ids": members}))
        _ok(api.put(f"/api/v1/routing/teams/{team['id']}", json={"strategy": "least_loaded"}))
        rule = {"event": "conversation.created", "actions": [{"type": "assign_team", "team_id": team["id"]}]}
        _ok(api.post("/api/v1/automation/rules", json={"name": "To the team", "position": 1, **rule}))
        label = {"event": "message.received", "actions": [{"type": "add_labels", "labels": ["seen"]}]}
        _ok(api.post("/api/v1/automation/rules", json={"name": "Label", "position": 2, **label}))
        _ok(api.post("/api/v1/sla-policies", json={"name": "Standard", "first_response_seconds": 3600}))
    return tokens


async def _online(hilo: Hilo, tokens: list[str], stop: asyncio.Event) -> None:
    """Keep the agents' websockets open, as their inbox pages do."""
    url = hilo.url.replace("http", "ws")
    sockets = [await websockets.connect(f"{url}/api/v1/ws?token={token}") for token in tokens]
    try:
        for socket in sockets:
            assert orjson.loads(await socket.recv())["type"] == "hello"
        await stop.wait()
    finally:
        for socket in sockets:
            await socket.close()


async def _stream(hilo: Hilo, channel: dict[str, Any], first: int, count: int, acked: list[int]) -> None:
    async with httpx.AsyncClient(base_url=hilo.url, timeout=30) as client:
        for n in range(first, first + count):
            body = orjson.dumps({"id": f"m-{n}", "contact": {"external_id": f"c-{n}"}, "text": f"order {n}?"})
            headers = {"content-type": "application/json", "x-hilo-signature": signing.sign(channel["secret"], body)}
            answer = await client.post(f"/webhooks/api/{channel['id']}", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
            acked.append(n)
            await asyncio.sleep(0.03)


def _counts(database_url: str) -> dict[str, dict[int, int]]:
    """Per conversation: how many times each reaction happened."""
    queries = {
        "conversations": "SELECT id, 1 FROM conversations",
        "routed": "SELECT conversation_id, count(*) FROM events WHERE kind = 'routing.decision' GROUP BY 1",
        "assigned": "SELECT id, 1 FROM conversations WHERE assignee_id IS NOT NULL",
        "sla_timers": "SELECT conversation_id, count(*) FROM sla_timers WHERE kind = 'first_response' GROUP BY 1",
        "rule_runs": "SELECT conversation_id, count(*) FROM automation_runs GROUP BY 1",
        "notified": "SELECT conversation_id, count(*) FROM notifications WHERE kind = 'assigned' GROUP BY 1",
    }
    with psycopg.connect(database_url) as conn:
        return {name: dict(conn.execute(sql).fetchall()) for name, sql in queries.items()}  # type: ignore[arg-type]


def _wait_for_reactions(database_url: str, expected: int, timeout: float = 90) -> dict[str, dict[int, int]]:
    deadline = time.monotonic() + timeout
    while True:
        counts = _counts(database_url)
        done = len(counts["notified"]) >= expected and len(counts["rule_runs"]) >= expected
        if done or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


def test_a_worker_killed_mid_stream_loses_and_repeats_no_reaction(scratch_postgres: str, tmp_path: Path) -> None:
    # given: an API process that does no background work, and a desk set up through its API
    env = {
        **os.environ,
        "HILO_DATABASE_URL": scratch_postgres,
        "HILO_DATA_DIR": str(tmp_path / "data"),
        "HILO_SECRET_KEY": "fault-test",
        "HILO_REDIS_URL": "",
        "HILO_RUN_WORKER": "0",
        "HILO_LOG_LEVEL": "WARNING",
    }
    hilo = Hilo(env=env, port=free_port(), log=tmp_path / "server.log")
    admin = ["--email", "ops@example.com", "--name", "Ops", "--role", "admin", "--password", "a long password"]
    hilo.cli("agents", "create", *admin)
    token = hilo.cli("tokens", "create", "--email", "ops@example.com")["token"]
    channel = hilo.cli("channels", "add", "api", "--name", "Shop", "--json")
    workers = [Worker(env=env, log=tmp_path / f"worker-{n}.log") for n in range(2)]
    hilo.start()
    acked: list[int] = []
    try:
        tokens = _desk(hilo, token)

        async def scenario() -> dict[str, dict[int, int]]:
            stop = asyncio.Event()
            online = asyncio.create_task(_online(hilo, tokens, stop))
            try:
                await asyncio.sleep(1)
                # when: customers write while no worker runs ...
                await _stream(hilo, channel, 0, BEFORE_ANY_WORKER, acked)
                await asyncio.sleep(1)
                idle = await asyncio.to_thread(_counts, scratch_postgres)
                # ... then a worker starts, and is killed -9 part-way through the stream
                workers[0].start()
                stream = asyncio.create_task(_stream(hilo, channel, BEFORE_ANY_WORKER, CUSTOMERS, acked))
                while len(acked) < BEFORE_ANY_WORKER + KILL_AFTER:
                    await asyncio.sleep(0.01)
                # (once the first worker is at work, so that the kill lands among its reactions)
                while not (await asyncio.to_thread(_counts, scratch_postgres))["routed"]:
                    await asyncio.sleep(0.05)
                workers[0].kill9()
                at_kill = await asyncio.to_thread(_counts, scratch_postgres)
                workers[1].start()
                await stream
                counts = await asyncio.to_thread(_wait_for_reactions, scratch_postgres, len(acked))
            finally:
                stop.set()
                await online
            return (
                {"idle_" + name: rows for name, rows in idle.items()}
                | {"kill_" + name: rows for name, rows in at_kill.items()}
                | counts
            )

        counts = asyncio.run(scenario())
    finally:
        for worker in workers:
            worker.stop()
        hilo.stop()
    # then: while no worker ran, the API process stored the messages and reacted to none
    assert len(counts["idle_conversations"]) == BEFORE_ANY_WORKER
    assert counts["idle_routed"] == counts["idle_rule_runs"] == counts["idle_notified"] == {}
    # and the kill came while the first worker had done part of the work, not none or all of it
    assert 0 < len(counts["kill_routed"]) < BEFORE_ANY_WORKER + CUSTOMERS
    # and afterwards every conversation got every reaction exactly once
    conversations = set(counts["conversations"])
    assert len(conversations) == len(acked) == BEFORE_ANY_WORKER + CUSTOMERS
    once = dict.fromkeys(conversations, 1)
    assert counts["routed"] == once, "routing decided once per conversation"
    assert set(counts["assigned"]) == conversations
    assert counts["sla_timers"] == once, "one first-response timer per conversation"
    assert counts["rule_runs"] == {c: 2 for c in conversations}, "each rule ran once per conversation"
    assert counts["notified"] == once, "one assignment notification per conversation"
