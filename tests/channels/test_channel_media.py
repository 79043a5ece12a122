"""Media end to end: inbound files the providers only name are fetched by the worker into
Hilo's storage (within each channel's limits), and outbound files reach providers that
only take links through signed, expiring Hilo URLs."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from hilo.clock import FrozenClock
from hilo.events.models import Event
from tests.channels.provider_support import (
    MediaServer,
    fixture,
    instagram_channel,
    post_meta,
    post_telegram,
    post_twilio,
    telegram_channel,
    twilio_channel,
    whatsapp_channel,
)
from tests.fakes.meta import DEFAULT_ACCESS_TOKEN, FakeGraphAPI
from tests.fakes.telegram import FakeTelegram
from tests.fakes.twilio import FakeTwilio
from tests.support import Api

Worker = Callable[[], int]
JPEG = b"\xff\xd8\xff\xe0" + b"hilo-test-jpeg" * 64
LARGEST_PHOTO = "AgADAQADtKcxG4LRUUQSQVUjfJIiiF8G6C8ABA9NJzFdXskaincBAAEC"  # telegram_photo_courier.json


def only_message(api: Api) -> dict[str, Any]:
    [conversation] = api.conversations()
    return api.timeline(conversation["id"])[-1]


def attachment_of(api: Api) -> dict[str, Any]:
    [attachment] = only_message(api)["attachments"]
    return dict(attachment)


def events(api: Api, kind: str) -> list[dict[str, Any]]:
    """Recorded events of `kind` (the audit log has no API yet; read-only look)."""
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.read() as session:
        return [dict(e) for e in session.execute(select(Event.data).where(Event.kind == kind)).scalars()]


def mms(media_url: str, content_type: str = "image/jpeg") -> list[tuple[str, str]]:
    return [
        ("MessageSid", "MM0001"),
        ("AccountSid", "AC" + "a" * 32),
        ("From", "+14133881111"),
        ("To", "+12028831111"),
        ("Body", "Look at this"),
        ("NumMedia", "1"),
        ("MediaUrl0", media_url),
        ("MediaContentType0", content_type),
    ]


def test_whatsapp_image_is_fetched_by_media_id_and_served_to_agents(
    api: Api, fake_graph: FakeGraphAPI, worker: Worker
) -> None:
    # given: the captured image message, whose media Meta holds under id 65463453
    channel = whatsapp_channel(api, fake_graph, number_id="1122334455667")
    fake_graph.media["65463453"] = (JPEG, "image/jpeg")
    assert post_meta(api, channel, fixture("whatsapp_image.json")).status_code == 200
    attachment = attachment_of(api)
    # then: before the worker runs the agent cannot download it yet, and is told so
    pending = api.get(attachment["url"], follow_redirects=False)
    assert (pending.status_code, pending.json()["error"]["code"]) == (404, "attachment_not_ready")
    assert (attachment["status"], attachment["status_code"]) == ("pending", "attachment_not_ready")
    # when
    assert worker() == 1
    # then: looked up, downloaded with the token, stored and served
    lookup, download = fake_graph.requests
    assert (lookup.path, download.path) == ("/v21.0/65463453", "/media-download/65463453")
    assert download.headers["authorization"] == f"Bearer {DEFAULT_ACCESS_TOKEN}"
    served = api.get(attachment["url"])
    assert served.status_code == 200
    assert served.content == JPEG
    assert served.headers["content-type"] == "image/jpeg"
    assert attachment_of(api)["size"] == len(JPEG)
    assert (attachment_of(api)["status"], attachment_of(api)["status_code"]) == ("stored", None)
    assert events(api, "attachment.stored")[0]["attachment_id"] == attachment["id"]
    # and: nothing is fetched twice
    assert worker() == 0


def test_twilio_media_is_fetched_with_basic_auth(
    api: Api, fake_twilio: tuple[FakeTwilio, str], media_files: MediaServer, worker: Worker
) -> None:
    # given: media authentication is on, as Twilio recommends
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url)
    media_files.files["cat.jpg"] = (JPEG, "image/jpeg")
    media_files.credentials = (twilio.account_sid, twilio.auth_token)
    post_twilio(api, channel, mms(f"{media_files.base_url}/files/cat.jpg"), twilio.auth_token)
    # when
    assert worker() == 1
    # then
    expected = base64.b64encode(f"{twilio.account_sid}:{twilio.auth_token}".encode()).decode()
    assert media_files.seen_auth == [f"Basic {expected}"]
    assert api.get(attachment_of(api)["url"]).content == JPEG


def test_telegram_photo_is_fetched_through_get_file(
    api: Api, fake_telegram: tuple[FakeTelegram, str], worker: Worker
) -> None:
    # given: the captured photo update; the bot API keeps the largest size
    bot, base_url = fake_telegram
    channel = telegram_channel(api, bot, base_url)
    bot.add_file(LARGEST_PHOTO, "photos/file_85.jpg", JPEG)
    assert post_telegram(api, channel, fixture("telegram_photo_courier.json")).status_code == 200
    # when
    assert worker() == 1
    # then: getFile, then the download; the type comes from the update, not octet-stream
    assert [c.method for c in bot.calls] == ["getFile"]
    attachment = attachment_of(api)
    served = api.get(attachment["url"])
    assert served.content == JPEG
    assert served.headers["content-type"] == "image/jpeg"
    assert only_message(api)["body"] == "Photo Caption"


def test_media_over_the_channel_size_limit_is_not_stored(
    api: Api, fake_twilio: tuple[FakeTwilio, str], media_files: MediaServer, worker: Worker
) -> None:
    # given: the admin allows at most 100 bytes per file on this channel
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url)
    api.ok(api.patch(f"/api/v1/channels/{channel['id']}", {"settings": {"max_media_bytes": 100}}))
    media_files.files["big.jpg"] = (JPEG, "image/jpeg")
    post_twilio(api, channel, mms(f"{media_files.base_url}/files/big.jpg"), twilio.auth_token)
    # when
    worker()
    # then: not stored, not retried, and the reason is recorded
    [failure] = events(api, "attachment.fetch_failed")
    assert failure["code"] == "media_too_large"
    assert worker() == 0
    # and: the agent is never sent to the provider's copy, and sees why there is none
    attachment = attachment_of(api)
    served = api.get(attachment["url"], follow_redirects=False)
    assert served.status_code == 410
    assert "location" not in served.headers
    assert served.json()["error"]["code"] == "media_too_large"
    assert served.json()["error"]["message"].startswith("The customer's file is larger than this channel accepts")
    assert (attachment["status"], attachment["status_code"]) == ("unavailable", "media_too_large")
    assert attachment["status_reason"].startswith("The customer's file is larger than this channel accepts")


def test_media_of_a_type_not_allowed_is_not_even_downloaded(
    api: Api, fake_twilio: tuple[FakeTwilio, str], media_files: MediaServer, worker: Worker
) -> None:
    # given: only PNG images are allowed
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url, media_types=["image/png"])
    media_files.files["cat.jpg"] = (JPEG, "image/jpeg")
    post_twilio(api, channel, mms(f"{media_files.base_url}/files/cat.jpg"), twilio.auth_token)
    # when
    worker()
    # then
    assert media_files.seen_auth == []
    assert [f["code"] for f in events(api, "attachment.fetch_failed")] == ["media_type_not_allowed"]
    served = api.get(attachment_of(api)["url"], follow_redirects=False)
    assert (served.status_code, served.json()["error"]["code"]) == (410, "media_type_not_allowed")


def test_media_the_provider_refuses_is_not_redirected_to(
    api: Api, fake_twilio: tuple[FakeTwilio, str], media_files: MediaServer, worker: Worker
) -> None:
    # given: the provider's media link is gone (expired or deleted)
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url)
    post_twilio(api, channel, mms(f"{media_files.base_url}/files/gone.jpg"), twilio.auth_token)
    # when
    worker()
    # then: the agent gets the reason, not a redirect to the provider's URL
    attachment = attachment_of(api)
    served = api.get(attachment["url"], follow_redirects=False)
    assert (served.status_code, served.json()["error"]["code"]) == (410, "media_refused")
    assert "location" not in served.headers
    assert (attachment["status"], attachment["status_code"]) == ("unavailable", "media_refused")


def test_media_fetch_is_retried_after_a_provider_outage(
    api: Api, fake_twilio: tuple[FakeTwilio, str], media_files: MediaServer, worker: Worker, clock: FrozenClock
) -> None:
    # given: the media store answers 503 once
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url)
    media_files.files["cat.jpg"] = (JPEG, "image/jpeg")
    media_files.failures.append(503)
    post_twilio(api, channel, mms(f"{media_files.base_url}/files/cat.jpg"), twilio.auth_token)
    # when
    worker()
    # then: not yet; due again after the backoff
    assert api.get(attachment_of(api)["url"]).status_code == 404
    assert worker() == 0
    clock.advance(seconds=5)
    assert worker() == 1
    assert api.get(attachment_of(api)["url"]).content == JPEG


def _reply_with_file(api: Api, conversation_id: int, body: str) -> dict[str, Any]:
    response = api.client.post(
        f"/api/v1/conversations/{conversation_id}/messages/files",
        data={"body": body},
        files={"files": ("photo.jpg", JPEG, "image/jpeg")},
        headers=api.headers,
    )
    return dict(api.ok(response, 201))


def test_instagram_attachment_goes_out_as_a_signed_expiring_hilo_link(
    api: Api, fake_graph: FakeGraphAPI, worker: Worker, clock: FrozenClock
) -> None:
    # given
    channel = instagram_channel(api, fake_graph)
    post_meta(api, channel, fixture("instagram_text_courier.json"))
    [conversation] = api.conversations()
    # when: the agent replies with a photo
    _reply_with_file(api, conversation["id"], "Here it is")
    assert worker() == 1
    # then: text first, then the photo by public link under HILO_BASE_URL
    text, photo = fake_graph.requests_to("/me/messages")
    assert text.json["message"] == {"text": "Here it is"}
    attachment = photo.json["message"]["attachment"]
    assert attachment["type"] == "image"
    link = attachment["payload"]["url"]
    assert link.startswith("http://testserver/media/")
    # when: the provider fetches it (no Hilo session)
    fetched = api.client.get(urlsplit(link).path)
    # then
    assert fetched.status_code == 200
    assert fetched.content == JPEG
    assert fetched.headers["content-type"] == "image/jpeg"
    # when: a forged token, and the real one after it expired
    forged = api.client.get(urlsplit(link).path[:-3] + "abc")
    clock.advance(hours=3)
    expired = api.client.get(urlsplit(link).path)
    # then
    assert forged.status_code == 404 and forged.json()["error"]["code"] == "media_link_invalid"
    assert expired.status_code == 410 and expired.json()["error"]["code"] == "media_link_expired"


def test_sms_attachment_goes_out_as_media_url(api: Api, fake_twilio: tuple[FakeTwilio, str], worker: Worker) -> None:
    # given
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url)
    post_twilio(api, channel, fixture("twilio_sms_inbound_text_courier.form"), twilio.auth_token)
    [conversation] = api.conversations()
    # when
    _reply_with_file(api, conversation["id"], "Your invoice")
    assert worker() == 1
    # then: Twilio downloads the file itself from the signed link
    form = dict(twilio.requests[-1].form)
    assert form["Body"] == "Your invoice"
    assert api.client.get(urlsplit(form["MediaUrl"]).path).content == JPEG
