"""The chat widget over HTTP and its websocket, the way a visitor's browser uses it."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from hilo.channels.widget import user_hash
from hilo.clock import FrozenClock
from hilo.widget.actions import send_email_fallbacks
from tests.support import Api
from tests.widget.widget_support import (
    ORIGIN,
    SECRET,
    Widget,
    agent_online,
    email_channel,
    open_widget,
    token_of,
    widget_channel,
)

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


def _contact_of(api: Api, conversation: dict[str, Any]) -> dict[str, Any]:
    return api.ok(api.get(f"/api/v1/contacts/{conversation['contact_id']}"))  # type: ignore[no-any-return]


def _reply(api: Api, conversation_id: int, body: str, **extra: Any) -> dict[str, Any]:
    return api.ok(api.post(f"/api/v1/conversations/{conversation_id}/messages", {"body": body, **extra}), 201)  # type: ignore[no-any-return]


def test_config_is_localised_and_tells_whether_an_agent_is_online(api: Api, app_client: TestClient) -> None:
    # given
    channel = widget_channel(api, title={"en": "Help", "es": "Ayuda"}, reply_time="hours", color="#112233")
    url = f"/widget/{token_of(channel)}/config"
    # when
    english = app_client.get(url, headers={"origin": ORIGIN, "accept-language": "en-GB,en"})
    spanish = app_client.get(url, params={"locale": "es-MX"}, headers={"origin": ORIGIN})
    with agent_online(app_client, api):
        online = app_client.get(url, headers={"origin": ORIGIN}).json()
    foreign = app_client.get(url, headers={"origin": "https://evil.example"})
    # then
    assert english.status_code == 200
    assert english.headers["access-control-allow-origin"] == ORIGIN
    assert english.json()["title"] == "Help" and english.json()["strings"]["send"] == "Send"
    assert english.json()["agents_online"] is False
    assert spanish.json()["title"] == "Ayuda"
    assert spanish.json()["strings"]["send"] == "Enviar"
    assert spanish.json()["reply_time"] == "Suele responder en unas horas"
    assert online["agents_online"] is True and online["color"] == "#112233"
    assert foreign.status_code == 403 and foreign.json()["error"]["code"] == "origin_not_allowed"


def test_script_is_one_gzipped_file_with_its_styles(api: Api, app_client: TestClient) -> None:
    # given
    channel = widget_channel(api)
    url = f"/widget/{token_of(channel)}/widget.js"
    # when
    first = app_client.get(url)
    again = app_client.get(url, headers={"if-none-match": first.headers["etag"]})
    unknown = app_client.get("/widget/not-a-token/widget.js")
    # then
    assert first.status_code == 200 and first.headers["content-type"].startswith("text/javascript")
    assert first.headers["content-encoding"] == "gzip"
    assert "__HILO_CSS__" not in first.text and ":host" in first.text
    assert again.status_code == 304
    assert unknown.status_code == 404


def test_visitor_chats_and_the_agents_reply_arrives_live(api: Api, app_client: TestClient, worker: Any) -> None:
    # given: a new visitor opens the widget
    channel = widget_channel(api)
    with open_widget(app_client, token_of(channel)) as widget:
        welcome = widget.next_of("welcome")
        # when: the visitor writes, and an agent answers through the API
        sent = widget.say("Hola, ¿tenéis talla M?")
        [conversation] = api.conversations()
        reply = _reply(api, conversation["id"], "Sí, la tenemos.")
        arrived = widget.messages()
        widget.ws.send_json({"type": "receipt", "status": "read", "up_to": reply["id"]})
        widget.settle()
    # then: one contact with the visitor's scoped identity, one thread, the reply shown once
    visitor_id = welcome["visitor"].split(".")[0]
    contact = _contact_of(api, conversation)
    assert [(i["kind"], i["value"]) for i in contact["identities"]] == [("widget", f"{channel['id']}:{visitor_id}")]
    assert sent["text"] == "Hola, ¿tenéis talla M?" and sent["conversation_id"] == conversation["id"]
    replies = [m for m in arrived if m["dir"] == "out"]
    assert [(m["id"], m["text"], m["author"]) for m in replies] == [(reply["id"], "Sí, la tenemos.", "Admin")]
    assert worker() == 1
    timeline = api.timeline(conversation["id"])
    assert [(m["direction"], m["body"]) for m in timeline] == [
        ("inbound", "Hola, ¿tenéis talla M?"),
        ("outbound", "Sí, la tenemos."),
    ]
    assert timeline[1]["status"] == "read"


def test_a_resent_message_is_stored_once_and_reconnecting_replays_what_was_missed(
    api: Api, app_client: TestClient
) -> None:
    # given: a visitor who wrote once, then lost the connection
    channel = widget_channel(api)
    token = token_of(channel)
    with open_widget(app_client, token) as widget:
        visitor = widget.next_of("welcome")["visitor"]
        client_id = str(uuid.uuid4())
        first = widget.say("¿Dónde está mi pedido?", client_id=client_id)
    [conversation] = api.conversations()
    # when: the agent answers while the widget is away, and the widget comes back,
    # resending the message whose acknowledgement it never saw
    reply = _reply(api, conversation["id"], "Sale mañana.")
    with open_widget(app_client, token, visitor=visitor, last_id=first["id"]) as widget:
        assert widget.next_of("welcome")["known"] is True
        again = widget.say("¿Dónde está mi pedido?", client_id=client_id)
        replayed = widget.messages()
    # then: nothing doubled, nothing lost
    assert again["id"] == first["id"]
    assert [m["id"] for m in replayed if m["dir"] == "out"] == [reply["id"]]
    assert all(m["id"] > first["id"] for m in replayed)
    assert [m["body"] for m in api.timeline(conversation["id"])] == ["¿Dónde está mi pedido?", "Sale mañana."]


def test_a_verified_user_sees_the_same_history_on_another_device(api: Api, app_client: TestClient) -> None:
    # given
    channel = widget_channel(api, identity_secret=SECRET)
    token = token_of(channel)
    user = {"id": "u-42", "hash": user_hash(SECRET, "u-42"), "name": "Lucía Gómez", "email": "lucia@example.com"}
    with open_widget(app_client, token, user=user) as laptop:
        assert laptop.next_of("welcome")["verified"] is True
        laptop.say("Quiero cambiar la dirección de envío")
    [conversation] = api.conversations()
    _reply(api, conversation["id"], "Claro, ¿cuál es la nueva?")
    # when: the same user opens the site on a phone (no stored visitor token)
    with open_widget(app_client, token, user=user) as phone:
        phone.next_of("welcome")
        history = phone.messages()
    # then
    assert [(m["dir"], m["text"]) for m in history] == [
        ("in", "Quiero cambiar la dirección de envío"),
        ("out", "Claro, ¿cuál es la nueva?"),
    ]
    identities = {(i["kind"], i["value"], i["verified"]) for i in _contact_of(api, conversation)["identities"]}
    assert identities == {("widget", f"{channel['id']}:user:u-42", True), ("email", "lucia@example.com", False)}
    assert conversation["contact_name"] == "Lucía Gómez"


def test_a_wrong_identity_hash_is_refused_and_nothing_is_stored(api: Api, app_client: TestClient) -> None:
    # given
    verified = widget_channel(api, identity_secret=SECRET)
    unverified = widget_channel(api)
    forged = {"id": "u-1", "hash": user_hash("a guess", "u-1")}
    # when
    with open_widget(app_client, token_of(verified), user=forged) as widget:
        refusal = widget.receive()
        with pytest.raises(WebSocketDisconnect) as closed:
            widget.receive()
    with open_widget(app_client, token_of(unverified), user=forged) as widget:
        not_set_up = widget.receive()
    # then
    assert refusal["code"] == "identity_invalid" and "hash" in refusal["message"]
    assert closed.value.code == 4403
    assert not_set_up["code"] == "identity_verification_off"
    assert api.ok(api.get("/api/v1/contacts"))["items"] == []
    assert api.conversations() == []


def test_a_widget_shows_only_what_its_visitor_sent_or_was_sent(api: Api, app_client: TestClient) -> None:
    # given: two browsers that gave the same e-mail address (so one contact, one thread)
    channel = widget_channel(api, prechat_fields={"email": "optional"})
    token = token_of(channel)
    with open_widget(app_client, token) as first:
        first.next_of("welcome")
        first.say("Soy Ana", prechat={"email": "ana@example.com"})
    with open_widget(app_client, token) as second:
        second.next_of("welcome")
        second.say("Yo también soy Ana", prechat={"email": "ana@example.com"})
        [conversation] = api.conversations()
        # when: the agent answers (the reply goes to the browser that wrote last)
        _reply(api, conversation["id"], "Hola Ana")
        seen_by_second = second.messages()
    with open_widget(app_client, token) as stranger:
        stranger.next_of("welcome")
        seen_by_stranger = stranger.messages()
    # then
    assert [m["text"] for m in seen_by_second if m["dir"] == "out"] == ["Hola Ana"]
    assert "Soy Ana" not in [m["text"] for m in seen_by_second]
    assert seen_by_stranger == []
    assert len(api.timeline(conversation["id"])) == 3


def test_the_prechat_form_is_enforced_on_the_first_message(api: Api, app_client: TestClient) -> None:
    # given
    channel = widget_channel(api, prechat_fields={"name": "optional", "email": "required", "phone": "off"})
    with open_widget(app_client, token_of(channel)) as widget:
        widget.next_of("welcome")
        # when
        widget.send("Hola")
        refused = widget.next_of("error")
        widget.send("Hola", prechat={"email": "no-es-un-correo"})
        invalid = widget.next_of("error")
        accepted = widget.say("Hola", prechat={"name": "Pablo", "email": "Pablo@Example.com"})
        later = widget.say("Otra cosa")
    # then
    assert refused["code"] == "prechat_invalid" and refused["fields"] == {"email": "This field is required."}
    assert invalid["fields"] == {"email": "This is not a valid e-mail address."}
    assert accepted["id"] < later["id"]
    [conversation] = api.conversations()
    identities = {(i["kind"], i["value"]) for i in _contact_of(api, conversation)["identities"]}
    assert ("email", "pablo@example.com") in identities
    assert conversation["contact_name"] == "Pablo"


def test_the_offline_form_needs_an_email_and_starts_a_conversation(api: Api, app_client: TestClient) -> None:
    # given: no agent is online
    channel = widget_channel(api)
    with open_widget(app_client, token_of(channel), locale="es") as widget:
        welcome = widget.next_of("welcome")
        # when
        widget.send("¿Abrís el sábado?", offline=True, prechat={"name": "Marta"})
        refused = widget.next_of("error")
        widget.say("¿Abrís el sábado?", offline=True, prechat={"name": "Marta", "email": "marta@example.com"})
    # then
    assert welcome["agents_online"] is False
    assert refused["fields"] == {"email": "Este campo es obligatorio."}
    [conversation] = api.conversations()
    [message] = api.timeline(conversation["id"])
    assert message["data"]["widget"]["offline_form"] is True
    identities = {(i["kind"], i["value"]) for i in _contact_of(api, conversation)["identities"]}
    assert ("email", "marta@example.com") in identities


def test_an_upload_is_checked_then_stored_as_a_message(api: Api, app_client: TestClient) -> None:
    # given: a visitor with a session, and an agent waiting for a photo
    channel = widget_channel(api, max_upload_mb=0.5)
    token = token_of(channel)
    with open_widget(app_client, token) as widget:
        visitor = widget.next_of("welcome")["visitor"]
        widget.say("Os mando una foto")
        url = f"/widget/{token}/upload"

        def post(data: bytes, name: str, kind: str, **fields: str) -> Any:
            form = {"visitor": visitor, "client_id": str(uuid.uuid4()), **fields}
            return app_client.post(url, data=form, files={"file": (name, data, kind)}, headers={"origin": ORIGIN})

        # when
        stored = post(PNG, "foto.png", "image/png")
        shown = widget.messages()
        too_big = post(b"\x89PNG\r\n\x1a\n" + b"0" * 600_000, "big.png", "image/png")
        disguised = post(b"<html><script>alert(1)</script>", "foto.png", "image/png")
        script = post(b"MZ\x90\x00", "setup.exe", "application/octet-stream")
        anonymous = post(PNG, "foto.png", "image/png", visitor="forged.token")
    # then
    assert stored.status_code == 201, stored.text
    assert stored.headers["access-control-allow-origin"] == ORIGIN
    [photo] = [m for m in shown if m["files"]]
    assert photo["files"][0]["name"] == "foto.png" and photo["files"][0]["type"] == "image/png"
    assert app_client.get(photo["files"][0]["url"]).content == PNG
    assert app_client.get(photo["files"][0]["url"].rsplit("/", 1)[0] + "/forged").status_code == 404
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "upload_too_large"
    assert "512 KB" in too_big.json()["error"]["message"]
    assert disguised.status_code == 415 and script.status_code == 415
    assert anonymous.status_code == 401 and anonymous.json()["error"]["code"] == "visitor_invalid"
    [conversation] = api.conversations()
    timeline = api.timeline(conversation["id"])
    assert len(timeline) == 2
    assert timeline[1]["kind"] == "image" and timeline[1]["attachments"][0]["size"] == len(PNG)


def test_typing_goes_both_ways(api: Api, app_client: TestClient) -> None:
    # given: a visitor in a conversation, and the agent with the inbox open
    channel = widget_channel(api)
    with open_widget(app_client, token_of(channel)) as widget, agent_online(app_client, api) as agent:
        widget.next_of("welcome")
        widget.say("Hola")
        [conversation] = api.conversations()
        # when
        widget.ws.send_json({"type": "typing"})
        agent_saw = Widget(agent).next_of("contact.typing")
        agent.send_json({"type": "typing", "conversation_id": conversation["id"]})
        widget_saw = widget.next_of("typing")
    # then
    assert agent_saw["conversation_id"] == conversation["id"]
    assert widget_saw["name"] == "Admin"


def test_an_unseen_reply_is_copied_by_email_once(
    api: Api, app_client: TestClient, clock: FrozenClock, worker: Any
) -> None:
    # given: an e-mail channel, and a visitor who gave an address and then left
    email = email_channel(api)
    channel = widget_channel(api, prechat_fields={"email": "required"}, email_fallback_minutes=3)
    with open_widget(app_client, token_of(channel)) as widget:
        widget.next_of("welcome")
        widget.say("¿Me avisáis cuando llegue?", prechat={"email": "leo@example.com"})
    [conversation] = api.conversations()
    # when: two replies nobody sees, then the delay passes
    _reply(api, conversation["id"], "Llegó hoy.")
    _reply(api, conversation["id"], "Te lo guardamos.")
    too_soon = send_email_fallbacks(app_client.app.state.runtime)  # type: ignore[attr-defined]
    clock.advance(minutes=4)
    copied = send_email_fallbacks(app_client.app.state.runtime)  # type: ignore[attr-defined]
    again = send_email_fallbacks(app_client.app.state.runtime)  # type: ignore[attr-defined]
    # then: one e-mail with both replies, on the e-mail channel of the same thread
    assert (too_soon, copied, again) == (0, 1, 0)
    timeline = api.timeline(conversation["id"])
    [mail] = [m for m in timeline if m["channel_account_id"] == email["id"]]
    assert mail["body"] == "Llegó hoy.\n\nTe lo guardamos."
    assert mail["direction"] == "outbound" and mail["status"] == "queued"
    replies = [m for m in timeline if m["channel_account_id"] == channel["id"] and m["direction"] == "outbound"]
    assert len(replies) == 2 and all("email_fallback" in m["data"] for m in replies)


def test_a_reply_the_widget_received_is_not_copied_by_email(
    api: Api, app_client: TestClient, clock: FrozenClock
) -> None:
    # given
    email_channel(api)
    channel = widget_channel(api)
    with open_widget(app_client, token_of(channel)) as widget:
        widget.next_of("welcome")
        widget.say("Hola", prechat={"email": "eva@example.com"})
        [conversation] = api.conversations()
        # when: the reply reaches the open widget, which says so
        reply = _reply(api, conversation["id"], "Hola Eva")
        widget.messages()
        widget.ws.send_json({"type": "receipt", "status": "delivered", "up_to": reply["id"]})
        widget.settle()
    clock.advance(minutes=10)
    # then
    assert send_email_fallbacks(app_client.app.state.runtime) == 0  # type: ignore[attr-defined]
    assert api.timeline(conversation["id"])[-1]["status"] == "delivered"


def test_a_disabled_widget_is_not_offered(api: Api, app_client: TestClient) -> None:
    # given
    channel = widget_channel(api)
    api.ok(api.patch(f"/api/v1/channels/{channel['id']}", {"enabled": False}))
    # when
    config = app_client.get(f"/widget/{token_of(channel)}/config", headers={"origin": ORIGIN})
    with open_widget(app_client, token_of(channel)) as widget:
        refusal = widget.receive()
    # then
    assert config.status_code == 503 and config.json()["error"]["code"] == "channel_disabled"
    assert refusal["code"] == "channel_disabled"


def test_a_hello_sent_as_a_binary_frame_is_understood(api: Api, app_client: TestClient) -> None:
    # given: a client library that sends its JSON as bytes
    channel = widget_channel(api)
    with app_client.websocket_connect(f"/widget/{token_of(channel)}/ws", headers={"origin": ORIGIN}) as ws:
        # when
        ws.send_bytes(b'{"type": "hello", "visitor": null}')
        widget = Widget(ws)
        welcome = widget.next_of("welcome")
        ws.send_bytes(b"not json at all")
        # then: the widget is welcomed, and garbage is ignored without closing the socket
        assert welcome["visitor"] and widget.settle() == []
