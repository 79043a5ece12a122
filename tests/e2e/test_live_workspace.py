"""Pages that follow the server without a reload, and the workspace on a phone (real Chromium).

Every change a colleague, a customer or a provider makes reaches the regions of the page
that show it (docs/agent-ui.md, "Live updates"): a reply's delivery status in the open
conversation, the SLA target in its header, a contact merge's history, a team's member
count. An open menu survives those re-renders; no page scrolls sideways at 390 px and its
actions stay reachable; the strict CSP holds while the list is filtered.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from hilo.agents.actions import create_agent, create_team, create_token
from hilo.app import create_app
from hilo.clock import FrozenClock
from hilo.settings import Settings
from tests.e2e.steps import PASSWORD, open_conversation, sign_in, watch_errors
from tests.e2e.test_agent_ui import (
    Agent,
    Live,
    Receiver,
    _serve_app,
    customer,
    no_page_errors,
    page_for,
    served_settings,
)
from tests.e2e.test_browser_security import WATCH_CSP
from tests.e2e.widget_support import LiveHilo, Site, agent_online, served_hilo, widget_site
from tests.fakes.server import serve_asgi
from tests.support import Api, eventually, live_client

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


@dataclass
class Team(Live):
    bruno: Api


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Team]:
    settings, port = served_settings(request, tmp_path_factory, sqlite_template, "live")
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    app = create_app(settings, clock=clock)
    with app.state.runtime.transaction() as tx:
        admin = create_agent(tx, email="ana@example.com", name="Ana Admin", password=PASSWORD, role="admin")
        bruno = create_agent(tx, email="bruno@example.com", name="Bruno Díaz", password=PASSWORD, role="admin")
        team = create_team(tx, "Support", "Front line", [admin.id, bruno.id])
        _row, token = create_token(tx, admin, "e2e")
        _row, bruno_token = create_token(tx, bruno, "e2e")
        agents = {
            "ana": Agent(admin.email, admin.name, admin.id),
            "bruno": Agent(bruno.email, bruno.name, bruno.id),
        }
        team_id = team.id
    receiver = Receiver()
    server, thread = _serve_app(app, port)
    try:
        with (
            serve_asgi(receiver.app()) as receiver_base,
            live_client(settings.base_url) as http,
            live_client(settings.base_url) as bruno_http,
        ):
            api = Api(http, token, agents["ana"].id)  # type: ignore[arg-type]
            colleague = Api(bruno_http, bruno_token, agents["bruno"].id)  # type: ignore[arg-type]
            yield Team(
                settings.base_url,
                clock,
                api,
                agents,
                team_id,
                receiver.received,
                f"{receiver_base}/hook",
                colleague,
            )
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_colleagues_reply_moves_the_sla_target_in_the_open_header(
    browser: Browser, contexts: list[BrowserContext], live: Team
) -> None:
    # given: a policy with a first response and a resolution target, and Ana reading the conversation
    if not live.api.ok(live.api.get("/api/v1/sla-policies")):
        live.api.ok(
            live.api.post(
                "/api/v1/sla-policies",
                {"name": "Standard", "first_response_seconds": 1800, "resolution_seconds": 4 * 3600},
            ),
            201,
        )
    shop = live.api.api_channel("SLA shop", live.receiver_url)
    conversation = customer(live, shop, "My parcel is late", name="Lola Late")
    eventually(
        lambda: live.api.ok(live.api.get(f"/api/v1/conversations/{conversation}/sla")).get("due_kind")
        == "first_response"
    )
    page = page_for(browser, contexts, live, "ana")
    open_conversation(page, live, conversation)
    header = page.locator("#conv-sla .sla")
    expect(header).to_contain_text(re.compile(r"First response due in \d+ min"))
    # when: Bruno answers the customer from his own browser (the API here)
    live.bruno.ok(live.bruno.post(f"/api/v1/conversations/{conversation}/messages", {"body": "On its way!"}), 201)
    # then: without a reload, the reply shows and the header moves on to the resolution target
    expect(page.locator(".msg-outbound", has_text="On its way!")).to_be_visible()
    expect(header).to_contain_text(re.compile(r"Resolution due in \d+ (h|hours?|min)"))
    expect(header).to_have_attribute("data-sla-kind", "resolution")
    no_page_errors(page)


def test_an_open_menu_survives_a_colleagues_edit_of_the_conversation(
    browser: Browser, contexts: list[BrowserContext], live: Team
) -> None:
    # given: Ana has the "..." menu of a conversation open
    shop = live.api.api_channel("Menu shop", live.receiver_url)
    conversation = customer(live, shop, "Can I change my address?", name="Mario Menu")
    page = page_for(browser, contexts, live, "ana")
    open_conversation(page, live, conversation)
    page.click("[data-action=menu][data-menu=conv-menu]")
    expect(page.locator("#conv-menu")).to_be_visible()
    # when: Bruno raises the priority and labels it meanwhile
    path = f"/api/v1/conversations/{conversation}"
    live.bruno.ok(live.bruno.patch(path, {"priority": "urgent", "labels": ["address"]}))
    # then: the header shows his change, and her menu is still open and works
    expect(page.locator("#conv-header select[data-patch=priority]")).to_have_value("urgent")
    expect(page.locator("#labels .chip", has_text="address")).to_be_visible()
    expect(page.locator("#conv-menu")).to_be_visible()
    expect(page.locator("[data-menu=conv-menu]")).to_have_attribute("aria-expanded", "true")
    page.click("#conv-menu [data-status=pending]")
    expect(page.locator("#conv-header")).to_have_attribute("data-status", "pending")
    no_page_errors(page)


def test_a_contact_merge_brings_the_merged_history_into_the_open_conversation(
    browser: Browser, contexts: list[BrowserContext], live: Team
) -> None:
    # given: the same person wrote twice as two contacts; Ana reads the newer conversation
    shop = live.api.api_channel("Merge shop", live.receiver_url)
    older = customer(live, shop, "My old order 12 never came", external_id="nora-old", name="Nora Old")
    live.api.ok(live.api.patch(f"/api/v1/conversations/{older}", {"status": "resolved"}))
    newer = customer(live, shop, "Hi again, about order 12", external_id="nora-new", name="Nora New")
    contacts = {
        c["id"]: c for c in (live.api.ok(live.api.get(f"/api/v1/conversations/{cid}")) for cid in (older, newer))
    }
    source = contacts[older]["contact_id"]
    target = contacts[newer]["contact_id"]
    page = page_for(browser, contexts, live, "ana")
    open_conversation(page, live, newer)
    expect(page.locator("#load-earlier")).to_have_count(0)
    # when: Bruno merges the older contact into this one
    live.bruno.ok(live.bruno.post(f"/api/v1/contacts/{target}/merge", {"source_id": source}))
    # then: without a reload the timeline offers the merged history, and the panel counts both conversations
    expect(page.locator("#load-earlier")).to_be_visible()
    page.click("#load-earlier button")
    expect(page.locator("#timeline .msg-inbound", has_text="My old order 12 never came")).to_be_visible()
    expect(page.locator("#context")).to_contain_text("nora-old")
    no_page_errors(page)


def test_a_new_team_shows_its_members_once_saved_and_a_colleagues_changes(
    browser: Browser, contexts: list[BrowserContext], live: Team
) -> None:
    # given: Ana adds a team on the teams page
    page = page_for(browser, contexts, live, "ana")
    page.goto(f"{live.url}/admin/teams")
    page.click("[data-action=open-dialog][data-dialog=team-add]")
    page.fill("#team-add input[name=name]", "Night shift")
    page.click("#team-add button[type=submit]")
    card = page.locator("article.card", has=page.locator("h2", has_text="Night shift"))
    expect(card.locator("[data-members]")).to_have_text("0 members")
    # when: she ticks both agents and saves
    for name in ("Ana Admin", "Bruno Díaz"):
        card.locator("label.check", has_text=name).locator("input").check()
    card.locator("button[type=submit]").click()
    # then: the card says what the server holds, without a reload
    expect(card.locator("[data-members]")).to_have_text("2 members")
    teams = live.api.ok(live.api.get("/api/v1/teams"))
    [night] = [t for t in teams if t["name"] == "Night shift"]
    assert sorted(night["member_ids"]) == sorted(a.id for a in live.agents.values())
    # when: Bruno, in his own browser (the API here), takes Ana off it and adds another team
    live.bruno.ok(live.bruno.put(f"/api/v1/teams/{night['id']}/members", {"member_ids": [live.agents["bruno"].id]}))
    weekend = live.bruno.ok(live.bruno.post("/api/v1/teams", {"name": "Weekend"}), 201)
    # then: Ana's page shows both changes without a reload
    expect(card.locator("[data-members]")).to_have_attribute("data-members", "1")
    expect(card.locator("label.check", has_text="Ana Admin").locator("input")).not_to_be_checked()
    expect(page.locator(f"#team-{weekend['id']} h2")).to_have_text("Weekend")
    no_page_errors(page)


def phone_page(browser: Browser, contexts: list[BrowserContext], live: Team) -> Page:
    context = browser.new_context(viewport=PHONE, locale="es-ES", has_touch=True)
    contexts.append(context)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    watch_errors(page)
    sign_in(page, live.url, live.agents["bruno"].email)
    return page


def scroll_width(page: Page) -> int:
    return int(page.evaluate("document.documentElement.scrollWidth"))


def reachable(page: Page, selector: str) -> None:
    """The control is inside the viewport and nothing covers its middle."""
    element = page.locator(selector)
    expect(element).to_be_visible()
    box = element.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (selector, box)
    covered = page.evaluate(
        "([x, y, selector]) => { const hit = document.elementFromPoint(x, y);"
        " return !!hit && hit.closest(selector) === document.querySelector(selector); }",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2, selector],
    )
    assert covered, f"{selector} is covered"


WORKSPACE_PAGES = [
    "/inbox?view=all",
    "/account",
    "/account/tokens",
    "/account/sessions",
    "/account/two-factor",
    "/admin/channels",
    "/admin/agents",
    "/admin/teams",
    "/admin/roles",
    "/admin/routing",
    "/admin/business-hours",
    "/admin/sla",
    "/admin/rules",
    "/admin/macros",
    "/admin/canned-responses",
]


def test_every_workspace_page_fits_a_phone_and_its_actions_are_reachable(
    browser: Browser, contexts: list[BrowserContext], live: Team
) -> None:
    # given: a conversation with a long name, a subject, an SLA target and labels; Bruno on a phone, in Spanish
    shop = live.api.api_channel("Phone shop", live.receiver_url)
    conversation = customer(
        live, shop, "¿Dónde está mi pedido?", name="María de los Ángeles Fernández-Villaverde y Santamaría"
    )
    live.api.ok(
        live.api.patch(
            f"/api/v1/conversations/{conversation}", {"priority": "urgent", "labels": ["envíos", "reclamación"]}
        )
    )
    page = phone_page(browser, contexts, live)
    # then: no page scrolls sideways
    for path in [*WORKSPACE_PAGES, f"/inbox?view=all&c={conversation}"]:
        page.goto(f"{live.url}{path}")
        page.wait_for_load_state("networkidle")
        assert scroll_width(page) <= PHONE["width"], path
    # and in the conversation, Resolve, the "..." menu and snooze are on screen and answer a tap
    expect(page.locator("#conversation")).to_have_attribute("data-id", str(conversation))
    reachable(page, "#conv-header [data-action=status][data-status=resolved]")
    reachable(page, "#conv-header [data-menu=conv-menu]")
    page.tap("#conv-header [data-menu=conv-menu]")
    reachable(page, "#conv-menu [data-action=snooze]")
    assert scroll_width(page) <= PHONE["width"]
    page.tap("#conv-menu [data-action=snooze]")
    reachable(page, "#snooze-dialog [data-snooze=hour]")
    # when: one tap on a preset
    page.tap("#snooze-dialog [data-snooze=hour]")
    # then: snoozed, and Resolve is still there to tap
    expect(page.locator("#conv-header")).to_have_attribute("data-status", "snoozed")
    assert live.api.ok(live.api.get(f"/api/v1/conversations/{conversation}"))["status"] == "snoozed"
    assert scroll_width(page) <= PHONE["width"]
    page.tap("#conv-header [data-action=status][data-status=resolved]")
    expect(page.locator("#conv-header")).to_have_attribute("data-status", "resolved")
    assert page.evaluate("window.__csp") == []
    no_page_errors(page)


def test_filtering_the_list_and_changing_views_breaks_no_policy(
    browser: Browser, contexts: list[BrowserContext], live: Team
) -> None:
    # given: Ana with a conversation open and a half-written reply (the composer has grown)
    shop = live.api.api_channel("Policy shop", live.receiver_url)
    first = customer(live, shop, "First question", name="Pia Policy")
    second = customer(live, shop, "Second question", name="Paco Policy")
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")
    contexts.append(context)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    page.set_default_timeout(10_000)
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text) if message.type == "error" else None)
    sign_in(page, live.url, live.agents["ana"].email)
    open_conversation(page, live, first)
    page.fill("#composer-body", "Let me check\nthat for you\nright away")
    # when: she filters the list, switches views, sorts, searches and opens the other conversation
    page.select_option("#list-form select[name=status]", "all")
    page.wait_for_load_state("networkidle")
    page.click(".nav-item[data-view=unassigned]")
    expect(page.locator("#list")).to_have_attribute("data-view", "unassigned")
    page.click(".nav-item[data-view=all]")
    expect(page.locator("#list")).to_have_attribute("data-view", "all")
    page.select_option("#list-form select[name=sort]", "created")
    page.wait_for_load_state("networkidle")
    page.fill("#q", "question")
    page.wait_for_load_state("networkidle")
    page.click(f"#row-{second} .row-link")
    expect(page.locator("#conversation")).to_have_attribute("data-id", str(second))
    page.click(f"#row-{first} .row-link")
    expect(page.locator("#conversation")).to_have_attribute("data-id", str(first))
    # then: the browser reported no violation
    assert page.evaluate("window.__csp") == []
    assert [text for text in console if "Content Security Policy" in text] == []


# -- A chat-widget visitor reads a reply: the agent's open conversation shows it -------------


@pytest.fixture
def widget_live(settings: Settings) -> Iterator[LiveHilo]:
    with served_hilo(settings, run_worker=True) as running:
        yield running


@pytest.fixture
def site(widget_live: LiveHilo) -> Iterator[Site]:
    with widget_site(widget_live) as running:
        yield running


# A slow network: the answer with the timeline's new entries reaches the page a second after the
# server wrote it (so it holds the reply as it was then, not read yet), while the websocket's
# status events come at once.
SLOW_TIMELINE = """
const realFetch = window.fetch;
window.fetch = async function (input, init) {
  const response = await realFetch(input, init);
  if (/\\/ui\\/conversations\\/\\d+\\/messages\\?after=/.test(String(input))) {
    await new Promise(function (resolve) { setTimeout(resolve, 1000); });
  }
  return response;
};
"""


def test_a_visitor_reading_a_reply_shows_read_in_the_open_conversation(
    browser: Browser, contexts: list[BrowserContext], widget_live: LiveHilo, site: Site
) -> None:
    # given: a visitor chatting in the widget, and Ana with the conversation open
    visitor_context = browser.new_context(locale="en-US")
    contexts.append(visitor_context)
    visitor = visitor_context.new_page()
    visitor.set_default_timeout(10_000)
    with agent_online(widget_live):
        visitor.goto(f"{site.url}/shop")
        visitor.locator("button.launcher").click()
        box = visitor.locator("#hilo-input")
        box.fill("Do you ship to Canarias?")
        box.press("Enter")
        expect(visitor.locator("li.msg.mine[data-id]", has_text="Canarias")).to_have_count(1)
        [conversation] = widget_live.conversations()
        agent_context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")
        contexts.append(agent_context)
        agent_context.add_init_script(SLOW_TIMELINE)
        page = agent_context.new_page()
        page.set_default_timeout(10_000)
        sign_in(page, widget_live.url, "ana@example.com")
        open_conversation(page, widget_live, conversation["id"])
        # when: Ana replies and the visitor's open widget shows it
        page.fill("#composer-body", "Yes, in 3 days.")
        page.keyboard.press("Control+Enter")
        expect(visitor.locator("li.msg.theirs", has_text="in 3 days")).to_have_count(1)
        # then: the server has the reply as read, and so has Ana's page, without a reload
        [reply] = [m for m in widget_live.timeline(conversation["id"]) if m.get("body") == "Yes, in 3 days."]
        assert eventually_status(widget_live, conversation["id"], reply["id"]) == "read"
        expect(page.locator(f"#m-{reply['id']} .ticks")).to_have_attribute("data-status", "read")


def eventually_status(live: LiveHilo, conversation_id: int, message_id: int) -> str:
    found = eventually(
        lambda: next(
            (m["status"] for m in live.timeline(conversation_id) if m["id"] == message_id and m["status"] == "read"),
            None,
        )
    )
    return str(found)
