"""The contacts directory over REST: list, search and filters, create, profile, start a conversation."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from hilo.clock import FrozenClock
from tests.channels.provider_support import fixture, post_meta, whatsapp_channel
from tests.fakes.meta import FakeGraphAPI
from tests.support import Api


def create(api: Api, name: str | None, *identities: tuple[str, str], **attributes: Any) -> Any:
    body = {
        "name": name,
        "identities": [{"kind": k, "value": v} for k, v in identities],
        "custom_attributes": attributes,
    }
    return api.post("/api/v1/contacts", body)


def names(api: Api, **params: Any) -> list[str]:
    return [c["name"] for c in api.ok(api.get("/api/v1/contacts", params=params))["items"]]


def test_an_agent_creates_a_contact_by_hand_and_an_address_taken_is_refused(api: Api) -> None:
    # given
    agent = api.as_new_agent("bea@example.com")
    # when
    created = agent.ok(
        create(agent, "Ana Díaz", ("email", " Ana@Example.COM "), ("phone", "600 111 222"), plan="gold"), 201
    )
    again = create(agent, "Someone else", ("phone", "+34600111222"))
    empty = create(agent, None)
    invalid = create(agent, "Bad", ("email", "not-an-address"))
    bad_key = create(agent, "Bad", ("email", "bad@example.com"), **{"has space": "x"})
    # then: identities in canonical form; the same number written differently is the same person
    assert sorted((i["kind"], i["value"]) for i in created["identities"]) == [
        ("email", "ana@example.com"),
        ("phone", "+34600111222"),
    ]
    assert created["custom_attributes"] == {"plan": "gold"}
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "identity_taken"
    assert again.json()["error"]["details"] == {"contact_id": created["id"]}
    assert (empty.status_code, empty.json()["error"]["code"]) == (422, "contact_empty")
    assert (invalid.status_code, invalid.json()["error"]["code"]) == (422, "email_invalid")
    assert (bad_key.status_code, bad_key.json()["error"]["code"]) == (422, "attribute_key_invalid")
    assert names(api) == ["Ana Díaz"]


def test_list_pages_with_a_cursor_and_searches_names_emails_and_phones(api: Api, clock: FrozenClock) -> None:
    # given: 30 contacts
    for index in range(30):
        api.ok(create(api, f"Customer {index:02d}", ("email", f"c{index}@example.com")), 201)
    api.ok(create(api, "Zoe Phone", ("phone", "+34 611 222 333")), 201)
    # when: paged by 20
    first = api.ok(api.get("/api/v1/contacts", params={"limit": 20}))
    second = api.ok(api.get("/api/v1/contacts", params={"limit": 20, "cursor": first["next_cursor"]}))
    # then: newest first, every contact once, no third page
    listed = [c["name"] for c in first["items"] + second["items"]]
    assert listed[0] == "Zoe Phone" and len(listed) == 31 and len(set(listed)) == 31
    assert second["next_cursor"] is None
    bad = api.get("/api/v1/contacts", params={"cursor": "nope"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid_cursor")
    # and: search by name word, e-mail and phone written another way
    assert names(api, q="Customer 07") == ["Customer 07"]
    assert names(api, q="c12@example.com") == ["Customer 12"]
    assert names(api, q="611 222 333") == ["Zoe Phone"]


def test_filters_by_channel_label_and_custom_attribute(api: Api) -> None:
    # given: a customer who wrote on the shop's API channel (labelled vip), one on the app's, one by hand
    shop, app = api.api_channel("Shop"), api.api_channel("App")
    api.inbound(shop, "s1", "hello", name="Shop Customer")
    api.inbound(app, "a1", "hi", name="App Customer")
    [shop_conversation] = [c for c in api.conversations() if c["contact_name"] == "Shop Customer"]
    api.ok(api.patch(f"/api/v1/conversations/{shop_conversation['id']}", {"labels": ["vip"]}))
    gold = api.ok(create(api, "Gold Member", ("email", "gold@example.com"), plan="gold", tier=2), 201)
    api.ok(create(api, "Silver Member", ("email", "silver@example.com"), plan="silver"), 201)
    # when / then: the channel filter lists whom the channel can reach
    assert names(api, channel_account_id=shop["id"]) == ["Shop Customer"]
    assert names(api, channel_account_id=app["id"]) == ["App Customer"]
    assert names(api, label="vip") == ["Shop Customer"]
    assert names(api, attribute="plan", attribute_value="gold") == ["Gold Member"]
    assert names(api, attribute="plan") == ["Silver Member", "Gold Member"]
    assert names(api, attribute="tier", attribute_value="2") == ["Gold Member"]
    assert names(api, attribute="plan", attribute_value="gold", q="silver@example.com") == []
    # and: each row says what the contact's conversations look like
    rows = {c["name"]: c for c in api.ok(api.get("/api/v1/contacts"))["items"]}
    assert rows["Shop Customer"]["conversation_count"] == 1
    assert rows["Shop Customer"]["open_conversation_id"] == shop_conversation["id"]
    assert rows["Gold Member"]["conversation_count"] == 0 and gold["id"] == rows["Gold Member"]["id"]
    missing = api.get("/api/v1/contacts", params={"channel_account_id": 999999})
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "channel_not_found")
    bad = api.get("/api/v1/contacts", params={"attribute": "a b"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (422, "attribute_key_invalid")


def test_profile_shows_identities_conversations_attributes_and_channels(api: Api) -> None:
    # given: a customer of the shop with a resolved conversation and an attribute
    shop = api.api_channel("Shop")
    api.inbound(shop, "s1", "hello", name="Shop Customer", email="shop@example.com")
    [conversation] = api.conversations()
    api.ok(api.patch(f"/api/v1/conversations/{conversation['id']}", {"status": "resolved"}))
    api.ok(api.patch(f"/api/v1/contacts/{conversation['contact_id']}", {"custom_attributes": {"city": "Madrid"}}))
    # when
    profile = api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}/profile"))
    # then
    assert profile["contact"]["name"] == "Shop Customer"
    assert profile["contact"]["custom_attributes"] == {"city": "Madrid"}
    assert {i["kind"] for i in profile["contact"]["identities"]} == {"api", "email"}
    assert [(c["id"], c["status"]) for c in profile["conversations"]] == [(conversation["id"], "resolved")]
    assert [(c["channel_account_id"], c["available"]) for c in profile["channels"]] == [(shop["id"], True)]
    missing = api.get("/api/v1/contacts/999999/profile")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "contact_not_found")


def test_starting_a_conversation_opens_a_new_thread_or_joins_the_open_one(api: Api) -> None:
    # given: a customer whose only conversation is resolved
    shop = api.api_channel("Shop")
    api.inbound(shop, "s1", "hello", name="Shop Customer")
    [old] = api.conversations()
    api.ok(api.patch(f"/api/v1/conversations/{old['id']}", {"status": "resolved"}))
    agent = api.as_new_agent("bea@example.com")
    path = f"/api/v1/contacts/{old['contact_id']}/conversations"
    # when: an agent writes to them first
    started = agent.ok(agent.post(path, {"channel_account_id": shop["id"], "body": "Your order shipped"}), 201)
    # then: a new open conversation, assigned to the agent, with the queued message
    assert started["created"] is True and started["conversation_id"] != old["id"]
    new = agent.ok(agent.get(f"/api/v1/conversations/{started['conversation_id']}"))
    assert (new["status"], new["assignee_id"], new["last_channel_account_id"]) == ("open", agent.agent_id, shop["id"])
    assert [(m["direction"], m["body"], m["status"]) for m in agent.timeline(new["id"])] == [
        ("outbound", "Your order shipped", "queued")
    ]
    # when: they write again while that conversation is open
    again = agent.ok(agent.post(path, {"channel_account_id": shop["id"], "body": "Tracking: 123"}), 201)
    # then: one thread per customer
    assert (again["created"], again["conversation_id"]) == (False, started["conversation_id"])
    empty = agent.post(path, {"channel_account_id": shop["id"], "body": "  "})
    assert (empty.status_code, empty.json()["error"]["code"]) == (422, "body_required")


def test_a_contact_without_an_address_on_the_channel_is_refused_and_nothing_is_left(api: Api) -> None:
    # given: a contact created by hand with an e-mail address only
    shop = api.api_channel("Shop")
    contact = api.ok(create(api, "Mail Only", ("email", "mail@example.com")), 201)
    # when
    refused = api.post(
        f"/api/v1/contacts/{contact['id']}/conversations", {"channel_account_id": shop["id"], "body": "Hi"}
    )
    # then
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "no_identity_on_channel")
    assert api.conversations() == []


def test_whatsapp_outside_the_window_takes_only_a_template(
    api: Api, fake_graph: FakeGraphAPI, worker: Any, app_client: TestClient
) -> None:
    # given: a WhatsApp channel with synced templates, and a contact added by hand who never wrote
    channel = whatsapp_channel(api, fake_graph)
    api.ok(api.post(f"/api/v1/channels/{channel['id']}/templates/sync"))
    contact = api.ok(create(api, "Sheena Nelson", ("phone", "+1 650 555 1234")), 201)
    path = f"/api/v1/contacts/{contact['id']}/conversations"
    # when: free text, then an unknown template
    free = api.post(path, {"channel_account_id": channel["id"], "body": "Hello!"})
    unknown = api.post(path, {"channel_account_id": channel["id"], "template": {"name": "nope", "language": "es"}})
    # then: refused with the channel's rule, and no conversation was left behind
    assert (free.status_code, free.json()["error"]["code"]) == (409, "whatsapp_window_closed")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (409, "whatsapp_template_unknown")
    assert api.conversations() == []
    profile = api.ok(api.get(f"/api/v1/contacts/{contact['id']}/profile"))
    [option] = profile["channels"]
    assert (option["available"], option["code"]) == (False, "whatsapp_window_closed")
    # when: an approved template
    template = {"name": "order_update", "language": "es"}
    started = api.ok(api.post(path, {"channel_account_id": channel["id"], "template": template, "body": "Update"}), 201)
    # then: it goes out as a template
    assert started["created"] is True
    assert worker() == 1
    call = fake_graph.requests_to("/messages")[-1]
    assert (call.json["type"], call.json["to"]) == ("template", "16505551234")
    assert call.json["template"] == {"name": "order_update", "language": {"code": "es"}}


def test_whatsapp_inside_the_window_takes_free_text(api: Api, fake_graph: FakeGraphAPI, worker: Any) -> None:
    # given: the customer wrote on WhatsApp, and the conversation was resolved
    channel = whatsapp_channel(api, fake_graph)
    assert post_meta(api, channel, fixture("whatsapp_text.json")).status_code == 200
    [conversation] = api.conversations()
    api.ok(api.patch(f"/api/v1/conversations/{conversation['id']}", {"status": "resolved"}))
    # when: an agent starts a new conversation with free text within 24 hours
    path = f"/api/v1/contacts/{conversation['contact_id']}/conversations"
    started = api.ok(api.post(path, {"channel_account_id": channel["id"], "body": "Yes, in blue."}), 201)
    # then
    assert started["created"] is True
    assert worker() == 1
    assert fake_graph.requests_to("/messages")[-1].json["text"]["body"] == "Yes, in blue."


def test_an_agent_cannot_write_into_another_teams_open_conversation(api: Api) -> None:
    # given: the customer's open conversation belongs to a team the agent is not in
    shop = api.api_channel("Shop")
    api.inbound(shop, "s1", "hello", name="Shop Customer")
    [conversation] = api.conversations()
    team = api.ok(api.post("/api/v1/teams", {"name": "Billing"}), 201)
    api.ok(api.patch(f"/api/v1/conversations/{conversation['id']}", {"team_id": team["id"]}))
    agent = api.as_new_agent("bea@example.com")
    path = f"/api/v1/contacts/{conversation['contact_id']}/conversations"
    # when
    refused = agent.post(path, {"channel_account_id": shop["id"], "body": "Hi"})
    allowed = api.post(path, {"channel_account_id": shop["id"], "body": "Hi from a supervisor"})
    # then: refused, and nothing was added to the conversation; an administrator may write
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "open_conversation_not_visible")
    assert (api.ok(allowed, 201)["conversation_id"], api.ok(allowed, 201)["created"]) == (conversation["id"], False)
    assert [m["body"] for m in api.timeline(conversation["id"]) if m["direction"] == "outbound"] == [
        "Hi from a supervisor"
    ]
