"""Edits, unsends and events Hilo does not model, through the webhook endpoints: an edit
changes the stored message, an unsend marks it deleted, and anything else a person does
is kept as an unknown message with its raw payload, never answered 200 and dropped."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from hilo.clock import FrozenClock
from tests.channels.provider_support import (
    PAGE_ID,
    fixture_json,
    instagram_channel,
    messenger_channel,
    post_meta,
    post_telegram,
    telegram_channel,
)
from tests.fakes.meta import FakeGraphAPI
from tests.fakes.telegram import FakeTelegram
from tests.support import Api

PSID = "5678"  # the sender of the captured Messenger and Instagram fixtures


def page_event(event: dict[str, Any], object_name: str = "page") -> dict[str, Any]:
    """One messaging event in the webhook envelope Meta posts for our page."""
    return {"object": object_name, "entry": [{"id": PAGE_ID, "time": 1459991500000, "messaging": [event]}]}


def only_message(api: Api) -> dict[str, Any]:
    [conversation] = api.conversations()
    [message] = api.timeline(conversation["id"])
    return message


def test_messenger_edit_changes_the_stored_message_and_keeps_the_old_text(
    api: Api, fake_graph: FakeGraphAPI, clock: FrozenClock
) -> None:
    # given: the captured message "Hello World" (mid external_id) is stored
    channel = messenger_channel(api, fake_graph)
    assert post_meta(api, channel, fixture_json("messenger_text_courier.json")).json()["messages"] == 1
    clock.advance(minutes=2)
    # when: the customer edits it (Meta's documented message_edits event)
    edit = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1459991600000,
        "message_edit": {"mid": "external_id", "text": "Hello World, again", "num_edit": 1},
    }
    answer = post_meta(api, channel, page_event(edit))
    retried = post_meta(api, channel, page_event(edit))
    # then: the one message shows the new text, when it changed, and what it said before
    assert answer.status_code == retried.status_code == 200
    message = only_message(api)
    assert message["body"] == "Hello World, again"
    assert datetime.fromisoformat(message["edited_at"]) == clock.now()
    assert [e["body"] for e in message["data"]["edits"]] == ["Hello World"]
    assert message["deleted_at"] is None


def test_messenger_unsend_marks_the_message_deleted(api: Api, fake_graph: FakeGraphAPI, clock: FrozenClock) -> None:
    # given
    channel = messenger_channel(api, fake_graph)
    post_meta(api, channel, fixture_json("messenger_text_courier.json"))
    clock.advance(minutes=1)
    # when: the customer unsends it (the is_deleted shape Instagram's capture shows, on a page)
    unsent = fixture_json("instagram_unsent_courier.json")
    unsent["object"] = "page"
    answer = post_meta(api, channel, unsent)
    # then
    assert answer.status_code == 200
    message = only_message(api)
    assert datetime.fromisoformat(message["deleted_at"]) == clock.now()
    assert message["body"] == "Hello World"


def test_instagram_unsend_of_the_captured_message_marks_it_deleted(
    api: Api, fake_graph: FakeGraphAPI, clock: FrozenClock
) -> None:
    # given
    channel = instagram_channel(api, fake_graph)
    post_meta(api, channel, fixture_json("instagram_text_courier.json"))
    # when
    answer = post_meta(api, channel, fixture_json("instagram_unsent_courier.json"))
    # then
    assert answer.status_code == 200
    assert datetime.fromisoformat(only_message(api)["deleted_at"]) == clock.now()


def test_messenger_event_hilo_does_not_model_is_stored_with_its_raw_payload(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given: a customer opens the chat again through an m.me link with a ref parameter
    channel = messenger_channel(api, fake_graph)
    referral = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1459991700000,
        "referral": {"ref": "summer-campaign", "source": "SHORTLINK", "type": "OPEN_THREAD"},
    }
    # when: it arrives twice (Meta retries)
    first = post_meta(api, channel, page_event(referral))
    again = post_meta(api, channel, page_event(referral))
    # then: stored once, as an unknown message whose raw event the API shows
    assert (first.json()["messages"], again.json()["duplicates"]) == (1, 1)
    message = only_message(api)
    assert message["kind"] == "unknown"
    assert message["data"]["event_type"] == "referral"
    assert message["data"]["raw"] == referral


def test_messenger_handover_notice_and_page_actions_are_not_stored(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given
    channel = messenger_channel(api, fake_graph)
    handover = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1459991800000,
        "pass_thread_control": {"new_owner_app_id": "123456789", "metadata": "from the bot"},
    }
    own_reaction = {
        "sender": {"id": PAGE_ID},
        "recipient": {"id": PSID},
        "timestamp": 1459991800001,
        "reaction": {"mid": "external_id", "action": "react", "emoji": "👍"},
    }
    # when
    answers = [post_meta(api, channel, page_event(event)) for event in (handover, own_reaction)]
    # then: acknowledged, nothing a person said, nothing stored
    assert [a.status_code for a in answers] == [200, 200]
    assert api.conversations() == []


def test_telegram_edit_changes_the_stored_message(
    api: Api, fake_telegram: tuple[FakeTelegram, str], clock: FrozenClock
) -> None:
    # given: the captured "/start" (chat 1111111, message 1365)
    telegram, base_url = fake_telegram
    channel = telegram_channel(api, telegram, base_url)
    post_telegram(api, channel, fixture_json("telegram_text.json"))
    clock.advance(minutes=3)
    # when: the captured edit of the same message
    answer = post_telegram(api, channel, fixture_json("telegram_edited_message.json"))
    # then
    assert answer.status_code == 200
    message = only_message(api)
    assert message["body"] == "Edited text"
    assert datetime.fromisoformat(message["edited_at"]) == clock.now()


def test_telegram_deleted_business_message_marks_it_deleted(
    api: Api, fake_telegram: tuple[FakeTelegram, str], clock: FrozenClock
) -> None:
    # given: a message to the business account the bot is connected to
    telegram, base_url = fake_telegram
    channel = telegram_channel(api, telegram, base_url)
    update = fixture_json("telegram_text.json")
    business_message = {**update.pop("message"), "business_connection_id": "BCONN1"}
    post_telegram(api, channel, {**update, "business_message": business_message})
    clock.advance(minutes=1)
    # when: the customer deletes it (Bot API BusinessMessagesDeleted)
    deleted = {
        "update_id": 10001,
        "deleted_business_messages": {
            "business_connection_id": "BCONN1",
            "chat": copy.deepcopy(business_message["chat"]),
            "message_ids": [1365],
        },
    }
    answer = post_telegram(api, channel, deleted)
    # then
    assert answer.status_code == 200
    message = only_message(api)
    assert datetime.fromisoformat(message["deleted_at"]) == clock.now()
    assert message["body"] == "/start"
