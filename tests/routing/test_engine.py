"""The engine handles a burst of events in one transaction, and a failing handler spoils nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select

from hilo.clock import FrozenClock
from hilo.events.models import Event
from hilo.routing.engine import Engine
from hilo.runtime import Runtime
from hilo.settings import Settings


@pytest.fixture(name="runtime")
def runtime_fixture(settings: Settings, clock: FrozenClock) -> Iterator[Runtime]:
    runtime = Runtime(settings, clock=clock)
    yield runtime
    runtime.close()


def _commits(runtime: Runtime) -> list[int]:
    """A list that grows by one on every database COMMIT."""
    seen: list[int] = []
    event.listen(runtime.db.engine, "commit", lambda _conn: seen.append(1))
    return seen


def _ping(runtime: Runtime, count: int) -> None:
    """Commit `count` events the engine reacts to, as ingest would."""
    with runtime.transaction() as tx:
        for n in range(count):
            tx.record("test.ping", data={"n": n}, realtime={"n": n})


def _noted(runtime: Runtime) -> list[int]:
    with runtime.db.read() as session:
        rows = session.execute(select(Event.data).where(Event.kind == "test.noted").order_by(Event.id)).scalars()
        return [row["n"] for row in rows]


def _note_handler(runtime: Runtime, depths: list[int]) -> Any:
    def note(received: dict[str, Any], depth: int) -> None:
        if received["type"] != "test.ping":
            depths.append(depth)
            return
        with runtime.transaction() as tx:
            tx.record("test.noted", data={"n": received["n"]}, realtime={"n": received["n"]})

    return note


def test_a_burst_of_events_commits_once(runtime: Runtime) -> None:
    # given: an engine whose handler writes one row per event
    engine = Engine(runtime)
    depths: list[int] = []
    engine.on_event(10, _note_handler(runtime, depths))
    _ping(runtime, 10)
    commits = _commits(runtime)
    # when
    engine.drain()
    # then: every event's work is stored, in order, by one commit for the burst
    assert _noted(runtime) == list(range(10))
    assert len(commits) == 1
    # and the events that work recorded came back one level deeper (automation's loop guard)
    assert depths == [1] * 10


def test_a_failing_handler_loses_only_its_own_work(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    # given: a second handler that fails on one event of the burst
    engine = Engine(runtime)
    engine.on_event(10, _note_handler(runtime, []))

    def fails_on_three(received: dict[str, Any], _depth: int) -> None:
        if received.get("n") == 3 and received["type"] == "test.ping":
            with runtime.transaction() as tx:
                tx.record("test.half_done", data={})
                raise RuntimeError("rule bug")

    engine.on_event(20, fails_on_three)
    _ping(runtime, 6)
    # when
    engine.drain()
    # then: the batch was redone one event at a time; nothing doubled, nothing half-written
    assert _noted(runtime) == list(range(6))
    with runtime.db.read() as session:
        assert session.execute(select(func.count()).where(Event.kind == "test.half_done")).scalar() == 0
    assert "fails_on_three failed on test.ping" in caplog.text


def test_outside_calls_wait_for_the_commit(runtime: Runtime) -> None:
    # given: a handler that stores a row and asks for a call (a rule's webhook) after it
    engine = Engine(runtime)
    seen_by_call: list[list[int]] = []

    def with_webhook(received: dict[str, Any], _depth: int) -> None:
        if received["type"] != "test.ping":
            return
        with runtime.transaction() as tx:
            tx.record("test.noted", data={"n": received["n"]})
            tx.deferred.append(lambda: seen_by_call.append(_noted(runtime)))

    engine.on_event(10, with_webhook)
    _ping(runtime, 3)
    # when
    engine.drain()
    # then: each call ran after the whole burst was committed, and saw it from another session
    assert seen_by_call == [[0, 1, 2]] * 3


def test_a_worker_runs_the_rules_on_mail_it_ingests(runtime: Runtime) -> None:
    # given: a rule that labels every customer message, and a worker process's engine
    from hilo.automation.actions import save_rule
    from hilo.channels.actions import create_channel_account
    from hilo.channels.base import IdentityKind, IdentityRef, InboundMessage, WebhookResult
    from hilo.conversations.models import Label, conversation_labels
    from hilo.features import worker_engine
    from hilo.ingest.queue import IngestQueue

    with runtime.transaction() as tx:
        account = create_channel_account(tx, "email", "Soporte", {"address": "soporte@example.com"}).view()
        save_rule(
            tx,
            None,
            {"name": "Mail", "event": "message.received", "actions": [{"type": "add_labels", "labels": ["mail"]}]},
        )
    engine = worker_engine(runtime)
    ingest = IngestQueue(runtime)
    ingest.start()
    try:
        # when: the worker's mailbox service hands a fetched mail to its ingest writer
        mail = InboundMessage(
            provider_message_id="<1@example.com>",
            sender=IdentityRef(IdentityKind.EMAIL, "rosa@example.com"),
            text="¿Dónde está mi pedido?",
            subject="Pedido",
        )
        stored = ingest.submit(account, WebhookResult(messages=[mail])).result(timeout=10)
        engine.drain()
    finally:
        ingest.stop()
    # then: the rule ran on it in this process
    conversation_id = stored.messages[0].conversation_id
    with runtime.db.read() as session:
        labels = session.execute(
            select(Label.name)
            .join(conversation_labels, conversation_labels.c.label_id == Label.id)
            .where(conversation_labels.c.conversation_id == conversation_id)
        ).scalars()
        assert list(labels) == ["mail"]
