"""The routing page asks for capacity only for the kinds of channel that are configured."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.support import Api


def sign_in(client: TestClient) -> None:
    credentials = {"email": "admin@example.com", "password": "correct horse battery"}
    assert client.post("/api/v1/auth/login", json=credentials).status_code == 200


def capacity_columns(page: str) -> list[str]:
    return re.findall(r'<td data-field="capacity\.(\w+)">', page)


def test_no_channel_no_capacity_columns(app_client: TestClient, api: Api) -> None:
    # given: no channel at all
    sign_in(app_client)
    # when
    page = app_client.get("/admin/routing").text
    # then: nothing to fill in, and a word on when it appears
    assert capacity_columns(page) == []
    assert "data-no-capacity" in page
    assert ">Calls " not in page


def test_capacity_follows_the_configured_channels_and_never_shows_calls_without_voice(
    app_client: TestClient, api: Api
) -> None:
    # given: a chat-like channel
    api.api_channel()
    sign_in(app_client)
    # when
    chat_only = app_client.get("/admin/routing").text
    # then
    assert capacity_columns(chat_only) == ["chat"]
    assert ">Chats " in chat_only and ">Calls " not in chat_only and ">E-mails " not in chat_only
    # given: a web form too, whose conversations count as e-mail
    settings = {"allowed_origins": "https://shop.example"}
    api.ok(api.post("/api/v1/channels", {"kind": "webform", "name": "Contact", "settings": settings}), 201)
    # when
    both = app_client.get("/admin/routing").text
    # then
    assert capacity_columns(both) == ["chat", "email"]
    assert ">Calls " not in both and "data-no-capacity" not in both


def test_a_save_keeps_the_capacity_of_kinds_not_shown(app_client: TestClient, api: Api) -> None:
    # given: an agent whose call capacity was set through the API, and only a chat channel
    api.api_channel()
    api.ok(api.put(f"/api/v1/routing/agents/{api.agent_id}", {"skills": [], "capacity": {"call": 2, "chat": 4}}))
    sign_in(app_client)
    # when
    page = app_client.get("/admin/routing").text
    # then: the page carries the hidden kinds' values, so saving the row sends them back unchanged
    form = f'form="agent-form-{api.agent_id}"'
    assert f'<input type="hidden" {form} name="capacity.call" value="2">' in page
    assert f'<input type="hidden" {form} name="capacity.email" value="10">' in page
    assert re.search(rf'{form} name="capacity.chat" value="4"', page)
