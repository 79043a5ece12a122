"""Query-count baselines for the hot endpoints: inbox list, conversation timeline, contact panel.

Each request's SQL statements are counted with a SQLAlchemy `before_cursor_execute`
listener, limited to statements run on behalf of that request (a context variable set by
an ASGI middleware follows the request into the thread pool; the app's background threads
never see it). A page must cost no more than its committed baseline, and a page of many
rows must cost exactly what a page of one row costs: an N+1 query fails both.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from starlette.types import ASGIApp, Receive, Scope, Send

from hilo.app import create_app
from hilo.clock import FrozenClock
from hilo.settings import Settings
from tests.support import Api

# Statements per request, by dialect. SQLite counts its explicit BEGIN. Authentication
# costs nothing here: the warm-up request cached who the token belongs to.
BASELINES: dict[str, dict[str, int]] = {
    "inbox_list": {"sqlite": 4, "postgresql": 3},
    "timeline": {"sqlite": 4, "postgresql": 3},
    "contact_panel": {"sqlite": 3, "postgresql": 2},
}

_in_request: ContextVar[bool] = ContextVar("hilo_test_in_request", default=False)


class _RequestMarker:
    """Mark everything an HTTP request runs (its thread-pool work included) as part of it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _in_request.set(True)
        try:
            await self.app(scope, receive, send)
        finally:
            _in_request.reset(token)


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] | None = None

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.statements is not None and _in_request.get():
            self.statements.append(statement)

    @contextmanager
    def counting(self) -> Iterator[list[str]]:
        self.statements = []
        try:
            yield self.statements
        finally:
            self.statements = None


@pytest.fixture
def counted(settings: Settings, clock: FrozenClock) -> Iterator[tuple[Api, StatementCounter, str]]:
    """An admin API client on an app whose per-request SQL statements can be counted."""
    app = create_app(settings, clock=clock)
    app.add_middleware(_RequestMarker)
    counter = StatementCounter()
    engine = app.state.runtime.db.engine
    event.listen(engine, "before_cursor_execute", counter)
    try:
        with TestClient(app) as client:
            yield Api.bootstrap(client), counter, app.state.runtime.db.dialect
    finally:
        event.remove(engine, "before_cursor_execute", counter)


def _cost(api: Api, counter: StatementCounter, path: str, **params: Any) -> int:
    # A token's first use in a while stamps its last-used time; warm up so that one-off
    # write stays out of the comparison.
    api.ok(api.get(path, params=params))
    with counter.counting() as statements:
        api.ok(api.get(path, params=params))
    return len(statements)


def _inbox(api: Api, agent: Api, count: int) -> list[dict[str, Any]]:
    """`count` open conversations with labels, some assigned to `agent`, some given to a team."""
    channel = api.api_channel()
    team = api.ok(api.post("/api/v1/teams", {"name": "Soporte", "member_ids": [agent.agent_id]}), 201)
    for n in range(count):
        api.inbound(channel, f"c{n}", f"hola {n}", name=f"Cliente {n}", email=f"c{n}@example.com")
    conversations = api.conversations(limit=100)
    for i, conversation in enumerate(conversations):
        change: dict[str, Any] = {"labels": ["vip", f"topic-{i % 3}"]}
        if i % 2:
            change["assignee_id"] = agent.agent_id
        if i % 3 == 0:
            change["team_id"] = team["id"]
        api.ok(api.patch(f"/api/v1/conversations/{conversation['id']}", change))
    return conversations


def test_inbox_page_of_25_costs_what_a_page_of_1_costs(counted: tuple[Api, StatementCounter, str]) -> None:
    # given: 30 open conversations with labels, assignees and teams
    api, counter, dialect = counted
    agent = api.as_new_agent("agent@example.com")
    _inbox(api, agent, 30)
    # when: the admin's and the agent's inbox, one row and a full page
    costs = {
        (who.agent_id, limit): _cost(who, counter, "/api/v1/conversations", status="open", limit=limit)
        for who in (api, agent)
        for limit in (1, 25)
    }
    # then
    for who in (api, agent):
        assert costs[(who.agent_id, 25)] == costs[(who.agent_id, 1)]
        assert costs[(who.agent_id, 25)] <= BASELINES["inbox_list"][dialect], costs


def test_timeline_of_30_messages_costs_what_one_message_costs(counted: tuple[Api, StatementCounter, str]) -> None:
    # given: a long conversation (messages with attachments, notes) and a short one
    api, counter, dialect = counted
    channel = api.api_channel()
    for n in range(10):
        api.ok(
            api.webhook(
                channel,
                {
                    "id": f"long-{n}",
                    "contact": {"external_id": "long"},
                    "text": f"foto {n}",
                    "attachments": [{"url": f"https://cdn.example.com/{n}.jpg", "content_type": "image/jpeg"}],
                },
            )
        )
    api.inbound(channel, "short", "una sola línea")
    by_body = {api.timeline(c["id"])[-1]["body"]: c["id"] for c in api.conversations()}
    long_id = by_body["foto 9"]
    for n in range(20):
        api.ok(api.post(f"/api/v1/conversations/{long_id}/notes", {"body": f"nota {n}"}), 201)
    # when
    long_cost = _cost(api, counter, f"/api/v1/conversations/{long_id}/messages")
    short_cost = _cost(api, counter, f"/api/v1/conversations/{by_body['una sola línea']}/messages")
    # then
    assert len(api.timeline(long_id)) >= 30
    assert long_cost == short_cost
    assert long_cost <= BASELINES["timeline"][dialect], long_cost


def test_contact_panel_costs_the_same_for_many_identities(counted: tuple[Api, StatementCounter, str]) -> None:
    # given: a contact with four identities and one with a single identity
    api, counter, dialect = counted
    channel = api.api_channel()
    api.inbound(channel, "rich", "hola", email="rich@example.com", phone="+34600111222")
    other = api.api_channel("App")
    api.inbound(other, "rich-app", "otra vez", email="rich@example.com")
    api.inbound(channel, "plain", "hi")
    rich_id, plain_id = (c["contact_id"] for c in sorted(api.conversations(), key=lambda c: c["id"]))
    assert len(api.ok(api.get(f"/api/v1/contacts/{rich_id}"))["identities"]) == 4
    # when
    rich_cost = _cost(api, counter, f"/api/v1/contacts/{rich_id}")
    plain_cost = _cost(api, counter, f"/api/v1/contacts/{plain_id}")
    # then
    assert rich_cost == plain_cost
    assert rich_cost <= BASELINES["contact_panel"][dialect], rich_cost
