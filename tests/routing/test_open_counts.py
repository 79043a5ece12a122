"""The open-conversation counters on agents' routing rows (kept by database triggers)
always equal what the agents carry, whatever changes a conversation."""

from __future__ import annotations

from sqlalchemy import select

from hilo.conversations.models import Conversation
from hilo.routing.models import RoutingAgent
from hilo.routing.strategies import loads
from tests.routing.desk import Desk


def counters_and_truth(desk: Desk) -> tuple[dict[int, dict[str, int]], dict[int, dict[str, int]]]:
    runtime = desk.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.read() as session:
        rows = session.execute(
            select(RoutingAgent.agent_id, RoutingAgent.open_call, RoutingAgent.open_chat, RoutingAgent.open_email)
        ).all()
        counted = {
            row.agent_id: {"call": row.open_call, "chat": row.open_chat, "email": row.open_email} for row in rows
        }
        carried = loads(session, counted)
    truth = {agent_id: {k: carried[agent_id][k] for k in ("call", "chat", "email")} for agent_id in counted}
    return counted, truth


def test_counters_follow_assignment_status_channel_and_merge(desk: Desk) -> None:
    # given: two agents online in a least-loaded team that takes every new conversation
    ana, ben = desk.agent("Ana"), desk.agent("Ben")
    team = desk.team("Support", [ana, ben], "least_loaded")
    for agent in (ana, ben):
        desk.connect(agent)
    desk.route_to_team(team)
    first, second, third = desk.customer_writes(), desk.customer_writes(), desk.customer_writes()
    email = desk.api.ok(
        desk.api.post(
            "/api/v1/channels", {"kind": "email", "name": "Mail", "settings": {"address": "mail@example.com"}}
        ),
        201,
    )
    runtime = desk.client.app.state.runtime  # type: ignore[attr-defined]
    steps = {
        "routed": lambda: None,
        "moved to the other agent": lambda: desk.patch(
            first, assignee_id=ben.agent_id if desk.assignee(first) == ana.agent_id else ana.agent_id
        ),
        "pending": lambda: desk.patch(second, status="pending"),
        "open again": lambda: desk.patch(second, status="open"),
        "resolved": lambda: desk.patch(third, status="resolved"),
        "reopened": lambda: desk.patch(third, status="open"),
        "unassigned": lambda: desk.patch(third, assignee_id=None),
    }
    # when / then: after every change the counters equal the agents' open conversations
    seen = []
    for name, change in steps.items():
        change()
        counted, truth = counters_and_truth(desk)
        assert counted == truth, name
        seen.append(sum(c["chat"] for c in counted.values()))
    # when: the customer's last channel becomes an e-mail account
    with runtime.transaction() as tx:
        conversation = tx.session.get(Conversation, first)
        assert conversation is not None
        conversation.last_channel_account_id = email["id"]
    counted, truth = counters_and_truth(desk)
    # then
    assert counted == truth
    assert sum(c["email"] for c in counted.values()) == 1
    # when: two conversations are merged
    desk.api.ok(desk.api.post(f"/api/v1/conversations/{first}/merge", {"source_id": second}))
    counted, truth = counters_and_truth(desk)
    # then
    assert counted == truth
    assert seen[0] == 3  # three routed, so the counters did count


def test_an_agent_counted_from_their_first_routing_row(desk: Desk) -> None:
    # given: a conversation assigned to an agent before Hilo kept any routing state for them
    cleo = desk.agent("Cleo")
    conversation = desk.customer_writes()
    desk.patch(conversation, assignee_id=cleo.agent_id)
    # when: the agent comes online (their routing row is made)
    desk.connect(cleo)
    counted, truth = counters_and_truth(desk)
    # then
    assert counted[cleo.agent_id] == truth[cleo.agent_id] == {"call": 0, "chat": 1, "email": 0}
