"""A routing decision costs the same number of statements whatever the team's size."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event

from hilo.routing import actions
from tests.routing.desk import Desk


def statements_of_one_decision(desk: Desk, conversation_id: int) -> int:
    runtime = desk.client.app.state.runtime  # type: ignore[attr-defined]
    me = threading.get_ident()
    count = 0

    def counter(*_args: Any) -> None:
        nonlocal count
        if threading.get_ident() == me:
            count += 1

    event.listen(runtime.db.engine, "before_cursor_execute", counter)
    try:
        with runtime.transaction() as tx:
            actions.route(tx, conversation_id, trigger="test")
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", counter)
    return count


def test_decision_statements_do_not_grow_with_agents(desk: Desk) -> None:
    # given: a team of two online agents, then of six
    agents = [desk.agent(f"Agent{n}") for n in range(6)]
    small = desk.team("Small", agents[:2], "least_loaded", auto_assign=False)
    large = desk.team("Large", agents, "least_loaded", auto_assign=False)
    for agent in agents:
        desk.connect(agent)
    warm_up, first, second = desk.customer_writes(), desk.customer_writes(), desk.customer_writes()
    for conversation, team in ((warm_up, small), (first, small), (second, large)):
        desk.patch(conversation, team_id=team)
    for team in (small, large):
        desk.api.ok(desk.api.put(f"/api/v1/routing/teams/{team}", {"strategy": "least_loaded"}))
    desk.settle()
    # when: (the first decision also looks the channel's kind up once)
    statements_of_one_decision(desk, warm_up)
    in_small = statements_of_one_decision(desk, first)
    in_large = statements_of_one_decision(desk, second)
    # then
    assert desk.assignee(first) is not None and desk.assignee(second) is not None
    assert in_small == in_large
    assert in_large <= 13
