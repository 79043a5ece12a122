"""Channel settings with structure (JSON values) through the API and on the admin channels page."""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import urlsplit

import orjson
from fastapi.testclient import TestClient

from tests.support import Api
from tests.web.test_workspace_api import sign_in

WIDGET_SETTINGS: dict[str, Any] = {
    "allowed_origins": ["https://shop.example", "https://*.shop.example"],
    "prechat_fields": {"email": "required", "name": "optional"},
    "proactive": [{"message": {"en": "Need help?", "es": "¿Te ayudamos?"}, "url": "*/cart*", "after_seconds": 20}],
    "title": {"en": "Shop help", "es": "Ayuda"},
    "greeting": "Hello!",
    "max_upload_mb": 2,
}
TELEGRAM = {"bot_token": "123456:token", "secret_token": "webhook-secret"}  # noqa: S105 - test values


def widget(api: Api, **settings: Any) -> dict[str, Any]:
    body = {"kind": "widget", "name": "Shop chat", "settings": {**WIDGET_SETTINGS, **settings}}
    return dict(api.ok(api.post("/api/v1/channels", body), 201))


def config_of(api: Api, channel_id: int) -> dict[str, Any]:
    return dict(api.ok(api.get(f"/api/v1/channels/{channel_id}"))["config"])


def card(page: str, channel_id: int) -> str:
    start = page.index(f'id="channel-{channel_id}"')
    return page[start : page.index("</article>", start)]


def field_value(page: str, channel_id: int, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', card(page, channel_id))
    assert match, f"no field {name} on the card of channel {channel_id}"
    return html.unescape(match.group(1))


def addresses(page: str, channel_id: int) -> list[str]:
    """The values an admin can copy from a channel's card (readonly fields)."""
    return [html.unescape(v) for v in re.findall(r'<input[^>]* readonly value="([^"]*)"', card(page, channel_id))]


def test_invalid_json_for_a_structured_setting_is_refused_and_changes_nothing(api: Api) -> None:
    # given
    channel = widget(api)
    before = config_of(api, channel["id"])
    # when: the proactive rules are sent as broken JSON text, with another change in the same request
    answer = api.patch(
        f"/api/v1/channels/{channel['id']}",
        {"name": "Renamed", "settings": {"greeting": "Hi there", "proactive": '[{"message": "Hi",}]'}},
    )
    # then: a precise refusal, and neither the name nor any setting changed
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "setting_json_invalid"
    assert error["details"] == [{"field": "settings.proactive"}]
    assert error["message"] == (
        'The setting "proactive" is not valid JSON (line 1, column 18): check quotes and commas.'
    )
    after = api.ok(api.get(f"/api/v1/channels/{channel['id']}"))
    assert after["name"] == "Shop chat"
    assert after["config"] == before


def test_a_structured_setting_of_the_wrong_shape_is_refused_in_the_agents_language(api: Api) -> None:
    # given: an administrator who works in Spanish
    spanish = api.as_new_agent("sofia@example.com", role="admin")
    api.ok(api.patch(f"/api/v1/agents/{spanish.agent_id}", {"locale": "es"}))
    channel = widget(api)
    before = config_of(api, channel["id"])
    # when: the pre-chat fields are a list instead of an object
    answer = spanish.patch(f"/api/v1/channels/{channel['id']}", {"settings": {"prechat_fields": '["email"]'}})
    # then
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "setting_shape_invalid"
    assert answer.json()["error"]["message"] == "El ajuste «prechat_fields» debe ser un objeto JSON."
    assert config_of(api, channel["id"]) == before


def test_a_new_channel_with_invalid_json_is_not_created(api: Api) -> None:
    # when
    answer = api.post(
        "/api/v1/channels",
        {"kind": "webform", "name": "Contact form", "settings": {"allowed_origins": "[https://shop.example]"}},
    )
    # then
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "setting_json_invalid"
    assert api.ok(api.get("/api/v1/channels")) == []


def test_json_text_is_stored_as_its_value_and_plain_text_stays_text(api: Api) -> None:
    # given
    channel = widget(api)
    # when: the admin page sends what the admin typed, as text
    updated = api.ok(
        api.patch(
            f"/api/v1/channels/{channel['id']}",
            {
                "settings": {
                    "prechat_fields": ' {"email": "optional"} ',
                    "allowed_origins": "https://a.example, https://b.example",
                    "greeting": '{"en": "Hi", "es": "Hola"}',
                    "business_hours": "",
                }
            },
        )
    )
    # then
    assert updated["config"]["prechat_fields"] == {"email": "optional"}
    assert updated["config"]["allowed_origins"] == "https://a.example, https://b.example"
    assert updated["config"]["greeting"] == {"en": "Hi", "es": "Hola"}
    assert updated["config"]["proactive"] == WIDGET_SETTINGS["proactive"]
    assert "business_hours" not in updated["config"]


def test_the_admin_page_shows_settings_as_json_and_each_kinds_own_addresses(app_client: TestClient, api: Api) -> None:
    # given: a widget, a web form and a provider channel
    chat = widget(api)
    form = api.ok(
        api.post(
            "/api/v1/channels",
            {"kind": "webform", "name": "Contact form", "settings": {"allowed_origins": ["https://shop.example"]}},
        ),
        201,
    )
    partner = api.api_channel("Partner")
    sign_in(app_client)
    # when
    page = app_client.get("/admin/channels").text
    # then: every structured value reads back as the JSON it is, not as Python's repr
    for key in ("allowed_origins", "prechat_fields", "proactive", "title"):
        assert orjson.loads(field_value(page, chat["id"], f"settings.{key}")) == WIDGET_SETTINGS[key]
    assert field_value(page, chat["id"], "settings.greeting") == "Hello!"
    assert field_value(page, chat["id"], "settings.max_upload_mb") == "2"
    assert orjson.loads(field_value(page, form["id"], "settings.allowed_origins")) == ["https://shop.example"]
    # and: the widget shows its snippet, the form its addresses, and only the provider channel a webhook URL
    chat_token = chat["config"]["public_token"]
    form_url = f"http://testserver/forms/{form['config']['public_token']}"
    assert addresses(page, chat["id"]) == [
        f'<script async src="http://testserver/widget/{chat_token}/widget.js" data-token="{chat_token}"></script>'
    ]
    assert addresses(page, form["id"]) == [form_url, form_url]
    assert addresses(page, partner["id"]) == [f"http://testserver/webhooks/api/{partner['id']}"]
    assert "/webhooks/widget/" not in page and "/webhooks/webform/" not in page


def test_the_api_gives_each_kind_of_channel_the_address_it_is_reached_at(api: Api) -> None:
    # given
    widget = api.ok(api.post("/api/v1/channels", {"kind": "widget", "name": "Site"}), 201)
    form = api.ok(api.post("/api/v1/channels", {"kind": "webform", "name": "Contact form"}), 201)
    bot = api.ok(api.post("/api/v1/channels", {"kind": "telegram", "name": "Bot", "settings": TELEGRAM}), 201)
    # when
    listed = {c["id"]: c for c in api.ok(api.get("/api/v1/channels"))}
    # then: no webhook URL that would answer 404 for the kinds sites talk to directly
    token = widget["config"]["public_token"]
    assert "webhook_url" not in listed[widget["id"]]
    assert listed[widget["id"]]["script_url"].endswith(f"/widget/{token}/widget.js")
    assert f'data-token="{token}"' in listed[widget["id"]]["embed_snippet"]
    assert listed[form["id"]]["form_url"].endswith(f"/forms/{form['config']['public_token']}")
    assert listed[bot["id"]]["webhook_url"].endswith(f"/webhooks/telegram/{bot['id']}")
    assert api.client.get(urlsplit(listed[widget["id"]]["script_url"]).path).status_code == 200


def test_the_channels_page_shows_whether_a_secret_is_set_never_its_value_and_a_replaced_one_takes_over(
    api: Api, app_client: TestClient
) -> None:
    # given: a channel with its generated signing secret, and a widget without an identity secret
    partner = api.api_channel("Partner")
    chat = widget(api)
    sign_in(app_client)
    # when: the page is shown, then the secret replaced from it
    before = app_client.get("/admin/channels").text
    replaced = api.patch(f"/api/v1/channels/{partner['id']}", {"settings": {"secret": "a-replaced-secret-123"}})
    after = app_client.get("/admin/channels").text
    payload = {"id": "m-1", "contact": {"external_id": "c-1"}, "text": "Hola"}
    with_old = api.webhook(partner, payload)
    with_new = api.webhook(partner, payload, secret="a-replaced-secret-123")
    # then
    assert "set; type to replace" in card(before, partner["id"]) and "not set" in card(before, chat["id"])
    assert partner["secret"] not in before
    assert replaced.status_code == 200 and "a-replaced-secret-123" not in replaced.text
    assert "a-replaced-secret-123" not in after
    assert with_old.status_code == 401
    assert with_new.status_code == 200, with_new.text
