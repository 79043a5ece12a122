"""Channel tools over the API: WhatsApp template sync and list, the SMS segment preview,
and provider account errors kept as events."""

from __future__ import annotations

from sqlalchemy import select

from hilo.events.models import Event
from tests.channels.provider_support import (
    create_channel,
    fixture,
    post_meta,
    twilio_channel,
    whatsapp_channel,
)
from tests.fakes.meta import FakeGraphAPI
from tests.fakes.twilio import FakeTwilio
from tests.support import Api


def test_admin_syncs_approved_templates_and_agents_list_them(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given: three templates at Meta, one still pending review, served one page at a time
    channel = whatsapp_channel(api, fake_graph)
    agent = api.as_new_agent("agent@example.com")
    # when
    synced = api.ok(api.post(f"/api/v1/channels/{channel['id']}/templates/sync"))
    listed = agent.ok(agent.get(f"/api/v1/channels/{channel['id']}/templates"))
    # then
    assert [(t["name"], t["language"]) for t in synced["items"]] == [("hello_world", "en_US"), ("order_update", "es")]
    assert listed == synced
    [call] = fake_graph.requests_to("/message_templates")
    assert call.path == "/v21.0/102290129340398/message_templates"
    assert api.ok(api.get(f"/api/v1/channels/{channel['id']}"))["config"]["templates"] == synced["items"]


def test_templates_an_admin_enters_as_json_are_stored_as_a_list_and_broken_json_is_refused(
    api: Api, fake_graph: FakeGraphAPI
) -> None:
    # given: the admin page and the command line send the list as JSON text
    channel = whatsapp_channel(api, fake_graph)
    url = f"/api/v1/channels/{channel['id']}"
    entered = '[{"name": "shipping_update", "language": "es", "components": []}]'
    # when
    saved = api.patch(url, {"settings": {"templates": entered}})
    broken = api.patch(url, {"settings": {"templates": '[{"name": "x",}]'}})
    not_a_list = api.patch(url, {"settings": {"templates": '{"name": "x"}'}})
    listed = api.ok(api.get(f"{url}/templates"))
    # then
    assert saved.status_code == 200, saved.text
    assert listed["items"] == [{"name": "shipping_update", "language": "es", "components": []}]
    assert (broken.status_code, broken.json()["error"]["code"]) == (422, "setting_json_invalid")
    assert (not_a_list.status_code, not_a_list.json()["error"]["code"]) == (422, "setting_shape_invalid")


def test_template_sync_is_for_admins_and_whatsapp_only(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given
    whatsapp = whatsapp_channel(api, fake_graph)
    telegram = create_channel(api, "telegram", {"bot_token": "1:x", "secret_token": "s"})
    agent = api.as_new_agent("agent@example.com")
    # when
    by_agent = agent.post(f"/api/v1/channels/{whatsapp['id']}/templates/sync")
    on_telegram = api.post(f"/api/v1/channels/{telegram['id']}/templates/sync")
    missing = api.get("/api/v1/channels/999/templates")
    # then
    assert (by_agent.status_code, by_agent.json()["error"]["code"]) == (403, "forbidden")
    assert (on_telegram.status_code, on_telegram.json()["error"]["code"]) == (422, "templates_not_supported")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "channel_not_found")
    assert fake_graph.requests == []


def test_template_sync_refused_by_meta_says_why(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given: a token Meta does not accept
    channel = whatsapp_channel(api, fake_graph, access_token="expired-token")
    # when
    answer = api.post(f"/api/v1/channels/{channel['id']}/templates/sync")
    # then
    assert answer.status_code == 502
    assert answer.json()["error"]["code"] == "template_sync_failed"
    assert "access token" in answer.json()["error"]["message"]
    assert "templates" not in api.ok(api.get(f"/api/v1/channels/{channel['id']}"))["config"]


def test_sms_preview_counts_segments_for_the_composer(api: Api) -> None:
    # given
    sms = create_channel(
        api, "sms", {"account_sid": "AC1", "auth_token": "t", "from_number": "+14155550100", "max_segments": 2}
    )
    telegram = create_channel(api, "telegram", {"bot_token": "1:x", "secret_token": "s"})
    agent = api.as_new_agent("agent@example.com")
    url = f"/api/v1/channels/{sms['id']}/preview"
    # when
    short = agent.ok(agent.post(url, {"body": "Your order ships today"}))
    accented = agent.ok(agent.post(url, {"body": "Tu pedido está en camino 🚚"}))
    long = agent.ok(agent.post(url, {"body": "a" * 400}))
    other = agent.ok(agent.post(f"/api/v1/channels/{telegram['id']}/preview", {"body": "hola"}))
    # then
    assert short["sms"] == {
        "encoding": "GSM-7",
        "segments": 1,
        "characters": 22,
        "remaining": 138,
        "max_segments": 2,
        "too_long": False,
    }
    assert (accented["sms"]["encoding"], accented["sms"]["segments"]) == ("UCS-2", 1)
    assert (long["sms"]["segments"], long["sms"]["too_long"]) == (3, True)
    assert other == {"channel_account_id": telegram["id"], "kind": "telegram", "characters": 4, "sms": None}


def test_whatsapp_account_error_webhook_is_kept_as_an_event(api: Api, fake_graph: FakeGraphAPI) -> None:
    # given
    channel = whatsapp_channel(api, fake_graph)
    # when: Meta reports a problem of the whole business account
    answer = post_meta(api, channel, fixture("whatsapp_errors_webhook_130429.json"))
    # then
    assert answer.status_code == 200, answer.text
    runtime = api.client.app.state.runtime  # type: ignore[attr-defined]
    with runtime.db.read() as session:
        [data] = session.execute(select(Event.data).where(Event.kind == "channel.provider_error")).scalars()
    assert data["channel_account_id"] == channel["id"]
    assert [e["code"] for e in data["errors"]] == [130429]
    assert api.conversations() == []


def test_media_limits_are_channel_settings(api: Api, fake_twilio: tuple[FakeTwilio, str]) -> None:
    # given
    twilio, base_url = fake_twilio
    channel = twilio_channel(api, twilio, base_url)
    # when
    updated = api.ok(
        api.patch(
            f"/api/v1/channels/{channel['id']}",
            {"settings": {"max_media_bytes": 5_000_000, "media_types": ["image/*", "application/pdf"]}},
        )
    )
    unknown = api.patch(f"/api/v1/channels/{channel['id']}", {"settings": {"max_media_size": 1}})
    # then
    assert updated["config"]["max_media_bytes"] == 5_000_000
    assert updated["config"]["media_types"] == ["image/*", "application/pdf"]
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "setting_unknown"
