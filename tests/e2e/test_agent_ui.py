"""The agent workspace in real headless Chromium against a real server (SQLite and PostgreSQL).

One server per module and database; each scenario creates its own contacts through the
generic API channel's signed webhook, the way a custom source would.
"""

from __future__ import annotations

import itertools
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, expect
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from hilo.agents.actions import create_agent, create_team, create_token
from hilo.app import create_app
from hilo.clock import FrozenClock
from hilo.settings import Settings
from tests.conftest import empty_postgres, make_settings
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS  # noqa: F401 - other modules import them from here
from tests.e2e.steps import PASSWORD, open_conversation, sign_in, watch_errors
from tests.fakes.server import free_port, serve_asgi
from tests.support import Api, live_client

pytestmark = pytest.mark.e2e

_ids = itertools.count(1)


@dataclass
class Agent:
    email: str
    name: str
    id: int


@dataclass
class Live:
    """The running server, its clock, an admin API client and what the fake receiver got."""

    url: str
    clock: FrozenClock
    api: Api
    agents: dict[str, Agent]
    team_id: int
    received: list[dict[str, Any]]
    receiver_url: str


class Receiver:
    """The customer's system behind the generic API channel: it accepts every reply."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

    async def hook(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.received.append(body)
        return JSONResponse({"id": f"prov-{len(self.received)}"})

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])


def _serve_app(app: Any, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    # The app runs with its lifespan (bus, ingest queue, outbox worker, notifier).
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the app server did not start")
        time.sleep(0.02)
    return server, thread


def served_settings(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    sqlite_template: Path,
    name: str,
    **extra: Any,
) -> tuple[Settings, int]:
    """Settings for a Hilo served on a free port, on the database the fixture's param names
    (an empty copy of the migrated SQLite template, or the worker's emptied PostgreSQL)."""
    folder = tmp_path_factory.mktemp(f"{name}-{request.param}")
    if request.param == "sqlite":
        shutil.copy(sqlite_template, folder / "hilo.db")
        database_url = f"sqlite:///{folder / 'hilo.db'}"
    else:
        database_url = request.getfixturevalue("pg_database")
        empty_postgres(database_url)
    port = free_port()
    settings = make_settings(
        database_url,
        folder / "data",
        secret_key="e2e-secret-key",
        base_url=f"http://127.0.0.1:{port}",
        run_worker=True,
        login_rate_limit=50,
        **extra,
    )
    return settings, port


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Live]:
    settings, port = served_settings(request, tmp_path_factory, sqlite_template, "ui", max_body_bytes=256 * 1024)
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    app = create_app(settings, clock=clock)
    runtime = app.state.runtime
    with runtime.transaction() as tx:
        admin = create_agent(tx, email="ana@example.com", name="Ana Admin", password=PASSWORD, role="admin")
        bruno = create_agent(tx, email="bruno@example.com", name="Bruno Díaz", password=PASSWORD, locale="es")
        team = create_team(tx, "Support", "Front line", [admin.id, bruno.id])
        _row, token = create_token(tx, admin, "e2e")
        agents = {
            "ana": Agent(admin.email, admin.name, admin.id),
            "bruno": Agent(bruno.email, bruno.name, bruno.id),
        }
        team_id = team.id
    receiver = Receiver()
    server, thread = _serve_app(app, port)
    try:
        with serve_asgi(receiver.app()) as receiver_base, live_client(settings.base_url) as http:
            api = Api(http, token, agents["ana"].id)  # type: ignore[arg-type]
            yield Live(settings.base_url, clock, api, agents, team_id, receiver.received, f"{receiver_base}/hook")
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def page_for(browser: Browser, contexts: list[BrowserContext], live: Live, who: str, width: int = 1440) -> Page:
    """A signed-in page of agent `who`, in a browser context of its own."""
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="en-GB")
    contexts.append(context)
    page = context.new_page()
    page.set_default_timeout(10_000)
    watch_errors(page)
    sign_in(page, live.url, live.agents[who].email)
    expect(page.locator("#conn")).to_be_hidden()
    return page


def customer(live: Live, channel: dict[str, Any], text: str, external_id: str | None = None, **contact: Any) -> int:
    """A customer writes on `channel`; returns the conversation id."""
    live.clock.advance(seconds=30)
    external = external_id or f"cust-{next(_ids)}"
    live.api.inbound(channel, external, text, **contact)
    [conversation] = live.api.conversations(contact_id=_contact_of(live, channel, external))
    return int(conversation["id"])


def _contact_of(live: Live, channel: dict[str, Any], external_id: str) -> int:
    found = live.api.ok(live.api.get("/api/v1/contacts", params={"q": f"{channel['id']}:{external_id}"}))["items"]
    return int(found[0]["id"])


def no_page_errors(page: Page) -> None:
    """No script error, no CSP violation, no failed request (a 409 collision warning is expected)."""
    errors = [e for e in page.errors if "status of 409" not in e]  # type: ignore[attr-defined]
    assert errors == []


def test_sign_in_every_view_saved_view_and_language(
    browser: Browser, contexts: list[BrowserContext], live: Live
) -> None:
    # given: conversations spread over views
    shop = live.api.api_channel("Views shop", live.receiver_url)
    mine = customer(live, shop, "Assigned to Ana", name="Marta Views")
    unassigned = customer(live, shop, "Nobody has me yet", name="Nico Views")
    pending = customer(live, shop, "Waiting on a parcel", name="Paula Views")
    live.api.ok(
        live.api.patch(
            f"/api/v1/conversations/{mine}",
            {"assignee_id": live.agents["ana"].id, "team_id": live.team_id, "labels": ["vip"]},
        )
    )
    live.api.ok(live.api.patch(f"/api/v1/conversations/{pending}", {"status": "pending"}))
    page = page_for(browser, contexts, live, "ana")
    # when / then: a wrong password is refused with the API's message, in a fresh context
    other = browser.new_context()
    contexts.append(other)
    login = other.new_page()
    login.goto(f"{live.url}/login?next=/inbox")
    login.fill("input[name=email]", "ana@example.com")
    login.fill("input[name=password]", "not the password")
    login.click("button[type=submit]")
    expect(login.locator("#login-error")).to_have_text("Wrong e-mail address or password.")
    # then: every built-in view lists what it should
    expectations = {
        "mine": ([mine], [unassigned]),
        "unassigned": ([unassigned], [mine]),
        "all": ([mine, unassigned], [pending]),
        f"team-{live.team_id}": ([mine], [unassigned]),
        f"channel-{shop['id']}": ([mine, unassigned], [pending]),
        "status-pending": ([pending], [mine]),
        "status-open": ([mine, unassigned], [pending]),
        "label-vip": ([mine], [unassigned]),
    }
    for key, (shown, hidden) in expectations.items():
        page.click(f".nav-item[data-view='{key}']")
        expect(page.locator("#list")).to_have_attribute("data-view", key)
        for conversation_id in shown:
            expect(page.locator(f"#row-{conversation_id}")).to_be_visible()
        for conversation_id in hidden:
            expect(page.locator(f"#row-{conversation_id}")).to_have_count(0)
    for status in ("snoozed", "resolved"):
        page.click(f".nav-item[data-view='status-{status}']")
        expect(page.locator("#list")).to_have_attribute("data-view", f"status-{status}")
    # when: the status filter and the sort of the All view change, then it is saved as a view
    page.click(".nav-item[data-view='all']")
    expect(page.locator("#list")).to_have_attribute("data-view", "all")
    page.select_option("#list-form select[name=status]", "pending")
    expect(page.locator(f"#row-{pending}")).to_be_visible()
    expect(page).to_have_url(re.compile(r"status=pending"))
    page.select_option("#list-form select[name=sort]", "waiting")
    expect(page).to_have_url(re.compile(r"sort=waiting"))
    page.once("dialog", lambda dialog: dialog.accept("Parcels"))
    page.click("[data-action=save-view]")
    # then: the saved view is in the sidebar and lists the same conversations
    saved = page.locator(".nav-item", has_text="Parcels")
    expect(saved).to_be_visible()
    expect(page.locator("#list h1")).to_have_text("Parcels")
    expect(page.locator(f"#row-{pending}")).to_be_visible()
    expect(page.locator(f"#row-{mine}")).to_have_count(0)
    # then: unread counts: Ana has not opened Marta's conversation yet
    expect(page.locator(".nav-item[data-view='mine'] .count")).to_have_text("1")
    page.click(".nav-item[data-view='mine']")
    expect(page.locator("#list")).to_have_attribute("data-view", "mine")
    page.keyboard.press("j")
    expect(page.locator("#conversation")).to_have_attribute("data-id", str(mine))
    expect(page.locator(".nav-item[data-view='mine'] .count")).to_have_count(0)
    # when: Ana switches to Spanish
    page.click("[data-action=locale][data-locale=es]")
    # then: the whole page is Spanish, and stays so after a reload
    expect(page.locator(".topnav a").first).to_have_text("Bandeja")
    expect(page.locator(".nav-item[data-view='mine'] .nav-name")).to_have_text("Mías")
    page.reload()
    expect(page.locator("#composer-body")).to_have_attribute(
        "placeholder", "Escribe una respuesta; con / insertas una respuesta predefinida"
    )
    me = live.api.ok(live.api.get("/api/v1/auth/me"))
    assert me["locale"] == "es"
    page.click("[data-action=locale][data-locale=en]")
    expect(page.locator(".topnav a").first).to_have_text("Inbox")
    # when: she signs out
    page.click("[data-action=menu][data-menu=user-menu]")
    page.click("[data-action=logout]")
    # then
    page.wait_for_url(re.compile(r".*/login.*"))
    page.goto(f"{live.url}/inbox")
    expect(page).to_have_url(re.compile(r".*/login\?next=.*"))
    no_page_errors(page)


def test_reply_on_a_chosen_channel_with_live_delivery(
    browser: Browser, contexts: list[BrowserContext], live: Live
) -> None:
    # given: one customer on two channels (the same phone number): one thread
    shop = live.api.api_channel("Shop", live.receiver_url)
    app = live.api.api_channel("Mobile app", live.receiver_url)
    conversation = customer(
        live, shop, "Where is order 77?", external_id="sara-shop", name="Sara Reply", phone="+34 611 000 001"
    )
    assert customer(live, app, "Sorry, order 78", external_id="sara-app", phone="611000001") == conversation
    page = page_for(browser, contexts, live, "ana")
    open_conversation(page, live, conversation)
    # then: both channels are offered; the default is the one she used last
    picker = page.locator("#channel-picker")
    expect(picker.locator("option")).to_have_count(2)
    expect(picker).to_have_value(str(app["id"]))
    expect(page.locator(".event-switch")).to_contain_text("Continued on Mobile app")
    # when: Ana answers on the shop channel instead, starting from a canned response
    live.api.ok(
        live.api.post(
            "/api/v1/canned-responses",
            {"shortcut": "ship", "title": "Shipping", "body": "Hi {{contact.first_name}}, both orders ship today."},
        ),
        201,
    )
    picker.select_option(str(shop["id"]))
    page.locator("#composer-body").press_sequentially("/shi")
    expect(page.locator("#suggest")).to_contain_text("/ship · Shipping")
    page.keyboard.press("Enter")
    expect(page.locator("#composer-body")).to_have_value("Hi Sara, both orders ship today.")
    page.keyboard.press("Control+Enter")
    # then: the reply is in the timeline with the shop's badge, and the worker's "sent" tick arrives live
    reply = page.locator(".msg-outbound", has_text="Hi Sara, both orders ship today.")
    expect(reply).to_be_visible()
    expect(reply.locator(".chan")).to_have_attribute("title", "Shop")
    expect(reply.locator(".ticks")).to_have_attribute("data-status", "sent")
    assert any(r["text"] == "Hi Sara, both orders ship today." for r in live.received)
    # when: the customer answers and the provider reports the reply as read
    live.clock.advance(seconds=30)
    live.api.inbound(shop, "sara-shop", "Great, thanks!")
    message_id = int(reply.get_attribute("data-id") or 0)
    [sent] = [m for m in live.api.timeline(conversation) if m["body"] == "Hi Sara, both orders ship today."]
    provider_id = sent["provider_message_id"]
    live.api.webhook(shop, {"type": "status", "message_id": provider_id, "status": "read"})
    # then: both show up without a reload
    expect(page.locator(".msg-inbound", has_text="Great, thanks!")).to_be_visible()
    expect(page.locator(f"#m-{message_id} .ticks")).to_have_attribute("data-status", "read")
    no_page_errors(page)


def test_note_mention_notifies_and_presence_and_collision(
    browser: Browser, contexts: list[BrowserContext], live: Live
) -> None:
    # given: Ana and Bruno both open the same conversation
    shop = live.api.api_channel("Collision shop", live.receiver_url)
    conversation = customer(live, shop, "Can someone help me?", name="Carla Collision")
    ana = page_for(browser, contexts, live, "ana")
    bruno = page_for(browser, contexts, live, "bruno")
    open_conversation(ana, live, conversation)
    open_conversation(bruno, live, conversation)
    # then: each sees the other one viewing
    expect(ana.locator("#presence")).to_contain_text("Bruno Díaz is viewing")
    expect(bruno.locator("#presence")).to_contain_text("Ana Admin está viendo")
    # when: Bruno types
    bruno.locator("#composer-body").press_sequentially("Hola")
    # then: Ana sees him typing
    expect(ana.locator("#presence")).to_contain_text("Bruno Díaz is typing…")
    # when: Ana writes a private note mentioning Bruno
    ana.click(".tabs [data-mode=note]")
    ana.locator("#composer-body").press_sequentially("Please check the refund @Bru")
    ana.click("#suggest [data-action=pick-suggestion]")
    ana.click("#send")
    # then: the note is in both timelines and Bruno is notified (toast and bell)
    expect(ana.locator(".msg-note .mention")).to_have_text("@Bruno Díaz")
    expect(bruno.locator(".msg-note", has_text="Please check the refund")).to_be_visible()
    expect(bruno.locator(".toast", has_text="Ana Admin te mencionó")).to_be_visible()
    expect(bruno.locator("#bell-count")).to_have_text("1")
    bruno.click("#bell")
    expect(bruno.locator("#notifications .notif.unread")).to_have_count(1)
    # when: Bruno replies while Ana still has her page from before
    bruno.click("[data-action=read-all-notifications]")
    expect(bruno.locator("#bell-count")).to_be_hidden()
    bruno.fill("#composer-body", "Refund approved.")
    bruno.click("#send")
    expect(ana.locator(".msg-outbound", has_text="Refund approved.")).to_be_visible()
    ana.click(".tabs [data-mode=reply]")
    ana.fill("#composer-body", "I will process the refund.")
    ana.click("#send")
    # then: Ana is warned before her reply goes out, and can send it anyway
    expect(ana.locator("#collision")).to_contain_text("Someone else replied since you opened this conversation.")
    expect(ana.locator(".msg-outbound", has_text="I will process the refund.")).to_have_count(0)
    ana.click("[data-action=send-anyway]")
    expect(ana.locator(".msg-outbound", has_text="I will process the refund.")).to_be_visible()
    expect(ana.locator("#collision")).to_be_hidden()
    # when: Bruno leaves the conversation
    bruno.goto(f"{live.url}/inbox")
    # then: Ana no longer sees him
    expect(ana.locator("#presence")).not_to_contain_text("Bruno")
    no_page_errors(ana)
    no_page_errors(bruno)


def test_assignment_bulk_actions_and_merge(browser: Browser, contexts: list[BrowserContext], live: Live) -> None:
    # given: two people who turn out to be one customer, and a third conversation
    shop = live.api.api_channel("Merge shop", live.receiver_url)
    first = customer(live, shop, "My order is late", name="Lola Merge")
    second = customer(live, shop, "It's me again, new phone", name="Lola M.")
    third = customer(live, shop, "Unrelated question", name="Otto Bulk")
    page = page_for(browser, contexts, live, "ana")
    bruno = page_for(browser, contexts, live, "bruno")
    open_conversation(page, live, first)
    # when: Ana assigns the conversation to Bruno
    page.select_option("#conv-header select[data-patch=assignee_id]", str(live.agents["bruno"].id))
    # then: the timeline says so, and Bruno is notified
    expect(page.locator("#timeline .event", has_text="assigned the conversation to Bruno Díaz")).to_be_visible()
    expect(bruno.locator(".toast", has_text="Te la asignaron")).to_be_visible()
    assert live.api.ok(live.api.get(f"/api/v1/conversations/{first}"))["assignee_id"] == live.agents["bruno"].id
    # when: she selects two rows and sets their priority in bulk
    page.check(f"#row-{second} .row-check")
    page.check(f"#row-{third} .row-check")
    expect(page.locator("#bulk-count")).to_have_text("2")
    page.select_option("[data-bulk=priority]", "urgent")
    # then
    expect(page.locator(f"#row-{second} .prio-urgent")).to_be_visible()
    expect(page.locator(f"#row-{third} .prio-urgent")).to_be_visible()
    expect(page.locator("#bulk")).to_be_hidden()
    # when: she snoozes the third one until tomorrow morning with the keyboard
    open_conversation(page, live, third)
    page.keyboard.press("s")
    page.click("#snooze-dialog [data-snooze=tomorrow]")
    # then: one click on the preset snoozed it
    expect(page.locator("#snooze-dialog")).not_to_be_visible()
    expect(page.locator("#conv-header .status-snoozed")).to_be_visible()
    expect(page.locator("#timeline .event", has_text="snoozed the conversation until")).to_be_visible()
    # when: she merges the second conversation into the first
    open_conversation(page, live, second)
    page.click("[data-action=menu][data-menu=conv-menu]")
    page.click("[data-action=merge-conversation]")
    page.fill("#merge-dialog input[type=search]", f"#{first}")
    expect(page.locator("#merge-results .pick")).to_have_count(1)
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#merge-results [data-target='{first}']")
    # then: the first conversation is open with both customers' messages and the merge in its timeline
    expect(page.locator("#conversation")).to_have_attribute("data-id", str(first))
    expect(page.locator(".msg-inbound", has_text="It's me again, new phone")).to_be_visible()
    expect(page.locator("#timeline .event", has_text=f"merged conversation #{second} into this one")).to_be_visible()
    expect(page.locator(f"#row-{second}")).to_have_count(0)
    merged = live.api.ok(live.api.get(f"/api/v1/conversations/{second}"))
    assert merged["merged_into_id"] == first
    no_page_errors(page)


def test_phone_layout_shows_one_pane_at_a_time(browser: Browser, contexts: list[BrowserContext], live: Live) -> None:
    # given
    shop = live.api.api_channel("Phone shop", live.receiver_url)
    conversation = customer(live, shop, "Writing from my phone", name="Pablo Phone")
    page = page_for(browser, contexts, live, "ana", width=390)
    page.goto(f"{live.url}/inbox?view=all")
    # when: the agent opens a conversation from the list
    page.click(f"#row-{conversation} .row-link")
    # then: the conversation replaces the list, and "back" returns to it
    expect(page.locator("#conversation")).to_be_visible()
    expect(page.locator("#list-pane")).to_be_hidden()
    page.click("#conv-header [data-action=back]")
    expect(page.locator("#list-pane")).to_be_visible()
    # when: the keyboard help is asked for
    page.keyboard.press("?")
    # then
    expect(page.locator("#help-dialog")).to_be_visible()
    no_page_errors(page)


def test_admin_adds_and_disables_a_channel(browser: Browser, contexts: list[BrowserContext], live: Live) -> None:
    # given
    page = page_for(browser, contexts, live, "ana")
    page.goto(f"{live.url}/admin/channels")
    # when: an API channel is added through the dialog
    page.click("[data-action=open-dialog][data-dialog=channel-add]")
    page.select_option("#channel-add select[name=kind]", "api")
    page.fill("#channel-add input[name=name]", "Partner portal")
    page.fill("#channel-add fieldset[data-kind=api] input[name='settings.outbound_url']", live.receiver_url)
    page.click("#channel-add button[type=submit]")
    # then: its signing secret is shown once, then the card with its webhook URL
    expect(page.locator("#channel-secret-value")).not_to_have_value("")
    page.click("#channel-secret [data-action=reload]")
    card = page.locator(".channel-card", has_text="Partner portal")
    expect(card.locator("input[readonly]")).to_have_value(re.compile(rf"^{re.escape(live.url)}/webhooks/api/\d+$"))
    # when: it is disabled
    card.locator("[data-action=channel-enabled]").click()
    # then
    expect(page.locator(".channel-card.disabled", has_text="Partner portal")).to_be_visible()
    channel_id = int(card.locator("input[readonly]").input_value().rsplit("/", 1)[1])
    assert live.api.ok(live.api.get(f"/api/v1/channels/{channel_id}"))["enabled"] is False
    # when: the other admin pages are visited
    for path, text in (("agents", "Bruno Díaz"), ("teams", "Support"), ("roles", "Administrator")):
        page.goto(f"{live.url}/admin/{path}")
        expect(page.locator(".admin-main")).to_contain_text(text)
    # then: a plain agent is refused
    bruno = page_for(browser, contexts, live, "bruno")
    bruno.goto(f"{live.url}/admin/channels")
    expect(bruno.locator("main")).to_contain_text("Solo los administradores pueden hacer esto.")
    no_page_errors(page)


def test_an_agent_creates_uses_and_revokes_an_api_token(
    browser: Browser, contexts: list[BrowserContext], live: Live
) -> None:
    # given: Bruno, a plain agent who works in Spanish
    page = page_for(browser, contexts, live, "bruno")
    # when: he opens his API tokens from his menu and creates one
    page.click("[data-menu=user-menu]")
    page.click("#user-menu a[href='/account/tokens']")
    expect(page.locator(".admin-main h1")).to_have_text("Tokens de API")
    page.click("[data-action=open-dialog][data-dialog=token-add]")
    page.fill("#token-add input[name=name]", "Zapier")
    page.click("#token-add button[type=submit]")
    # then: the token is shown once, and the API answers it as Bruno
    shown = page.locator("#token-secret-value")
    expect(shown).to_have_value(re.compile(r"^hilo_"))
    bearer = {"Authorization": f"Bearer {shown.input_value()}"}
    me = httpx.get(f"{live.url}/api/v1/auth/me", headers=bearer)
    assert me.status_code == 200 and me.json()["email"] == live.agents["bruno"].email
    page.click("#token-secret [data-action=reload]")
    row = page.locator("#tokens tr", has_text="Zapier")
    expect(row.locator("code")).to_have_text(re.compile(r"^hilo_.+…$"))
    # when: he revokes it
    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-action=token-revoke]").click()
    # then: it is marked revoked and refused at once
    expect(page.locator("#tokens tr", has_text="Zapier")).to_contain_text("Revocado")
    assert httpx.get(f"{live.url}/api/v1/auth/me", headers=bearer).status_code == 401
    no_page_errors(page)
