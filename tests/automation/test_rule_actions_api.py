"""Rule actions and events through the API: a reply with a channel template, removing
labels, and rules on a status change."""

from __future__ import annotations

from typing import Any

from tests.routing.desk import Desk

ORDER_UPDATE = {"name": "order_update", "language": "en_US"}


def rule(desk: Desk, **fields: Any) -> dict[str, Any]:
    fields.setdefault("name", "A rule")
    return desk.api.ok(desk.api.post("/api/v1/automation/rules", fields), 201)  # type: ignore[no-any-return]


def runs(desk: Desk, conversation_id: int) -> list[dict[str, Any]]:
    return desk.api.ok(desk.api.get("/api/v1/automation/runs", params={"conversation_id": conversation_id}))  # type: ignore[no-any-return]


def whatsapp_channel(desk: Desk) -> dict[str, Any]:
    """A WhatsApp number with one approved template (never reached: the outbox is not run here)."""
    settings = {
        "phone_number_id": "106540352242922",
        "waba_id": "102290129340398",
        "api_base_url": "http://127.0.0.1:9",
        "access_token": "token",
        "app_secret": "app-secret",
        "verify_token": "verify",
        "templates": [{"name": "order_update", "language": "en_US", "components": []}],
    }
    return desk.api.ok(  # type: ignore[no-any-return]
        desk.api.post("/api/v1/channels", {"kind": "whatsapp", "name": "WhatsApp", "settings": settings}), 201
    )


def test_a_rule_replies_with_a_whatsapp_template_outside_the_customer_service_window(desk: Desk) -> None:
    # given: a WhatsApp number the customer never wrote to, so only templates may open it
    whatsapp = whatsapp_channel(desk)
    rule(
        desk,
        name="Follow up on WhatsApp",
        event="conversation.created",
        actions=[
            {"type": "reply", "template": ORDER_UPDATE, "channel_account_id": whatsapp["id"]},
            {
                "type": "reply",
                "template": {"name": "unknown", "language": "en_US"},
                "channel_account_id": whatsapp["id"],
            },
            {"type": "reply", "body": "Free text", "channel_account_id": whatsapp["id"]},
        ],
    )
    # when: a customer with a phone number writes through the API channel
    conversation = desk.customer_writes("Where is my order?", phone="+34600111222")
    # then: the approved template goes out on WhatsApp; the unknown template and free text are refused
    [sent] = [m for m in desk.api.timeline(conversation) if m["direction"] == "outbound"]
    assert sent["channel_account_id"] == whatsapp["id"]
    assert sent["data"]["template"] == ORDER_UPDATE
    assert sent["body"] is None
    assert sent["status"] == "queued"
    [run] = runs(desk, conversation)
    assert [(a["done"], a.get("code")) for a in run["detail"]["actions"]] == [
        (True, None),
        (False, "whatsapp_template_unknown"),
        (False, "whatsapp_window_closed"),
    ]
    assert run["detail"]["actions"][0]["message_id"] == sent["id"]


def test_remove_labels_takes_off_only_the_named_labels(desk: Desk) -> None:
    # given: a conversation labelled billing, refund and vip
    conversation = desk.customer_writes("I was charged twice")
    desk.patch(conversation, labels=["billing", "refund", "vip"])
    rule(
        desk,
        name="Refund handled",
        event="message.received",
        conditions={"all": [{"field": "message.text", "op": "contains", "value": "thanks"}]},
        actions=[{"type": "remove_labels", "labels": ["Refund", "billing", "never-there"]}],
    )
    # when
    desk.customer_writes("Got the money back, thanks", customer="customer-1")
    # then
    assert desk.conversation(conversation)["labels"] == ["vip"]
    [run] = runs(desk, conversation)
    assert run["detail"]["actions"] == [{"type": "remove_labels", "done": True}]


def test_a_status_change_fires_the_rules_for_it(desk: Desk) -> None:
    # given: a rule on conversations set to pending
    rule(
        desk,
        name="Waiting on the customer",
        event="conversation.status_changed",
        conditions={"all": [{"field": "conversation.status", "op": "eq", "value": "pending"}]},
        actions=[
            {"type": "add_labels", "labels": ["waiting-on-customer"]},
            {"type": "set_priority", "priority": "low"},
        ],
    )
    conversation = desk.customer_writes()
    # when: resolved first (the rule does not match), then set pending
    desk.patch(conversation, status="resolved")
    assert desk.conversation(conversation)["labels"] == []
    desk.patch(conversation, status="open")
    desk.patch(conversation, status="pending")
    # then
    shown = desk.conversation(conversation)
    assert shown["labels"] == ["waiting-on-customer"]
    assert shown["priority"] == "low"
    [run] = runs(desk, conversation)
    assert run["event"] == "conversation.status_changed"
