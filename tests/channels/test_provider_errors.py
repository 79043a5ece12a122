"""Provider errors end to end: rate limits retried after Retry-After, WhatsApp's closed
window asking for a template, blocked recipients opted out on that channel only, and
the Messenger human-agent tag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from hilo.clock import FrozenClock
from tests.channels.provider_support import (
    fixture,
    fixture_json,
    messenger_channel,
    post_meta,
    post_telegram,
    post_twilio,
    telegram_channel,
    twilio_channel,
    whatsapp_channel,
)
from tests.fakes.meta import RATE_LIMIT_ERROR, RE_ENGAGEMENT_ERROR, FakeGraphAPI
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
from tests.support import Api

Worker = Callable[[], int]
CUSTOMER = "+14133881111"  # the sender of the captured Twilio fixtures


def conversation_id(api: Api) -> int:
    [conversation] = api.conversations()
    return int(conversation["id"])


def send(api: Api, conversation: int, body: str | None = None, **extra: Any) -> Any:
    payload: dict[str, Any] = {"body": body, **extra}
    return api.post(f"/api/v1/conversations/{conversation}/messages", payload)


def last(api: Api, conversation: int) -> dict[str, Any]:
    return api.timeline(conversation)[-1]


def whatsapp_from(number: str, text: str, message_id: str) -> dict[str, Any]:
    """The captured WhatsApp text webhook, from another number."""
    payload = fixture_json("whatsapp_text.json")
    value = payload["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = number
    value["messages"][0].update({"from": number, "id": message_id, "text": {"body": text}})
    return dict(payload)


def sms_from_customer(body: str, sid: str) -> list[tuple[str, str]]:
    """The captured inbound SMS with another text and message sid."""
    replaced = {"Body": body, "MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid}
    pairs = parse_qsl(fixture("twilio_sms_inbound_text_courier.form").decode(), keep_blank_values=True)
    return [(name, replaced.get(name, value)) for name, value in pairs]


def test_whatsapp_rate_limit_is_retried_after_retry_after(
    api: Api, fake_graph: FakeGraphAPI, worker: Worker, clock: FrozenClock
) -> None:
    # given: Meta answers the first send with 130429 and Retry-After: 30
    channel = whatsapp_channel(api, fake_graph)
    post_meta(api, channel, fixture("whatsapp_text.json"))
    conversation = conversation_id(api)
    fake_graph.fail_next(400, RATE_LIMIT_ERROR, headers={"Retry-After": "30"})
    api.ok(send(api, conversation, "Un momento"), 201)
    # when
    worker()
    # then: still queued, with the reason; nothing is due before 30 s
    queued = last(api, conversation)
    assert (queued["status"], queued["status_code"]) == ("queued", "rate_limited")
    clock.advance(seconds=29)
    assert worker() == 0
    clock.advance(seconds=2)
    assert worker() == 1
    assert last(api, conversation)["status"] == "sent"
    assert len(fake_graph.requests_to("/messages")) == 2


def test_twilio_429_is_retried_after_retry_after(
    api: Api, fake_twilio: tuple[FakeTwilio, str], worker: Worker, clock: FrozenClock
) -> None:
    # given
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url)
    post_twilio(api, channel, fixture("twilio_sms_inbound_text_courier.form"), twilio.auth_token)
    conversation = conversation_id(api)
    twilio.rate_limit_next(1, retry_after=45)
    api.ok(send(api, conversation, "Checking your order"), 201)
    # when
    worker()
    # then
    assert last(api, conversation)["status_code"] == "rate_limited"
    clock.advance(seconds=44)
    assert worker() == 0
    clock.advance(seconds=2)
    assert worker() == 1
    assert last(api, conversation)["provider_message_id"] in twilio.messages
    assert len(twilio.requests) == 2


def test_whatsapp_131047_fails_asking_for_a_template_then_a_template_goes_out(
    api: Api, fake_graph: FakeGraphAPI, worker: Worker, clock: FrozenClock
) -> None:
    # given: the window looks open to Hilo, but Meta says it is closed (131047)
    channel = whatsapp_channel(api, fake_graph)
    post_meta(api, channel, fixture("whatsapp_text.json"))
    conversation = conversation_id(api)
    fake_graph.fail_next(400, RE_ENGAGEMENT_ERROR)
    api.ok(send(api, conversation, "Are you still there?"), 201)
    # when
    worker()
    # then: failed at once, with a reason that tells the agent to choose a template
    failed = last(api, conversation)
    assert (failed["status"], failed["status_code"]) == ("failed", "whatsapp_window_closed")
    assert "Choose a template" in failed["status_reason"]

    # given: a day later the window is closed for Hilo too; the templates are synced
    clock.advance(hours=25)
    api.ok(api.post(f"/api/v1/channels/{channel['id']}/templates/sync"))
    # when: a free-form reply, an unknown template and an approved one
    refused = send(api, conversation, "Hello again")
    unknown = send(api, conversation, template={"name": "spring_sale", "language": "en_US"})
    accepted = send(api, conversation, template={"name": "order_update", "language": "es"})
    # then
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "whatsapp_window_closed"
    assert unknown.status_code == 409 and unknown.json()["error"]["code"] == "whatsapp_template_unknown"
    assert accepted.status_code == 201, accepted.text
    assert worker() == 1
    call = fake_graph.requests_to("/messages")[-1]
    assert call.json["type"] == "template"
    assert call.json["template"] == {"name": "order_update", "language": {"code": "es"}}
    assert call.json["to"] == "16505551234"
    assert last(api, conversation)["status"] == "sent"


def test_twilio_21610_opts_the_number_out_of_sms_only(
    api: Api, fake_twilio: tuple[FakeTwilio, str], fake_graph: FakeGraphAPI, worker: Worker
) -> None:
    # given: an SMS conversation whose number Twilio knows as unsubscribed
    twilio, base_url = fake_twilio
    sms = twilio_channel(api, twilio, base_url)
    whatsapp = whatsapp_channel(api, fake_graph)
    post_twilio(api, sms, fixture("twilio_sms_inbound_text_courier.form"), twilio.auth_token)
    conversation = conversation_id(api)
    twilio.opt_out(CUSTOMER)
    api.ok(send(api, conversation, "Your order shipped"), 201)
    # when
    worker()
    # then: failed, not retried, and further SMS replies are refused with a readable reason
    failed = last(api, conversation)
    assert (failed["status"], failed["status_code"]) == ("failed", "opted_out")
    refused = send(api, conversation, "Hello?")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "sms_opted_out"
    assert "reply START" in refused.json()["error"]["message"]
    # when: the same person writes on WhatsApp
    post_meta(api, whatsapp, whatsapp_from("14133881111", "Prefiero WhatsApp", "wamid.OPTOUT1"))
    # then: one thread, and WhatsApp is still open to them
    assert conversation_id(api) == conversation
    options = {o["kind"]: o for o in api.ok(api.get(f"/api/v1/conversations/{conversation}/channels"))}
    assert options["sms"]["available"] is False and options["sms"]["code"] == "sms_opted_out"
    assert options["whatsapp"]["available"] is True
    api.ok(send(api, conversation, "Claro", channel_account_id=whatsapp["id"]), 201)
    assert worker() == 1
    assert fake_graph.requests_to("/messages")[-1].json["to"] == "14133881111"


def test_sms_baja_and_alta_keywords_opt_out_and_back_in(
    api: Api, fake_twilio: tuple[FakeTwilio, str], worker: Worker
) -> None:
    # given
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url)
    post_twilio(api, channel, sms_from_customer("Hola", "SM1"), twilio.auth_token)
    conversation = conversation_id(api)
    # when: the customer texts BAJA (Spanish STOP)
    post_twilio(api, channel, sms_from_customer(" baja ", "SM2"), twilio.auth_token)
    # then
    refused = send(api, conversation, "¿Seguro?")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "sms_opted_out"
    # when: ALTA (Spanish START)
    post_twilio(api, channel, sms_from_customer("ALTA", "SM3"), twilio.auth_token)
    # then
    api.ok(send(api, conversation, "Bienvenido de nuevo"), 201)
    assert worker() == 1
    assert dict(twilio.requests[-1].form)["Body"] == "Bienvenido de nuevo"


def test_telegram_403_blocked_marks_the_chat_opted_out(
    api: Api, fake_telegram: tuple[FakeTelegram, str], worker: Worker
) -> None:
    # given: the customer blocked the bot
    bot, base_url = fake_telegram
    channel = telegram_channel(api, bot, base_url)
    post_telegram(api, channel, fixture("telegram_text.json"))
    conversation = conversation_id(api)
    bot.block(1111111)
    api.ok(send(api, conversation, "Hello"), 201)
    # when
    worker()
    # then
    failed = last(api, conversation)
    assert (failed["status"], failed["status_code"]) == ("failed", "bot_blocked")
    refused = send(api, conversation, "Hello?")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "telegram_blocked"
    assert "blocked the bot" in refused.json()["error"]["message"]
    # when: they restart the bot (my_chat_member back to "member")
    restart = {
        "update_id": 10001,
        "my_chat_member": {
            "chat": {"id": 1111111, "type": "private", "first_name": "Test Firstname"},
            "from": {"id": 1111111, "is_bot": False, "first_name": "Test Firstname"},
            "date": 1441645600,
            "old_chat_member": {"user": {"id": 7000000001, "is_bot": True, "first_name": "Hilo"}, "status": "kicked"},
            "new_chat_member": {"user": {"id": 7000000001, "is_bot": True, "first_name": "Hilo"}, "status": "member"},
        },
    }
    assert post_telegram(api, channel, restart).status_code == 200
    bot.blocked.clear()
    # then
    api.ok(send(api, conversation, "Welcome back"), 201)
    assert worker() == 1


def test_messenger_reply_after_24_hours_carries_the_human_agent_tag(
    api: Api, fake_graph: FakeGraphAPI, worker: Worker, clock: FrozenClock
) -> None:
    # given: the customer wrote 30 hours ago
    channel = messenger_channel(api, fake_graph)
    post_meta(api, channel, fixture("messenger_text_courier.json"))
    conversation = conversation_id(api)
    clock.advance(hours=30)
    # when: the channel does not allow the human-agent tag
    refused = send(api, conversation, "Sorry for the wait")
    # then
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "messenger_window_closed"
    # when: the admin enables it and the agent replies
    api.ok(api.patch(f"/api/v1/channels/{channel['id']}", {"settings": {"human_agent_tag": True}}))
    api.ok(send(api, conversation, "Sorry for the wait"), 201)
    assert worker() == 1
    # then
    [call] = fake_graph.requests_to("/me/messages")
    assert call.json["messaging_type"] == "MESSAGE_TAG"
    assert call.json["tag"] == "HUMAN_AGENT"
    # when: more than 7 days have passed
    clock.advance(days=7)
    late = send(api, conversation, "Still there?")
    # then
    assert late.status_code == 409 and late.json()["error"]["code"] == "messenger_window_closed"


def test_messenger_reply_inside_24_hours_has_no_tag(api: Api, fake_graph: FakeGraphAPI, worker: Worker) -> None:
    # given: the human-agent tag is allowed, and the customer just wrote
    channel = messenger_channel(api, fake_graph, human_agent_tag=True)
    post_meta(api, channel, fixture("messenger_text_courier.json"))
    # when
    api.ok(send(api, conversation_id(api), "Right away"), 201)
    worker()
    # then
    [call] = fake_graph.requests_to("/me/messages")
    assert call.json["messaging_type"] == "RESPONSE" and "tag" not in call.json
