"""Routing and automation administration in real headless Chromium (SQLite and PostgreSQL).

An administrator sets up business hours, an SLA policy, a canned response, a macro and a
rule (with a dry run first) through the pages only; the API then shows each as entered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from hilo.settings import Settings
from tests.e2e.steps import sign_in, watch_errors
from tests.e2e.widget_support import LiveHilo, served_hilo
from tests.support import Api

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"


@pytest.fixture
def live(settings: Settings) -> Iterator[LiveHilo]:
    with served_hilo(settings) as running:
        yield running


@pytest.fixture
def page(browser: Browser, live: LiveHilo) -> Iterator[Page]:
    """Ana, an administrator, signed in."""
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    watch_errors(opened)
    sign_in(opened, live.url, "ana@example.com")
    yield opened
    context.close()


def get(live: LiveHilo, path: str) -> Any:
    response = live.api.get(path)
    assert response.status_code == 200, response.text
    return response.json()


def visit(page: Page, live: LiveHilo, path: str) -> None:
    page.goto(f"{live.url}{path}")
    expect(page.locator("body[data-admin-ready]")).to_have_count(1)


def save(page: Page) -> None:
    """Submit the editor; the page comes back with the change listed."""
    page.click("#editor button[type=submit]")
    expect(page.locator("#editor")).not_to_be_visible()
    page.wait_for_load_state()
    expect(page.locator("body[data-admin-ready]")).to_have_count(1)


def field_error(page: Page, name: str) -> Any:
    return page.locator(f"#editor [data-field='{name}'] .field-error")


def page_errors(page: Page, allowed: tuple[str, ...] = ()) -> list[str]:
    """Script errors and failed requests, except the refusals the test caused on purpose."""
    return [e for e in page.errors if not any(a in e for a in allowed)]  # type: ignore[attr-defined]


def test_an_admin_sets_up_hours_sla_canned_macro_and_a_rule_with_a_dry_run(page: Page, live: LiveHilo) -> None:
    # given: a customer already asking for a refund on a generic API channel
    api = Api(live.api, live.token, 0)  # type: ignore[arg-type]
    channel = api.api_channel("Shop")
    api.inbound(channel, "carla-1", "Hello, I want a refund for order 41", name="Carla Gil")
    [conversation] = api.conversations()

    # when: a calendar with two periods on Monday and Spain's (Madrid's) public holidays is added
    visit(page, live, "/admin/business-hours")
    page.click("button[data-admin-action=edit][data-id='']")
    page.fill("#editor [name=name]", "Madrid office")
    page.fill("#editor [name=timezone]", "Europe/Madrid")
    monday = page.locator("#editor [data-day=mon]")
    monday.locator("[name=start]").fill("09:00")
    monday.locator("[name=end]").fill("14:00")
    monday.locator("[data-admin-action=add-period]").click()
    monday.locator("[name=start]").nth(1).fill("15:00")
    monday.locator("[name=end]").nth(1).fill("18:00")
    page.select_option("#editor [name=holiday_country]", "ES")
    page.select_option("#editor [name=holiday_subdivision]", "MD")
    page.fill("#editor [name=ooo_en]", "We are closed; we answer from 9:00.")
    save(page)
    # then: it is listed, with whether it is open now, and the API has it as entered
    card = page.locator(".card", has_text="Madrid office")
    expect(card).to_contain_text("09:00–14:00, 15:00–18:00")
    expect(card.locator(".next-open")).to_contain_text(re.compile(r"Closes|Next opening"))
    [calendar] = get(live, "/api/v1/business-hours")
    assert calendar["name"] == "Madrid office"
    assert calendar["timezone"] == "Europe/Madrid"
    assert calendar["periods"]["mon"] == [["09:00", "14:00"], ["15:00", "18:00"]]
    assert all(calendar["periods"][day] == [] for day in ("tue", "wed", "thu", "fri", "sat", "sun"))
    assert (calendar["holiday_country"], calendar["holiday_subdivision"]) == ("ES", "MD")
    assert calendar["out_of_office_message"] == {"en": "We are closed; we answer from 9:00."}

    # when: an SLA policy counting that calendar's hours is added
    visit(page, live, "/admin/sla")
    page.click("button[data-admin-action=edit][data-id='']")
    page.fill("#editor [name=name]", "VIP")
    page.fill("#editor [name=first_response]", "15")
    page.select_option("#editor [name=first_response_unit]", "60")
    page.fill("#editor [name=resolution]", "8")
    page.check("#editor input[name=basis][value=calendar]")
    page.select_option("#editor [name=business_hours_id]", str(calendar["id"]))
    page.fill("#editor [name=warning_share]", "75")
    page.check("#editor input[name=priorities][value=high]")
    page.check("#editor input[name=priorities][value=urgent]")
    page.click("#editor [data-admin-action=add-attribute]")
    page.fill("#editor [name=attr_key]", "plan")
    page.fill("#editor [name=attr_value]", "gold")
    save(page)
    # then
    expect(page.locator("tr", has_text="VIP")).to_contain_text("Business hours: Madrid office")
    [policy] = get(live, "/api/v1/sla-policies")
    assert policy["name"] == "VIP"
    assert (policy["first_response_seconds"], policy["next_response_seconds"], policy["resolution_seconds"]) == (
        900,
        None,
        28800,
    )
    assert policy["business_hours_id"] == calendar["id"]
    assert policy["warning_share"] == 0.75
    assert policy["conditions"] == {
        "priorities": ["high", "urgent"],
        "channel_kinds": [],
        "team_ids": [],
        "contact_attributes": {"plan": "gold"},
    }

    # when: a canned response is written, its variable inserted from the help list
    visit(page, live, "/admin/canned-responses")
    page.click("button[data-admin-action=edit][data-id='']")
    page.fill("#editor [name=shortcut]", "refund")
    page.fill("#editor [name=title]", "Refund policy")
    page.fill("#editor [name=body]", "Hello ")
    page.locator("#editor .variables summary").click()
    page.locator("#editor [data-variable='{{contact.first_name}}']").click()
    page.locator("#editor [name=body]").press("End")
    page.locator("#editor [name=body]").type(", refunds take five days.")
    page.fill("#editor [name=translation_es]", "Hola {{contact.first_name}}, los reembolsos tardan cinco días.")
    save(page)
    # then
    expect(page.locator("tr", has_text="/refund")).to_contain_text("Refund policy")
    [canned] = get(live, "/api/v1/canned-responses")
    assert canned["shortcut"] == "refund"
    assert canned["body"] == "Hello {{contact.first_name}}, refunds take five days."
    assert canned["translations"] == {"es": "Hola {{contact.first_name}}, los reembolsos tardan cinco días."}

    # when: a shared macro replies with it and resolves
    visit(page, live, "/admin/macros")
    page.click("button[data-admin-action=edit][data-id='']")
    page.fill("#editor [name=name]", "Refund and close")
    first = page.locator("#editor [data-action-row]").first
    first.locator("[name=type]").select_option("reply")
    first.locator("[name=reply_mode]").select_option("canned")
    first.locator("[name=canned_response_id]").select_option(str(canned["id"]))
    page.click("#editor [data-admin-action=add-action]")
    page.locator("#editor [data-action-row]").nth(1).locator("[name=type]").select_option("resolve")
    save(page)
    # then
    expect(page.locator("tr", has_text="Refund and close")).to_contain_text("Every agent")
    [macro] = get(live, "/api/v1/macros")
    assert (macro["name"], macro["shared"]) == ("Refund and close", True)
    assert macro["actions"] == [{"type": "reply", "canned_response_id": canned["id"]}, {"type": "resolve"}]

    # when: a rule is written and tried with a dry run before it is saved
    visit(page, live, "/admin/rules")
    page.click("button[data-admin-action=edit][data-id='']")
    page.fill("#editor [name=name]", "Refunds to billing")
    page.select_option("#editor [name=event]", "message.received")
    page.click("#editor [data-admin-action=add-condition][data-group=all]")
    condition = page.locator("#editor [data-conditions=all] [data-condition-row]")
    condition.locator("[name=field]").select_option("message.text")
    condition.locator("[name=op]").select_option("contains")
    condition.locator("[name=value]").fill("refund")
    action = page.locator("#editor [data-action-row]").first
    action.locator("[name=type]").select_option("add_labels")
    action.locator("[name=labels]").fill("billing, refunds")
    page.click("#editor [data-admin-action=dry-run-editor]")
    # then: it shows what it would do to the customer's conversation, and nothing changed
    results = page.locator("#editor [data-dry-run-results]")
    expect(results).to_contain_text("Scanned 1 conversation; 1 would match.")
    expect(results.locator(f"[data-conversation='{conversation['id']}']")).to_contain_text(
        "Add labels: billing, refunds — would change"
    )
    assert get(live, f"/api/v1/conversations/{conversation['id']}")["labels"] == []
    # when: it is saved, then dry-run from the list
    save(page)
    row = page.locator("tr", has_text="Refunds to billing")
    row.locator("[data-admin-action=dry-run]").click()
    expect(page.locator("#dry-run-dialog [data-dry-run-results]")).to_contain_text("1 would match")
    page.locator("#dry-run-dialog [data-admin-action=close]").click()
    # then: the API has the rule as entered
    [rule] = get(live, "/api/v1/automation/rules")
    assert rule["name"] == "Refunds to billing"
    assert rule["event"] == "message.received"
    assert rule["conditions"] == {"all": [{"field": "message.text", "op": "contains", "value": "refund"}], "any": []}
    assert rule["actions"] == [{"type": "add_labels", "labels": ["billing", "refunds"]}]
    assert rule["active"] is True
    # when: it is switched off from the list
    row.locator("[data-admin-action=toggle]").click()
    expect(page.locator("tr", has_text="Refunds to billing").locator("[role=switch]")).to_have_attribute(
        "aria-checked", "false"
    )
    assert get(live, f"/api/v1/automation/rules/{rule['id']}")["active"] is False
    assert page_errors(page) == []


def test_invalid_entries_are_shown_next_to_their_field(page: Page, live: LiveHilo) -> None:
    # given: the business-hours page, used from the keyboard
    visit(page, live, "/admin/business-hours")
    page.locator("button[data-admin-action=edit][data-id='']").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#editor")).to_be_visible()
    expect(page.locator("#editor [name=name]")).to_be_focused()
    # when: the time zone does not exist (only the server knows)
    page.keyboard.type("Mars base")
    page.fill("#editor [name=timezone]", "Mars/Olympus_Mons")
    page.locator("#editor [data-day=mon] [name=start]").fill("09:00")
    page.locator("#editor [data-day=mon] [name=end]").fill("17:00")
    page.click("#editor button[type=submit]")
    # then: the API's refusal is shown under the time zone, which is marked invalid
    expect(field_error(page, "timezone")).to_contain_text("unknown time zone")
    expect(page.locator("#editor [name=timezone]")).to_have_attribute("aria-invalid", "true")
    # when: a period ends before it starts (checked before sending)
    page.fill("#editor [name=timezone]", "Europe/Madrid")
    page.locator("#editor [data-day=mon] [name=end]").fill("08:00")
    page.click("#editor button[type=submit]")
    # then
    expect(field_error(page, "periods.mon")).to_have_text("A period must end after it starts.")
    expect(field_error(page, "timezone")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(page.locator("#editor")).not_to_be_visible()
    assert get(live, "/api/v1/business-hours") == []

    # when: an SLA policy has no target at all
    visit(page, live, "/admin/sla")
    page.click("button[data-admin-action=edit][data-id='']")
    page.fill("#editor [name=name]", "Nothing")
    page.click("#editor button[type=submit]")
    # then
    expect(field_error(page, "targets")).to_have_text(
        "Set at least one target: first response, next response or resolution."
    )

    # when: a rule's conditions are written as JSON with a missing quote, then with an unknown field
    visit(page, live, "/admin/rules")
    page.click("button[data-admin-action=edit][data-id='']")
    page.fill("#editor [name=name]", "Broken")
    page.check("#editor [name=json_mode]")
    page.fill("#editor [name=conditions_json]", '{"all": [{"field": "message.text, "op": "eq", "value": "x"}]}')
    page.click("#editor button[type=submit]")
    # then
    expect(field_error(page, "conditions")).to_contain_text(re.compile(r"Not valid JSON \(line 1, column \d+\)"))
    # when
    page.fill("#editor [name=conditions_json]", '{"all": [{"field": "message.mood", "op": "eq", "value": "x"}]}')
    page.fill("#editor [name=actions_json]", '[{"type": "resolve"}]')
    page.click("#editor button[type=submit]")
    # then: the API names the problem next to the conditions
    expect(field_error(page, "conditions")).to_contain_text("unknown field 'message.mood'")
    assert get(live, "/api/v1/automation/rules") == []
    assert page_errors(page, allowed=("status of 422",)) == []


def test_routing_settings_of_a_team_and_an_agent(page: Page, live: LiveHilo) -> None:
    # given: a team of one (Ana) that has never been set up, and a chat channel (capacity is per kind of channel)
    me = get(live, "/api/v1/auth/me")
    live.channel("api", outbound_url="http://127.0.0.1:9/hook")
    team = live.api.post("/api/v1/teams", json={"name": "Billing", "member_ids": [me["id"]]}).json()
    visit(page, live, "/admin/routing")
    card = page.locator(f"#team-{team['id']}")
    expect(card).to_contain_text("Not set up yet")
    # when: the team hands out conversations by skills, automatically
    card.locator("input[name=strategy][value=skills]").check()
    card.locator("input[name=auto_assign]").check()
    card.locator("button[type=submit]").click()
    # then
    expect(card).not_to_contain_text("Not set up yet")
    [routing] = [t for t in get(live, "/api/v1/routing/teams") if t["team_id"] == team["id"]]
    assert (routing["strategy"], routing["auto_assign"], routing["reassign_when_offline"]) == ("skills", True, False)
    # when: Ana's chat capacity is too large (only the server knows the limit)
    row = page.locator(f"#agent-{me['id']}")
    row.locator("input[name=skills]").fill("Language:ES, topic:billing")
    row.locator("input[name='capacity.chat']").fill("5000")
    row.locator("button[type=submit]").click()
    # then: the refusal is under the chat capacity
    expect(row.locator("[data-field='capacity.chat'] .field-error")).to_be_visible()
    expect(row.locator("input[name='capacity.chat']")).to_have_attribute("aria-invalid", "true")
    # when: it is corrected
    row.locator("input[name='capacity.chat']").fill("5")
    row.locator("button[type=submit]").click()
    # then: saved, and the kinds the page does not show (no voice or e-mail channel) kept as they were
    expect(row.locator(".field-error")).to_have_count(0)
    expect(row.locator("input[name=skills]")).to_have_value("language:es, topic:billing")
    expect(row.locator("input[name='capacity.call']")).to_have_attribute("type", "hidden")
    [agent] = [a for a in get(live, "/api/v1/routing/agents") if a["agent_id"] == me["id"]]
    assert agent["skills"] == ["language:es", "topic:billing"]
    assert agent["capacity"] == {"call": 1, "chat": 5, "email": 10}
    assert page_errors(page, allowed=("status of 422",)) == []
