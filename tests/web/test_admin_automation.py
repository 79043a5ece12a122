"""The routing and automation administration pages: who may open them, and what they show."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hilo.clock import FrozenClock
from tests.routing.desk import Desk
from tests.support import Api
from tests.web.test_workspace_api import sign_in

PAGES = (
    "/admin/routing",
    "/admin/business-hours",
    "/admin/sla",
    "/admin/rules",
    "/admin/macros",
    "/admin/canned-responses",
)
MADRID = {
    "name": "Madrid office",
    "timezone": "Europe/Madrid",
    "periods": {"mon": [["09:00", "14:00"], ["15:00", "18:00"]], "tue": [["09:00", "18:00"]]},
    "holiday_country": "ES",
    "holiday_subdivision": "MD",
    "out_of_office_message": {"en": "We are closed; we answer from 9:00.", "es": "Estamos cerrados."},
    "is_default": True,
}


@pytest.fixture
def desk(api: Api, clock: FrozenClock) -> Iterator[Desk]:
    desk = Desk(api, clock)
    yield desk
    desk.close()


def page_data(page: str) -> dict[str, Any]:
    """What the page hands admin.js (the same shapes the API returns)."""
    match = re.search(r'<script type="application/json" id="admin-data">(.*?)</script>', page, re.S)
    assert match
    return dict(json.loads(html.unescape(match.group(1))))


def text_of(page: str) -> str:
    """The page's visible text, tags and extra spaces removed."""
    blocks = re.sub(r"<script.*?</script>|<template.*?</template>", " ", page, flags=re.S)
    inline = re.sub(r"</?(strong|span|code|a|time)\b[^>]*>", "", blocks)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", inline)))


def test_the_pages_are_for_administrators_and_read_only_for_supervisors(app_client: TestClient, api: Api) -> None:
    # given
    api.as_new_agent("plain@example.com")
    api.as_new_agent("super@example.com", role="supervisor")
    # when: nobody is signed in
    answers = [app_client.get(path, follow_redirects=False) for path in PAGES]
    # then
    assert [a.status_code for a in answers] == [303] * len(PAGES)
    assert answers[0].headers["location"] == "/login?next=%2Fadmin%2Frouting"
    # when: a plain agent signs in
    sign_in(app_client, "plain@example.com")
    # then
    for path in PAGES:
        refused = app_client.get(path)
        assert refused.status_code == 403, path
        assert "admin-data" not in refused.text
    # when: a supervisor signs in
    sign_in(app_client, "super@example.com")
    # then: every page opens, says it is read-only and offers nothing to change
    for path in PAGES:
        page = app_client.get(path)
        assert page.status_code == 200, path
        assert "only administrators can change them" in page.text
        assert 'type="submit"' not in page.text
        assert 'data-admin-action="delete"' not in page.text
        assert page_data(page.text)["can_edit"] is False
        assert "Content-Security-Policy" in page.headers
    # when: the administrator signs in
    sign_in(app_client)
    # then: the same pages can be edited, and each is in the administration menu
    for path in PAGES:
        editable = app_client.get(path).text
        assert page_data(editable)["can_edit"] is True
        assert "only administrators can change them" not in editable
        assert f'href="{path}" aria-current="page"' in editable


def test_routing_page_shows_team_settings_agents_and_the_queue_with_its_reasons(
    app_client: TestClient, desk: Desk
) -> None:
    # given: a team on the skills strategy whose only agent is offline, with a calendar
    bea = desk.agent("Bea")
    calendar = desk.api.ok(desk.api.post("/api/v1/business-hours", MADRID), 201)
    team = desk.team("Billing", [bea], "skills", auto_assign=True, business_hours_id=calendar["id"])
    desk.api.ok(
        desk.api.put(f"/api/v1/routing/agents/{bea.agent_id}", {"skills": ["language:es"], "capacity": {"chat": 5}})
    )
    desk.route_to_team(team)
    waiting = desk.customer_writes("Hola", name="Carla Gil")
    sign_in(app_client)
    # when
    page = app_client.get("/admin/routing").text
    text = text_of(page)
    # then: the team's settings
    card = page[page.index(f'id="team-{team}"') :]
    card = card[: card.index("</article>")]
    assert 'value="skills" checked' in card
    assert re.search(r'name="auto_assign" checked', card)
    assert not re.search(r'name="reassign_when_offline" checked', card)
    assert f'<option value="{calendar["id"]}" selected>Madrid office</option>' in card
    assert "1 waiting" in card
    # then: the agent's skills, capacity per kind of channel and presence
    row = page[page.index(f'id="agent-{bea.agent_id}"') :]
    row = row[: row.index("</tr>")]
    assert 'value="language:es"' in row
    assert 'name="capacity.chat" value="5"' in row
    assert 'name="capacity.email" value="10"' in row
    assert "Offline" in row
    # then: the queue, with why the conversation waits
    assert f"#{waiting} Carla Gil" in text
    assert "Nobody of the team is online and available." in text


def test_business_hours_page_shows_calendars_open_now_and_next_opening(app_client: TestClient, api: Api) -> None:
    # given: Monday 2 March 2026, 10:00 in Madrid; one calendar open now, one closed until Tuesday
    madrid = api.ok(api.post("/api/v1/business-hours", MADRID), 201)
    api.ok(
        api.post(
            "/api/v1/business-hours",
            {"name": "Night shift", "timezone": "America/Mexico_City", "periods": {"tue": [["22:00", "24:00"]]}},
        ),
        201,
    )
    sign_in(app_client)
    # when
    page = app_client.get("/admin/business-hours").text
    text = text_of(page)
    # then
    madrid_card = text[text.index("Madrid office") : text.index("Night shift")]
    assert "Default" in madrid_card
    assert "Open now" in madrid_card
    assert "Closes Monday, 2 March 2026, 14:00" in madrid_card
    assert "Monday 09:00–14:00, 15:00–18:00 Tuesday 09:00–18:00 Wednesday Closed" in madrid_card
    assert "Public holidays: Spain · MD" in madrid_card
    assert "We are closed; we answer from 9:00." in madrid_card
    assert "Estamos cerrados." in madrid_card
    night_card = text[text.index("Night shift") :]
    assert "Closed now" in night_card
    assert "Next opening: Tuesday, 3 March 2026, 22:00" in night_card
    assert "Public holidays: none" in night_card
    # then: the editor gets the calendars as the API gives them, and the regions of each country
    data = page_data(page)
    assert [c["id"] for c in data["items"]] == [madrid["id"], madrid["id"] + 1]
    assert data["items"][0]["periods"]["mon"] == [["09:00", "14:00"], ["15:00", "18:00"]]
    assert "MD" in data["subdivisions"]["ES"]


def test_sla_page_lists_policies_in_order_with_targets_and_conditions(app_client: TestClient, api: Api) -> None:
    # given
    calendar = api.ok(api.post("/api/v1/business-hours", MADRID), 201)
    team = api.ok(api.post("/api/v1/teams", {"name": "Billing", "member_ids": []}), 201)
    api.ok(api.post("/api/v1/sla-policies", {"name": "Everyone", "position": 5, "resolution_seconds": 3 * 86400}), 201)
    api.ok(
        api.post(
            "/api/v1/sla-policies",
            {
                "name": "VIP",
                "position": 1,
                "active": False,
                "business_hours_id": calendar["id"],
                "warning_share": 0.75,
                "conditions": {
                    "priorities": ["high", "urgent"],
                    "channel_kinds": ["whatsapp"],
                    "team_ids": [team["id"]],
                    "contact_attributes": {"plan": "gold"},
                },
                "first_response_seconds": 900,
                "next_response_seconds": 5400,
            },
        ),
        201,
    )
    sign_in(app_client)
    # when
    text = text_of(app_client.get("/admin/sla").text)
    # then: VIP comes first (it is tried first), then Everyone
    assert text.index("VIP") < text.index("Everyone")
    vip = text[text.index("VIP") : text.index("Everyone")]
    assert "Inactive" in vip
    assert "Priority: High, Urgent" in vip
    assert "Channel: WhatsApp" in vip
    assert "Team: Billing" in vip
    assert 'plan = "gold"' in vip
    assert "15 min" in vip
    assert "1 h 30 min" in vip
    assert "Business hours: Madrid office" in vip
    assert "75 %" in vip
    everyone = text[text.index("Everyone") :]
    assert "Every conversation" in everyone
    assert "3 d" in everyone
    assert "Round the clock" in everyone


def test_rules_page_shows_rules_by_event_their_runs_and_auto_resolve(app_client: TestClient, desk: Desk) -> None:
    # given: a rule that has run once, a second one switched off, and auto-resolve after 72 hours
    team = desk.team("Billing", [])
    rule = desk.api.ok(
        desk.api.post(
            "/api/v1/automation/rules",
            {
                "name": "Refunds to billing",
                "event": "message.received",
                "conditions": {
                    "all": [{"field": "message.text", "op": "contains", "value": "refund"}],
                    "any": [
                        {"field": "contact.attributes.plan", "op": "eq", "value": "gold"},
                        {"field": "conversation.channel", "op": "in", "value": ["api", "email"]},
                    ],
                },
                "actions": [
                    {"type": "add_labels", "labels": ["billing"]},
                    {"type": "assign_team", "team_id": team},
                    {"type": "reply", "body": {"en": "Billing will answer.", "es": "Facturación responde."}},
                ],
            },
        ),
        201,
    )
    desk.api.ok(
        desk.api.post(
            "/api/v1/automation/rules",
            {
                "name": "Idle nudge",
                "event": "conversation.idle",
                "idle_hours": 48,
                "active": False,
                "actions": [{"type": "add_note", "body": "Still waiting?"}],
            },
        ),
        201,
    )
    desk.api.ok(
        desk.api.put(
            "/api/v1/automation/settings", {"auto_resolve_after_hours": 72, "auto_resolve_message": {"en": "Bye!"}}
        )
    )
    conversation = desk.customer_writes("I want a refund")
    sign_in(app_client)
    # when
    page = app_client.get("/admin/rules").text
    text = text_of(page)
    # then: each rule under its event, with its conditions and actions in words
    assert "A customer's message arrives message.received" in text
    assert "No message for some hours conversation.idle" in text
    refunds = text[text.index("Refunds to billing") : text.index("Idle nudge")]
    assert "Message · Text contains “refund”" in refunds
    assert (
        "and at least one of: · Contact · plan is “gold” · Conversation · Channel (the last one used) is one of"
        in refunds
    )
    assert "is one of “api”, “email”" in refunds
    assert "Add labels: billing" in refunds
    assert "Give to a team: Billing" in refunds
    assert "Reply to the customer: en “Billing will answer.” es “Facturación responde.”" in refunds
    assert f'aria-checked="true" data-admin-action="toggle" data-id="{rule["id"]}"' in page
    assert f'aria-checked="false" data-admin-action="toggle" data-id="{rule["id"] + 1}"' in page
    assert "After 48.0 idle hours" in text
    # then: the run log
    runs = text[text.index("Recent runs") : text.index("Auto-resolve")]
    assert f"Refunds to billing #{conversation}" in runs
    assert "Applied" in runs
    assert "Add labels: done" in runs
    # then: the auto-resolve setting
    assert 'name="auto_resolve_after_hours" min="0" step="any" value="72.0"' in page
    assert ">Bye!</textarea>" in page
    # when: the run log is filtered to the other rule
    filtered = text_of(app_client.get(f"/admin/rules?rule_id={rule['id'] + 1}").text)
    # then
    assert "No rule has run yet." in filtered
    assert "Show every rule" in filtered


def test_macros_and_canned_responses_pages_list_them_with_variables_help(app_client: TestClient, api: Api) -> None:
    # given
    canned = api.ok(
        api.post(
            "/api/v1/canned-responses",
            {
                "shortcut": "refund",
                "title": "Refund policy",
                "body": "Hello {{contact.first_name}}, five days.",
                "translations": {"es": "Hola {{contact.first_name}}, cinco días."},
            },
        ),
        201,
    )
    api.ok(
        api.post(
            "/api/v1/macros",
            {
                "name": "Refund and close",
                "shared": True,
                "actions": [{"type": "reply", "canned_response_id": canned["id"]}, {"type": "resolve"}],
            },
        ),
        201,
    )
    api.ok(
        api.post("/api/v1/macros", {"name": "My own", "actions": [{"type": "set_priority", "priority": "high"}]}), 201
    )
    sign_in(app_client)
    # when
    macros = app_client.get("/admin/macros").text
    canned_page = app_client.get("/admin/canned-responses").text
    # then
    text = text_of(macros)
    assert "Refund and close Every agent" in text
    assert f"Reply to the customer: canned response #{canned['id']}" in text
    assert "My own Only Admin" in text
    assert "Set the priority: High" in text
    assert f'<option value="{canned["id"]}">/refund · Refund policy</option>' in macros
    assert 'value="webhook"' not in macros
    text = text_of(canned_page)
    assert "/refund Refund policy Hello {{contact.first_name}}, five days. es" in text
    assert "{{contact.first_name}} the contact's first name" in text
    assert page_data(canned_page)["items"][0]["translations"] == {"es": "Hola {{contact.first_name}}, cinco días."}


def test_pages_speak_the_administrators_language(app_client: TestClient, api: Api) -> None:
    # given: an administrator who works in Spanish
    api.ok(api.patch(f"/api/v1/agents/{api.agent_id}", {"locale": "es"}))
    api.ok(api.post("/api/v1/business-hours", MADRID), 201)
    sign_in(app_client)
    # when
    hours = app_client.get("/admin/business-hours").text
    rules = app_client.get("/admin/rules").text
    # then
    assert "Abierto ahora" in hours
    assert "Cierra el lunes, 2 de marzo de 2026, 14:00" in text_of(hours)
    assert "Lunes" in hours
    assert "Reglas de automatización" in rules
    assert page_data(rules)["strings"]["Saved."] == "Guardado."
    assert page_data(rules)["labels"]["operators"]["contains"] == "contiene"
