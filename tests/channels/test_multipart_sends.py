"""Multi-part sends: WhatsApp, Messenger and Telegram carry a reply with attachments as
several provider messages. When a later part fails, the retry sends only the parts still
missing, and a status callback for any part's id updates the one Hilo message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hilo.clock import FrozenClock
from tests.channels.provider_support import (
    fixture,
    messenger_channel,
    post_meta,
    post_telegram,
    telegram_channel,
    whatsapp_channel,
    whatsapp_statuses,
)
from tests.fakes.meta import SERVICE_UNAVAILABLE_ERROR, FakeGraphAPI
from tests.fakes.telegram import FakeTelegram
from tests.support import Api

Worker = Callable[[], int]
JPEG = b"\xff\xd8\xff\xe0" + b"hilo-test-jpeg" * 64
PDF = b"%PDF-1.7 hilo test invoice"
TELEGRAM_SERVER_ERROR = {"ok": False, "error_code": 500, "description": "Internal Server Error"}
# A refusal Meta will not change its mind about (code 100: invalid parameter).
INVALID_PARAMETER_ERROR = {
    "error": {
        "message": "(#100) Invalid parameter",
        "type": "OAuthException",
        "code": 100,
        "fbtrace_id": "AinvalidPrm",
    }
}


def conversation_id(api: Api) -> int:
    [conversation] = api.conversations()
    return int(conversation["id"])


def reply_with_photo_and_invoice(api: Api, conversation: int, body: str) -> dict[str, Any]:
    response = api.client.post(
        f"/api/v1/conversations/{conversation}/messages/files",
        data={"body": body},
        files=[("files", ("foto.jpg", JPEG, "image/jpeg")), ("files", ("factura.pdf", PDF, "application/pdf"))],
        headers=api.headers,
    )
    return dict(api.ok(response, 201))


def reply_with_photo(api: Api, conversation: int, body: str) -> dict[str, Any]:
    response = api.client.post(
        f"/api/v1/conversations/{conversation}/messages/files",
        data={"body": body},
        files={"files": ("foto.jpg", JPEG, "image/jpeg")},
        headers=api.headers,
    )
    return dict(api.ok(response, 201))


def message(api: Api, conversation: int, message_id: int) -> dict[str, Any]:
    [found] = [m for m in api.timeline(conversation) if m["id"] == message_id]
    return found


def test_whatsapp_retry_sends_only_the_missing_part_and_its_status_updates_the_message(
    api: Api, fake_graph: FakeGraphAPI, worker: Worker, clock: FrozenClock
) -> None:
    # given: a reply with a captioned photo (part 1) and an invoice (part 2); Meta takes
    # the photo's upload and message and the invoice's upload, then fails once with a 500
    channel = whatsapp_channel(api, fake_graph)
    post_meta(api, channel, fixture("whatsapp_text.json"))
    conversation = conversation_id(api)
    fake_graph.fail_next(500, SERVICE_UNAVAILABLE_ERROR, after=3)
    sent = reply_with_photo_and_invoice(api, conversation, "Aquí tiene la foto y la factura")
    # when
    assert worker() == 1
    # then: waiting for a retry, already named by the photo's id
    waiting = message(api, conversation, sent["id"])
    assert (waiting["status"], waiting["status_code"]) == ("queued", "provider_unavailable")
    assert waiting["provider_message_id"] == "wamid.FAKE000002"

    # when: the retry is due
    clock.advance(minutes=2)
    assert worker() == 1
    # then: the photo went once, the invoice once more; the message is sent
    calls = [r.json for r in fake_graph.requests_to("/messages")]
    assert [c["type"] for c in calls] == ["image", "document", "document"]
    assert calls[0]["image"]["caption"] == "Aquí tiene la foto y la factura"
    assert calls[2]["document"]["filename"] == "factura.pdf"
    done = message(api, conversation, sent["id"])
    assert (done["status"], done["provider_message_id"]) == ("sent", "wamid.FAKE000002")

    # when: Meta reports the invoice delivered (the fake numbers ids 1, 2, 3 for the first
    # attempt's calls that succeeded; the retry's upload is 4 and its message 5)
    answer = post_meta(api, channel, whatsapp_statuses("wamid.FAKE000005", "delivered"))
    # then
    assert answer.status_code == 200 and answer.json()["statuses"] == 1
    assert message(api, conversation, sent["id"])["status"] == "delivered"


def test_messenger_retry_sends_only_the_attachment(
    api: Api, fake_graph: FakeGraphAPI, worker: Worker, clock: FrozenClock
) -> None:
    # given: text then photo; the photo's send fails once with a 500
    channel = messenger_channel(api, fake_graph)
    post_meta(api, channel, fixture("messenger_text_courier.json"))
    conversation = conversation_id(api)
    fake_graph.fail_next(500, SERVICE_UNAVAILABLE_ERROR, after=1)
    sent = reply_with_photo(api, conversation, "Aquí está la foto")
    # when
    assert worker() == 1
    clock.advance(minutes=2)
    assert worker() == 1
    # then: one text, two tries of the photo
    calls = fake_graph.requests_to("/me/messages")
    assert [c.json["message"]["text"] for c in calls if c.json is not None] == ["Aquí está la foto"]
    assert [c.files["filedata"][0] for c in calls if c.json is None] == ["foto.jpg", "foto.jpg"]
    done = message(api, conversation, sent["id"])
    assert (done["status"], done["provider_message_id"]) == ("sent", "m_FAKE000001")


def test_telegram_retry_sends_only_the_missing_document(
    api: Api, fake_telegram: tuple[FakeTelegram, str], worker: Worker, clock: FrozenClock
) -> None:
    # given: a captioned photo then an invoice; the invoice fails once with a 500
    telegram, base_url = fake_telegram
    channel = telegram_channel(api, telegram, base_url)
    post_telegram(api, channel, fixture("telegram_text.json"))
    conversation = conversation_id(api)
    telegram.fail_next(1, TELEGRAM_SERVER_ERROR, after=1)
    sent = reply_with_photo_and_invoice(api, conversation, "Aquí tiene")
    # when
    assert worker() == 1
    assert message(api, conversation, sent["id"])["status_code"] == "provider_unavailable"
    clock.advance(minutes=2)
    assert worker() == 1
    # then: the photo (quoting the customer, with the caption) went once
    assert [c.method for c in telegram.calls] == ["sendPhoto", "sendDocument", "sendDocument"]
    assert telegram.calls[0].params["caption"] == "Aquí tiene"
    done = message(api, conversation, sent["id"])
    assert (done["status"], done["provider_message_id"]) == ("sent", "1111111:1400")


def test_agent_retry_after_a_part_failed_for_good_sends_only_the_rest(
    api: Api, fake_graph: FakeGraphAPI, worker: Worker
) -> None:
    # given: the text reached the customer, Meta refused the photo for good
    channel = messenger_channel(api, fake_graph)
    post_meta(api, channel, fixture("messenger_text_courier.json"))
    conversation = conversation_id(api)
    fake_graph.fail_next(400, INVALID_PARAMETER_ERROR, after=1)
    sent = reply_with_photo(api, conversation, "Le mando la foto")
    worker()
    assert message(api, conversation, sent["id"])["status"] == "failed"
    # when: the agent sends it again
    api.ok(api.post(f"/api/v1/conversations/{conversation}/messages/{sent['id']}/retry"))
    assert worker() == 1
    # then: only the photo went again
    calls = fake_graph.requests_to("/me/messages")
    assert [c.json is not None for c in calls] == [True, False, False]
    assert message(api, conversation, sent["id"])["status"] == "sent"


def test_agent_retry_after_a_failed_status_sends_every_part_again(
    api: Api, fake_graph: FakeGraphAPI, worker: Worker
) -> None:
    # given: Meta took both parts, then reported the message failed
    channel = whatsapp_channel(api, fake_graph)
    post_meta(api, channel, fixture("whatsapp_text.json"))
    conversation = conversation_id(api)
    sent = reply_with_photo_and_invoice(api, conversation, "Foto y factura")
    worker()
    first_id = message(api, conversation, sent["id"])["provider_message_id"]
    post_meta(api, channel, whatsapp_statuses(first_id, "failed"))
    assert message(api, conversation, sent["id"])["status"] == "failed"
    # when: the agent sends it again
    api.ok(api.post(f"/api/v1/conversations/{conversation}/messages/{sent['id']}/retry"))
    assert worker() == 1
    # then: it really goes again, whole
    assert [r.json["type"] for r in fake_graph.requests_to("/messages")] == ["image", "document"] * 2
    again = message(api, conversation, sent["id"])
    assert again["status"] == "sent"
    assert again["provider_message_id"] != first_id
