"""One person on WhatsApp, SMS and e-mail: one contact, one conversation, replies where the agent picks."""

from __future__ import annotations

from typing import Any

from hilo.clock import FrozenClock
from tests.channels.email_flow import MAILGUN_KEY, mailgun_post, parsed
from tests.channels.email_servers import SmtpServer, smtp_server_fixture  # noqa: F401 - the "smtp_server" fixture
from tests.channels.provider_support import (
    SMS_NUMBER,
    create_channel,
    fixture_json,
    post_meta,
    post_twilio,
    twilio_channel,
    whatsapp_channel,
)
from tests.fakes.meta import FakeGraphAPI
from tests.fakes.twilio import FakeTwilio
from tests.support import Api

WA_ID = "34600111222"  # WhatsApp names the sender by wa_id: digits, no "+"
E164 = "+34600111222"  # Twilio names the same phone in E.164


def whatsapp_text(message_id: str, text: str, clock: FrozenClock) -> dict[str, Any]:
    """The captured WhatsApp text webhook, from our customer's number."""
    payload: dict[str, Any] = fixture_json("whatsapp_text.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0].update(wa_id=WA_ID, profile={"name": "Ana Pérez"})
    value["messages"][0].update(
        {"from": WA_ID, "id": message_id, "timestamp": str(int(clock.now().timestamp())), "text": {"body": text}}
    )
    return payload


def sms_text(twilio: FakeTwilio, message_sid: str, text: str) -> list[tuple[str, str]]:
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
        ("From", E164),
        ("ApiVersion", "2010-04-01"),
    ]


def reply(api: Api, conversation_id: int, body: str, channel: dict[str, Any] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"body": body}
    if channel is not None:
        payload["channel_account_id"] = channel["id"]
    return api.ok(api.post(f"/api/v1/conversations/{conversation_id}/messages", payload), 201)


def test_same_person_on_three_channels_is_one_thread_answered_where_the_agent_picks(
    api: Api,
    worker: Any,
    clock: FrozenClock,
    fake_graph: FakeGraphAPI,
    fake_twilio: tuple[FakeTwilio, str],
    smtp_server: SmtpServer,
) -> None:
    # given: a WhatsApp number, an SMS number and a support address
    twilio, twilio_url = fake_twilio
    whatsapp = whatsapp_channel(api, fake_graph)
    sms = twilio_channel(api, twilio, twilio_url)
    email = create_channel(
        api,
        "email",
        {
            "address": "soporte@example.com",
            "smtp_host": smtp_server.host,
            "smtp_port": smtp_server.port,
            "smtp_tls": "none",
            "mailgun_signing_key": MAILGUN_KEY,
        },
    )

    # when: Ana writes on WhatsApp, then by SMS from the same phone
    assert post_meta(api, whatsapp, whatsapp_text("wamid.ANA1", "Hola, ¿tienen talla M?", clock)).status_code == 200
    clock.advance(minutes=5)
    answer = post_twilio(api, sms, sms_text(twilio, "SM" + "a1" * 16, "Os escribo por SMS"), twilio.auth_token)
    assert answer.status_code == 200, answer.text
    # then: one contact with one phone identity, one conversation
    [conversation] = api.conversations()
    contact = api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}"))
    assert [(i["kind"], i["value"]) for i in contact["identities"]] == [("phone", E164)]

    # when: the agent links her e-mail address, and she writes from it
    api.ok(
        api.post(f"/api/v1/contacts/{contact['id']}/identities", {"kind": "email", "value": "Ana.Perez@Example.com"}),
        201,
    )
    clock.advance(minutes=5)
    answer = mailgun_post(
        api,
        email,
        {
            "sender": "ana.perez@example.com",
            "From": "Ana Pérez <ana.perez@example.com>",
            "Subject": "Talla M",
            "Message-Id": "<ana-1@example.com>",
            "body-plain": "Y os mando también un correo.",
        },
    )
    assert answer.status_code == 200, answer.text
    # then: all three messages are in the one conversation
    [same] = api.conversations()
    assert same["id"] == conversation["id"]
    assert [(m["channel_account_id"], m["body"]) for m in api.timeline(conversation["id"])] == [
        (whatsapp["id"], "Hola, ¿tienen talla M?"),
        (sms["id"], "Os escribo por SMS"),
        (email["id"], "Y os mando también un correo."),
    ]

    # when: the agent picks SMS
    reply(api, conversation["id"], "Sí, queda talla M.", sms)
    worker()
    # then: only Twilio got it, addressed to her number
    assert [(m.to, m.from_) for m in twilio.messages.values()] == [(E164, SMS_NUMBER)]
    assert fake_graph.requests_to("/messages") == []
    assert smtp_server.handler.messages == []

    # when: the agent picks WhatsApp
    reply(api, conversation["id"], "Te la reservo.", whatsapp)
    worker()
    # then: only Meta got this one, to her wa_id
    [sent] = fake_graph.requests_to("/messages")
    assert (sent.json["to"], sent.json["text"]["body"]) == (WA_ID, "Te la reservo.")
    assert len(twilio.messages) == 1
    assert smtp_server.handler.messages == []

    # when: the agent replies without picking
    reply(api, conversation["id"], "Te confirmo por correo.")
    worker()
    # then: it goes where she wrote last, by e-mail
    [mail] = smtp_server.handler.messages
    assert mail.rcpt_tos == ["ana.perez@example.com"]
    assert parsed(mail.data)["In-Reply-To"] == "<ana-1@example.com>"
    assert len(fake_graph.requests_to("/messages")) == 1
    assert len(twilio.messages) == 1
    # and: each reply is recorded on its channel with the provider's id (Twilio answers "queued")
    outbound = [m for m in api.timeline(conversation["id"]) if m["direction"] == "outbound"]
    assert [(m["channel_account_id"], m["status"]) for m in outbound] == [
        (sms["id"], "queued"),
        (whatsapp["id"], "sent"),
        (email["id"], "sent"),
    ]
    assert outbound[0]["provider_message_id"] in twilio.messages
    assert outbound[2]["provider_message_id"] == parsed(mail.data)["Message-ID"]
