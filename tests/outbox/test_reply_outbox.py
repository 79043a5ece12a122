"""Replies go out through the transactional outbox, with retries, failures and statuses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hilo.clock import FrozenClock
from tests.fakes.receiver import Receiver, receiver
from tests.support import Api


@pytest.fixture
def source() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


def _setup(api: Api, source: Receiver) -> tuple[dict[str, Any], int]:
    channel = api.api_channel(outbound_url=source.url)
    source.secret = channel["secret"]
    api.inbound(channel, "cust", "Hello?")
    [conversation] = api.conversations()
    return channel, conversation["id"]


def test_reply_is_sent_signed_with_idempotency_key(api: Api, source: Receiver, worker: Callable[[], int]) -> None:
    # given
    channel, conversation_id = _setup(api, source)
    # when
    message = api.ok(api.post(f"/api/v1/conversations/{conversation_id}/messages", {"body": "Hi there"}), 201)
    ran = worker()
    # then
    assert message["status"] == "queued" and message["channel_account_id"] == channel["id"]
    assert ran == 1
    [delivery] = source.received
    assert delivery["body"]["text"] == "Hi there"
    assert delivery["body"]["to"] == {"external_id": "cust"}
    assert delivery["headers"]["idempotency-key"] == delivery["body"]["id"]
    [_, sent] = api.timeline(conversation_id)
    assert sent["status"] == "sent"
    assert sent["provider_message_id"].startswith("ext-")


def test_rate_limited_send_retries_after_retry_after(
    api: Api, source: Receiver, worker: Callable[[], int], clock: FrozenClock
) -> None:
    # given: the receiver answers 429 with Retry-After: 30 once
    _channel, conversation_id = _setup(api, source)
    source.script.append((429, {"Retry-After": "30"}))
    api.ok(api.post(f"/api/v1/conversations/{conversation_id}/messages", {"body": "Hi"}), 201)
    # when
    worker()
    # then: still queued with the reason; nothing due before 30 s
    queued = api.timeline(conversation_id)[-1]
    assert queued["status"] == "queued" and queued["status_code"] == "http_429"
    clock.advance(seconds=29)
    assert worker() == 0
    clock.advance(seconds=2)
    assert worker() == 1
    assert api.timeline(conversation_id)[-1]["status"] == "sent"
    keys = {d["headers"]["idempotency-key"] for d in source.received}
    assert len(source.received) == 2 and len(keys) == 1


def test_a_reply_queued_before_its_channel_was_disabled_waits_until_it_is_enabled(
    api: Api, source: Receiver, worker: Callable[[], int], clock: FrozenClock
) -> None:
    # given: a reply queued, then the channel disabled by an admin
    channel, conversation_id = _setup(api, source)
    api.ok(api.post(f"/api/v1/conversations/{conversation_id}/messages", {"body": "Hi"}), 201)
    api.ok(api.patch(f"/api/v1/channels/{channel['id']}", {"enabled": False}))
    # when
    worker()
    # then: nothing went out; the reply waits, saying why
    held = api.timeline(conversation_id)[-1]
    assert source.received == []
    assert held["status"] == "queued" and held["status_code"] == "channel_disabled"
    # when: enabled again, once the retry is due
    api.ok(api.patch(f"/api/v1/channels/{channel['id']}", {"enabled": True}))
    clock.advance(seconds=61)
    worker()
    # then
    assert [d["body"]["text"] for d in source.received] == ["Hi"]
    assert api.timeline(conversation_id)[-1]["status"] == "sent"


def test_failed_after_last_attempt_then_manual_retry_sends_again(
    api: Api, source: Receiver, worker: Callable[[], int], clock: FrozenClock
) -> None:
    # given: three attempts allowed (tests' settings), all answered 503
    _channel, conversation_id = _setup(api, source)
    source.script.extend([(503, {})] * 3)
    api.ok(api.post(f"/api/v1/conversations/{conversation_id}/messages", {"body": "Hi"}), 201)
    # when
    for _ in range(3):
        worker()
        clock.advance(seconds=120)
    # then
    failed = api.timeline(conversation_id)[-1]
    assert failed["status"] == "failed" and failed["status_code"] == "http_503"
    assert worker() == 0
    # when: the agent retries
    retried = api.ok(api.post(f"/api/v1/conversations/{conversation_id}/messages/{failed['id']}/retry"))
    worker()
    # then: a fourth delivery with a new key, and the message is sent
    assert retried["status"] == "queued"
    assert len(source.received) == 4
    assert source.received[3]["headers"]["idempotency-key"] != source.received[0]["headers"]["idempotency-key"]
    assert api.timeline(conversation_id)[-1]["status"] == "sent"


def test_permanent_error_fails_at_once_and_retry_of_sent_message_is_refused(
    api: Api, source: Receiver, worker: Callable[[], int]
) -> None:
    # given
    _channel, conversation_id = _setup(api, source)
    source.script.append((400, {}))
    api.ok(api.post(f"/api/v1/conversations/{conversation_id}/messages", {"body": "Hi"}), 201)
    # when
    worker()
    # then
    failed = api.timeline(conversation_id)[-1]
    assert failed["status"] == "failed" and failed["status_reason"]
    sent_retry = api.post(f"/api/v1/conversations/{conversation_id}/messages/{failed['id']}/retry")
    assert sent_retry.status_code == 201 or sent_retry.status_code == 200
    worker()
    again = api.post(f"/api/v1/conversations/{conversation_id}/messages/{failed['id']}/retry")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_failed"


def test_delivery_status_never_moves_backwards(api: Api, source: Receiver, worker: Callable[[], int]) -> None:
    # given: a sent reply
    channel, conversation_id = _setup(api, source)
    api.ok(api.post(f"/api/v1/conversations/{conversation_id}/messages", {"body": "Hi"}), 201)
    worker()
    provider_id = api.timeline(conversation_id)[-1]["provider_message_id"]

    def status(value: str) -> None:
        response = api.webhook(channel, {"type": "status", "message_id": provider_id, "status": value})
        assert response.status_code == 200, response.text

    # when: read, then a late "delivered", then "failed"
    status("read")
    status("delivered")
    status("failed")
    # then
    assert api.timeline(conversation_id)[-1]["status"] == "read"


def test_reply_refused_with_reason_when_channel_unusable(api: Api, source: Receiver) -> None:
    # given: the channel gets disabled by an admin
    channel, conversation_id = _setup(api, source)
    api.ok(api.patch(f"/api/v1/channels/{channel['id']}", {"enabled": False}))
    # when
    response = api.post(f"/api/v1/conversations/{conversation_id}/messages", {"body": "Hi"})
    options = api.ok(api.get(f"/api/v1/conversations/{conversation_id}/channels"))
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "channel_disabled"
    assert options == [
        {
            "channel_account_id": channel["id"],
            "kind": "api",
            "name": "Shop",
            "identity_id": options[0]["identity_id"],
            "identity_value": f"{channel['id']}:cust",
            "available": False,
            "code": "channel_disabled",
            "reason": "This channel is disabled by an administrator.",
            "default": True,
            "cc": [],
        }
    ]


def test_agent_picks_another_channel_of_the_contact(api: Api, source: Receiver, worker: Callable[[], int]) -> None:
    # given: the customer wrote on the shop, and the app knows the same phone number
    shop, conversation_id = _setup(api, source)
    app = api.api_channel("App", outbound_url=source.url)
    api.inbound(shop, "cust", "my phone", phone="+34600123456")
    api.inbound(app, "app-1", "from the app", phone="+34600123456")
    contact_id = api.conversations()[0]["contact_id"]
    # when: the agent chooses the shop although the app was used last
    options = {o["channel_account_id"]: o for o in api.ok(api.get(f"/api/v1/conversations/{conversation_id}/channels"))}
    source.secret = shop["secret"]
    api.ok(
        api.post(
            f"/api/v1/conversations/{conversation_id}/messages", {"body": "via shop", "channel_account_id": shop["id"]}
        ),
        201,
    )
    worker()
    # then
    assert options[app["id"]]["default"] is True and options[shop["id"]]["default"] is False
    assert source.received[-1]["body"]["to"] == {"external_id": "cust"}
    assert api.timeline(conversation_id)[-1]["channel_account_id"] == shop["id"]
    assert len(api.conversations(contact_id=contact_id)) == 1


def test_private_note_is_not_sent(api: Api, source: Receiver, worker: Callable[[], int]) -> None:
    # given
    _channel, conversation_id = _setup(api, source)
    # when
    note = api.ok(api.post(f"/api/v1/conversations/{conversation_id}/notes", {"body": "VIP, be nice"}), 201)
    # then
    assert note["direction"] == "note"
    assert worker() == 0
    assert source.received == []


def test_reply_with_files_over_the_api_is_sent_with_them(api: Api, source: Receiver, worker: Callable[[], int]) -> None:
    # given: an integration holding a personal token
    _channel, conversation_id = _setup(api, source)
    url = f"/api/v1/conversations/{conversation_id}/messages/files"
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    # when: it replies with an image and a text
    sent = api.client.post(
        url, data={"body": "Your label"}, files={"files": ("label.png", png, "image/png")}, headers=api.headers
    )
    ran = worker()
    # then: stored with the message, and sent to the channel with a link the provider can fetch
    assert sent.status_code == 201, sent.text
    [attachment] = sent.json()["attachments"]
    assert (attachment["kind"], attachment["filename"], attachment["size"]) == ("image", "label.png", len(png))
    assert ran == 1
    [delivery] = source.received
    assert delivery["body"]["text"] == "Your label"
    [link] = delivery["body"]["attachments"]
    assert (link["filename"], link["content_type"]) == ("label.png", "image/png")
    assert api.client.get(link["url"]).content == png
    # when: a file is over the upload limit
    limit = api.client.app.state.runtime.settings.max_upload_bytes  # type: ignore[attr-defined]
    big = api.client.post(
        url, files={"files": ("big.bin", b"x" * (limit + 1), "application/octet-stream")}, headers=api.headers
    )
    # then: refused with a stable code, and nothing more was queued
    assert big.status_code == 413 and big.json()["error"]["code"] == "attachment_too_large"
    assert len([m for m in api.timeline(conversation_id) if m["direction"] == "outbound"]) == 1
