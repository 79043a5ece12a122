"""Routing through the API: strategies, capacity, skills, the queue, presence and re-assignment."""

from __future__ import annotations

from tests.routing.desk import Desk


def test_round_robin_takes_turns_among_online_agents(desk: Desk) -> None:
    # given
    ana, ben, cai = desk.agent("Ana"), desk.agent("Ben"), desk.agent("Cai")
    team = desk.team("Support", [ana, ben, cai], "round_robin")
    desk.route_to_team(team)
    for agent in (ana, ben, cai):
        desk.connect(agent)
    # when
    conversations = [desk.customer_writes() for _ in range(4)]
    # then
    assert [desk.assignee(c) for c in conversations] == [ana.agent_id, ben.agent_id, cai.agent_id, ana.agent_id]
    [decision] = desk.decisions(conversations[0])
    assert decision["reason"] == "round_robin"
    assert decision["agent_id"] == ana.agent_id
    assert decision["trigger"] == "conversation.created"


def test_offline_agents_get_nothing_and_the_conversation_queues(desk: Desk) -> None:
    # given: nobody is connected
    ana = desk.agent("Ana")
    team = desk.team("Support", [ana])
    desk.route_to_team(team)
    # when
    conversation = desk.customer_writes()
    # then
    assert desk.assignee(conversation) is None
    routing = desk.api.ok(desk.api.get(f"/api/v1/conversations/{conversation}/routing"))
    assert routing["queued"] is True
    assert routing["queue_reason"] == "no_agent_online"
    # when: Ana opens her inbox
    desk.connect(ana)
    # then: the queue drains to her
    assert desk.assignee(conversation) == ana.agent_id
    assert desk.decisions(conversation)[-1]["trigger"] == "agent_online"


def test_least_loaded_picks_the_agent_with_the_fewest_open_conversations(desk: Desk) -> None:
    # given: Ana already carries two chats, Ben one
    ana, ben = desk.agent("Ana"), desk.agent("Ben")
    team = desk.team("Support", [ana, ben], "least_loaded")
    desk.route_to_team(team)
    desk.connect(ana)
    first, second = desk.customer_writes(), desk.customer_writes()
    desk.connect(ben)
    third = desk.customer_writes()
    assert [desk.assignee(c) for c in (first, second, third)] == [ana.agent_id, ana.agent_id, ben.agent_id]
    # when
    fourth = desk.customer_writes()
    # then
    assert desk.assignee(fourth) == ben.agent_id
    assert desk.decisions(fourth)[-1]["reason"] == "least_loaded"


def test_capacity_per_kind_of_channel_limits_assignments(desk: Desk) -> None:
    # given: Ana takes one chat at a time
    ana = desk.agent("Ana")
    team = desk.team("Support", [ana], "least_loaded")
    desk.api.ok(desk.api.put(f"/api/v1/routing/agents/{ana.agent_id}", {"capacity": {"chat": 1}}))
    desk.route_to_team(team)
    desk.connect(ana)
    # when
    first, second = desk.customer_writes(), desk.customer_writes()
    # then
    assert desk.assignee(first) == ana.agent_id
    assert desk.assignee(second) is None
    assert desk.decisions(second)[-1]["reason"] == "no_capacity"
    agents = {a["agent_id"]: a for a in desk.api.ok(desk.api.get("/api/v1/routing/agents"))}
    assert agents[ana.agent_id]["load"] == {"call": 0, "chat": 1, "email": 0}
    assert agents[ana.agent_id]["capacity"] == {"call": 1, "chat": 1, "email": 10}
    assert agents[ana.agent_id]["presence"] == "online"
    # when: more capacity frees a slot
    desk.api.ok(desk.api.put(f"/api/v1/routing/agents/{ana.agent_id}", {"capacity": {"chat": 2}}))
    desk.settle()
    # then
    assert desk.assignee(second) == ana.agent_id


def test_skills_based_routing_follows_the_skills_rules_require(desk: Desk) -> None:
    # given: only Bea speaks Spanish; a rule requires it for Spanish-speaking contacts
    ana, bea = desk.agent("Ana"), desk.agent("Bea")
    desk.api.ok(desk.api.put(f"/api/v1/routing/agents/{bea.agent_id}", {"skills": ["language:es", "vip"]}))
    team = desk.team("Support", [ana, bea], "skills")
    desk.api.ok(
        desk.api.post(
            "/api/v1/automation/rules",
            {
                "name": "Spanish speakers",
                "event": "conversation.created",
                "conditions": {"all": [{"field": "contact.locale", "op": "eq", "value": "es"}]},
                "actions": [
                    {"type": "require_skills", "skills": ["Language:ES"]},
                    {"type": "assign_team", "team_id": team},
                ],
            },
        ),
        201,
    )
    desk.connect(ana)
    desk.connect(bea)
    # when
    conversation = desk.customer_writes("Hola", locale="es")
    # then
    assert desk.assignee(conversation) == bea.agent_id
    routing = desk.api.ok(desk.api.get(f"/api/v1/conversations/{conversation}/routing"))
    assert routing["required_skills"] == ["language:es"]
    assert routing["decisions"][-1]["data"]["reason"] == "skills"
    # when: Bea goes away; another Spanish speaker writes
    desk.api.ok(bea.put("/api/v1/presence/me", {"availability": "away"}))
    desk.settle()
    waiting = desk.customer_writes("Buenas", locale="es")
    # then: Ana lacks the skill, so it waits
    assert desk.assignee(waiting) is None
    assert desk.decisions(waiting)[-1]["reason"] == "no_skilled_agent"


def test_queue_drains_by_priority_then_sla_due_then_waiting_time(desk: Desk) -> None:
    # given: a gold plan has a 30-minute first-response target, everyone else 8 hours
    desk.api.ok(
        desk.api.post(
            "/api/v1/sla-policies",
            {
                "name": "Gold",
                "position": 0,
                "conditions": {"contact_attributes": {"plan": "gold"}},
                "first_response_seconds": 1800,
            },
        ),
        201,
    )
    desk.api.ok(
        desk.api.post("/api/v1/sla-policies", {"name": "Standard", "position": 1, "first_response_seconds": 8 * 3600}),
        201,
    )
    ana = desk.agent("Ana")
    team = desk.team("Support", [ana], "least_loaded")
    desk.api.ok(desk.api.put(f"/api/v1/routing/agents/{ana.agent_id}", {"capacity": {"chat": 1}}))
    desk.route_to_team(team)
    oldest = desk.customer_writes()
    desk.clock.advance(minutes=1)
    urgent = desk.customer_writes()
    desk.patch(urgent, priority="high")
    desk.clock.advance(minutes=1)
    gold = desk.customer_writes()
    gold_contact = desk.conversation(gold)["contact_id"]
    desk.api.ok(desk.api.patch(f"/api/v1/contacts/{gold_contact}", {"custom_attributes": {"plan": "gold"}}))
    desk.settle()
    desk.clock.advance(minutes=1)
    newest = desk.customer_writes()
    # then: the queue's order
    queue = desk.api.ok(desk.api.get("/api/v1/routing/queue", params={"team_id": team}))
    assert [item["conversation_id"] for item in queue] == [urgent, gold, oldest, newest]
    # when: Ana comes online with room for one chat, and frees it again and again
    desk.connect(ana)
    served = [
        next(
            c
            for c in (urgent, gold, oldest, newest)
            if desk.assignee(c) == ana.agent_id and desk.conversation(c)["status"] == "open"
        )
    ]
    desk.patch(served[-1], status="resolved")
    served.append(next(c for c in (gold, oldest, newest) if desk.assignee(c) == ana.agent_id))
    desk.patch(served[-1], status="pending")
    served.append(next(c for c in (oldest, newest) if desk.assignee(c) == ana.agent_id))
    ana.ok(ana.patch(f"/api/v1/conversations/{served[-1]}", {"assignee_id": None}))
    desk.settle()
    served.append(next(c for c in (newest,) if desk.assignee(c) == ana.agent_id))
    # then
    assert served == [urgent, gold, oldest, newest]
    assert desk.decisions(gold)[-1]["trigger"] == "capacity_freed"
    # the conversation Ana gave back waits rather than boomerang to her
    assert desk.assignee(oldest) is None


def test_agent_going_offline_hands_conversations_back_when_the_team_asks(desk: Desk) -> None:
    # given
    ana, ben = desk.agent("Ana"), desk.agent("Ben")
    team = desk.team("Support", [ana, ben], "round_robin", reassign_when_offline=True)
    desk.route_to_team(team)
    desk.connect(ana)
    conversation = desk.customer_writes()
    assert desk.assignee(conversation) == ana.agent_id
    desk.connect(ben)
    # when: Ana closes her inbox; a reload within the grace period would keep her online
    desk.disconnect(ana)
    desk.tick(seconds=10)
    assert desk.assignee(conversation) == ana.agent_id
    desk.tick(seconds=25)
    # then
    assert desk.assignee(conversation) == ben.agent_id
    decision = desk.decisions(conversation)[-1]
    assert decision["trigger"] == "agent_offline"
    presence = {p["agent_id"]: p["presence"] for p in desk.api.ok(desk.api.get("/api/v1/presence"))}
    assert presence[ana.agent_id] == "offline"
    assert presence[ben.agent_id] == "online"


def test_open_sockets_keep_agents_online_and_heartbeats_expire_with_their_process(desk: Desk) -> None:
    # given
    ana = desk.agent("Ana")
    desk.connect(ana)
    # when: time passes with the socket open; this process keeps refreshing it
    desk.tick(minutes=5)
    desk.tick(minutes=5)
    # then
    presence = {p["agent_id"]: p["presence"] for p in desk.api.ok(desk.api.get("/api/v1/presence"))}
    assert presence[ana.agent_id] == "online"
    # when: the process stops refreshing (as if it died): its session expires
    desk.client.app.state.routing_handlers._connections.clear()  # type: ignore[attr-defined]
    desk.tick(minutes=2)
    # then
    presence = {p["agent_id"]: p["presence"] for p in desk.api.ok(desk.api.get("/api/v1/presence"))}
    assert presence[ana.agent_id] == "offline"


def test_away_agents_get_no_new_conversations(desk: Desk) -> None:
    # given
    ana, ben = desk.agent("Ana"), desk.agent("Ben")
    team = desk.team("Support", [ana, ben], "round_robin")
    desk.route_to_team(team)
    desk.connect(ana)
    desk.connect(ben)
    # when
    me = desk.api.ok(ana.put("/api/v1/presence/me", {"availability": "away"}))
    desk.settle()
    conversations = [desk.customer_writes() for _ in range(2)]
    # then
    assert me["presence"] == "away"
    assert {desk.assignee(c) for c in conversations} == {ben.agent_id}


def test_only_supervisors_configure_routing(desk: Desk) -> None:
    # given
    agent = desk.agent("Ana")
    supervisor = desk.agent("Sue", "supervisor")
    team = desk.api.ok(desk.api.post("/api/v1/teams", {"name": "Sales"}), 201)
    # when
    refused = agent.put(f"/api/v1/routing/teams/{team['id']}", {"strategy": "skills"})
    allowed = supervisor.put(f"/api/v1/routing/teams/{team['id']}", {"strategy": "skills"})
    invalid = supervisor.put(f"/api/v1/routing/agents/{agent.agent_id}", {"capacity": {"fax": 2}})
    # then
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert allowed.status_code == 200
    assert allowed.json()["strategy"] == "skills"
    assert invalid.status_code == 422
