"""The engine: a durable consumer of committed events. A burst is handled in one transaction, a failing
handler spoils nothing, and a restart or a second process neither loses nor repeats a reaction."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from hilo.clock import FrozenClock
from hilo.consumers import engine as engine_module
from hilo.consumers import positions
from hilo.consumers.engine import Engine
from hilo.events.models import Event
from hilo.runtime import Runtime
from hilo.settings import Settings
from tests import support


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
    # then: every event's work is stored, in order, by one commit for the burst, and one more
    # for the pass that handled the ten events that work recorded
    assert _noted(runtime) == list(range(10))
    assert len(commits) == 2
    # and the events that work recorded came back one level deeper (automation's loop guard)
    assert depths == [1] * 10


def _statements(runtime: Runtime) -> list[str]:
    """A list that grows by every SQL statement the runtime's database runs."""
    seen: list[str] = []
    event.listen(runtime.db.engine, "before_cursor_execute", lambda *args: seen.append(args[2]))
    return seen


def test_the_events_a_burst_records_are_stored_in_one_statement(runtime: Runtime) -> None:
    # given: an engine whose handler records one event per event it handles
    engine = Engine(runtime)
    engine.on_event(10, _note_handler(runtime, []))
    _ping(runtime, 10)
    statements = _statements(runtime)
    # when
    engine.drain()
    # then: the ten recorded events went to the table in one INSERT, in order
    inserts = [s for s in statements if s.replace('"', "").lstrip().upper().startswith("INSERT INTO EVENTS ")]
    assert len(inserts) == 1
    assert _noted(runtime) == list(range(10))


def test_a_handler_reading_the_events_table_sees_what_its_batch_recorded(runtime: Runtime) -> None:
    # given: a handler that records an event only if the batch has not recorded one yet
    # (as the out-of-office answer looks for its last one)
    engine = Engine(runtime)

    def once(received: dict[str, Any], _depth: int) -> None:
        if received["type"] != "test.ping":
            return
        with runtime.transaction() as tx:
            earlier = tx.session.execute(select(func.count()).select_from(Event).where(Event.kind == "test.noted"))
            if earlier.scalar_one() == 0:
                tx.record("test.noted", data={"n": received["n"]})

    engine.on_event(10, once)
    _ping(runtime, 3)
    # when
    engine.drain()
    # then
    assert _noted(runtime) == [0]


def test_an_event_recorded_in_a_savepoint_that_rolls_back_is_not_stored(runtime: Runtime) -> None:
    # given: a handler whose second step fails inside a savepoint (as a rule's action that
    # cannot apply), after its first step recorded an event that the batch kept for later
    engine = Engine(runtime)

    def steps(received: dict[str, Any], _depth: int) -> None:
        if received["type"] != "test.ping":
            return
        with runtime.transaction() as tx:
            tx.record("test.noted", data={"n": 1})
            try:
                with tx.session.begin_nested():
                    tx.record("test.noted", data={"n": 2})
                    with tx.session.begin_nested():
                        tx.record("test.noted", data={"n": 3})
                    raise ValueError("the step fails")
            except ValueError:
                pass
            with tx.session.begin_nested():
                tx.record("test.noted", data={"n": 4})

    engine.on_event(10, steps)
    _ping(runtime, 1)
    # when
    engine.drain()
    # then: what the failed step recorded, nested savepoint included, is gone; the rest is stored
    assert _noted(runtime) == [1, 4]


def test_a_paced_engine_waits_between_passes_but_not_after_a_quiet_spell(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: an engine that starts a pass at most every 50 ms, and a clock the test moves
    engine = Engine(runtime, pass_interval=0.05)
    now = [1000.0]
    slept: list[float] = []
    monkeypatch.setattr(engine_module.time, "monotonic", lambda: now[0])
    monkeypatch.setattr(engine_module.time, "sleep", slept.append)
    # when: a pass after a quiet spell, one 10 ms later, and one a second after that
    engine._pace()
    now[0] += 0.01
    engine._pace()
    now[0] += 1.0
    engine._pace()
    # then: only the second waited, for what was left of the interval
    assert slept == [pytest.approx(0.04)]


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


def test_a_batch_handler_sees_the_burst_at_once_and_one_by_one_after_a_failure(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="hilo.consumers.engine")
    # given: a batch handler that notes each call's events, and an event handler failing on one event
    engine = Engine(runtime)
    calls: list[list[int]] = []

    def note_all(events: list[dict[str, Any]]) -> None:
        pings = [e["n"] for e in events if e["type"] == "test.ping"]
        with runtime.transaction() as tx:
            for n in pings:
                tx.record("test.noted", data={"n": n}, realtime={"n": n})
        calls.append(pings)

    engine.on_batch(0, note_all)
    _ping(runtime, 4)
    engine.drain()
    fails: list[bool] = [True]

    def fails_once_on_one(received: dict[str, Any], _depth: int) -> None:
        if received.get("n") == 1 and received["type"] == "test.ping" and fails[0]:
            fails[0] = False
            raise RuntimeError("rule bug")

    engine.on_event(10, fails_once_on_one)
    _ping(runtime, 3)
    # when
    engine.drain()
    # then: the first burst came as one call; the failed batch was redone one event per call
    assert calls[0] == [0, 1, 2, 3]
    assert [c for c in calls[1:] if c] == [[0], [1], [2]]
    assert _noted(runtime) == [0, 1, 2, 3, 0, 1, 2]
    assert "handling its events one by one" in caplog.text


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


def test_an_engine_that_cannot_reach_the_database_backs_off_then_resumes(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given: a running engine whose every pass fails, as while the database is unreachable
    engine = Engine(runtime)
    handled: list[int] = []
    engine.on_event(10, lambda received, _depth: handled.append(received["n"]))
    attempts: list[float] = []
    take_lease = positions.take_lease

    def unreachable(*args: Any, **kwargs: Any) -> bool:
        attempts.append(time.monotonic())
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(positions, "take_lease", unreachable)
    engine.start()
    try:
        # when: it has been failing for a while
        support.eventually(lambda: len(attempts) >= 4, timeout=10)
        # then: it waited longer between attempts each time, and logged one traceback
        gaps = [later - earlier for earlier, later in itertools.pairwise(attempts[:4])]
        assert gaps[-1] > gaps[0] >= 0.15, gaps
        tracebacks = [r for r in caplog.records if r.name == "hilo.consumers.engine" and r.exc_info]
        assert len(tracebacks) == 1, [r.getMessage() for r in caplog.records]
        # when: the database is back
        monkeypatch.setattr(positions, "take_lease", take_lease)
        _ping(runtime, 1)
        # then: the engine handles what was committed meanwhile
        support.eventually(lambda: handled == [0], timeout=15)
    finally:
        engine.stop()


def test_a_worker_runs_the_rules_on_mail_it_ingests(runtime: Runtime) -> None:
    # given: a rule that labels every customer message, and a worker process's engine
    from hilo.automation.actions import save_rule
    from hilo.channels.actions import create_channel_account
    from hilo.channels.base import IdentityKind, IdentityRef, InboundMessage, WebhookResult
    from hilo.conversations.models import Label, conversation_labels
    from hilo.features import Background
    from hilo.ingest.queue import IngestQueue

    with runtime.transaction() as tx:
        account = create_channel_account(tx, "email", "Soporte", {"address": "soporte@example.com"}).view()
        save_rule(
            tx,
            None,
            {"name": "Mail", "event": "message.received", "actions": [{"type": "add_labels", "labels": ["mail"]}]},
        )
    ingest = IngestQueue(runtime)
    engine = Background(runtime, ingest).reactions
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


def test_handlers_run_in_order_with_each_events_depth(runtime: Runtime) -> None:
    # given: two handlers, the first of which commits an event of its own for "a"
    engine = Engine(runtime)
    seen: list[tuple[str, str, int]] = []

    def first(received: dict[str, Any], depth: int) -> None:
        seen.append(("first", received["type"], depth))
        if received["type"] == "a":
            with runtime.transaction() as tx:
                tx.record("b", realtime={})

    engine.on_event(20, lambda received, depth: seen.append(("second", received["type"], depth)))
    engine.on_event(10, first)
    # when: a commit from outside the engine
    with runtime.transaction() as tx:
        tx.record("a", realtime={})
    engine.drain()
    # then: lowest order first; the handler's own event came back one level deeper
    assert seen == [("first", "a", 0), ("second", "a", 0), ("first", "b", 1), ("second", "b", 1)]


def test_a_failing_handler_does_not_stop_the_others(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    # given
    engine = Engine(runtime)
    seen: list[str] = []

    def broken(_received: dict[str, Any], _depth: int) -> None:
        raise RuntimeError("bug")

    engine.on_event(1, broken)
    engine.on_event(2, lambda received, _depth: seen.append(received["type"]))
    with runtime.transaction() as tx:
        tx.record("x", realtime={})
    # when
    engine.drain()
    # then: the other handler ran, the failure is in the log, and the event is not handled again
    assert seen == ["x"]
    assert "broken failed on x" in caplog.text
    assert engine.drain() == 0
    assert seen == ["x"]


def test_a_restarted_engine_resumes_where_it_stopped(runtime: Runtime, settings: Settings, clock: FrozenClock) -> None:
    # given: an engine that handled one event, then a process that stopped before seeing two more
    engine = Engine(runtime)
    engine.on_event(10, _note_handler(runtime, []))
    _ping(runtime, 1)
    engine.drain()
    with runtime.transaction() as tx:
        for n in (1, 2):
            tx.record("test.ping", data={"n": n}, realtime={"n": n})
    # when: a new process (its own runtime) starts the engine of the same name
    restarted_runtime = Runtime(settings, clock=clock)
    try:
        restarted = Engine(restarted_runtime)
        restarted.on_event(10, _note_handler(restarted_runtime, []))
        restarted.drain()
    finally:
        restarted_runtime.close()
    # then: it handled what the first had not, and nothing twice
    assert _noted(runtime) == [0, 1, 2]


def test_two_processes_running_one_engine_handle_each_event_once(
    runtime: Runtime, settings: Settings, clock: FrozenClock
) -> None:
    # given: the same engine in two processes, both draining while events arrive
    other_runtime = Runtime(settings, clock=clock)
    try:
        engines = [Engine(runtime), Engine(other_runtime)]
        for engine, its_runtime in zip(engines, (runtime, other_runtime), strict=True):
            engine.on_event(10, _note_handler(its_runtime, []))
        errors: list[BaseException] = []

        def drain_often(engine: Engine) -> None:
            try:
                for _ in range(20):
                    engine.drain()
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=drain_often, args=(engine,)) for engine in engines]
        for thread in threads:
            thread.start()
        for n in range(30):
            with runtime.transaction() as tx:
                tx.record("test.ping", data={"n": n}, realtime={"n": n})
        for thread in threads:
            thread.join(60)
        for engine in engines:
            engine.drain()
    finally:
        other_runtime.close()
    # then: every event's work is stored exactly once
    assert errors == []
    assert sorted(_noted(runtime)) == list(range(30))


def test_a_process_that_finds_the_lease_taken_asks_again_only_after_a_while(
    runtime: Runtime, settings: Settings, clock: FrozenClock
) -> None:
    # given: the engine's lease held by one process
    other_runtime = Runtime(settings, clock=clock)
    try:
        holder, waiting = Engine(runtime), Engine(other_runtime)
        assert holder.holds_lease()
        commits = _commits(other_runtime)
        # when: the other process wakes up again and again (a commit of its own each time)
        answers = [waiting.holds_lease() for _ in range(5)]
        asked_within_the_interval = len(commits)
        waiting._lease_retry_at = time.monotonic()  # as it is once LEASE_RETRY_SECONDS have passed
        answers.append(waiting.holds_lease())
    finally:
        other_runtime.close()
    # then: it asked once, not on every wake-up, and again once the interval was over
    assert answers == [False] * 6
    assert asked_within_the_interval == 1
    assert len(commits) == 2


def test_an_event_committed_late_is_still_handled() -> None:
    # given: a position past event 11 while event 10's transaction had not committed yet
    place = positions.Place("reactions", 9)
    seen = [positions.Committed(11, {"type": "x"}, 0)]
    # when
    holes_after_11 = _advance(place, seen)
    late = _advance(place, [positions.Committed(10, {"type": "x"}, 0)])
    # then: 10 was kept as a hole and, once it appeared, handled and forgotten
    assert holes_after_11 == {10}
    assert late == set()
    assert place.position == 11


def _advance(place: positions.Place, handled: list[positions.Committed]) -> set[int]:
    class _Session:
        def execute(self, *_args: Any, **_kwargs: Any) -> None:
            return None

    positions.advance(_Session(), place, handled)  # type: ignore[arg-type]
    return set(place.holes)


def test_a_nudged_engine_handles_another_processs_events_before_its_next_poll(
    runtime: Runtime, settings: Settings, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a running engine that would look for other processes' commits only every minute
    monkeypatch.setattr(engine_module, "POLL_SECONDS", 60.0)
    monkeypatch.setattr(engine_module, "TICK_SECONDS", 60.0)
    engine = Engine(runtime)
    engine.on_event(10, _note_handler(runtime, []))
    engine.start()
    other_runtime = Runtime(settings, clock=clock)
    try:
        time.sleep(0.2)  # the engine's first look is over: it waits
        # when: another process commits events, and its live updates arrive (`Background.nudge`)
        with other_runtime.transaction() as tx:
            tx.record("test.ping", data={"n": 0}, realtime={"n": 0})
        engine.nudge()
        deadline = time.monotonic() + 10
        while _noted(runtime) != [0] and time.monotonic() < deadline:
            time.sleep(0.05)
        # then: it handled them without waiting for its poll
        assert _noted(runtime) == [0]
    finally:
        engine.stop()
        other_runtime.close()
