"""Setting up a channel in real headless Chromium, against a real server and the fake Graph API:
the labelled WhatsApp form with its required fields, the connection test and the health panel
(SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.channels.provider_support import META_APP_SECRET, VERIFY_TOKEN, WHATSAPP_NUMBER_ID, fixture, post_meta
from tests.e2e import test_composer_channels
from tests.e2e.test_agent_ui import page_for
from tests.e2e.test_composer_channels import Stage
from tests.fakes.meta import DEFAULT_ACCESS_TOKEN
from tests.support import eventually

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Stage]:
    """The composer tests' served app with the fake Meta Graph API, for this module (one per database)."""
    yield from test_composer_channels.stage.__wrapped__(request, tmp_path_factory, sqlite_template)  # type: ignore[attr-defined]


def test_an_admin_sets_up_a_whatsapp_channel_tests_it_and_sees_its_health(
    browser: Browser, contexts: list[BrowserContext], stage: Stage
) -> None:
    # given: the fake Graph API knows the number
    live, graph = stage.live, stage.graph
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
