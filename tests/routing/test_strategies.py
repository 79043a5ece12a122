"""The strategies' choice among candidates, and the engine's depth and drain: pure logic."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from hilo.routing.actions import Candidate, choose
from hilo.routing.engine import Engine


def candidate(
    agent_id: int,
    *,
    chat: int = 0,
    skills: tuple[str, ...] = (),
    last: int | None = None,
    capacity: dict[str, int] | None = None,
) -> Candidate:
    return Candidate(
        agent_id,
        frozenset(skills),
        capacity or {},
        datetime(2026, 1, 1, last, tzinfo=UTC) if last is not None else None,
        Counter(chat=chat),
    )


def test_round_robin_continues_after_the_cursor_and_wraps() -> None:
    pool = [candidate(3), candidate(1), candidate(2)]
    assert choose("round_robin", pool, "chat", frozenset(), cursor=None)[0].agent_id == 1  # type: ignore[union-attr]
    assert choose("round_robin", pool, "chat", frozenset(), cursor=1)[0].agent_id == 2  # type: ignore[union-attr]
    assert choose("round_robin", pool, "chat", frozenset(), cursor=3)[0].agent_id == 1  # type: ignore[union-attr]


def test_round_robin_skips_full_agents() -> None:
    pool = [candidate(1), candidate(2, chat=3), candidate(3)]
    assert choose("round_robin", pool, "chat", frozenset(), cursor=1)[0].agent_id == 3  # type: ignore[union-attr]


def test_least_loaded_uses_the_share_of_capacity_then_who_waited_longest() -> None:
    # given: 2 of 10 is lighter than 1 of 3; equal loads go to whoever was assigned least recently
    pool = [candidate(1, chat=1), candidate(2, chat=2, capacity={"chat": 10})]
    assert choose("least_loaded", pool, "chat", frozenset())[0].agent_id == 2  # type: ignore[union-attr]
    tied = [candidate(1, last=5), candidate(2, last=3)]
    assert choose("least_loaded", tied, "chat", frozenset())[0].agent_id == 2  # type: ignore[union-attr]


def test_skills_filter_before_load() -> None:
    pool = [candidate(1), candidate(2, chat=2, skills=("language:es", "vip"))]
    chosen, reason = choose("skills", pool, "chat", frozenset({"language:es"}))
    assert (chosen.agent_id if chosen else None, reason) == (2, "skills")
    assert choose("skills", pool, "chat", frozenset({"language:fr"})) == (None, "no_skilled_agent")


def test_reasons_when_nobody_fits() -> None:
    assert choose("round_robin", [], "chat", frozenset()) == (None, "no_agent_online")
    assert choose("round_robin", [candidate(1)], "chat", frozenset(), exclude=frozenset({1})) == (
        None,
        "only_excluded_agents",
    )
    assert choose("round_robin", [candidate(1, chat=3)], "chat", frozenset(), exclude=frozenset({1})) == (
        None,
        "no_capacity",
    )
    assert choose("least_loaded", [candidate(1, chat=3)], "chat", frozenset()) == (None, "no_capacity")
    assert choose("least_loaded", [candidate(1, capacity={"call": 0})], "call", frozenset()) == (None, "no_capacity")


def test_agents_who_gave_it_back_earlier_come_last() -> None:
    # given: agent 1 gave the conversation back after the hold, agent 2 within it
    pool = [candidate(1), candidate(2), candidate(3, chat=3)]
    # when / then: someone else first; the earlier giver-back when nobody else can; never the held one
    assert choose("round_robin", pool, "chat", frozenset(), avoid=frozenset({1}))[0].agent_id == 2  # type: ignore[union-attr]
    assert choose("round_robin", pool, "chat", frozenset(), exclude=frozenset({2}), avoid=frozenset({1})) == (
        pool[0],
        "round_robin",
    )


class _Runtime:
    def __init__(self) -> None:
        self.listeners: list[Any] = []

    def on_committed(self, listener: Any) -> None:
        self.listeners.append(listener)


def test_engine_hands_events_to_handlers_in_order_with_their_depth() -> None:
    # given
    runtime = _Runtime()
    engine = Engine(runtime)  # type: ignore[arg-type]
    seen: list[tuple[str, str, int]] = []

    def first(event: dict[str, Any], depth: int) -> None:
        seen.append(("first", event["type"], depth))
        if event["type"] == "a":
            # A handler's own commit comes back one level deeper.
            runtime.listeners[0]([{"type": "b"}])

    engine.on_event(20, lambda event, depth: seen.append(("second", event["type"], depth)))
    engine.on_event(10, first)
    # when: a commit from outside the engine
    runtime.listeners[0]([{"type": "a"}])
    handled = engine.drain()
    # then
    assert handled == 2
    assert seen == [("first", "a", 0), ("second", "a", 0), ("first", "b", 1), ("second", "b", 1)]


def test_a_failing_handler_does_not_stop_the_others() -> None:
    runtime = _Runtime()
    engine = Engine(runtime)  # type: ignore[arg-type]
    seen: list[str] = []

    def broken(event: dict[str, Any], depth: int) -> None:
        raise RuntimeError("bug")

    engine.on_event(1, broken)
    engine.on_event(2, lambda event, depth: seen.append(event["type"]))
    runtime.listeners[0]([{"type": "x"}])
    engine.drain()
    assert seen == ["x"]
