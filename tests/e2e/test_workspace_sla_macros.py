"""The workspace's routing, SLA and automation parts in real headless Chromium (SQLite and PostgreSQL).

The away toggle and routing, macros, "Send later", SLA due times in the list and the header
that turn breached when the server's clock passes the target, sorting by SLA due time, and
the breach notification. The server runs on a frozen clock the tests move; the SLA engine's
periodic pass is run on demand (`engine.tick()`), so nothing sleeps.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from hilo.agents.actions import create_agent, create_team, create_token
from hilo.app import create_app
from hilo.clock import FrozenClock
from hilo.consumers.engine import Engine
from tests.e2e.test_agent_ui import (
    PASSWORD,
    Agent,
    Live,
    _serve_app,
    customer,
    no_page_errors,
    open_conversation,
    page_for,
    served_settings,
)
from tests.support import Api, live_client

pytestmark = pytest.mark.e2e

HOUR = 3600


@dataclass
class Desk(Live):
    engine: Engine


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Desk]:
    settings, port = served_settings(request, tmp_path_factory, sqlite_template, "ws")
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    app = create_app(settings, clock=clock)
    with app.state.runtime.transaction() as tx:
        admin = create_agent(tx, email="ana@example.com", name="Ana Admin", password=PASSWORD, role="admin")
        bruno = create_agent(tx, email="bruno@example.com", name="Bruno Díaz", password=PASSWORD)
        team = create_team(tx, "Support", "Front line", [admin.id, bruno.id])
        _row, token = create_token(tx, admin, "e2e")
        agents = {
            "ana": Agent(admin.email, admin.name, admin.id),
            "bruno": Agent(bruno.email, bruno.name, bruno.id),
        }
        team_id = team.id
    server, thread = _serve_app(app, port)
    try:
        with live_client(settings.base_url) as http:
            api = Api(http, token, agents["ana"].id)  # type: ignore[arg-type]
            engine = app.state.routing_engine
            yield Desk(settings.base_url, clock, api, agents, team_id, [], "http://127.0.0.1:9/hook", engine)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def eventually(check: Callable[[], Any], timeout: float = 10) -> Any:
    """Poll the API until `check` returns something true (the engine works on its own thread)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            assert result, "the server did not get there in time"
            return result
        time.sleep(0.1)


def sla_of(live: Desk, conversation_id: int) -> dict[str, Any]:
    return live.api.ok(live.api.get(f"/api/v1/conversations/{conversation_id}/sla"))  # type: ignore[no-any-return]


def ensure_policy(live: Desk) -> None:
    """Half an hour to answer, warning at half time (tried first by every conversation after it)."""
    if not live.api.ok(live.api.get("/api/v1/sla-policies")):
        live.api.ok(
            live.api.post(
                "/api/v1/sla-policies", {"name": "Standard", "first_response_seconds": 1800, "warning_share": 0.5}
            ),
            201,
        )


def test_away_toggle_makes_routing_skip_the_agent(browser: Browser, contexts: list[BrowserContext], live: Desk) -> None:
    # given: a routing team of Ana alone, round robin; Ana's inbox is open (she is online)
    team = live.api.ok(live.api.post("/api/v1/teams", {"name": "Desk", "member_ids": [live.agents["ana"].id]}), 201)
    live.api.ok(live.api.put(f"/api/v1/routing/teams/{team['id']}", {"strategy": "round_robin", "auto_assign": True}))
    shop = live.api.api_channel("Routing shop", live.receiver_url)
    page = page_for(browser, contexts, live, "ana")
    # when: she sets herself away from her avatar menu
    page.click("[data-action=menu][data-menu=user-menu]")
    page.click("#away-toggle")
    # then: the menu shows it at once, and routing knows
    expect(page.locator("#away-toggle")).to_have_attribute("aria-checked", "true")
    expect(page.locator(".topbar .me")).to_have_class(re.compile(r"\bis-away\b"))
    agents = live.api.ok(live.api.get("/api/v1/routing/agents"))
    assert next(a for a in agents if a["agent_id"] == live.agents["ana"].id)["availability"] == "away"
    # when: a conversation comes to her team
    conversation = customer(live, shop, "Is anyone there?", name="Rita Routing")
    live.api.ok(live.api.patch(f"/api/v1/conversations/{conversation}", {"team_id": team["id"]}))
    # then: it waits in the queue instead of going to her
    routing = eventually(
        lambda: (r := live.api.ok(live.api.get(f"/api/v1/conversations/{conversation}/routing")))["queued"] and r
    )
    assert routing["queue_reason"] == "no_agent_online"
    assert live.api.ok(live.api.get(f"/api/v1/conversations/{conversation}"))["assignee_id"] is None
    # when: she is available again
    page.click("[data-action=menu][data-menu=user-menu]")
    page.click("#away-toggle")
    expect(page.locator("#away-toggle")).to_have_attribute("aria-checked", "false")
    # then: the queue drains to her
    eventually(
        lambda: live.api.ok(live.api.get(f"/api/v1/conversations/{conversation}"))["assignee_id"]
        == live.agents["ana"].id
    )
    no_page_errors(page)


def test_agent_runs_a_macro_from_the_keyboard(browser: Browser, contexts: list[BrowserContext], live: Desk) -> None:
    # given: a shared macro that labels and raises the priority
    live.api.ok(
        live.api.post(
            "/api/v1/macros",
            {
                "name": "Escalate VIP",
                "shared": True,
                "actions": [
                    {"type": "add_labels", "labels": ["vip"]},
                    {"type": "set_priority", "priority": "urgent"},
                ],
            },
        ),
        201,
    )
    shop = live.api.api_channel("Macro shop", live.receiver_url)
    conversation = customer(live, shop, "I am a big customer", name="Marco Macro")
    page = page_for(browser, contexts, live, "ana")
    open_conversation(page, live, conversation)
    # when: she opens the macro menu with the keyboard and runs the macro
    page.focus("#macro-button")
    page.keyboard.press("Enter")
    item = page.locator("#macro-menu [role=menuitem]", has_text="Escalate VIP")
    expect(item).to_be_focused()
    page.keyboard.press("Enter")
    # then: the result is shown, and the header has the label and the priority
    expect(page.locator("#toasts")).to_contain_text("Macro Escalate VIP applied.")
    expect(page.locator("#labels .chip", has_text="vip")).to_be_visible()
    expect(page.locator("select[data-patch=priority]")).to_have_value("urgent")
    changed = live.api.ok(live.api.get(f"/api/v1/conversations/{conversation}"))
    assert changed["priority"] == "urgent"
    assert changed["labels"] == ["vip"]
    no_page_errors(page)


def test_agent_schedules_a_reply_sees_it_and_cancels_it(
    browser: Browser,
    contexts: list[BrowserContext],
    live: Desk,
) -> None:
    # given: the browser's clock agrees with the server's
    shop = live.api.api_channel("Later shop", live.receiver_url)
    conversation = customer(live, shop, "Call me tomorrow", name="Lola Later")
    page = page_for(browser, contexts, live, "ana")
    page.clock.set_fixed_time(live.clock.now())
    open_conversation(page, live, conversation)
    # when: she writes a reply and schedules it from the send button's menu
    page.fill("#composer-body", "Good morning! Here is the update.")
    page.click("[data-menu=send-menu]")
    page.click("[data-ws-action=send-later]")
    expect(page.locator("#send-later-dialog")).to_be_visible()
    page.fill("#send-later-at", "2026-03-03T10:00")
    page.click("#send-later-form button[type=submit]")
    # then: it is listed above the composer, and the API has it
    listed = page.locator("#scheduled-list li")
    expect(listed).to_have_count(1)
    expect(listed).to_contain_text("Good morning! Here is the update.")
    expect(page.locator("#composer-body")).to_have_value("")
    [item] = live.api.ok(
        live.api.get("/api/v1/scheduled-messages", params={"conversation_id": conversation, "state": "pending"})
    )
    assert item["body"] == "Good morning! Here is the update."
    # when: she cancels it
    page.once("dialog", lambda dialog: dialog.accept())
    listed.locator("[data-cancel-scheduled]").click()
    # then
    expect(page.locator("#scheduled-list")).to_have_count(0)
    [cancelled] = live.api.ok(live.api.get("/api/v1/scheduled-messages", params={"conversation_id": conversation}))
    assert cancelled["state"] == "cancelled"
    no_page_errors(page)


def test_sla_due_times_sort_and_turn_breached_with_a_notification(
    browser: Browser,
    contexts: list[BrowserContext],
    live: Desk,
) -> None:
    # given: a 30-minute first-response target; two customers five minutes apart, Ana's team
    ensure_policy(live)
    shop = live.api.api_channel("SLA shop", live.receiver_url)
    first = customer(live, shop, "Anyone?", name="Sofía First")
    live.clock.advance(minutes=5)
    second = customer(live, shop, "Hello?", name="Samuel Second")
    for conversation in (first, second):
        live.api.ok(
            live.api.patch(
                f"/api/v1/conversations/{conversation}",
                {"assignee_id": live.agents["ana"].id, "team_id": live.team_id},
            )
        )
        eventually(lambda c=conversation: sla_of(live, c)["status"] == "on_track")
    page = page_for(browser, contexts, live, "ana")
    open_conversation(page, live, first, view="mine")
    # then: the due time is in the list row and in the header
    row_badge = page.locator(f"#row-{first} .sla")
    expect(row_badge).to_be_visible()
    expect(row_badge.locator(".sla-text")).to_have_text(re.compile(r"in \d+ min"))
    header = page.locator("#conv-sla .sla")
    expect(header).to_contain_text(re.compile(r"First response due in \d+ min"))
    # when: sorting by SLA due time
    page.select_option("#list-form select[name=sort]", "sla_due")
    expect(page).to_have_url(re.compile(r"sort=sla_due"))
    # then: the one due first comes first, although the other wrote last
    expect(page.locator("#list")).to_have_attribute("data-sort", "sla_due")
    ids = page.locator("#rows .row").evaluate_all("rows => rows.map(r => Number(r.dataset.id))")
    assert ids.index(first) < ids.index(second)
    # when: the server's clock passes the first target and the SLA pass runs
    live.clock.advance(minutes=28)
    live.engine.tick()
    # then: the header and the row turn breached, live
    expect(page.locator("#conv-sla .sla")).to_have_class(re.compile(r"\bsla-breached\b"))
    expect(page.locator("#conv-sla .sla")).to_contain_text("First response was due")
    expect(page.locator(f"#row-{first} .sla")).to_have_class(re.compile(r"\bsla-breached\b"))
    # and: a notification says so, as a toast and in the bell's list
    expect(page.locator("#toasts")).to_contain_text("First response target missed")
    page.click("#bell")
    expect(page.locator("#notifications")).to_contain_text("First response target missed")
    no_page_errors(page)
