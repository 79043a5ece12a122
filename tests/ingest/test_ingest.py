"""Inbound messages through the generic API channel: one contact, one thread, exactly once."""

from __future__ import annotations

from tests.support import Api


def test_inbound_message_creates_contact_and_conversation(api: Api) -> None:
    # given
    channel = api.api_channel()
    # when
    result = api.inbound(channel, "cust-1", "Hola, necesito ayuda", name="Ana Pérez", email="Ana@Example.com")
    # then
    assert result["messages"] == 1
    [conversation] = api.conversations()
    assert conversation["contact_name"] == "Ana Pérez"
    assert conversation["status"] == "open"
    [message] = api.timeline(conversation["id"])
    assert message["body"] == "Hola, necesito ayuda"
    assert message["direction"] == "inbound"
    contact = api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}"))
    assert {(i["kind"], i["value"]) for i in contact["identities"]} == {
        ("api", f"{channel['id']}:cust-1"),
        ("email", "ana@example.com"),
    }


def test_same_webhook_ten_times_stores_one_message(api: Api) -> None:
    # given
    channel = api.api_channel()
    payload = {"id": "dup-1", "contact": {"external_id": "c"}, "text": "once"}
    # when
    answers = [api.webhook(channel, payload).json() for _ in range(10)]
    # then
    assert answers[0]["messages"] == 1
    assert all(a["duplicates"] == 1 for a in answers[1:])
    [conversation] = api.conversations()
    assert len(api.timeline(conversation["id"])) == 1


def test_messages_from_two_channels_join_one_thread(api: Api) -> None:
    # given: a shop and a mobile app, both custom sources, knowing the same phone number
    shop = api.api_channel("Shop")
    app = api.api_channel("App")
    api.inbound(shop, "shop-9", "Where is my order?", phone="+34 600 111 222")
    # when
    api.inbound(app, "app-77", "Sorry, order 1234", phone="600111222")
    # then
    [conversation] = api.conversations()
    bodies = [m["body"] for m in api.timeline(conversation["id"])]
    assert bodies == ["Where is my order?", "Sorry, order 1234"]
    assert conversation["last_channel_account_id"] == app["id"]


def test_resolved_conversation_reopens_within_window_then_new_one(api: Api, clock) -> None:  # type: ignore[no-untyped-def]
    # given
    channel = api.api_channel()
    api.inbound(channel, "c", "first")
    [conversation] = api.conversations()
    api.ok(api.patch(f"/api/v1/conversations/{conversation['id']}", {"status": "resolved"}))
    # when: the customer writes again within the re-open window
    clock.advance(hours=24)
    api.inbound(channel, "c", "again")
    # then
    reopened = api.ok(api.get(f"/api/v1/conversations/{conversation['id']}"))
    assert reopened["status"] == "open"
    # when: resolved, and the customer writes after the window
    api.ok(api.patch(f"/api/v1/conversations/{conversation['id']}", {"status": "resolved"}))
    clock.advance(hours=73)
    api.inbound(channel, "c", "much later")
    # then: a new conversation, and the contact timeline shows all three messages
    conversations = api.conversations()
    assert len(conversations) == 2
    newest = conversations[0]
    assert newest["id"] != conversation["id"]
    timeline = api.ok(api.get(f"/api/v1/contacts/{newest['contact_id']}/timeline"))["items"]
    assert [m["body"] for m in timeline if m["direction"] == "inbound"] == ["first", "again", "much later"]
