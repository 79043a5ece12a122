"""The queue through the API: served in order past conversations nobody present can take,
never jumped by newcomers, and conversations an agent gave back."""

from __future__ import annotations

from datetime import timedelta

import pytest

from hilo.routing import actions, strategies
from tests.routing.desk import Desk
from tests.support import Api


def spanish_speakers_need_the_skill(desk: Desk, team: int) -> None:
    desk.api.ok(
        desk.api.post(
            "/api/v1/automation/rules",
            {
                "name": "Spanish speakers",
                "event": "conversation.created",
                "conditions": {"all": [{"field": "contact.locale", "op": "eq", "value": "es"}]},
                "actions": [{"type": "require_skills", "skills": ["language:es"]}],
                "position": 0,
            },
        ),
        201,
    )
    desk.api.ok(
        desk.api.post(
            "/api/v1/automation/rules",
            {
                "name": "Everything to the team",
                "event": "conversation.created",
                "actions": [{"type": "assign_team", "team_id": team}],
                "position": 1,
            },
        ),
        201,
    )


def routing_of(desk: Desk, conversation_id: int) -> dict[str, object]:
    return desk.api.ok(desk.api.get(f"/api/v1/conversations/{conversation_id}/routing"))  # type: ignore[no-any-return]


def give_back(desk: Desk, agent: Api, conversation_id: int) -> None:
    agent.ok(agent.patch(f"/api/v1/conversations/{conversation_id}", {"assignee_id": None}))
    desk.settle()


def test_queue_serves_conversations_behind_more_than_a_batch_nobody_present_can_take(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a queue read two at a time; three Spanish speakers wait first, then two others
    monkeypatch.setattr(actions, "DRAIN_BATCH", 2)
    ana, bea = desk.agent("Ana"), desk.agent("Bea")
    desk.api.ok(desk.api.put(f"/api/v1/routing/agents/{ana.agent_id}", {"capacity": {"chat": 1}}))
    desk.api.ok(
        desk.api.put(f"/api/v1/routing/agents/{bea.agent_id}", {"skills": ["language:es"], "capacity": {"chat": 1}})
    )
    team = desk.team("Support", [ana, bea], "skills")
    spanish_speakers_need_the_skill(desk, team)
    spanish = []
    for _ in range(3):
        spanish.append(desk.customer_writes("Hola", locale="es"))
        desk.clock.advance(minutes=1)
    first, second = desk.customer_writes("Hello"), desk.customer_writes("Hello again")
    # when: Ana, who speaks no Spanish, opens her inbox
    desk.connect(ana)
    # then: she gets the first conversation she can take, past the three she cannot
    assert desk.assignee(first) == ana.agent_id
    assert [desk.assignee(c) for c in (*spanish, second)] == [None, None, None, None]
    # when: a new customer writes, then Ana frees her place
    newest = desk.customer_writes("Hi")
    desk.patch(first, status="resolved")
    # then: the conversation that waited longer comes first
    assert desk.assignee(second) == ana.agent_id
    assert desk.assignee(newest) is None
    assert desk.decisions(second)[-1]["trigger"] == "capacity_freed"
    # when: Bea, who speaks Spanish, comes online
    desk.connect(bea)
    # then: the Spanish speakers are served in their order
    assert [desk.assignee(c) for c in spanish] == [bea.agent_id, None, None]
    queue = desk.api.ok(desk.api.get("/api/v1/routing/queue", params={"team_id": team}))
    assert [item["conversation_id"] for item in queue] == [*spanish[1:], newest]


def test_a_new_conversation_does_not_jump_a_queued_one_the_free_agent_can_take(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given: a short hold (so agents stay online without a routing pass running meanwhile);
    # Ana and Ben take one chat each and both carry one; Ben gives his back
    for module in (actions, strategies):
        monkeypatch.setattr(module, "GIVE_BACK_HOLD", timedelta(seconds=30))
    ana, ben = desk.agent("Ana"), desk.agent("Ben")
    for agent in (ana, ben):
        desk.api.ok(desk.api.put(f"/api/v1/routing/agents/{agent.agent_id}", {"capacity": {"chat": 1}}))
    team = desk.team("Support", [ana, ben], "least_loaded")
    desk.route_to_team(team)
    desk.connect(ana)
    desk.connect(ben)
    first, second = desk.customer_writes(), desk.customer_writes()
    assert [desk.assignee(first), desk.assignee(second)] == [ana.agent_id, ben.agent_id]
    give_back(desk, ben, second)
    assert desk.assignee(second) is None
    # when: the hold ends (no routing pass has run since) and a new customer writes
    desk.clock.advance(seconds=40)
    newest = desk.customer_writes()
    # then: Ben, the only one with room, gets the conversation that waited; the new one waits behind it
    assert desk.assignee(second) == ben.agent_id
    assert desk.assignee(newest) is None
    assert desk.decisions(newest)[-1]["reason"] == "no_capacity"


def test_an_agent_who_gives_a_conversation_back_gets_it_again_only_after_the_hold(desk: Desk) -> None:
    # given: Ana is the team's only agent and carries a conversation
    ana = desk.agent("Ana")
    team = desk.team("Support", [ana], "round_robin")
    desk.route_to_team(team)
    desk.connect(ana)
    conversation = desk.customer_writes()
    assert desk.assignee(conversation) == ana.agent_id
    # when: she gives it back
    give_back(desk, ana, conversation)
    # then: it waits, and says for whom
    routing = routing_of(desk, conversation)
    assert routing["queued"] is True
    assert routing["queue_reason"] == "only_excluded_agents"
    # when: not quite 30 minutes pass
    desk.tick(minutes=29)
    # then
    assert desk.assignee(conversation) is None
    # when: the hold ends
    desk.tick(minutes=2)
    # then: nobody else can take it, so it comes back to her
    assert desk.assignee(conversation) == ana.agent_id
    assert desk.decisions(conversation)[-1]["trigger"] == "hold_ended"


def test_someone_else_comes_first_for_a_conversation_given_back_long_ago(desk: Desk) -> None:
    # given: Ana gave a conversation back; after the hold it came back to her, nobody else being there
    ana, ben = desk.agent("Ana"), desk.agent("Ben")
    team = desk.team("Support", [ana, ben], "round_robin")
    desk.route_to_team(team)
    desk.connect(ana)
    conversation = desk.customer_writes()
    give_back(desk, ana, conversation)
    desk.tick(minutes=31)
    assert desk.assignee(conversation) == ana.agent_id
    # and Ben came online and got the next conversation, so round robin would turn to Ana next
    desk.connect(ben)
    assert desk.assignee(desk.customer_writes()) == ben.agent_id
    # when: a supervisor takes the conversation away from Ana
    desk.patch(conversation, assignee_id=None)
    # then: Ben comes first
    assert desk.assignee(conversation) == ben.agent_id
    # when: Ben gives it back
    give_back(desk, ben, conversation)
    # then: Ana, the only one left who may take it, gets it
    assert desk.assignee(conversation) == ana.agent_id
