"""Browser: an admin deactivates an agent (choosing what happens to their conversations) and reads the audit log."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, BrowserContext, expect

from tests.e2e.test_agent_ui import Live, customer, live, page_for  # noqa: F401 - `live` is a fixture

__all__ = ["live"]


def test_deactivate_an_agent_and_find_it_in_the_audit_log(
    browser: Browser, contexts: list[BrowserContext], live: Live
) -> None:
    # given: Bruno has a conversation and is signed in
    shop = live.api.api_channel("Audit shop", live.receiver_url)
    conversation = customer(live, shop, "Is my order late?", name="Olga Audit")
    live.api.ok(live.api.patch(f"/api/v1/conversations/{conversation}", {"assignee_id": live.agents["bruno"].id}))
    bruno = page_for(browser, contexts, live, "bruno")
    admin = page_for(browser, contexts, live, "ana")
    # when: the admin deactivates him and hands his conversations back
    admin.goto(f"{live.url}/admin/agents")
    admin.click(f"[data-agent-toggle='{live.agents['bruno'].id}']")
    dialog = admin.locator("#agent-deactivate")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Unassign them (they go back to their team's queue)").check()
    dialog.locator("button[type=submit]").click()
    # then
    expect(admin.locator(f"[data-agent-toggle='{live.agents['bruno'].id}']")).to_have_text("Activate")
    assert live.api.ok(live.api.get(f"/api/v1/conversations/{conversation}"))["assignee_id"] is None
    bruno.goto(f"{live.url}/inbox")
    bruno.wait_for_url(re.compile(r".*/login.*"))
    # when: the admin filters the audit log
    admin.goto(f"{live.url}/admin/audit")
    admin.select_option("select[name=kind]", "agent.deactivated")
    admin.click("form[data-audit-filters] button[type=submit]")
    # then
    rows = admin.locator("#audit-events tbody tr[data-kind]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Agent deactivated")
    expect(rows.first).to_contain_text("Ana Admin")
    expect(rows.first).to_contain_text("Bruno Díaz")
    assert admin.errors == []  # type: ignore[attr-defined]


def test_sign_out_another_browser_from_the_sessions_page(
    browser: Browser, contexts: list[BrowserContext], live: Live
) -> None:
    # given: Ana is signed in on two browsers
    other = page_for(browser, contexts, live, "ana")
    page = page_for(browser, contexts, live, "ana")
    # when: she signs every other browser out from her account page
    page.goto(f"{live.url}/account/sessions")
    rows = page.locator("#sessions tbody tr")
    expect(page.locator("#sessions .pill")).to_have_text("This browser")
    for remaining in range(rows.count() - 1, 0, -1):
        page.locator("[data-action=session-revoke]").first.click()
        expect(rows).to_have_count(remaining)
    # then: only this browser is left, and the other one is sent to sign in
    other.goto(f"{live.url}/inbox")
    other.wait_for_url(re.compile(r".*/login.*"))
    assert page.errors == []  # type: ignore[attr-defined]
