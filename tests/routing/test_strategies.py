"""The strategies' choice among candidates, and the engine's depth and drain: pure logic."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from hilo.routing.strategies import Candidate, choose


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
