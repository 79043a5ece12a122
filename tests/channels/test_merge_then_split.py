"""Merging two customers and splitting them again puts back what the merge joined: each gets
their conversation, with its state, and a reply reaches each on their own channel."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from hilo.clock import FrozenClock
from tests.channels.provider_support import post_meta, post_twilio, twilio_channel, whatsapp_channel
from tests.channels.test_phone_numbers import sms_text, whatsapp_text
from tests.fakes.meta import FakeGraphAPI
from tests.fakes.twilio import FakeTwilio
from tests.support import Api

ANA_PHONE = "+34600111222"  # writes by SMS
BEA_WA_ID = "34699888777"  # writes on WhatsApp


def _lines(api: Api, conversation_id: int) -> list[tuple[str, str | None]]:
    return [(m["direction"], m["body"]) for m in api.timeline(conversation_id) if m["direction"] != "event"]


def _reply(api: Api, conversation_id: int, body: str) -> dict[str, Any]:
    return api.ok(api.post(f"/api/v1/conversations/{conversation_id}/messages", {"body": body}), 201)  # type: ignore[no-any-return]


def test_a_split_puts_back_the_conversation_the_merge_joined_and_replies_reach_each_customer(
    api: Api,
    app_client: TestClient,
    worker: Any,
    clock: FrozenClock,
    fake_graph: FakeGraphAPI,
    fake_twilio: tuple[FakeTwilio, str],
) -> None:
    # given: Ana wrote by SMS, Bea on WhatsApp; Bea's conversation is pending, with a label
    twilio, twilio_url = fake_twilio
    whatsapp = whatsapp_channel(api, fake_graph)
    sms = twilio_channel(api, twilio, twilio_url)
    post_twilio(api, sms, sms_text(twilio, ANA_PHONE, "SM" + "a1" * 16, "Soy Ana"), twilio.auth_token)
    clock.advance(minutes=1)
    post_meta(api, whatsapp, whatsapp_text(BEA_WA_ID, "wamid.BEA1", "Soy Bea"))
    ana_thread, bea_thread = sorted(api.conversations(), key=lambda c: c["id"])
    api.ok(api.patch(f"/api/v1/conversations/{bea_thread['id']}", {"status": "pending", "labels": ["vip"]}))
    # when: an agent merges Bea into Ana, and Bea writes again, and an agent adds a note
    merged = api.ok(
        api.post(f"/api/v1/contacts/{ana_thread['contact_id']}/merge", {"source_id": bea_thread["contact_id"]})
    )
    clock.advance(minutes=1)
    post_meta(api, whatsapp, whatsapp_text(BEA_WA_ID, "wamid.BEA2", "¿Hola?"))
    api.ok(api.post(f"/api/v1/conversations/{ana_thread['id']}/notes", {"body": "Parecen dos personas"}), 201)
    # then: one thread held everything
    assert [c["id"] for c in api.conversations()] == [ana_thread["id"]]
    assert _lines(api, ana_thread["id"]) == [
        ("inbound", "Soy Ana"),
        ("inbound", "Soy Bea"),
        ("inbound", "¿Hola?"),
        ("note", "Parecen dos personas"),
    ]
    # when: the agent splits Bea's number off again
    [bea_phone] = [i["id"] for i in merged["identities"] if i["value"] == f"+{BEA_WA_ID}"]
    split = api.ok(api.post(f"/api/v1/contacts/{ana_thread['contact_id']}/split", {"identity_ids": [bea_phone]}), 201)
    # then: Bea is her old contact again, with her conversation as it was, and what she wrote since
    assert split["id"] == bea_thread["contact_id"]
    bea_again = api.ok(api.get(f"/api/v1/conversations/{bea_thread['id']}"))
    assert (bea_again["contact_id"], bea_again["status"], bea_again["labels"]) == (split["id"], "pending", ["vip"])
    assert _lines(api, bea_thread["id"]) == [("inbound", "Soy Bea"), ("inbound", "¿Hola?")]
    # Ana's thread keeps her message and the note written there after the merge
    ana_again = api.ok(api.get(f"/api/v1/conversations/{ana_thread['id']}"))
    assert (ana_again["contact_id"], ana_again["status"], ana_again["labels"]) == (ana_thread["contact_id"], "open", [])
    assert _lines(api, ana_thread["id"]) == [("inbound", "Soy Ana"), ("note", "Parecen dos personas")]
    # the agents' timelines say what happened
    app_client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"})
    ana_page = app_client.get(f"/ui/conversations/{ana_thread['id']}").text
    bea_page = app_client.get(f"/ui/conversations/{bea_thread['id']}").text
    assert f"split the contacts: the messages of conversation #{bea_thread['id']} went back to it" in ana_page
    assert f"split the contacts: this conversation came back out of #{ana_thread['id']}" in bea_page
    # when: the agent answers each on their default channel
    to_bea = _reply(api, bea_thread["id"], "Hola Bea")
    to_ana = _reply(api, ana_thread["id"], "Hola Ana")
    worker()
    # then: Bea's answer goes to her WhatsApp, Ana's to her SMS number
    assert (to_bea["channel_account_id"], to_ana["channel_account_id"]) == (whatsapp["id"], sms["id"])
    assert [r.json["to"] for r in fake_graph.requests_to("/messages")] == [BEA_WA_ID]
    assert [m.to for m in twilio.messages.values()] == [ANA_PHONE]


def test_splitting_a_contact_that_was_never_merged_makes_a_new_one(
    api: Api, fake_graph: FakeGraphAPI, fake_twilio: tuple[FakeTwilio, str]
) -> None:
    # given: one person's SMS and WhatsApp numbers, linked by an agent (no merge)
    twilio, twilio_url = fake_twilio
    sms = twilio_channel(api, twilio, twilio_url)
    post_twilio(api, sms, sms_text(twilio, ANA_PHONE, "SM" + "a2" * 16, "Soy Ana"), twilio.auth_token)
    [thread] = api.conversations()
    added = api.ok(
        api.post(f"/api/v1/contacts/{thread['contact_id']}/identities", {"kind": "email", "value": "ana@example.com"}),
        201,
    )
    # when
    split = api.ok(api.post(f"/api/v1/contacts/{thread['contact_id']}/split", {"identity_ids": [added["id"]]}), 201)
    # then: a new contact with the address; the conversation stays, it had no message from it
    assert split["id"] != thread["contact_id"]
    assert [i["value"] for i in split["identities"]] == ["ana@example.com"]
    assert api.ok(api.get(f"/api/v1/conversations/{thread['id']}"))["contact_id"] == thread["contact_id"]


def test_splitting_off_only_part_of_what_a_merge_brought_makes_a_new_contact(api: Api) -> None:
    # given: a contact with an app id and a phone number merged into another
    channel = api.api_channel()
    api.inbound(channel, "ana-shop", "from the shop", email="ana@example.com")
    api.inbound(channel, "ana-app", "from the app", phone="+34600999888")
    first, second = sorted(api.conversations(), key=lambda c: c["id"])
    merged = api.ok(api.post(f"/api/v1/contacts/{first['contact_id']}/merge", {"source_id": second["contact_id"]}))
    # when: only the phone number is split off
    [phone] = [i["id"] for i in merged["identities"] if i["value"] == "+34600999888"]
    split = api.ok(api.post(f"/api/v1/contacts/{first['contact_id']}/split", {"identity_ids": [phone]}), 201)
    # then: a new contact; the merged one stays merged, the joined thread stays joined
    assert split["id"] not in (first["contact_id"], second["contact_id"])
    assert api.ok(api.get(f"/api/v1/contacts/{second['contact_id']}"))["id"] == first["contact_id"]
    assert [c["id"] for c in api.conversations(status="open")] == [first["id"]]
