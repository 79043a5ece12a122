"""Automation rules through the API: events, conditions, actions, loop protection, dry run,
time-based rules, auto-resolve, out-of-office replies and webhooks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from hilo.channels import signing
from hilo.channels.base import IdentityKind, IdentityRef, InboundMessage, WebhookResult
from hilo.channels.models import ChannelAccount
from tests.fakes.server import serve_asgi
from tests.routing.desk import Desk


def rule(desk: Desk, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", "A rule")
    return desk.api.ok(desk.api.post("/api/v1/automation/rules", fields), 201)  # type: ignore[no-any-return]


def outbound(desk: Desk, conversation_id: int) -> list[dict[str, Any]]:
    return [m for m in desk.api.timeline(conversation_id) if m["direction"] == "outbound"]


def notes(desk: Desk, conversation_id: int) -> list[str]:
    return [m["body"] for m in desk.api.timeline(conversation_id) if m["direction"] == "note"]


def runs(desk: Desk, conversation_id: int) -> list[dict[str, Any]]:
    return desk.api.ok(desk.api.get("/api/v1/automation/runs", params={"conversation_id": conversation_id}))  # type: ignore[no-any-return]


def test_a_matching_message_is_labelled_prioritised_and_routed(desk: Desk) -> None:
    # given
    ana = desk.agent("Ana")
    billing = desk.team("Billing", [ana])
    desk.connect(ana)
    rule(
        desk,
        name="Refunds",
        event="message.received",
        conditions={"all": [{"field": "message.text", "op": "matches", "value": r"\brefund"}]},
        actions=[
            {"type": "add_labels", "labels": ["Billing", "refund"]},
            {"type": "set_priority", "priority": "high"},
            {"type": "assign_team", "team_id": billing},
        ],
    )
    # when
    asked = desk.customer_writes("I want a REFUND please")
    other = desk.customer_writes("Where is my parcel?")
    # then
    conversation = desk.conversation(asked)
    assert conversation["labels"] == ["billing", "refund"]
    assert conversation["priority"] == "high"
    assert conversation["team_id"] == billing
    assert conversation["assignee_id"] == ana.agent_id
    assert desk.conversation(other)["labels"] == []
    [run] = runs(desk, asked)
    assert run["outcome"] == "applied"
    assert [a["done"] for a in run["detail"]["actions"]] == [True, True, True]


def test_auto_reply_answers_in_the_contacts_language_with_variables(desk: Desk) -> None:
    # given
    rule(
        desk,
        name="Greeting",
        event="conversation.created",
        actions=[
            {
                "type": "reply",
                "body": {
                    "en": "Hi {{contact.first_name|there}}, we got your message.",
                    "es": "Hola {{contact.first_name|}}, hemos recibido tu mensaje.",
                },
            }
        ],
    )
    # when
    spanish = desk.customer_writes("Necesito ayuda", name="Ana Pérez", locale="es-ES")
    english = desk.customer_writes("I need help")
    # then
    assert [m["body"] for m in outbound(desk, spanish)] == ["Hola Ana, hemos recibido tu mensaje."]
    assert [m["body"] for m in outbound(desk, english)] == ["Hi there, we got your message."]
    assert outbound(desk, spanish)[0]["author_agent_id"] is None


def test_language_detected_from_the_message_when_the_contact_has_none(desk: Desk) -> None:
    # given
    rule(
        desk,
        name="Spanish",
        event="message.received",
        conditions={"all": [{"field": "message.language", "op": "eq", "value": "es"}]},
        actions=[{"type": "add_labels", "labels": ["spanish"]}],
    )
    # when
    spanish = desk.customer_writes("Hola, necesito ayuda con mi pedido por favor")
    english = desk.customer_writes("Hello, I need help with my order please")
    # then
    assert desk.conversation(spanish)["labels"] == ["spanish"]
    assert desk.conversation(english)["labels"] == []


def test_never_auto_replies_to_an_auto_generated_message(desk: Desk) -> None:
    # given
    rule(
        desk,
        name="Greeting",
        event="message.received",
        actions=[{"type": "reply", "body": "Thanks for writing"}, {"type": "add_labels", "labels": ["seen"]}],
    )
    runtime = desk.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.read() as session:
        account = session.execute(select(ChannelAccount).where(ChannelAccount.id == desk.channel["id"])).scalar_one()
        view = account.view()
    bounce = InboundMessage(
        provider_message_id="auto-1",
        sender=IdentityRef(IdentityKind.API, f"{view.id}:mailer-daemon"),
        text="Out of office until Monday",
        auto_generated=True,
    )
    # when: an auto-reply arrives the way a channel hands it over
    desk.client.app.state.ingest.submit(view, WebhookResult(messages=[bounce])).result(timeout=10)  # type: ignore[attr-defined]
    desk.settle()
    # then: the other actions run, the reply is skipped
    [conversation] = desk.api.conversations()
    assert outbound(desk, conversation["id"]) == []
    assert conversation["labels"] == ["seen"]
    [run] = runs(desk, conversation["id"])
    assert run["detail"]["actions"][0] == {"type": "reply", "done": True, "skipped": "auto_generated"}


def test_rules_that_undo_each_other_are_stopped(desk: Desk) -> None:
    # given: two rules that bounce a conversation between two agents for ever
    ana, ben = desk.agent("Ana"), desk.agent("Ben")
    rule(
        desk,
        name="To Ben",
        event="conversation.assigned",
        conditions={"all": [{"field": "conversation.assignee_id", "op": "eq", "value": ana.agent_id}]},
        actions=[{"type": "assign_agent", "agent_id": ben.agent_id}],
    )
    rule(
        desk,
        name="To Ana",
        event="conversation.assigned",
        conditions={"all": [{"field": "conversation.assignee_id", "op": "eq", "value": ben.agent_id}]},
        actions=[{"type": "assign_agent", "agent_id": ana.agent_id}],
    )
    conversation = desk.customer_writes()
    # when
    desk.patch(conversation, assignee_id=ana.agent_id)
    # then: the chain stops, and says so
    history = runs(desk, conversation)
    applied = [r for r in history if r["outcome"] == "applied"]
    stopped = [r for r in history if r["outcome"] == "loop_stopped"]
    assert len(stopped) == 1
    assert stopped[0]["detail"]["reason"] == "depth"
    assert 1 < len(applied) <= 6
    assert max(r["depth"] for r in history) == 6


def test_a_conversation_gets_at_most_so_many_rule_runs_in_a_while(desk: Desk) -> None:
    # given: a rule that notes every message (think of a bot answering our auto-reply)
    rule(desk, name="Note", event="message.received", actions=[{"type": "add_note", "body": "Seen"}])
    conversation = desk.customer_writes("1")
    # when
    for n in range(2, 23):
        desk.customer_writes(str(n), customer="customer-1")
    # then
    assert len(notes(desk, conversation)) == 20
    stopped = [r for r in runs(desk, conversation) if r["outcome"] == "loop_stopped"]
    assert {r["detail"]["reason"] for r in stopped} == {"rate"}
    # when: the window passes
    desk.clock.advance(minutes=11)
    desk.customer_writes("later", customer="customer-1")
    # then
    assert len(notes(desk, conversation)) == 21


def test_rules_run_in_order_and_can_stop_the_rest(desk: Desk) -> None:
    # given
    rule(desk, name="Second", event="conversation.created", position=2, actions=[{"type": "add_note", "body": "2"}])
    rule(
        desk,
        name="First",
        event="conversation.created",
        position=1,
        stop_processing=True,
        conditions={
            "any": [
                {"field": "contact.verified", "op": "eq", "value": True},
                {"field": "message.text", "op": "starts_with", "value": "vip"},
            ]
        },
        actions=[{"type": "add_note", "body": "1"}],
    )
    rule(desk, name="Zero", event="conversation.created", position=0, actions=[{"type": "add_note", "body": "0"}])
    # when
    vip = desk.customer_writes("VIP customer here")
    regular = desk.customer_writes("hello")
    # then
    assert notes(desk, vip) == ["0", "1"]
    assert notes(desk, regular) == ["0", "2"]


def test_dry_run_shows_what_a_rule_would_do_without_doing_it(desk: Desk) -> None:
    # given
    urgent = desk.customer_writes("My account was hacked!")
    calm = desk.customer_writes("Just a question")
    desk.patch(calm, priority="low")
    draft = {
        "event": "message.received",
        "conditions": {"all": [{"field": "message.text", "op": "contains", "value": "hacked"}]},
        "actions": [
            {"type": "set_priority", "priority": "urgent"},
            {"type": "add_labels", "labels": ["security"]},
            {"type": "reply", "body": {"en": "We are on it, {{contact.first_name|}}."}},
        ],
    }
    # when
    result = desk.api.ok(desk.api.post("/api/v1/automation/rules/dry-run", draft))
    # then
    assert result["scanned"] == 2
    [match] = result["matched"]
    assert match["conversation_id"] == urgent
    assert [a["would_change"] for a in match["actions"]] == [True, True, True]
    assert match["actions"][2]["text"] == "We are on it, ."
    assert desk.conversation(urgent)["priority"] == "none"
    assert outbound(desk, urgent) == []
    # and a saved rule can be tried too
    saved = rule(desk, name="Security", **draft)
    again = desk.api.ok(desk.api.post(f"/api/v1/automation/rules/{saved['id']}/dry-run"))
    assert [m["conversation_id"] for m in again["matched"]] == [urgent]


def test_an_sla_breach_can_escalate(desk: Desk) -> None:
    # given
    desk.api.ok(desk.api.post("/api/v1/sla-policies", {"name": "Standard", "first_response_seconds": 600}), 201)
    rule(
        desk,
        name="Escalate",
        event="sla.breached",
        conditions={"all": [{"field": "event.sla_kind", "op": "eq", "value": "first_response"}]},
        actions=[{"type": "set_priority", "priority": "urgent"}, {"type": "add_note", "body": "Late!"}],
    )
    conversation = desk.customer_writes()
    # when
    desk.tick(minutes=11)
    # then
    assert desk.conversation(conversation)["priority"] == "urgent"
    assert notes(desk, conversation) == ["Late!"]


def test_idle_rule_runs_once_after_hours_without_messages(desk: Desk) -> None:
    # given
    rule(
        desk,
        name="Nudge",
        event="conversation.idle",
        idle_hours=24,
        conditions={"all": [{"field": "conversation.status", "op": "eq", "value": "pending"}]},
        actions=[{"type": "reply", "body": "Are you still there?"}],
    )
    waiting = desk.customer_writes()
    desk.patch(waiting, status="pending")
    busy = desk.customer_writes()
    desk.patch(busy, status="pending")
    # when: 23 hours pass, then the busy customer writes, then another 2 hours pass
    desk.tick(hours=23)
    desk.customer_writes("still here", customer="customer-2")
    desk.patch(busy, status="pending")
    desk.tick(hours=2)
    desk.tick(hours=1)
    # then: only the conversation idle for 24 hours was nudged, once
    assert [m["body"] for m in outbound(desk, waiting)] == ["Are you still there?"]
    assert outbound(desk, busy) == []


def test_auto_resolve_closes_idle_conversations_nobody_waits_on(desk: Desk) -> None:
    # given
    desk.api.ok(
        desk.api.put(
            "/api/v1/automation/settings",
            {
                "auto_resolve_after_hours": 48,
                "auto_resolve_message": {"en": "Closing this for now.", "es": "Cerramos esta conversación."},
            },
        )
    )
    answered = desk.customer_writes("Hola", locale="es")
    desk.api.ok(desk.api.post(f"/api/v1/conversations/{answered}/messages", {"body": "¿Algo más?"}), 201)
    unanswered = desk.customer_writes("Hello?")
    # when
    desk.tick(hours=47)
    assert desk.conversation(answered)["status"] == "open"
    desk.tick(hours=2)
    # then
    assert desk.conversation(answered)["status"] == "resolved"
    assert [m["body"] for m in outbound(desk, answered)][-1] == "Cerramos esta conversación."
    assert desk.conversation(unanswered)["status"] == "open"


def test_out_of_office_reply_once_per_closed_spell(desk: Desk) -> None:
    # given: weekday office hours 9-17 UTC with an out-of-office message
    desk.api.ok(
        desk.api.post(
            "/api/v1/business-hours",
            {
                "name": "Office",
                "timezone": "UTC",
                "is_default": True,
                "periods": {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                "out_of_office_message": {
                    "en": "We are closed; back at 9.",
                    "es": "Estamos cerrados; volvemos a las 9.",
                },
            },
        ),
        201,
    )
    rule(
        desk,
        name="Closed",
        event="message.received",
        conditions={"all": [{"field": "business_hours.open", "op": "eq", "value": False}]},
        actions=[{"type": "add_labels", "labels": ["after-hours"]}],
    )
    # when: a customer writes twice on Monday evening, again on Tuesday during hours, and Tuesday evening
    desk.clock.set(datetime(2026, 3, 2, 19, 0, tzinfo=UTC))
    conversation = desk.customer_writes("Hola", locale="es")
    desk.clock.set(datetime(2026, 3, 2, 22, 0, tzinfo=UTC))
    desk.customer_writes("¿Hay alguien?", customer="customer-1")
    desk.clock.set(datetime(2026, 3, 3, 10, 0, tzinfo=UTC))
    desk.customer_writes("Buenos días", customer="customer-1")
    desk.clock.set(datetime(2026, 3, 3, 18, 0, tzinfo=UTC))
    desk.customer_writes("Otra vez yo", customer="customer-1")
    # then
    assert [m["body"] for m in outbound(desk, conversation)] == ["Estamos cerrados; volvemos a las 9."] * 2
    assert desk.conversation(conversation)["labels"] == ["after-hours"]


@contextmanager
def hook_receiver(secret: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    lock = threading.Lock()

    async def handle(request: Request) -> Response:
        body = await request.body()
        signing.verify(secret, body, request.headers.get(signing.HEADER))
        with lock:
            received.append(orjson.loads(body))
        return JSONResponse({"ok": True})

    with serve_asgi(Starlette(routes=[Route("/hook", handle, methods=["POST"])])) as base:
        yield f"{base}/hook", received


def test_webhook_action_posts_a_signed_request_after_the_commit(desk: Desk) -> None:
    # given
    with hook_receiver("a-shared-secret") as (url, received):
        rule(
            desk,
            name="Tell the CRM",
            event="conversation.created",
            actions=[{"type": "webhook", "url": url, "secret": "a-shared-secret"}],
        )
        listed = desk.api.ok(desk.api.get("/api/v1/automation/rules"))
        # when
        conversation = desk.customer_writes()
        desk.webhooks_done()
    # then
    assert [(r["event"], r["conversation_id"]) for r in received] == [("conversation.created", conversation)]
    assert listed[0]["actions"][0]["url"] == url
    [outcome] = desk.events(conversation, "automation.webhook")
    assert outcome == {"url": url, "attempts": 1, "delivered": True, "status": 200}


def test_rules_are_checked_when_saved_and_only_supervisors_manage_them(desk: Desk) -> None:
    # given
    agent = desk.agent("Ana")
    good = {"name": "Ok", "event": "conversation.created", "actions": [{"type": "resolve"}]}
    # when
    forbidden = agent.post("/api/v1/automation/rules", good)
    unknown_field = desk.api.post(
        "/api/v1/automation/rules",
        {**good, "conditions": {"all": [{"field": "contact.shoe_size", "op": "eq", "value": 42}]}},
    )
    bad_action = desk.api.post("/api/v1/automation/rules", {**good, "actions": [{"type": "explode"}]})
    bad_pattern = desk.api.post(
        "/api/v1/automation/rules",
        {**good, "conditions": {"all": [{"field": "message.text", "op": "matches", "value": "("}]}},
    )
    no_idle_hours = desk.api.post("/api/v1/automation/rules", {**good, "event": "conversation.idle"})
    # then
    assert forbidden.status_code == 403
    assert unknown_field.json()["error"]["code"] == "conditions_invalid"
    assert "shoe_size" in unknown_field.json()["error"]["message"]
    assert bad_action.json()["error"]["code"] == "actions_invalid"
    assert bad_pattern.json()["error"]["code"] == "conditions_invalid"
    assert no_idle_hours.json()["error"]["code"] == "idle_hours_required"


def test_webhook_secret_is_never_shown_and_kept_when_an_edit_leaves_it_out(desk: Desk) -> None:
    # given: a rule whose webhook has a secret
    with hook_receiver("a-shared-secret") as (url, received):
        created = rule(
            desk,
            name="Tell the CRM",
            event="conversation.created",
            actions=[{"type": "webhook", "url": url, "secret": "a-shared-secret"}],
        )
        # when: it is read back, and edited without sending the secret again
        listed = desk.api.ok(desk.api.get("/api/v1/automation/rules"))
        shown = desk.api.ok(desk.api.get(f"/api/v1/automation/rules/{created['id']}"))
        edited = desk.api.ok(
            desk.api.put(
                f"/api/v1/automation/rules/{created['id']}",
                {**created, "name": "Tell the CRM now", "actions": shown["actions"]},
            )
        )
        conversation = desk.customer_writes()
        desk.webhooks_done()
    # then: no answer holds the secret, and the webhook is still signed with it
    for answer in (created, listed, shown, edited):
        assert "a-shared-secret" not in str(answer)
    assert shown["actions"] == [{"type": "webhook", "url": url, "secret_set": True}]
    assert [r["conversation_id"] for r in received] == [conversation]
