"""What the engine costs per event when nothing is configured, and SLA timers in a batch.

The engine thread is stopped in these tests, so the customer messages of a test pile up
and `settle()` handles them as one batch, the way a burst arrives in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from hilo.automation import actions as automation
from hilo.automation import rules
from hilo.clock import FrozenClock
from hilo.routing import sla
from hilo.routing.handlers import RoutingHandlers
from hilo.runtime import KEEP_NOTHING_SET, Runtime
from hilo.settings import Settings
from tests.routing.desk import Desk

HOUR = 3600
# What a durable consumer's pass costs whatever it handles: lock and read its position, read the
# committed events after it, store the new position (hilo.consumers.positions).
CONSUMER_STATEMENTS = 3


@contextmanager
def counting_statements(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL statements the runtime's database runs inside the block."""
    seen: list[str] = []

    def listener(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(runtime.db.engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(runtime.db.engine, "before_cursor_execute", listener)


def runtime_of(desk: Desk) -> Runtime:
    return desk.client.app.state.runtime  # type: ignore[attr-defined,no-any-return]


def policy(desk: Desk, **fields: Any) -> dict[str, Any]:
    return desk.api.ok(desk.api.post("/api/v1/sla-policies", {"name": "Standard", **fields}), 201)  # type: ignore[no-any-return]


def deactivate(desk: Desk, saved: dict[str, Any]) -> None:
    fields = {key: value for key, value in saved.items() if key != "id"}
    desk.api.ok(desk.api.put(f"/api/v1/sla-policies/{saved['id']}", {**fields, "active": False}))
    desk.settle()


def timers(desk: Desk, conversation_id: int) -> dict[str, str]:
    return {t["kind"]: t["state"] for t in desk.sla(conversation_id)["timers"]}


def burst(desk: Desk, customers: list[str]) -> None:
    """Each customer writes once; the engine handles nothing until `settle()`."""
    for customer in customers:
        desk.api.inbound(desk.channel, customer, "One more thing")


def test_a_burst_of_customer_messages_costs_the_same_few_statements_whatever_its_size(desk: Desk) -> None:
    # given: no SLA policy, no rule, no out-of-office answer; 24 customers with an open conversation
    desk.engine.stop()
    customers = [f"customer-{n}" for n in range(24)]
    for customer in customers:
        desk.customer_writes(customer=customer)
    runtime = runtime_of(desk)
    counts = []
    for size in (4, 24):
        burst(desk, customers[:size])
        # when
        with counting_statements(runtime) as statements:
            desk.settle()
        counts.append(len(statements))
    # then: the settings once and one question about live timers for the batch, not one per message,
    # beside the consumer's own three (lock its position, read the events, move the position on)
    assert counts[0] == counts[1]
    assert counts[1] <= 5 + CONSUMER_STATEMENTS


def test_a_burst_of_new_customers_loads_their_conversations_once(desk: Desk) -> None:
    # given: nothing configured; the engine waits while new customers write
    desk.customer_writes(customer="first")
    runtime = runtime_of(desk)
    desk.engine.stop()
    counts = []
    for size in (2, 8):  # a new customer's message makes three events; a batch takes 32
        burst(desk, [f"new-{size}-{n}" for n in range(size)])
        # when
        with counting_statements(runtime) as statements:
            desk.settle()
        counts.append(len(statements))
    # then: their new conversations are read for routing in one query, not one each
    assert counts[0] == counts[1]
    assert counts[1] <= 3 + CONSUMER_STATEMENTS


def test_a_rule_saved_after_quiet_batches_applies_to_the_next_message(desk: Desk) -> None:
    # given: batches that found no rule at all (an empty answer kept between batches)
    for n in range(3):
        desk.customer_writes(customer=f"before-{n}")
    # when: a rule is saved, and a customer writes right after
    saved = desk.api.post(
        "/api/v1/automation/rules",
        {"name": "Tag", "event": "message.received", "actions": [{"type": "add_labels", "labels": ["seen"]}]},
    )
    desk.api.ok(saved, 201)
    conversation = desk.customer_writes(customer="after")
    # then
    assert desk.conversation(conversation)["labels"] == ["seen"]


@pytest.mark.parametrize("others", [0, 3])
def test_a_customer_message_resumes_the_timers_of_an_inactive_policy(desk: Desk, others: int) -> None:
    # given: a conversation whose targets started under a policy since switched off, paused while pending
    saved = policy(desk, first_response_seconds=HOUR, resolution_seconds=8 * HOUR)
    conversation = desk.customer_writes(customer="rosa")
    deactivate(desk, saved)
    desk.patch(conversation, status="pending")
    assert desk.sla(conversation)["status"] == "paused"
    quiet = [desk.customer_writes(customer=f"quiet-{n}") for n in range(others)]
    desk.engine.stop()
    # when: Rosa writes back, alone or in a burst with customers who have no timers
    burst(desk, [f"quiet-{n}" for n in range(others)] + ["rosa"])
    desk.settle()
    # then: her targets run again; nothing starts for the others
    assert timers(desk, conversation) == {"first_response": "running", "resolution": "running"}
    assert desk.sla(conversation)["status"] == "on_track"
    for other in quiet:
        assert desk.sla(other)["timers"] == []


def test_targets_start_and_resume_for_every_message_of_a_burst_under_an_active_policy(desk: Desk) -> None:
    # given: an active policy; Rosa's first response is met, Luis's conversation waits pending
    policy(desk, first_response_seconds=HOUR, next_response_seconds=HOUR, resolution_seconds=8 * HOUR)
    rosa = desk.customer_writes(customer="rosa")
    desk.api.ok(desk.api.post(f"/api/v1/conversations/{rosa}/messages", {"body": "On it"}), 201)
    desk.settle()
    luis = desk.customer_writes(customer="luis")
    desk.patch(luis, status="pending")
    desk.engine.stop()
    # when: in one burst Rosa and Luis write back and two new customers write for the first time
    burst(desk, ["rosa", "luis", "new-1", "new-2"])
    desk.settle()
    # then: Rosa waits on a next response, Luis's targets run again, the new ones got theirs
    assert timers(desk, rosa) == {"first_response": "met", "next_response": "running", "resolution": "running"}
    assert timers(desk, luis) == {"first_response": "running", "resolution": "running"}
    for customer in ("new-1", "new-2"):
        conversation = desk.customer_writes(customer=customer)
        assert timers(desk, conversation) == {"first_response": "running", "resolution": "running"}


def test_a_timer_reopened_earlier_in_the_batch_counts_as_work(desk: Desk) -> None:
    # given: a met resolution target under a policy since switched off, and an agent opening the
    # conversation again in the same burst as the customer's message
    saved = policy(desk, resolution_seconds=8 * HOUR)
    conversation = desk.customer_writes(customer="rosa")
    desk.patch(conversation, status="resolved")
    deactivate(desk, saved)
    assert timers(desk, conversation) == {"resolution": "met"}
    desk.engine.stop()
    desk.api.ok(desk.api.patch(f"/api/v1/conversations/{conversation}", {"status": "open"}))
    handlers: RoutingHandlers = desk.client.app.state.routing_handlers  # type: ignore[attr-defined]
    reopened = {"type": "conversation.status_changed", "conversation_id": conversation, "status": "open"}
    wrote = {"type": "message.created", "conversation_id": conversation, "direction": "inbound"}
    with runtime_of(desk).batch() as tx:
        handlers.prepare_sla(tx, [reopened, wrote])
        assert not sla.has_work(tx, conversation)
        # when: the batch handles the reopening before the customer's message
        sla.status_changed(tx, conversation, desk.clock.now())
        # then: the message's handler sees the resolution target running again
        assert sla.has_work(tx, conversation)


def test_another_process_sees_a_new_rule_once_its_empty_answer_runs_out(settings: Settings, clock: FrozenClock) -> None:
    # given: two processes' runtimes on one database; the second found no rule
    first, second = Runtime(settings, clock=clock), Runtime(settings, clock=clock)
    try:
        with second.transaction() as tx:
            assert rules.rules_for(tx, "message.received") == []
        # when: the first saves a rule
        with first.transaction() as tx:
            automation.save_rule(
                tx,
                None,
                {"name": "Tag", "event": "message.received", "actions": [{"type": "add_labels", "labels": ["x"]}]},
            )

        def names() -> list[str]:
            with second.transaction() as tx:
                return [rule.name for rule in rules.rules_for(tx, "message.received")]

        # then: the second keeps its empty answer for at most KEEP_NOTHING_SET, then reads again
        kept = names()
        clock.advance(seconds=KEEP_NOTHING_SET.total_seconds())
        assert (kept, names()) == ([], ["Tag"])
    finally:
        first.close()
        second.close()


def test_new_conversations_a_rule_gives_a_team_and_routing_an_agent_cost_a_few_statements_each(desk: Desk) -> None:
    # given: a rule that puts new conversations in a least-loaded team with one online agent
    alice = desk.agent("Alice")
    desk.api.ok(desk.api.put(f"/api/v1/routing/agents/{alice.agent_id}", {"capacity": {"chat": 100}}))
    team = desk.team("Support", [alice], strategy="least_loaded")
    desk.route_to_team(team)
    desk.connect(alice)
    desk.customer_writes(customer="first")
    desk.engine.stop()
    counts = []
    for size in (2, 8):
        burst(desk, [f"new-{size}-{n}" for n in range(size)])
        # when: the engine handles the burst and what its reactions caused
        with counting_statements(runtime_of(desk)) as statements:
            desk.settle()
        counts.append(len(statements))
    # then: every one is assigned to Alice
    assigned = [c for c in desk.api.conversations(limit=20) if c["assignee_id"] == alice.agent_id]
    assert len(assigned) == 11
    # and each new conversation costs the writes it makes (its team, its agent, their timeline
    # notes, the rule's run, the agent's last assignment) and the team's choice of agent, while
    # what a batch reads about them (their rule runs, messages, routing rows, SLA timers, the
    # team's lock) is read once for the batch
    per_conversation = (counts[1] - counts[0]) / 6
    assert per_conversation <= 9
