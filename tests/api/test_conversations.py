"""Conversation changes: status, snooze, priority, assignment, labels, merge, split, filters."""

from __future__ import annotations

from datetime import timedelta

from hilo.clock import FrozenClock
from tests.support import Api


def _one(api: Api, ext: str = "c", text: str = "hi") -> tuple[dict, dict]:  # type: ignore[type-arg]
    channel = api.api_channel(name=f"Shop {ext}")
    api.inbound(channel, ext, text)
    return channel, next(c for c in api.conversations() if c["last_channel_account_id"] == channel["id"])


def test_changes_are_recorded_in_the_timeline(api: Api) -> None:
    # given
    _channel, conversation = _one(api)
    team = api.ok(api.post("/api/v1/teams", {"name": "Soporte"}), 201)
    cid = conversation["id"]
    # when
    api.ok(api.patch(f"/api/v1/conversations/{cid}", {"assignee_id": api.agent_id, "team_id": team["id"]}))
    api.ok(api.patch(f"/api/v1/conversations/{cid}", {"priority": "urgent", "labels": ["VIP", "refund"]}))
    updated = api.ok(api.patch(f"/api/v1/conversations/{cid}", {"status": "pending"}))
    # then
    assert updated["assignee_id"] == api.agent_id and updated["team_id"] == team["id"]
    assert updated["priority"] == "urgent" and updated["labels"] == ["refund", "vip"]
    events = [m["data"]["event"] for m in api.timeline(cid) if m["direction"] == "event"]
    assert events == [
        "conversation.assigned",
        "conversation.priority_changed",
        "conversation.labels_changed",
        "conversation.status_changed",
    ]


def test_snooze_needs_a_future_time_and_customer_message_wakes_it(api: Api, clock: FrozenClock) -> None:
    # given
    channel, conversation = _one(api)
    cid = conversation["id"]
    # when
    past = api.patch(f"/api/v1/conversations/{cid}", {"status": "snoozed"})
    until = (clock.now() + timedelta(hours=4)).isoformat()
    snoozed = api.ok(api.patch(f"/api/v1/conversations/{cid}", {"status": "snoozed", "snoozed_until": until}))
    api.inbound(channel, "c", "are you there?")
    # then
    assert past.status_code == 422 and past.json()["error"]["code"] == "snooze_time_required"
    assert snoozed["status"] == "snoozed"
    assert api.ok(api.get(f"/api/v1/conversations/{cid}"))["status"] == "open"


def test_filters_and_sorting(api: Api, clock: FrozenClock) -> None:
    # given: three conversations with different states
    channel = api.api_channel()
    for ext in ("a", "b", "c"):
        api.inbound(channel, ext, f"hello {ext}")
        clock.advance(minutes=5)
    by_body = {api.timeline(c["id"])[0]["body"]: c["id"] for c in api.conversations()}
    api.ok(api.patch(f"/api/v1/conversations/{by_body['hello a']}", {"assignee_id": api.agent_id, "priority": "high"}))
    api.ok(api.patch(f"/api/v1/conversations/{by_body['hello b']}", {"labels": ["billing"]}))
    api.ok(api.patch(f"/api/v1/conversations/{by_body['hello c']}", {"status": "resolved"}))
    # when / then
    ids = lambda **p: [c["id"] for c in api.conversations(**p)]  # noqa: E731
    assert ids(assignee="me") == [by_body["hello a"]]
    assert set(ids(assignee="none", status="open")) == {by_body["hello b"]}
    assert ids(label="billing") == [by_body["hello b"]]
    assert ids(status="resolved") == [by_body["hello c"]]
    assert ids(status="open", sort="priority")[0] == by_body["hello a"]
    assert ids(status="open", sort="waiting") == [by_body["hello a"], by_body["hello b"]]
    assert ids(channel=channel["id"], status="open") == [by_body["hello b"], by_body["hello a"]]
    assert api.get("/api/v1/conversations", params={"status": "closed"}).status_code == 422


def test_pagination_with_cursor(api: Api, clock: FrozenClock) -> None:
    # given
    channel = api.api_channel()
    for n in range(7):
        api.inbound(channel, f"p{n}", "x")
        clock.advance(seconds=1)
    # when
    first = api.ok(api.get("/api/v1/conversations", params={"limit": 3}))
    second = api.ok(api.get("/api/v1/conversations", params={"limit": 3, "cursor": first["next_cursor"]}))
    third = api.ok(api.get("/api/v1/conversations", params={"limit": 3, "cursor": second["next_cursor"]}))
    # then
    seen = [c["id"] for page in (first, second, third) for c in page["items"]]
    assert len(seen) == 7 == len(set(seen)) and third["next_cursor"] is None
    refused = api.get("/api/v1/conversations", params={"cursor": "%%%"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid_cursor")


def test_merge_and_split_conversations(api: Api, clock: FrozenClock) -> None:
    # given: the same person resolved one conversation long ago and opened another
    channel = api.api_channel()
    api.inbound(channel, "m", "old question")
    [old] = api.conversations()
    api.ok(api.patch(f"/api/v1/conversations/{old['id']}", {"status": "resolved"}))
    clock.advance(days=10)
    api.inbound(channel, "m", "new question")
    api.inbound(channel, "m", "unrelated topic")
    new = next(c for c in api.conversations() if c["id"] != old["id"])
    # when: merged
    merged = api.ok(api.post(f"/api/v1/conversations/{new['id']}/merge", {"source_id": old["id"]}))
    # then
    inbound = [m["body"] for m in api.timeline(new["id"]) if m["direction"] == "inbound"]
    assert inbound == ["old question", "new question", "unrelated topic"]
    assert merged["message_count"] >= 3
    assert api.ok(api.get(f"/api/v1/conversations/{old['id']}"))["merged_into_id"] == new["id"]
    # when: split from the unrelated message
    split_from = next(m for m in api.timeline(new["id"]) if m["body"] == "unrelated topic")
    created = api.ok(api.post(f"/api/v1/conversations/{new['id']}/split", {"from_message_id": split_from["id"]}), 201)
    # then
    assert [m["body"] for m in api.timeline(created["id"]) if m["direction"] == "inbound"] == ["unrelated topic"]
    assert created["status"] == "open"
    assert api.ok(api.get(f"/api/v1/conversations/{new['id']}"))["status"] == "resolved"
    bad = api.post(f"/api/v1/conversations/{new['id']}/merge", {"source_id": new["id"]})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "merge_same_conversation"


def test_reopening_refused_when_contact_has_another_open_conversation(api: Api, clock: FrozenClock) -> None:
    # given
    channel = api.api_channel()
    api.inbound(channel, "r", "first")
    [first] = api.conversations()
    api.ok(api.patch(f"/api/v1/conversations/{first['id']}", {"status": "resolved"}))
    clock.advance(days=5)
    api.inbound(channel, "r", "second")
    # when
    response = api.patch(f"/api/v1/conversations/{first['id']}", {"status": "open"})
    # then
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "contact_has_open_conversation"


def test_collision_warning_when_someone_replied_since_loading(api: Api) -> None:
    # given: two agents looking at the same conversation
    channel, conversation = _one(api)
    api.ok(api.patch(f"/api/v1/channels/{channel['id']}", {"settings": {"outbound_url": "http://127.0.0.1:9/x"}}))
    other = api.as_new_agent("other@example.com", role="supervisor")
    seen = api.timeline(conversation["id"])[-1]["id"]
    api.ok(other.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "I got this"}), 201)
    # when
    warned = api.post(
        f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Me too", "seen_message_id": seen}
    )
    confirmed = api.post(
        f"/api/v1/conversations/{conversation['id']}/messages",
        {"body": "Me too", "seen_message_id": seen, "confirm_collision": True},
    )
    # then
    assert warned.status_code == 409 and warned.json()["error"]["code"] == "collision"
    assert warned.json()["error"]["details"]["author_agent_id"] == other.agent_id
    assert confirmed.status_code == 201


def test_snoozed_conversation_wakes_when_its_time_comes(api: Api, clock: FrozenClock, worker) -> None:  # type: ignore[no-untyped-def]
    # given
    _channel, conversation = _one(api)
    until = (clock.now() + timedelta(hours=2)).isoformat()
    api.ok(api.patch(f"/api/v1/conversations/{conversation['id']}", {"status": "snoozed", "snoozed_until": until}))
    # when
    clock.advance(hours=1)
    worker()
    early = api.ok(api.get(f"/api/v1/conversations/{conversation['id']}"))["status"]
    clock.advance(hours=1, seconds=1)
    worker()
    # then
    assert early == "snoozed"
    assert api.ok(api.get(f"/api/v1/conversations/{conversation['id']}"))["status"] == "open"
    assert api.timeline(conversation["id"])[-1]["data"]["reason"] == "snooze_ended"
