"""A widget visitor's phone number: passed by the site for a signed-in user or typed in the form,
it is a claim that joins the customer who wrote from that number on WhatsApp or SMS."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from hilo.channels.widget import user_hash
from tests.channels.provider_support import (
    DEFAULT_ACCESS_TOKEN,
    META_APP_SECRET,
    VERIFY_TOKEN,
    WHATSAPP_NUMBER_ID,
    create_channel,
    fixture_json,
    post_meta,
)
from tests.support import Api
from tests.widget.widget_support import SECRET, open_widget, token_of, widget_channel

WA_ID = "34600111222"
E164 = "+34600111222"


def _whatsapp_customer(api: Api, text: str) -> dict[str, Any]:
    """A customer who wrote on WhatsApp first; returns their conversation."""
    channel = create_channel(
        api,
        "whatsapp",
        {
            "phone_number_id": WHATSAPP_NUMBER_ID,
            # Never called: these tests only receive.
            "api_base_url": "http://127.0.0.1:9",
            "access_token": DEFAULT_ACCESS_TOKEN,
            "app_secret": META_APP_SECRET,
            "verify_token": VERIFY_TOKEN,
        },
    )
    payload: dict[str, Any] = fixture_json("whatsapp_text.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0].update(wa_id=WA_ID, profile={"name": "Marta Vidal"})
    value["messages"][0].update({"from": WA_ID, "id": "wamid.MARTA1", "text": {"body": text}})
    assert post_meta(api, channel, payload).status_code == 200
    [conversation] = api.conversations()
    return conversation  # type: ignore[no-any-return]


def _signed(user_id: str, **claims: str) -> dict[str, str]:
    return {"id": user_id, "hash": user_hash(SECRET, user_id), **claims}


def _identities(api: Api, contact_id: int) -> set[tuple[str, str, bool]]:
    contact = api.ok(api.get(f"/api/v1/contacts/{contact_id}"))
    return {(i["kind"], i["value"], i["verified"]) for i in contact["identities"]}


def test_a_signed_in_user_whose_site_passes_their_phone_joins_their_whatsapp_thread(
    api: Api, app_client: TestClient
) -> None:
    # given: Marta wrote on WhatsApp; the shop's site signs her in and passes her phone number
    whatsapp = _whatsapp_customer(api, "¿Tenéis la talla 38?")
    channel = widget_channel(api, identity_secret=SECRET)
    # when: she writes in the widget
    with open_widget(app_client, token_of(channel), user=_signed("m-1", phone="600 11 12 22")) as widget:
        assert widget.next_of("welcome")["verified"] is True
        message = widget.say("Os escribo desde la web")
    # then: one contact, one thread; the number is a claim, the site's user id is verified
    assert message["conversation_id"] == whatsapp["id"]
    assert [c["id"] for c in api.conversations()] == [whatsapp["id"]]
    assert _identities(api, whatsapp["contact_id"]) == {
        ("phone", E164, False),
        ("widget", f"{channel['id']}:user:m-1", True),
    }
    assert [m["body"] for m in api.timeline(whatsapp["id"])] == ["¿Tenéis la talla 38?", "Os escribo desde la web"]


def test_a_phone_passed_without_a_valid_signature_is_refused_and_links_nothing(
    api: Api, app_client: TestClient
) -> None:
    # given: a WhatsApp customer, and a page that claims to be her without the site's signature
    whatsapp = _whatsapp_customer(api, "Hola")
    channel = widget_channel(api, identity_secret=SECRET)
    unsigned = {"id": "m-1", "phone": E164}
    forged = {"id": "m-1", "hash": user_hash("a guess", "m-1"), "phone": E164}
    # when
    refusals = []
    for user in (unsigned, forged):
        with open_widget(app_client, token_of(channel), user=user) as widget:
            refusals.append(widget.receive()["code"])
            with pytest.raises(WebSocketDisconnect):
                widget.receive()
    # then: refused; the WhatsApp contact is as it was
    assert refusals == ["identity_invalid", "identity_invalid"]
    assert [c["id"] for c in api.conversations()] == [whatsapp["id"]]
    assert _identities(api, whatsapp["contact_id"]) == {("phone", E164, False)}


def test_a_phone_typed_in_the_form_is_a_claim_that_never_joins_a_signed_in_users_contact(
    api: Api, app_client: TestClient
) -> None:
    # given: Marta, signed in, whose site passed her phone number
    channel = widget_channel(api, identity_secret=SECRET, prechat_fields={"phone": "optional"})
    token = token_of(channel)
    with open_widget(app_client, token, user=_signed("m-1", phone=E164)) as marta:
        marta.next_of("welcome")
        marta_conversation = marta.say("Soy Marta")["conversation_id"]
    # when: an anonymous visitor types her number in the pre-chat form
    with open_widget(app_client, token) as stranger:
        stranger.next_of("welcome")
        stranger_conversation = stranger.say("Hola", prechat={"phone": E164})["conversation_id"]
    # then: the stranger gets a thread of their own, and the agents a line saying why
    assert stranger_conversation != marta_conversation
    timeline = api.timeline(stranger_conversation)
    assert [(m["data"]["event"], m["data"]["value"]) for m in timeline if m["direction"] == "event"] == [
        ("contact.link_refused", E164)
    ]


def test_a_signed_in_user_keeps_the_phone_they_type_in_the_form(api: Api, app_client: TestClient) -> None:
    # given: Marta wrote on WhatsApp; the site signs her in but passes no phone number
    whatsapp = _whatsapp_customer(api, "¿Hacéis envíos a Girona?")
    channel = widget_channel(api, identity_secret=SECRET, prechat_fields={"phone": "optional"})
    with open_widget(app_client, token_of(channel), user=_signed("m-1")) as widget:
        widget.next_of("welcome")
        # when: she types her number in the form, once wrongly
        widget.send("Hola", prechat={"phone": "12"})
        refused = widget.next_of("error")
        message = widget.say("Hola", prechat={"phone": "+34 600 111 222"})
    # then: the wrong number is refused like an anonymous visitor's; the right one joins her thread
    assert refused["code"] == "prechat_invalid" and "phone" in refused["fields"]
    assert message["conversation_id"] == whatsapp["id"]
    assert _identities(api, whatsapp["contact_id"]) == {
        ("phone", E164, False),
        ("widget", f"{channel['id']}:user:m-1", True),
    }
