"""Contacts: one per person, merged and split without losing history."""

from __future__ import annotations

from fastapi.testclient import TestClient

from hilo.channels.base import IdentityKind, IdentityRef, InboundMessage
from hilo.channels.models import ChannelAccount
from hilo.channels.widget import user_hash
from hilo.ingest.deliveries import ingest_message
from tests.support import Api
from tests.widget.widget_support import SECRET, open_widget, token_of, widget_channel


def test_phone_written_differently_is_one_identity(api: Api) -> None:
    # given
    channel = api.api_channel()
    # when: the same Spanish number as +34, national format and WhatsApp's wa_id
    api.inbound(channel, "a", "one", phone="+34 600 111 222")
    api.inbound(channel, "b", "two", phone="600111222")
    api.inbound(channel, "c", "three", phone="34600111222")
    # then
    [conversation] = api.conversations()
    contact = api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}"))
    phones = [i["value"] for i in contact["identities"] if i["kind"] == "phone"]
    assert phones == ["+34600111222"]


def test_merge_moves_history_and_split_moves_it_back(api: Api) -> None:
    # given: two contacts, each with a conversation
    channel = api.api_channel()
    api.inbound(channel, "ana-shop", "from the shop", email="ana@example.com")
    api.inbound(channel, "ana-app", "from the app", phone="+34600999888")
    first, second = sorted(api.conversations(), key=lambda c: c["id"])
    # when: merged
    merged = api.ok(api.post(f"/api/v1/contacts/{first['contact_id']}/merge", {"source_id": second["contact_id"]}))
    # then: one contact with all identities, one open thread with both messages
    assert len(merged["identities"]) == 4
    [open_thread] = api.conversations(status="open")
    assert [m["body"] for m in api.timeline(open_thread["id"]) if m["direction"] == "inbound"] == [
        "from the shop",
        "from the app",
    ]
    old = api.ok(api.get(f"/api/v1/contacts/{second['contact_id']}"))
    assert old["id"] == first["contact_id"]
    # when: split again by the app's identities
    moved = [i["id"] for i in merged["identities"] if i["value"] in (f"{channel['id']}:ana-app", "+34600999888")]
    new = api.ok(api.post(f"/api/v1/contacts/{first['contact_id']}/split", {"identity_ids": moved}), 201)
    # then
    assert sorted(i["value"] for i in new["identities"]) == sorted(["+34600999888", f"{channel['id']}:ana-app"])
    timeline = api.ok(api.get(f"/api/v1/contacts/{new['id']}/timeline"))["items"]
    assert [m["body"] for m in timeline if m["direction"] != "event"] == ["from the app"]


def test_verified_identities_in_conflict_are_never_merged(api: Api, app_client) -> None:  # type: ignore[no-untyped-def]
    # given: two contacts with different verified widget users
    runtime = app_client.app.state.runtime
    channel = api.api_channel()
    with runtime.db.read() as session:
        view = session.get(ChannelAccount, channel["id"]).view()
    for user, email in (("u1", "one@example.com"), ("u2", "two@example.com")):
        with runtime.transaction() as tx:
            ingest_message(
                tx,
                view,
                InboundMessage(
                    provider_message_id=f"v-{user}",
                    sender=IdentityRef(IdentityKind.WIDGET, f"9:user:{user}", verified=True),
                    other_identities=[IdentityRef(IdentityKind.EMAIL, email)],
                    text="hi",
                ),
            )
    contacts = api.ok(api.get("/api/v1/contacts"))["items"]
    assert len(contacts) == 2
    # when: user 2 claims user 1's e-mail address in a later message
    with runtime.transaction() as tx:
        ingest_message(
            tx,
            view,
            InboundMessage(
                provider_message_id="v-claim",
                sender=IdentityRef(IdentityKind.WIDGET, "9:user:u2", verified=True),
                other_identities=[IdentityRef(IdentityKind.EMAIL, "one@example.com")],
                text="I am one",
            ),
        )
    # then: still two contacts; an agent's explicit merge is refused too
    assert len(api.ok(api.get("/api/v1/contacts"))["items"]) == 2
    ids = [c["id"] for c in contacts]
    refused = api.post(f"/api/v1/contacts/{ids[0]}/merge", {"source_id": ids[1]})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "verified_identity_conflict"


def test_new_identity_matching_another_contact_links_automatically(api: Api) -> None:
    # given: a contact known by e-mail
    channel = api.api_channel()
    api.inbound(channel, "x1", "by mail", email="luis@example.com")
    # when: another source writes with the same e-mail in other case
    api.inbound(channel, "x2", "by app", email="LUIS@example.com")
    # then
    [conversation] = api.conversations()
    assert len(api.timeline(conversation["id"])) == 2


def test_adding_identity_of_another_contact_is_refused_and_edit_works(api: Api) -> None:
    # given
    channel = api.api_channel()
    api.inbound(channel, "p1", "a", email="p1@example.com")
    api.inbound(channel, "p2", "b", email="p2@example.com")
    first, second = sorted(api.conversations(), key=lambda c: c["id"])
    # when
    taken = api.post(f"/api/v1/contacts/{first['contact_id']}/identities", {"kind": "email", "value": "P2@example.com"})
    invalid = api.post(f"/api/v1/contacts/{first['contact_id']}/identities", {"kind": "phone", "value": "12"})
    edited = api.patch(
        f"/api/v1/contacts/{first['contact_id']}",
        {"name": "Pilar", "custom_attributes": {"plan": "gold", "city": "Sevilla"}},
    )
    cleared = api.patch(f"/api/v1/contacts/{first['contact_id']}", {"custom_attributes": {"city": None}})
    # then
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "identity_taken"
    assert invalid.status_code == 422 and invalid.json()["error"]["code"] == "phone_invalid"
    assert edited.json()["name"] == "Pilar"
    assert cleared.json()["custom_attributes"] == {"plan": "gold"}


def test_contact_search_by_name_email_and_phone(api: Api) -> None:
    # given
    channel = api.api_channel()
    api.inbound(channel, "s1", "x", name="Begoña Ruiz", email="bego@example.com")
    api.inbound(channel, "s2", "y", name="Tom Baker", phone="+44 20 7946 0018")

    # when / then
    def names(q: str) -> list[str]:
        return [c["name"] for c in api.ok(api.get("/api/v1/contacts", params={"q": q}))["items"]]

    assert names("Begoña") == ["Begoña Ruiz"]
    assert names("bego@example.com") == ["Begoña Ruiz"]
    assert names("+442079460018") == ["Tom Baker"]
    assert names("nobody") == []


def test_an_address_of_a_contact_with_a_verified_identity_is_never_linked_automatically(
    api: Api, app_client: TestClient
) -> None:
    # given: a signed-in widget user whose site passed their e-mail address, and an ordinary contact
    widget = widget_channel(api, identity_secret=SECRET)
    with open_widget(
        app_client, token_of(widget), user={"id": "u-9", "hash": user_hash(SECRET, "u-9"), "email": "vera@example.com"}
    ) as chat:
        chat.next_of("welcome")
        verified_conversation_id = chat.say("Hola")["conversation_id"]
    channel = api.api_channel()
    api.inbound(channel, "crm-1", "from the CRM", email="olga@example.com")
    # when: another source sends messages carrying each address
    api.inbound(channel, "shop-7", "I am Vera", email="vera@example.com")
    api.inbound(channel, "shop-8", "I am Olga", email="olga@example.com")
    # then: the ordinary contact's thread is joined; the verified user's contact is not
    by_body = {m["body"]: m for c in api.conversations() for m in api.timeline(c["id"]) if m["direction"] == "inbound"}
    assert by_body["I am Olga"]["conversation_id"] == by_body["from the CRM"]["conversation_id"]
    assert by_body["I am Vera"]["conversation_id"] != verified_conversation_id
    vera = by_body["Hola"]["contact_id"]
    stranger = by_body["I am Vera"]["contact_id"]
    assert [i["value"] for i in api.ok(api.get(f"/api/v1/contacts/{stranger}"))["identities"]] == [
        f"{channel['id']}:shop-7"
    ]
    # when: an agent decides they are the same person
    merged = api.post(f"/api/v1/contacts/{vera}/merge", {"source_id": stranger})
    # then: an explicit merge is the agent's call, and it is allowed
    assert merged.status_code == 200
    assert {i["value"] for i in merged.json()["identities"]} >= {"vera@example.com", f"{channel['id']}:shop-7"}
