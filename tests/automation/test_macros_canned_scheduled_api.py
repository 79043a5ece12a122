"""Macros, canned responses and scheduled messages through the API."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from hilo.automation.rules import AutomationHandlers
from hilo.consumers.engine import Engine
from hilo.runtime import Runtime
from tests.routing.desk import Desk


def outbound(desk: Desk, conversation_id: int) -> list[dict[str, Any]]:
    return [m for m in desk.api.timeline(conversation_id) if m["direction"] == "outbound"]


def test_a_macro_applies_its_actions_in_one_click_as_the_agent(desk: Desk) -> None:
    # given
    ana = desk.agent("Ana")
    macro = desk.api.ok(
        ana.post(
            "/api/v1/macros",
            {
                "name": "Ask for the order number",
                "actions": [
                    {
                        "type": "reply",
                        "body": "Hi {{contact.first_name|}}, I'm {{agent.first_name}}. Your order number?",
                    },
                    {"type": "add_labels", "labels": ["orders"]},
                    {"type": "snooze", "hours": 24},
                ],
            },
        ),
        201,
    )
    conversation = desk.customer_writes("Where is my parcel?", name="Luis García")
    # when
    result = desk.api.ok(ana.post(f"/api/v1/macros/{macro['id']}/run", {"conversation_id": conversation}))
    desk.settle()
    # then
    assert [a["done"] for a in result["actions"]] == [True, True, True]
    assert result["conversation"]["status"] == "snoozed"
    assert result["conversation"]["labels"] == ["orders"]
    [reply] = outbound(desk, conversation)
    assert reply["body"] == "Hi Luis, I'm Ana. Your order number?"
    assert reply["author_agent_id"] == ana.agent_id
    assert desk.conversation(conversation)["first_response_at"] is not None


def test_personal_macros_stay_personal_and_sharing_is_for_supervisors(desk: Desk) -> None:
    # given
    ana, ben = desk.agent("Ana"), desk.agent("Ben")
    mine = desk.api.ok(ana.post("/api/v1/macros", {"name": "Mine", "actions": [{"type": "resolve"}]}), 201)
    # when
    ben_sees = desk.api.ok(ben.get("/api/v1/macros"))
    ben_runs = ben.post(f"/api/v1/macros/{mine['id']}/run", {"conversation_id": 1})
    shared_by_agent = ana.post("/api/v1/macros", {"name": "Everyone", "shared": True, "actions": [{"type": "resolve"}]})
    shared_by_admin = desk.api.post(
        "/api/v1/macros", {"name": "Everyone", "shared": True, "actions": [{"type": "resolve"}]}
    )
    with_webhook = desk.api.post(
        "/api/v1/macros",
        {"name": "Hook", "actions": [{"type": "webhook", "url": "http://127.0.0.1:9/x", "secret": "12345678"}]},
    )
    # then
    assert ben_sees == []
    assert ben_runs.status_code == 404
    assert shared_by_agent.status_code == 403
    assert shared_by_admin.status_code == 201
    assert [m["name"] for m in desk.api.ok(ben.get("/api/v1/macros"))] == ["Everyone"]
    assert with_webhook.json()["error"]["code"] == "webhook_not_allowed"


def test_canned_responses_for_the_slash_shortcut_with_variables_in_the_contacts_language(desk: Desk) -> None:
    # given
    for shortcut, title in (("refund", "Refund policy"), ("ref-number", "Ask for reference"), ("hours", "Opening")):
        desk.api.ok(
            desk.api.post(
                "/api/v1/canned-responses",
                {
                    "shortcut": f"/{shortcut}",
                    "title": title,
                    "body": f"Hello {{{{contact.first_name}}}}, {title.lower()}. {{{{agent.name}}}}",
                    "translations": {"es": f"Hola {{{{contact.first_name}}}}, {title.lower()}. {{{{agent.name}}}}"},
                },
            ),
            201,
        )
    ana = desk.agent("Ana")
    conversation = desk.customer_writes("Hola", name="Marta Ruiz", locale="es")
    # when: the agent types "/ref" in the composer
    found = desk.api.ok(ana.get("/api/v1/canned-responses", params={"q": "/ref", "conversation_id": conversation}))
    by_title = desk.api.ok(ana.get("/api/v1/canned-responses", params={"q": "opening"}))
    # then
    assert [c["shortcut"] for c in found] == ["ref-number", "refund"]
    assert found[1]["rendered"] == "Hola Marta, refund policy. Ana"
    assert [c["shortcut"] for c in by_title] == ["hours"]
    assert by_title[0]["rendered"] is None
    taken = desk.api.post("/api/v1/canned-responses", {"shortcut": "refund", "title": "x", "body": "y"})
    assert taken.status_code == 409
    assert ana.post("/api/v1/canned-responses", {"shortcut": "mine", "title": "x", "body": "y"}).status_code == 403


def test_a_scheduled_message_goes_out_at_its_time_through_the_reply_path(desk: Desk) -> None:
    # given
    conversation = desk.customer_writes("Can you call me back tomorrow?")
    send_at = desk.clock.now() + timedelta(hours=20)
    item = desk.api.ok(
        desk.api.post(
            "/api/v1/scheduled-messages",
            {
                "conversation_id": conversation,
                "body": "Good morning! Following up as promised.",
                "send_at": send_at.isoformat(),
            },
        ),
        201,
    )
    cancelled = desk.api.ok(
        desk.api.post(
            "/api/v1/scheduled-messages",
            {"conversation_id": conversation, "body": "Never mind", "send_at": send_at.isoformat()},
        ),
        201,
    )
    desk.api.ok(desk.api.client.delete(f"/api/v1/scheduled-messages/{cancelled['id']}", headers=desk.api.headers))
    # when: not yet
    desk.tick(hours=19)
    # then
    assert outbound(desk, conversation) == []
    assert desk.conversation(conversation)["first_response_at"] is None
    # when
    desk.tick(hours=1)
    # then
    [sent] = outbound(desk, conversation)
    assert sent["body"] == "Good morning! Following up as promised."
    assert sent["author_agent_id"] == desk.api.agent_id
    assert sent["status"] == "queued"
    items = desk.api.ok(desk.api.get("/api/v1/scheduled-messages", params={"conversation_id": conversation}))
    assert {i["id"]: i["state"] for i in items} == {item["id"]: "sent", cancelled["id"]: "cancelled"}
    assert desk.conversation(conversation)["first_response_at"] is not None


def test_a_scheduled_message_that_cannot_go_out_is_marked_failed_with_the_reason(desk: Desk) -> None:
    # given
    conversation = desk.customer_writes()
    item = desk.api.ok(
        desk.api.post(
            "/api/v1/scheduled-messages",
            {
                "conversation_id": conversation,
                "body": "Later",
                "send_at": (desk.clock.now() + timedelta(hours=1)).isoformat(),
            },
        ),
        201,
    )
    desk.api.ok(desk.api.patch(f"/api/v1/channels/{desk.channel['id']}", {"enabled": False}))
    # when
    desk.tick(hours=2)
    # then
    [failed] = desk.api.ok(desk.api.get("/api/v1/scheduled-messages", params={"conversation_id": conversation}))
    assert failed["id"] == item["id"]
    assert failed["state"] == "failed"
    assert failed["failure_code"] == "channel_disabled"
    past = desk.api.post(
        "/api/v1/scheduled-messages",
        {"conversation_id": conversation, "body": "x", "send_at": desk.clock.now().isoformat()},
    )
    assert past.json()["error"]["code"] == "send_at_invalid"


def test_two_processes_send_each_due_scheduled_message_once(desk: Desk) -> None:
    # given: six messages due, and a second process on the same database
    conversations = [desk.customer_writes(f"Call me back {n}", customer=f"later-{n}") for n in range(6)]
    send_at = desk.clock.now() + timedelta(hours=1)
    for conversation in conversations:
        desk.api.ok(
            desk.api.post(
                "/api/v1/scheduled-messages",
                {"conversation_id": conversation, "body": "Following up", "send_at": send_at.isoformat()},
            ),
            201,
        )
    desk.settle()
    desk.clock.advance(hours=1)
    state = desk.api.client.app.state  # type: ignore[attr-defined]
    other = Runtime(state.runtime.settings, clock=desk.clock)
    passes = [
        AutomationHandlers(Engine(state.runtime, name="scheduled-a")).scheduled_pass,
        AutomationHandlers(Engine(other, name="scheduled-b")).scheduled_pass,
    ]
    # when: both run their pass at once
    threads = [threading.Thread(target=run) for run in passes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    other.close()
    # then: every message went out once
    assert [len(outbound(desk, c)) for c in conversations] == [1] * 6
