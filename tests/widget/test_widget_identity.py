"""Who a widget visitor is linked to: an address typed in, or passed along by the site, never
joins a contact that holds a verified identity (DESIGN invariant 1)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from hilo.channels.widget import user_hash
from tests.support import Api
from tests.widget.widget_support import SECRET, open_widget, token_of, widget_channel


def _user(user_id: str, email: str) -> dict[str, str]:
    return {"id": user_id, "hash": user_hash(SECRET, user_id), "email": email}


def _contact(api: Api, contact_id: int) -> dict[str, Any]:
    return api.ok(api.get(f"/api/v1/contacts/{contact_id}"))  # type: ignore[no-any-return]


def _identities(api: Api, contact_id: int) -> set[tuple[str, str, bool]]:
    return {(i["kind"], i["value"], i["verified"]) for i in _contact(api, contact_id)["identities"]}


def _reply(api: Api, conversation_id: int, body: str) -> dict[str, Any]:
    return api.ok(api.post(f"/api/v1/conversations/{conversation_id}/messages", {"body": body}), 201)  # type: ignore[no-any-return]


def _conversation_of(api: Api, message: dict[str, Any]) -> dict[str, Any]:
    return api.ok(api.get(f"/api/v1/conversations/{message['conversation_id']}"))  # type: ignore[no-any-return]


def _lines(api: Api, conversation_id: int) -> list[tuple[str, Any]]:
    """The timeline as (direction, body), an activity line as ("event", its event and value)."""
    return [
        ("event", (m["data"]["event"], m["data"]["value"]))
        if m["direction"] == "event"
        else (m["direction"], m["body"])
        for m in api.timeline(conversation_id)
    ]


def test_two_verified_users_with_one_email_are_two_contacts_each_with_their_own_history(
    api: Api, app_client: TestClient
) -> None:
    # given: a signed-in user of the site chatted, and the site passed their e-mail address
    channel = widget_channel(api, identity_secret=SECRET)
    token = token_of(channel)
    with open_widget(app_client, token, user=_user("u-1", "one@example.com")) as first:
        first.next_of("welcome")
        first_message = first.say("I am user one")
    first_conversation = _conversation_of(api, first_message)
    _reply(api, first_conversation["id"], "Hello, user one")
    # when: another signed-in user arrives with the same e-mail address, writes twice, and is answered
    with open_widget(app_client, token, user=_user("u-2", "ONE@example.com")) as second:
        second.next_of("welcome")
        second_message = second.say("I am user two")
        second.say("Still user two")
        second_conversation = _conversation_of(api, second_message)
        _reply(api, second_conversation["id"], "Hello, user two")
        seen_by_second = second.messages()
    with open_widget(app_client, token, user=_user("u-1", "one@example.com")) as first_again:
        first_again.next_of("welcome")
        seen_by_first = first_again.messages()
    # then: two contacts; the address stays with the user who gave it first
    assert second_conversation["contact_id"] != first_conversation["contact_id"]
    assert len(api.ok(api.get("/api/v1/contacts"))["items"]) == 2
    assert _identities(api, first_conversation["contact_id"]) == {
        ("widget", f"{channel['id']}:user:u-1", True),
        ("email", "one@example.com", False),
    }
    assert _identities(api, second_conversation["contact_id"]) == {("widget", f"{channel['id']}:user:u-2", True)}
    # each thread holds only its own user's history; the agents are told once why the address was not linked
    assert _lines(api, first_conversation["id"]) == [("inbound", "I am user one"), ("outbound", "Hello, user one")]
    assert _lines(api, second_conversation["id"]) == [
        ("inbound", "I am user two"),
        ("event", ("contact.link_refused", "one@example.com")),
        ("inbound", "Still user two"),
        ("outbound", "Hello, user two"),
    ]
    assert [(m["dir"], m["text"]) for m in seen_by_second if m["dir"] == "out"] == [("out", "Hello, user two")]
    assert [(m["dir"], m["text"]) for m in seen_by_first] == [("in", "I am user one"), ("out", "Hello, user one")]


def test_a_stranger_typing_a_verified_users_email_gets_none_of_their_replies(api: Api, app_client: TestClient) -> None:
    # given: a signed-in user is chatting, and the site passed their e-mail address
    channel = widget_channel(api, identity_secret=SECRET, prechat_fields={"email": "optional"})
    token = token_of(channel)
    with open_widget(app_client, token, user=_user("u-1", "ana@example.com")) as ana:
        ana.next_of("welcome")
        ana_message = ana.say("Where is order 123?")
        ana_conversation = _conversation_of(api, ana_message)
        ana_identities = _identities(api, ana_conversation["contact_id"])
        # when: an anonymous visitor types Ana's address in the pre-chat form, then the
        # agent answers Ana in her conversation, and the visitor in theirs
        with open_widget(app_client, token) as stranger:
            stranger.next_of("welcome")
            stranger_message = stranger.say("Hi, what about my order?", prechat={"email": "ana@example.com"})
            stranger_conversation = _conversation_of(api, stranger_message)
            to_ana = _reply(api, ana_conversation["id"], "Order 123 ships today to Calle Mayor 5.")
            to_stranger = _reply(api, stranger_conversation["id"], "Which order do you mean?")
            seen_by_stranger = stranger.messages()
        seen_by_ana = ana.messages()
    # then: the visitor has a contact and conversation of their own, without Ana's address;
    # what they typed is shown to the agents as a claim that was not linked
    assert stranger_conversation["id"] != ana_conversation["id"]
    assert stranger_conversation["contact_id"] != ana_conversation["contact_id"]
    assert {kind for kind, _value, _verified in _identities(api, stranger_conversation["contact_id"])} == {"widget"}
    assert _lines(api, stranger_conversation["id"]) == [
        ("inbound", "Hi, what about my order?"),
        ("event", ("contact.link_refused", "ana@example.com")),
        ("outbound", "Which order do you mean?"),
    ]
    # the stranger received none of Ana's replies; Ana's conversation and contact are untouched
    assert [m["text"] for m in seen_by_stranger if m["dir"] == "out"] == ["Which order do you mean?"]
    assert [m["text"] for m in seen_by_ana if m["dir"] == "out"] == ["Order 123 ships today to Calle Mayor 5."]
    assert _lines(api, ana_conversation["id"]) == [
        ("inbound", "Where is order 123?"),
        ("outbound", "Order 123 ships today to Calle Mayor 5."),
    ]
    assert _identities(api, ana_conversation["contact_id"]) == ana_identities
    ana_widget = next(i for i in _contact(api, ana_conversation["contact_id"])["identities"] if i["kind"] == "widget")
    assert to_ana["identity_id"] == ana_widget["id"]
    assert to_stranger["identity_id"] != ana_widget["id"]


def test_a_returning_visitor_who_claims_a_verified_users_email_is_not_merged_with_them(
    api: Api, app_client: TestClient
) -> None:
    # given: an anonymous visitor chatted before; a signed-in user gave their address
    channel = widget_channel(api, identity_secret=SECRET, prechat_fields={"email": "optional"})
    token = token_of(channel)
    with open_widget(app_client, token) as visitor:
        stored = visitor.next_of("welcome")["visitor"]
        visitor_conversation = _conversation_of(api, visitor.say("First visit"))
    with open_widget(app_client, token, user=_user("u-7", "eva@example.com")) as eva:
        eva.next_of("welcome")
        eva_conversation = _conversation_of(api, eva.say("I am Eva"))
    # when: the visitor comes back and now gives Eva's address
    with open_widget(app_client, token, visitor=stored) as visitor:
        visitor.next_of("welcome")
        visitor.say("Later visit", prechat={"email": "eva@example.com"})
    _reply(api, eva_conversation["id"], "Hello Eva")
    with open_widget(app_client, token, visitor=stored) as visitor:
        visitor.next_of("welcome")
        seen_by_visitor = visitor.messages()
    # then: still two contacts, each with their own thread
    assert len(api.ok(api.get("/api/v1/contacts"))["items"]) == 2
    assert _lines(api, eva_conversation["id"]) == [("inbound", "I am Eva"), ("outbound", "Hello Eva")]
    assert [line for line in _lines(api, visitor_conversation["id"]) if line[0] != "inbound"] == [
        ("event", ("contact.link_refused", "eva@example.com"))
    ]
    assert [m["text"] for m in seen_by_visitor] == ["First visit", "Later visit"]
