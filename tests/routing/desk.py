"""A help desk driven through the API for routing, SLA and automation tests.

Agents come online the way the browser does it: by opening the agent websocket. The
background engine's work is run in the test's thread with `settle()` (queued events)
and `tick()` (the periodic passes), so nothing waits on a timer.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from hilo.clock import FrozenClock
from hilo.consumers.engine import Engine
from hilo.events.models import Event
from hilo.jobs import JobRunner
from tests.support import Api


class Desk:
    def __init__(self, api: Api, clock: FrozenClock) -> None:
        self.api = api
        self.clock = clock
        self.client: TestClient = api.client
        self.open: dict[int, Any] = {}
        self.channel = api.api_channel()
        self._customers = 0
        self.contacts: dict[str, int] = {}

    @property
    def engine(self) -> Engine:
        return self.client.app.state.routing_engine  # type: ignore[attr-defined,no-any-return]

    def settle(self) -> None:
        self.engine.drain()

    def tick(self, **advance: float) -> None:
        if advance:
            self.clock.advance(**advance)
        self.engine.tick()

    def webhooks_done(self, limit: int = 20) -> None:
        """Run the background jobs queued so far (rule webhooks) until none is left, moving the
        clock on to each retry, as the app's job runner would in time."""
        runner: JobRunner = self.client.app.state.background.jobs  # type: ignore[attr-defined]
        for _ in range(limit):
            if asyncio.run(runner.run_once()):
                continue
            pending = runner.pending()
            if not pending:
                return
            self.clock.set(max(self.clock.now(), pending[0]))
        raise AssertionError("rule webhooks still pending")

    def events(self, conversation_id: int, kind: str) -> list[dict[str, Any]]:
        """The data of a conversation's recorded events of one kind, oldest first."""
        runtime = self.client.app.state.runtime  # type: ignore[attr-defined]
        with runtime.db.read() as session:
            rows = session.execute(
                select(Event.data)
                .where(Event.conversation_id == conversation_id, Event.kind == kind)
                .order_by(Event.id)
            ).scalars()
            return [dict(row) for row in rows]

    def agent(self, name: str, role: str = "agent") -> Api:
        return self.api.as_new_agent(f"{name.lower()}@example.com", role)

    def team(self, name: str, members: list[Api], strategy: str = "round_robin", **routing: Any) -> int:
        team = self.api.ok(
            self.api.post("/api/v1/teams", {"name": name, "member_ids": [m.agent_id for m in members]}), 201
        )
        self.api.ok(self.api.put(f"/api/v1/routing/teams/{team['id']}", {"strategy": strategy, **routing}))
        self.settle()
        return int(team["id"])

    def connect(self, agent: Api) -> None:
        """Open the agent's websocket (what the inbox page does) and keep it open."""
        socket = self.client.websocket_connect(f"/api/v1/ws?token={agent.token}").__enter__()
        assert socket.receive_json()["type"] == "hello"
        self.open.setdefault(agent.agent_id, []).append(socket)
        self.settle()

    def disconnect(self, agent: Api) -> None:
        """Close the socket and wait until the server has handled it."""
        socket = self.open[agent.agent_id].pop()
        socket.__exit__(None, None, None)
        self.settle()

    def route_to_team(self, team_id: int) -> None:
        """A rule that puts every new conversation in `team_id`."""
        self.api.ok(
            self.api.post(
                "/api/v1/automation/rules",
                {
                    "name": "Everything to the team",
                    "event": "conversation.created",
                    "actions": [{"type": "assign_team", "team_id": team_id}],
                },
            ),
            201,
        )

    def customer_writes(self, text: str = "Hello", customer: str | None = None, **contact: Any) -> int:
        """An inbound message from a (new by default) customer; returns its conversation id."""
        if customer is None:
            self._customers += 1
            customer = f"customer-{self._customers}"
        self.api.inbound(self.channel, customer, text, **contact)
        self.settle()
        contact_id = self.contacts.get(customer)
        if contact_id is None:
            newest = self.api.conversations(sort="created", limit=1)[0]
            contact_id = self.contacts[customer] = int(newest["contact_id"])
        return int(self.api.conversations(contact_id=contact_id, sort="created", limit=1)[0]["id"])

    def conversation(self, conversation_id: int) -> dict[str, Any]:
        return self.api.ok(self.api.get(f"/api/v1/conversations/{conversation_id}"))  # type: ignore[no-any-return]

    def patch(self, conversation_id: int, **changes: Any) -> dict[str, Any]:
        result = self.api.ok(self.api.patch(f"/api/v1/conversations/{conversation_id}", changes))
        self.settle()
        return result  # type: ignore[no-any-return]

    def assignee(self, conversation_id: int) -> int | None:
        return self.conversation(conversation_id)["assignee_id"]  # type: ignore[no-any-return]

    def decisions(self, conversation_id: int) -> list[dict[str, Any]]:
        routing = self.api.ok(self.api.get(f"/api/v1/conversations/{conversation_id}/routing"))
        return [d["data"] for d in routing["decisions"]]

    def sla(self, conversation_id: int) -> dict[str, Any]:
        return self.api.ok(self.api.get(f"/api/v1/conversations/{conversation_id}/sla"))  # type: ignore[no-any-return]

    def close(self) -> None:
        for sockets in self.open.values():
            for socket in sockets:
                socket.__exit__(None, None, None)
        self.open.clear()
