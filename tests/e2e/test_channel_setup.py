"""Setting up a channel in real headless Chromium, against a real server and the fake Graph API:
the labelled WhatsApp form with its required fields, the connection test and the health panel
(SQLite and PostgreSQL)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from hilo.agents.actions import create_agent, create_team, create_token
from hilo.app import create_app
from hilo.clock import FrozenClock
from tests.channels.provider_support import META_APP_SECRET, VERIFY_TOKEN, WHATSAPP_NUMBER_ID, fixture, post_meta
from tests.e2e.test_agent_ui import PASSWORD, Agent, Live, _serve_app, page_for, served_settings
from tests.fakes.meta import DEFAULT_ACCESS_TOKEN, FakeGraphAPI, running_fake_graph
from tests.support import Api

pytestmark = pytest.mark.e2e

T = TypeVar("T")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[tuple[Live, FakeGraphAPI]]:
    settings, port = served_settings(request, tmp_path_factory, sqlite_template, "setup")
    clock = FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    app = create_app(settings, clock=clock)
    with app.state.runtime.transaction() as tx:
        admin = create_agent(tx, email="ana@example.com", name="Ana Admin", password=PASSWORD, role="admin")
        team = create_team(tx, "Support", "Front line", [admin.id])
        _row, token = create_token(tx, admin, "e2e")
        agents = {"ana": Agent(admin.email, admin.name, admin.id)}
        team_id = team.id
    server, thread = _serve_app(app, port)
    try:
        with running_fake_graph() as graph, httpx.Client(base_url=settings.base_url, timeout=20) as http:
            api = Api(http, token, admin.id)  # type: ignore[arg-type]
            yield Live(settings.base_url, clock, api, agents, team_id, [], "http://127.0.0.1:9/hook"), graph
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def eventually(check: Callable[[], T | None], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(0.05)


def test_an_admin_sets_up_a_whatsapp_channel_tests_it_and_sees_its_health(
    browser: Browser, contexts: list[BrowserContext], stage: tuple[Live, FakeGraphAPI]
) -> None:
    # given: the fake Graph API knows the number
    live, graph = stage
    graph.reset()
    graph.nodes[WHATSAPP_NUMBER_ID] = {
        "id": WHATSAPP_NUMBER_ID,
        "display_phone_number": "+1 555-078-3881",
        "verified_name": "Hilo Shop",
    }
    page = page_for(browser, contexts, live, "ana")
    page.goto(f"{live.url}/admin/channels")
    # then: the page says which address providers must reach, and that this one is not public
    public = page.locator("#public-url")
    expect(public).to_contain_text(live.url)
    expect(public).to_contain_text("cannot reach it")
    # when: the admin picks WhatsApp by its name and adds it with only a name
    page.click("[data-action=open-dialog][data-dialog=channel-add]")
    kinds = page.locator("#channel-add select[name=kind] option").all_inner_texts()
    assert "WhatsApp (Cloud API)" in kinds and "Web form" in kinds
    assert not any("(" + kind + ")" in label for kind in ("webform", "whatsapp", "api") for label in kinds)
    page.select_option("#channel-add select[name=kind]", label="WhatsApp (Cloud API)")
    form = page.locator("#channel-add fieldset[data-kind=whatsapp]")
    expect(form.locator("label", has_text="Phone number ID")).to_be_visible()
    expect(form.get_by_role("link", name=re.compile("setup guide"))).to_have_attribute(
        "href", "/admin/docs/channels/whatsapp"
    )
    page.fill("#channel-add input[name=name]", "WhatsApp Shop")
    page.click("#channel-add button[type=submit]")
    # then: each required field says so, next to it, and nothing was created
    for key in ("phone_number_id", "access_token", "app_secret", "verify_token"):
        expect(form.locator(f"[data-error-for='settings.{key}']")).to_be_visible()
        expect(form.locator(f"input[name='settings.{key}']")).to_have_attribute("aria-invalid", "true")
    expect(form.locator("[data-error-for='settings.waba_id']")).to_be_hidden()
    expect(page.locator("#channel-add .form-error")).to_contain_text("Some required settings are empty")
    assert live.api.ok(live.api.get("/api/v1/channels")) == []
    # when: the admin fills them in
    form.locator("input[name='settings.phone_number_id']").fill(WHATSAPP_NUMBER_ID)
    form.locator("input[name='settings.access_token']").fill(DEFAULT_ACCESS_TOKEN)
    form.locator("input[name='settings.app_secret']").fill(META_APP_SECRET)
    form.locator("input[name='settings.verify_token']").fill(VERIFY_TOKEN)
    form.locator("input[name='settings.api_base_url']").fill(graph.base_url)
    with page.expect_navigation():
        page.click("#channel-add button[type=submit]")
    # then: the channel's card, with its webhook URL on this server
    [channel] = live.api.ok(live.api.get("/api/v1/channels"))
    card = page.locator(f"#channel-{channel['id']}")
    expect(card.locator("input[readonly]")).to_have_value(f"{live.url}/webhooks/whatsapp/{channel['id']}")
    expect(card.locator("[data-health-item=inbound]")).to_have_text("never")
    # when: the admin tests the connection
    card.locator("[data-action=channel-check]").click()
    # then: Meta was asked with the saved token, and the number is named
    result = card.locator(".check-result")
    expect(result).to_have_text("Connected to the WhatsApp number +1 555-078-3881 (Hilo Shop).")
    expect(result).to_have_class(re.compile("check-ok"))
    assert graph.requests_to(f"/{WHATSAPP_NUMBER_ID}")[0].headers["authorization"] == f"Bearer {DEFAULT_ACCESS_TOKEN}"
    # when: a customer writes, and a reply fails for good at Meta
    assert post_meta(live.api, channel, fixture("whatsapp_text.json")).status_code == 200
    conversation = live.api.conversations(status="open")[0]["id"]
    graph.fail_next(400, {"error": {"message": "(#100) Invalid parameter", "type": "OAuthException", "code": 100}})
    live.api.ok(live.api.post(f"/api/v1/conversations/{conversation}/messages", {"body": "Hello!"}), 201)

    def failed() -> Any:
        health = live.api.ok(live.api.get(f"/api/v1/channels/{channel['id']}/health"))
        return health if health["failures"] else None

    eventually(failed)
    page.reload()
    # then: the health panel shows the message received and the failed send with its reason
    card = page.locator(f"#channel-{channel['id']}")
    expect(card.locator("[data-health-item=inbound]")).not_to_have_text("never")
    expect(card.locator("[data-health-item=failures]")).to_have_text("1")
    expect(card.locator(".health-failures")).to_contain_text("Meta rejected the message as invalid")
    expect(card.locator(".health-failures a")).to_have_attribute("href", f"/inbox?c={conversation}")
    # when: the admin opens the setup guide
    card.get_by_role("link", name="Setup guide").click()
    # then: the WhatsApp page of the docs
    expect(page.locator(".doc-text")).to_contain_text("WhatsApp")
    # The refused first try is the one failed request the browser logged.
    errors: list[str] = page.errors  # type: ignore[attr-defined]
    assert [e for e in errors if "status of 422" not in e] == []
    assert len(errors) == 1
