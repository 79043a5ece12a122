"""Phone numbers as WhatsApp and SMS name them meet in one identity: WhatsApp's wa_id has
no "+", names Mexican mobiles with the old "1" after 52, and Argentine mobiles with the 9
that E.164 also carries."""

from __future__ import annotations

from typing import Any

import pytest

from hilo.channels.whatsapp import sender_address
from hilo.clock import FrozenClock
from hilo.contacts.identity import InvalidIdentity, normalize_phone
from tests.channels.provider_support import (
    SMS_NUMBER,
    fixture_json,
    post_meta,
    post_twilio,
    twilio_channel,
    whatsapp_channel,
)
from tests.fakes.meta import FakeGraphAPI
from tests.fakes.twilio import FakeTwilio
from tests.support import Api

MEXICO_WA_ID = "5215512345678"  # how WhatsApp names a Mexico City mobile
MEXICO_E164 = "+525512345678"  # the same mobile as SMS and the numbering plan name it
BRAZIL_WA_ID = "551187650000"  # how WhatsApp names a São Paulo mobile registered before the ninth digit
BRAZIL_E164 = "+5511987650000"  # the same mobile as SMS and the numbering plan name it


@pytest.mark.parametrize(
    ("given", "region", "expected"),
    [
        # Mexico: the "1" mobile prefix went away in 2019; WhatsApp still sends it
        (MEXICO_WA_ID, "ES", MEXICO_E164),
        ("whatsapp:+5215512345678", "US", MEXICO_E164),
        ("+52 1 55 1234 5678", "ES", MEXICO_E164),
        (MEXICO_E164, "ES", MEXICO_E164),
        ("55 1234 5678", "MX", MEXICO_E164),
        ("5218112345678", "ES", "+528112345678"),
        # Argentina: wa_id 549..., E.164 +54 9 ..., and the national "15" form agree
        ("5491123456789", "ES", "+5491123456789"),
        ("+54 9 11 2345-6789", "ES", "+5491123456789"),
        ("+54 11 15 2345-6789", "ES", "+5491123456789"),
        ("011 15 2345-6789", "AR", "+5491123456789"),
        # Brazil: mobiles gained a ninth digit by 2016; WhatsApp still names many without it
        (BRAZIL_WA_ID, "ES", BRAZIL_E164),
        ("+55 11 8765-0000", "US", BRAZIL_E164),
        ("whatsapp:+551187650000", "US", BRAZIL_E164),
        ("(11) 8765-0000", "BR", BRAZIL_E164),
        (BRAZIL_E164, "ES", BRAZIL_E164),
        ("5511987650000", "ES", BRAZIL_E164),
        ("+55 11 98765-0000", "ES", BRAZIL_E164),
        ("+55 21 6123-4567", "ES", "+5521961234567"),
        # a leading 0 is a national trunk prefix, never a country code without "+"
        ("07700 900123", "GB", "+447700900123"),
        ("34600111222", "ES", "+34600111222"),
    ],
)
def test_phone_numbers_normalise_to_one_e164_form(given: str, region: str, expected: str) -> None:
    # when
    normalised = normalize_phone(given, region)
    # then
    assert normalised == expected


def test_argentine_landline_keeps_its_form() -> None:
    # given: without the 9 (or 15) a Buenos Aires number is a landline, a different line
    landline = "+54 11 2345-6789"
    # when
    normalised = normalize_phone(landline, "ES")
    # then
    assert normalised == "+541123456789"


@pytest.mark.parametrize("landline", ["+55 11 3333-4444", "+55 21 2555-0101", "(61) 5432-1098"])
def test_brazilian_landlines_keep_their_eight_digits(landline: str) -> None:
    # given: eight digits starting 2 to 5 are a landline, never a mobile without its 9
    expected = "+55" + "".join(c for c in landline if c.isdigit()).removeprefix("55")
    # when
    normalised = normalize_phone(landline, "BR")
    # then
    assert normalised == expected
    assert len(normalised) == 13


@pytest.mark.parametrize(
    ("wa_id", "kept"),
    [
        (BRAZIL_WA_ID, BRAZIL_WA_ID),  # stored as +5511987650000, answered at the wa_id
        (MEXICO_WA_ID, MEXICO_WA_ID),  # stored as +525512345678, answered at the wa_id
        ("5511987650000", None),  # the wa_id is the stored number's digits: nothing to keep
        ("551133334444", None),  # a landline stays as it is
        ("34600111222", None),
    ],
)
def test_whatsapp_keeps_the_wa_id_only_where_it_is_not_the_stored_number(wa_id: str, kept: str | None) -> None:
    # when
    address = sender_address(wa_id)
    # then
    assert address == kept


def test_a_number_that_cannot_be_a_phone_is_refused() -> None:
    # when / then
    with pytest.raises(InvalidIdentity):
        normalize_phone("+52 1 55", "ES")


def whatsapp_text(wa_id: str, message_id: str, text: str) -> dict[str, Any]:
    payload: dict[str, Any] = fixture_json("whatsapp_text.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0].update(wa_id=wa_id, profile={"name": "Lupita Hernández"})
    value["messages"][0].update({"from": wa_id, "id": message_id, "text": {"body": text}})
    return payload


def sms_text(twilio: FakeTwilio, sender: str, message_sid: str, text: str) -> list[tuple[str, str]]:
    return [
        ("ToCountry", "US"),
        ("SmsMessageSid", message_sid),
        ("NumMedia", "0"),
        ("SmsSid", message_sid),
        ("SmsStatus", "received"),
        ("Body", text),
        ("To", SMS_NUMBER),
        ("NumSegments", "1"),
        ("MessageSid", message_sid),
        ("AccountSid", twilio.account_sid),
        ("From", sender),
        ("ApiVersion", "2010-04-01"),
    ]


def test_mexican_customer_on_whatsapp_then_sms_is_one_contact_and_one_conversation(
    api: Api, worker: Any, clock: FrozenClock, fake_graph: FakeGraphAPI, fake_twilio: tuple[FakeTwilio, str]
) -> None:
    # given: a WhatsApp number and an SMS number
    twilio, twilio_url = fake_twilio
    whatsapp = whatsapp_channel(api, fake_graph)
    sms = twilio_channel(api, twilio, twilio_url)
    # when: Lupita writes on WhatsApp (wa_id 521...), then by SMS from the same mobile (+52...)
    first = post_meta(api, whatsapp, whatsapp_text(MEXICO_WA_ID, "wamid.LUPITA1", "¿Tienen envío a CDMX?"))
    clock.advance(minutes=3)
    second = post_twilio(
        api, sms, sms_text(twilio, MEXICO_E164, "SM" + "b2" * 16, "Les escribo por SMS"), twilio.auth_token
    )
    # then: one contact with one phone identity, one conversation holding both messages
    assert (first.status_code, second.status_code) == (200, 200)
    [conversation] = api.conversations()
    contact = api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}"))
    assert [(i["kind"], i["value"]) for i in contact["identities"]] == [("phone", MEXICO_E164)]
    assert [(m["channel_account_id"], m["body"]) for m in api.timeline(conversation["id"])] == [
        (whatsapp["id"], "¿Tienen envío a CDMX?"),
        (sms["id"], "Les escribo por SMS"),
    ]
    # when: the agent answers on WhatsApp
    api.ok(
        api.post(
            f"/api/v1/conversations/{conversation['id']}/messages",
            {"body": "Sí, enviamos a toda la ciudad.", "channel_account_id": whatsapp["id"]},
        ),
        201,
    )
    worker()
    # then: Meta gets the wa_id Lupita wrote from, the form it delivers to
    [sent] = fake_graph.requests_to("/messages")
    assert sent.json["to"] == MEXICO_WA_ID


def test_brazilian_customer_on_sms_then_whatsapp_without_the_ninth_digit_is_one_contact_and_one_conversation(
    api: Api, worker: Any, clock: FrozenClock, fake_graph: FakeGraphAPI, fake_twilio: tuple[FakeTwilio, str]
) -> None:
    # given: a WhatsApp number and an SMS number
    twilio, twilio_url = fake_twilio
    whatsapp = whatsapp_channel(api, fake_graph)
    sms = twilio_channel(api, twilio, twilio_url)
    # when: João writes by SMS from his nine-digit mobile, then on WhatsApp, whose wa_id lacks the 9
    first = post_twilio(
        api, sms, sms_text(twilio, BRAZIL_E164, "SM" + "c3" * 16, "Vocês entregam em SP?"), twilio.auth_token
    )
    clock.advance(minutes=3)
    second = post_meta(api, whatsapp, whatsapp_text(BRAZIL_WA_ID, "wamid.JOAO1", "Escrevo pelo WhatsApp"))
    # then: one contact with one phone identity, one conversation holding both messages
    assert (first.status_code, second.status_code) == (200, 200)
    [conversation] = api.conversations()
    contact = api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}"))
    assert [(i["kind"], i["value"]) for i in contact["identities"]] == [("phone", BRAZIL_E164)]
    assert [(m["channel_account_id"], m["body"]) for m in api.timeline(conversation["id"])] == [
        (sms["id"], "Vocês entregam em SP?"),
        (whatsapp["id"], "Escrevo pelo WhatsApp"),
    ]
    # when: the agent answers on WhatsApp, then by SMS
    for account, body in ((whatsapp, "Sim, entregamos."), (sms, "Confirmado por SMS.")):
        api.ok(
            api.post(
                f"/api/v1/conversations/{conversation['id']}/messages",
                {"body": body, "channel_account_id": account["id"]},
            ),
            201,
        )
    worker()
    # then: Meta gets the wa_id João wrote from; the SMS goes to the nine-digit number
    [sent] = fake_graph.requests_to("/messages")
    assert sent.json["to"] == BRAZIL_WA_ID
    assert [m.to for m in twilio.messages.values()] == [BRAZIL_E164]


def test_brazilian_customer_who_moved_whatsapp_to_the_nine_digit_form_is_answered_there(
    api: Api, worker: Any, clock: FrozenClock, fake_graph: FakeGraphAPI
) -> None:
    # given: João wrote on WhatsApp with the old eight-digit wa_id, later with the nine-digit one
    whatsapp = whatsapp_channel(api, fake_graph)
    post_meta(api, whatsapp, whatsapp_text(BRAZIL_WA_ID, "wamid.JOAO1", "Oi"))
    clock.advance(minutes=3)
    post_meta(api, whatsapp, whatsapp_text(BRAZIL_E164.removeprefix("+"), "wamid.JOAO2", "Oi de novo"))
    [conversation] = api.conversations()
    # when: the agent answers
    api.ok(api.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Olá!"}), 201)
    worker()
    # then: the answer goes to the wa_id of his latest message
    [sent] = fake_graph.requests_to("/messages")
    assert sent.json["to"] == BRAZIL_E164.removeprefix("+")
