"""What the composer builds on: quoted messages in the API and the timeline, e-mail "reply all"
suggestions and a chosen To, through the API the way the browser calls it."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from hilo.clock import FrozenClock
from tests.channels.email_flow import MAILGUN_KEY, mailgun_post
from tests.support import Api


def sign_in(app_client: TestClient) -> None:
    app_client.post("/api/v1/auth/login", json={"email": "admin@example.com", "password": "correct horse battery"})


def page_and_quote_lookups(app_client: TestClient, path: str) -> tuple[str, int]:
    """The page, and how many statements looked up quoted messages (messages joined to conversations by id)."""
    engine = app_client.app.state.runtime.db.engine  # type: ignore[attr-defined]
    statements: list[str] = []

    def listener(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        response = app_client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert response.status_code == 200, response.text
    lookups = [s for s in statements if "messages.id IN" in s and "JOIN conversations ON" in s]
    return response.text, len(lookups)


def email_channel(api: Api) -> dict[str, Any]:
    settings = {
        "address": "support@example.com",
        # Nothing listens there: these tests only queue replies, the worker does not run.
        "smtp_host": "127.0.0.1",
        "smtp_port": 9,
        "mailgun_signing_key": MAILGUN_KEY,
    }
    return api.ok(api.post("/api/v1/channels", {"kind": "email", "name": "Soporte", "settings": settings}), 201)


def test_message_out_names_the_quoted_message(api: Api, clock: FrozenClock) -> None:
    # given: a customer who answers one of their earlier messages by quoting it
    channel = api.api_channel()
    api.inbound(channel, "q1", "Is the blue one in stock?", msg_id="first")
    clock.advance(minutes=1)
    api.inbound(channel, "q1", "Something else")
    clock.advance(minutes=1)
    payload = {"id": "third", "contact": {"external_id": "q1"}, "text": "Any news on this?", "reply_to": "first"}
    assert api.webhook(channel, payload).status_code == 200
    [conversation] = api.conversations()
    # when
    first, second, third = api.timeline(conversation["id"])
    # then
    assert third["reply_to_message_id"] == first["id"]
    assert first["reply_to_message_id"] is None and second["reply_to_message_id"] is None


def test_timeline_shows_an_excerpt_of_the_quoted_message_even_beyond_the_page(
    app_client: TestClient, api: Api, clock: FrozenClock
) -> None:
    # given: a quote of a message 60 messages back (off the first page) and one of a recent one
    channel = api.api_channel()
    api.inbound(channel, "q2", "Order 1234: the parcel arrived   damaged\nand wet", msg_id="old")
    for n in range(60):
        clock.advance(minutes=1)
        api.inbound(channel, "q2", f"filler {n}", msg_id=f"filler-{n}")
    for msg_id, reply_to in (("quotes-old", "old"), ("quotes-recent", "filler-59")):
        clock.advance(minutes=1)
        payload = {"id": msg_id, "contact": {"external_id": "q2"}, "text": f"reply {msg_id}", "reply_to": reply_to}
        assert api.webhook(channel, payload).status_code == 200
    [conversation] = api.conversations()
    items = {m["provider_message_id"]: m["id"] for m in api.timeline(conversation["id"])}
    sign_in(app_client)
    # when
    page, lookups = page_and_quote_lookups(app_client, f"/ui/conversations/{conversation['id']}")
    # then: both replies carry a link to the message they quote, with its text on one line; the
    # one off the page came in a single query
    assert lookups == 1
    assert f'id="m-{items["old"]}"' not in page
    old = re.search(rf'<a class="quote-ref" href="#m-{items["old"]}"[^>]*>(.*?)</a>', page, re.S)
    recent = re.search(rf'<a class="quote-ref" href="#m-{items["filler-59"]}"[^>]*>(.*?)</a>', page, re.S)
    assert old is not None and "Order 1234: the parcel arrived damaged and wet" in old.group(1)
    assert recent is not None and "filler 59" in recent.group(1)
    # when: the live refresh appends the newest message alone
    fresh = app_client.get(
        f"/ui/conversations/{conversation['id']}/messages", params={"after": items["quotes-old"]}
    ).text
    # then: it still names what it quotes
    assert f'href="#m-{items["filler-59"]}"' in fresh


def test_a_page_without_quotes_does_not_look_them_up(app_client: TestClient, api: Api) -> None:
    # given
    channel = api.api_channel()
    api.inbound(channel, "q3", "Hello")
    [conversation] = api.conversations()
    sign_in(app_client)
    # when
    _page, lookups = page_and_quote_lookups(app_client, f"/ui/conversations/{conversation['id']}")
    # then
    assert lookups == 0


def test_email_channel_option_suggests_reply_all_and_a_reply_can_choose_to_and_cc(api: Api) -> None:
    # given: a mail to support and a colleague, copying another one
    channel = email_channel(api)
    answer = mailgun_post(
        api,
        channel,
        {
            "sender": "ana@example.com",
            "From": "Ana Pérez <ana@example.com>",
            "To": "Support <support@example.com>, Jefa <Boss@Example.com>",
            "Cc": "Luis <luis@example.com>, ana@example.com",
            "Subject": "Pedido 1234",
            "Message-Id": "<reply-all-1@example.com>",
            "body-plain": "¿Dónde está mi pedido?",
        },
    )
    assert answer.status_code == 200, answer.text
    [conversation] = api.conversations()
    path = f"/api/v1/conversations/{conversation['id']}"
    api.ok(
        api.post(
            f"/api/v1/contacts/{conversation['contact_id']}/identities", {"kind": "email", "value": "ana@work.example"}
        ),
        201,
    )
    # when
    [option] = api.ok(api.get(f"{path}/channels"))
    # then: To is the sender; "reply all" copies everyone else but our own address
    assert option["identity_value"] == "ana@example.com"
    assert option["cc"] == ["boss@example.com", "luis@example.com"]
    # when / then: an address that is not the contact's cannot be To, nor a malformed one
    for to, code in (("luis@example.com", "to_not_contact"), ("not an address", "to_invalid")):
        refused = api.post(f"{path}/messages", {"body": "Hola", "to": to})
        assert refused.status_code == 422 and refused.json()["error"]["code"] == code
    # when: the agent sends to the contact's other address and keeps the copies
    sent = api.ok(api.post(f"{path}/messages", {"body": "Ya sale.", "to": "Ana@Work.example", "cc": option["cc"]}), 201)
    # then
    contact = api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}"))
    work = next(i for i in contact["identities"] if i["value"] == "ana@work.example")
    assert sent["identity_id"] == work["id"]
    assert sent["data"]["cc"] == ["boss@example.com", "luis@example.com"]
    # when: a reply with a file names To and CC too (the composer's multipart form)
    with_file = api.client.post(
        f"{path}/messages/files",
        headers={"Authorization": f"Bearer {api.token}"},
        data={"body": "La factura.", "to": "ana@example.com", "cc": ["luis@example.com"]},
        files={"files": ("factura.txt", b"total 10", "text/plain")},
    )
    # then
    assert with_file.status_code == 201, with_file.text
    assert with_file.json()["data"]["cc"] == ["luis@example.com"]


def test_to_is_refused_on_other_channels(api: Api) -> None:
    # given
    channel = api.api_channel()
    api.inbound(channel, "q4", "Hi")
    [conversation] = api.conversations()
    # when
    refused = api.post(f"/api/v1/conversations/{conversation['id']}/messages", {"body": "Hi", "to": "a@example.com"})
    # then
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "to_not_supported"
