"""Each provider channel end to end: signed webhook in -> conversation -> agent reply through
the API -> the outbox worker calls the fake provider -> a signed status callback -> the
status in the timeline. The fakes speak the providers' real wire formats."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from hilo.clock import FrozenClock
from tests.channels.provider_support import (
    PAGE_ID,
    SMS_NUMBER,
    VERIFY_TOKEN,
    WHATSAPP_NUMBER_ID,
    fixture,
    fixture_json,
    instagram_channel,
    messenger_channel,
    post_meta,
    post_telegram,
    post_twilio,
    telegram_channel,
    twilio_channel,
    twilio_status,
    webhook_url,
    whatsapp_channel,
    whatsapp_statuses,
)
from tests.fakes.meta import DEFAULT_ACCESS_TOKEN, FakeGraphAPI
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio, twilio_signature
from tests.support import Api

Worker = Callable[[], int]


def only_conversation(api: Api) -> dict[str, Any]:
    [conversation] = api.conversations()
    return conversation


def reply(api: Api, conversation_id: int, body: str, **extra: Any) -> dict[str, Any]:
    return api.ok(api.post(f"/api/v1/conversations/{conversation_id}/messages", {"body": body, **extra}), 201)


def last_message(api: Api, conversation_id: int) -> dict[str, Any]:
    return api.timeline(conversation_id)[-1]


def test_whatsapp_cloud_api_end_to_end(api: Api, fake_graph: FakeGraphAPI, worker: Worker) -> None:
    # given: a WhatsApp number whose Cloud API is the fake Graph API
    channel = whatsapp_channel(api, fake_graph)
    # when: Meta delivers the captured text message, signed with the app secret
    answer = post_meta(api, channel, fixture("whatsapp_text.json"))
    # then
    assert answer.status_code == 200, answer.text
    assert answer.json()["messages"] == 1
    conversation = only_conversation(api)
    assert conversation["contact_name"] == "Sheena Nelson"
    [inbound] = api.timeline(conversation["id"])
    assert inbound["body"] == "Does it come in another color?"
    contact = api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}"))
    assert [(i["kind"], i["value"]) for i in contact["identities"]] == [("phone", "+16505551234")]

    # when: the agent answers and the worker runs
    reply(api, conversation["id"], "Yes, in blue and green: https://shop.example/c")
    assert worker() == 1
    # then: one Cloud API call, with the token, quoting the customer's message
    [call] = fake_graph.requests_to("/messages")
    assert call.path == f"/v21.0/{WHATSAPP_NUMBER_ID}/messages"
    assert call.headers["authorization"] == f"Bearer {DEFAULT_ACCESS_TOKEN}"
    assert call.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "context": {"message_id": inbound["provider_message_id"]},
        "type": "text",
        "text": {"preview_url": True, "body": "Yes, in blue and green: https://shop.example/c"},
    }
    sent = last_message(api, conversation["id"])
    assert (sent["status"], sent["provider_message_id"]) == ("sent", "wamid.FAKE000001")

    # when: Meta reports delivered, then read
    for status in ("delivered", "read"):
        answer = post_meta(api, channel, whatsapp_statuses("wamid.FAKE000001", status))
        assert answer.status_code == 200 and answer.json()["statuses"] == 1
        # then
        assert last_message(api, conversation["id"])["status"] == status


def test_meta_subscription_handshake(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given
    channel = whatsapp_channel(api, fake_graph)
    url = f"/webhooks/whatsapp/{channel['id']}"
    # when: Meta checks the callback URL with the verify token typed in its dashboard
    good = api.client.get(
        url, params={"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN}
    )
    bad = api.client.get(
        url, params={"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": "nope"}
    )
    # then
    assert good.status_code == 200
    assert good.text == "1158201444"
    assert good.headers["content-type"].startswith("text/plain")
    assert bad.status_code == 403
    assert bad.json()["error"]["code"] == "verify_token_invalid"
    assert api.conversations() == []


def test_messenger_end_to_end_with_watermark_receipts(
    api: Api, fake_graph: FakeGraphAPI, worker: Worker, clock: FrozenClock
) -> None:
    # given
    channel = messenger_channel(api, fake_graph)
    # when: the captured Page message arrives
    answer = post_meta(api, channel, fixture("messenger_text_courier.json"))
    # then
    assert answer.status_code == 200 and answer.json()["messages"] == 1
    conversation = only_conversation(api)
    assert api.timeline(conversation["id"])[0]["body"] == "Hello World"

    # when: two replies go out
    reply(api, conversation["id"], "Hi! How can we help?")
    reply(api, conversation["id"], "We are open until 6 pm.")
    assert worker() == 2
    # then: the Send API got both, as responses inside the 24-hour window
    calls = fake_graph.requests_to("/me/messages")
    assert [c.path for c in calls] == ["/v21.0/me/messages"] * 2
    assert all(c.headers["authorization"] == f"Bearer {DEFAULT_ACCESS_TOKEN}" for c in calls)
    assert sorted(c.json["message"]["text"] for c in calls) == ["Hi! How can we help?", "We are open until 6 pm."]
    assert all(c.json["recipient"] == {"id": "5678"} and c.json["messaging_type"] == "RESPONSE" for c in calls)
    first, second = api.timeline(conversation["id"])[1:]
    assert first["status"] == second["status"] == "sent"

    # when: a delivery receipt names the first message, with a watermark from before the second one
    delivery = fixture_json("messenger_delivery_courier.json")
    event = delivery["entry"][0]["messaging"][0]["delivery"]
    event["mids"] = [first["provider_message_id"]]
    event["watermark"] = int((clock.now().timestamp() - 60) * 1000)
    assert post_meta(api, channel, delivery).status_code == 200
    # then: only the named message moves
    statuses = [m["status"] for m in api.timeline(conversation["id"])[1:]]
    assert statuses == ["delivered", "sent"]

    # when: a read receipt (watermark only) covers everything sent until now
    read = fixture_json("messenger_read_event_metadocs.json")
    read["sender"]["id"] = "5678"
    read["recipient"]["id"] = PAGE_ID
    read["read"]["watermark"] = int(clock.now().timestamp() * 1000)
    answer = post_meta(api, channel, {"object": "page", "entry": [{"id": PAGE_ID, "time": 1, "messaging": [read]}]})
    # then
    assert answer.status_code == 200 and answer.json()["statuses"] == 2
    assert [m["status"] for m in api.timeline(conversation["id"])[1:]] == ["read", "read"]

    # when: an older delivery watermark arrives late
    event["mids"] = []
    assert post_meta(api, channel, delivery).status_code == 200
    # then: statuses never move backwards
    assert [m["status"] for m in api.timeline(conversation["id"])[1:]] == ["read", "read"]


def test_instagram_end_to_end(api: Api, fake_graph: FakeGraphAPI, worker: Worker) -> None:
    # given
    channel = instagram_channel(api, fake_graph)
    # when
    answer = post_meta(api, channel, fixture("instagram_text_courier.json"))
    # then
    assert answer.status_code == 200 and answer.json()["messages"] == 1
    conversation = only_conversation(api)
    # when
    reply(api, conversation["id"], "¡Hola! ¿En qué te ayudamos?")
    assert worker() == 1
    # then: Instagram sends carry no messaging_type inside the window
    [call] = fake_graph.requests_to("/me/messages")
    assert call.headers["authorization"] == f"Bearer {DEFAULT_ACCESS_TOKEN}"
    assert call.json == {"recipient": {"id": "5678"}, "message": {"text": "¡Hola! ¿En qué te ayudamos?"}}
    sent = last_message(api, conversation["id"])
    assert sent["status"] == "sent"
    # when: Instagram marks it seen (messaging_seen names the message)
    seen = {
        "object": "instagram",
        "entry": [
            {
                "id": PAGE_ID,
                "time": 1,
                "messaging": [
                    {
                        "sender": {"id": "5678"},
                        "recipient": {"id": PAGE_ID},
                        "timestamp": 1,
                        "read": {"mid": sent["provider_message_id"]},
                    }
                ],
            }
        ],
    }
    assert post_meta(api, channel, seen).status_code == 200
    # then
    assert last_message(api, conversation["id"])["status"] == "read"


def _basic(sid: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()


def test_sms_end_to_end(api: Api, fake_twilio: tuple[FakeTwilio, str], worker: Worker) -> None:
    # given
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url)
    # when: Twilio posts the captured SMS, signed over our webhook URL
    answer = post_twilio(api, channel, fixture("twilio_sms_inbound_text_courier.form"), twilio.auth_token)
    # then: TwiML that tells Twilio not to answer by itself
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/xml")
    assert b"<Response/>" in answer.content
    conversation = only_conversation(api)
    assert api.timeline(conversation["id"])[0]["body"] == "Msg"

    # when
    reply(api, conversation["id"], "Thanks, we got it")
    assert worker() == 1
    # then: one Messages API create with Basic auth and our status callback
    [request] = twilio.requests
    assert request.path == f"/2010-04-01/Accounts/{twilio.account_sid}/Messages.json"
    assert request.headers["authorization"] == _basic(twilio.account_sid, twilio.auth_token)
    assert request.form == [
        ("To", "+14133881111"),
        ("From", SMS_NUMBER),
        ("Body", "Thanks, we got it"),
        ("StatusCallback", webhook_url(channel)),
    ]
    queued = last_message(api, conversation["id"])
    [sid] = twilio.messages
    assert (queued["status"], queued["provider_message_id"]) == ("queued", sid)

    # when: Twilio reports sent, then delivered, to the StatusCallback
    for status in ("sent", "delivered"):
        answer = post_twilio(api, channel, twilio_status(sid, status), twilio.auth_token)
        assert answer.status_code == 200
        # then
        assert last_message(api, conversation["id"])["status"] == status


def test_whatsapp_through_twilio_end_to_end(api: Api, fake_twilio: tuple[FakeTwilio, str], worker: Worker) -> None:
    # given
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url, kind="twilio_whatsapp")
    # when
    answer = post_twilio(api, channel, fixture("twilio_whatsapp_inbound_courier.form"), twilio.auth_token)
    # then: the "whatsapp:" address becomes the same phone identity SMS uses
    assert answer.status_code == 200, answer.text
    conversation = only_conversation(api)
    contact = api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}"))
    assert [(i["kind"], i["value"]) for i in contact["identities"]] == [("phone", "+14133881111")]
    # when
    reply(api, conversation["id"], "Hola desde WhatsApp")
    assert worker() == 1
    # then
    [request] = twilio.requests
    assert request.headers["authorization"] == _basic(twilio.account_sid, twilio.auth_token)
    form = dict(request.form)
    assert (form["To"], form["From"], form["Body"]) == (
        "whatsapp:+14133881111",
        f"whatsapp:{SMS_NUMBER}",
        "Hola desde WhatsApp",
    )
    [sid] = twilio.messages
    for status in ("sent", "delivered", "read"):
        assert post_twilio(api, channel, twilio_status(sid, status), twilio.auth_token).status_code == 200
        assert last_message(api, conversation["id"])["status"] == status


def test_telegram_end_to_end(api: Api, fake_telegram: tuple[FakeTelegram, str], worker: Worker) -> None:
    # given
    bot, base_url = fake_telegram
    channel = telegram_channel(api, bot, base_url)
    # when: Telegram posts the update from its webhook guide with our secret token
    answer = post_telegram(api, channel, fixture("telegram_text.json"))
    # then
    assert answer.status_code == 200, answer.text
    conversation = only_conversation(api)
    assert conversation["contact_name"] == "Test Firstname Test Lastname"
    [inbound] = api.timeline(conversation["id"])
    assert (inbound["body"], inbound["provider_message_id"]) == ("/start", "1111111:1365")
    # when
    reply(api, conversation["id"], "Welcome! Ask us anything.")
    assert worker() == 1
    # then: sendMessage to the chat, as a reply to the customer's message, token in the path
    [call] = bot.calls
    assert call.path == f"/bot{bot.token}/sendMessage"
    assert call.params == {
        "chat_id": 1111111,
        "text": "Welcome! Ask us anything.",
        "reply_parameters": {"message_id": 1365, "allow_sending_without_reply": True},
    }
    # Telegram has no delivery receipts: "sent" is the last status a bot learns.
    sent = last_message(api, conversation["id"])
    assert (sent["status"], sent["provider_message_id"]) == ("sent", "1111111:1400")


def test_twilio_status_callback_signed_for_another_url_is_refused(
    api: Api, fake_twilio: tuple[FakeTwilio, str], worker: Worker
) -> None:
    # given: a sent SMS
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url)
    post_twilio(api, channel, fixture("twilio_sms_inbound_text_courier.form"), twilio.auth_token)
    reply(api, only_conversation(api)["id"], "ok")
    worker()
    [sid] = twilio.messages
    # when: the callback's signature covers a different URL
    params = twilio_status(sid, "delivered")
    forged = twilio_signature(twilio.auth_token, "https://attacker.example/hook", params)
    answer = post_twilio(api, channel, params, twilio.auth_token, signature=forged)
    # then
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "signature_invalid"
    assert last_message(api, only_conversation(api)["id"])["status"] == "queued"
